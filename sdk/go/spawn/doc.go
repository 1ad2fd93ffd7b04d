// Package spawn is the Go runtime of the spawn gateway: an actor host
// (Host: connect, register, run actions, reconnect) and a client (Client:
// Invoke, Spawn), with the same features as the TypeScript runtime
// (sdk/node): actions with state and checkpoints, workflows (pipe, forward,
// side effects, broadcasts), timers, scheduled side effects, tags,
// metadata, deadlines, reconnection, TLS, mutual TLS and bearer tokens, and
// the batched host link. docs/sdk/go.md is the guide, docs/protocol.md the
// wire protocol it speaks.
//
// It builds in GOPATH mode over Debian's Go packages (grpc-go 1.33,
// protobuf-go 1.28): sdk/go/setup.sh makes the workspace. grpc-go 1.33
// marshals with the old github.com/golang/protobuf API, which cannot encode
// protobuf-go 1.28 messages; every call of this package therefore uses
// Codec (codec.go), never grpc-go's default codec.
package spawn
