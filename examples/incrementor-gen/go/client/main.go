// incrementor-gen Go client: invokes the Incrementor through the typed
// client protoc-gen-spawn generated from incrementor.proto (lang=go).
//
//	client [--gateway TARGET] [--system NAME] [--actor NAME] add N
//
// Prints the total the actor replies. On failure prints
// "client: STATUS: message" on stderr and exits 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	incrementor "example/examples/incrementor"
	"spawn-gateway/go/spawn"
)

func main() {
	gateway := flag.String("gateway", envOr("SPAWN_GATEWAY", "127.0.0.1:8090"), "the gateway")
	system := flag.String("system", "spawn-system", "the actor system")
	actor := flag.String("actor", "", "the actor (default: the contract's)")
	flag.Parse()
	args := flag.Args()
	n, err := strconv.ParseInt(flag.Arg(1), 10, 64)
	if len(args) != 2 || args[0] != "add" || err != nil {
		fmt.Fprintln(os.Stderr, "usage: client [--gateway TARGET] [--system NAME] [--actor NAME] add N")
		os.Exit(2)
	}
	client, err := spawn.NewClient(*gateway, spawn.ClientOptions{Deadline: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	defer client.Close()
	inc := incrementor.NewIncrementorClient(client, *system)
	total, err := inc.Add(context.Background(), &incrementor.Add{Value: n}, &spawn.CallOptions{Actor: *actor})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err) // "NOT_FOUND: ..."
		os.Exit(1)
	}
	fmt.Println(total.Total)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
