// incrementor-gen Go host: serves the Incrementor actor with the code
// protoc-gen-spawn generated from incrementor.proto (lang=go), beside the
// messages protoc-gen-go generated.
//
//	host [--gateway TARGET] [--system NAME] [--checkpoint]
//
// Prints "registered" each time the gateway accepts the registration;
// exits 0 on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc/codes"

	incrementor "example/examples/incrementor"
	"spawn-gateway/go/spawn"
)

// The actor: Add gets the state and the input typed and replies typed.
type actor struct {
	checkpoint bool
}

func (a actor) Add(ctx *spawn.Context, state *incrementor.State, in *incrementor.Add) (*incrementor.Total, error) {
	if (in.Value > 0 && state.Total > math.MaxInt64-in.Value) || (in.Value < 0 && state.Total < math.MinInt64-in.Value) {
		return nil, spawn.Errorf(codes.OutOfRange, "total would overflow")
	}
	total := state.Total + in.Value
	if err := ctx.SetState(&incrementor.State{Total: total}); err != nil {
		return nil, err
	}
	if a.checkpoint {
		ctx.Checkpoint()
	}
	return &incrementor.Total{Total: total}, nil
}

func main() {
	gateway := flag.String("gateway", envOr("SPAWN_GATEWAY", "127.0.0.1:8090"), "the gateway")
	system := flag.String("system", "spawn-system", "the actor system")
	checkpoint := flag.Bool("checkpoint", false, "save the state before answering")
	flag.Parse()
	host, err := spawn.NewHost(*gateway, *system, spawn.HostOptions{
		OnRegistered: func(*spawn.Host) { fmt.Println("registered") },
	})
	if err == nil {
		err = incrementor.RegisterIncrementor(host, actor{checkpoint: *checkpoint})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	host.Start()
	<-sig
	host.Stop()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
