// bench/echo_host_go - bench-echo-host on the Go runtime (sdk/go/spawn):
// the same actor as bench/echo_host.c. Registers system S with one UNNAMED
// actor template "echo-actor" (stateful) whose action A answers with the
// request's payload and counts the calls in its state (an 8-byte counter).
// Prints "ready" once registered. bench/run.sh builds it in sdk/go's
// workspace (BUILD/go).
//
//	echo-host-go --gateway HOST:PORT --system S --action A
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"spawn-gateway/go/spawn"
)

const stateURL = "type.googleapis.com/bench.Counter"

func main() {
	gateway := flag.String("gateway", "127.0.0.1:8090", "the gateway")
	system := flag.String("system", "bench", "the actor system")
	action := flag.String("action", "echo", "the action")
	flag.Parse()
	ready := make(chan struct{}, 1)
	h, err := spawn.NewHost(*gateway, *system, spawn.HostOptions{Log: func(string, string) {},
		OnRegistered: func(*spawn.Host) {
			select {
			case ready <- struct{}{}:
			default:
			}
		}})
	if err == nil {
		err = h.AddActor(spawn.ActorDef{Name: "echo-actor", Kind: spawn.Unnamed, Actions: map[string]spawn.Handler{
			*action: func(c *spawn.Context) (proto.Message, error) {
				var n uint64
				if c.State != nil && len(c.State.Value) == 8 {
					n = binary.LittleEndian.Uint64(c.State.Value)
				}
				v := make([]byte, 8)
				binary.LittleEndian.PutUint64(v, n+1)
				if err := c.SetState(&anypb.Any{TypeUrl: stateURL, Value: v}); err != nil {
					return nil, err
				}
				return c.Payload, nil
			},
		}})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo-host-go:", err)
		os.Exit(2)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	h.Start()
	go func() {
		<-ready
		fmt.Println("ready")
	}()
	<-sig
	h.Stop()
}
