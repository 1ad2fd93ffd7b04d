// conformance host in Go: the actors of conformance.proto (Keeper, Echoer,
// Tally) on the code protoc-gen-spawn generated from it (lang=go), with the
// semantics the contract's comments define.
//
//	conformance-host-go --gateway TARGET [--system NAME]
//
// Prints "registered" each time the gateway accepts the registration;
// exits 0 on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pb "spawn-gateway/conformance/conformance/v1"
	"spawn-gateway/go/spawn"
)

func echoOf(m *pb.Blob) *pb.Blob {
	return &pb.Blob{Data: m.Data, Text: m.Text, Size: int64(len(m.Data))}
}

func fail(f *pb.FailRequest) error {
	return &spawn.Error{Code: codes.Code(f.Code), Message: f.Message}
}

// merge applies Keeper.Merge's rules (conformance.proto) to state.
func merge(state, m *pb.Profile) *pb.Profile {
	next := proto.Clone(state).(*pb.Profile)
	if m.Name != "" {
		next.Name = m.Name
	}
	if m.Counter != 0 {
		next.Counter = m.Counter
	}
	if m.Level != 0 {
		next.Level = m.Level
	}
	if m.Active {
		next.Active = true
	}
	if len(m.Blob) > 0 {
		next.Blob = m.Blob
	}
	if m.Ratio != 0 {
		next.Ratio = m.Ratio
	}
	if m.Big != 0 {
		next.Big = m.Big
	}
	if m.Shape != nil {
		next.Shape = m.Shape
	}
	next.Labels = append(next.Labels, m.Labels...)
	next.Numbers = append(next.Numbers, m.Numbers...)
	next.Levels = append(next.Levels, m.Levels...)
	next.History = append(next.History, m.History...)
	for k, v := range m.Scores {
		if next.Scores == nil {
			next.Scores = map[string]int64{}
		}
		if v == 0 {
			delete(next.Scores, k)
		} else {
			next.Scores[k] = v
		}
	}
	for k, v := range m.Shapes {
		if next.Shapes == nil {
			next.Shapes = map[string]*pb.Shape{}
		}
		next.Shapes[k] = v
	}
	for k, v := range m.Names {
		if next.Names == nil {
			next.Names = map[int32]string{}
		}
		next.Names[k] = v
	}
	for k, v := range m.Ranks {
		if next.Ranks == nil {
			next.Ranks = map[string]pb.Level{}
		}
		next.Ranks[k] = v
	}
	if m.Contact != nil {
		next.Contact = m.Contact
	}
	return next
}

type keeper struct{}

func (keeper) Set(c *spawn.Context, _ *pb.Profile, m *pb.Profile) (*pb.Profile, error) {
	return m, c.SetState(m)
}

func (keeper) Merge(c *spawn.Context, s *pb.Profile, m *pb.Profile) (*pb.Profile, error) {
	next := merge(s, m)
	return next, c.SetState(next)
}

func (keeper) Get(c *spawn.Context, s *pb.Profile, _ *pb.GetRequest) (*pb.Profile, error) {
	return s, nil
}

func (keeper) Fail(c *spawn.Context, _ *pb.Profile, f *pb.FailRequest) (*pb.Profile, error) {
	return nil, fail(f)
}

func (keeper) Echo(c *spawn.Context, _ *pb.Profile, m *pb.Blob) (*pb.Blob, error) {
	return echoOf(m), nil
}

func (keeper) Increment(c *spawn.Context, s *pb.Profile, m *pb.IncrementRequest) (*pb.Profile, error) {
	s.Counter += m.By
	if m.Checkpoint {
		c.Checkpoint()
	}
	return s, c.SetState(s)
}

type echoer struct{}

func (echoer) Echo(c *spawn.Context, m *pb.Blob) (*pb.Blob, error)        { return echoOf(m), nil }
func (echoer) Fail(c *spawn.Context, f *pb.FailRequest) (*pb.Blob, error) { return nil, fail(f) }

type tally struct{}

func (tally) Add(c *spawn.Context, s *pb.Count, m *pb.IncrementRequest) (*pb.Count, error) {
	next := &pb.Count{Value: s.Value + m.By}
	if m.Checkpoint {
		c.Checkpoint()
	}
	return next, c.SetState(next)
}

func (tally) Get(c *spawn.Context, s *pb.Count, _ *pb.GetRequest) (*pb.Count, error) {
	return s, nil
}

func main() {
	gateway := flag.String("gateway", "", "the gateway's address")
	system := flag.String("system", "conformance", "the actor system")
	flag.Parse()
	if *gateway == "" {
		fmt.Fprintln(os.Stderr, "usage: conformance-host-go --gateway TARGET [--system NAME]")
		os.Exit(2)
	}
	h, err := spawn.NewHost(*gateway, *system, spawn.HostOptions{
		ServiceName:  "conformance-host-go",
		OnRegistered: func(*spawn.Host) { fmt.Println("registered") },
	})
	if err == nil {
		err = pb.RegisterKeeper(h, keeper{})
	}
	if err == nil {
		err = pb.RegisterEchoer(h, echoer{})
	}
	if err == nil {
		err = pb.RegisterTally(h, tally{})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance-host-go:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	h.Start()
	<-sig
	h.Stop()
}
