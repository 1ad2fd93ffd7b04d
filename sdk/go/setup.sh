#!/usr/bin/env bash
# setup.sh OUT [PROTOC]
#
# Makes OUT a GOPATH workspace for the Go runtime, offline, from Debian's Go
# packages only (golang-go, golang-google-grpc-dev, golang-google-protobuf-dev;
# GO111MODULE=off, no module downloads):
#   OUT/bin/protoc-gen-go      protobuf-go's generator (v1.28, Debian's
#                              golang-google-protobuf-dev sources), built here
#   OUT/src/github.com/eigr/go-support/eigr/{actors,protocol}
#                              Spawn's messages (their own go_package)
#   OUT/src/spawn-gateway/go/pb/gatewayv1
#                              the gateway's services (gateway.proto)
#   OUT/src/spawn-gateway/go/spawn -> sdk/go/spawn   the runtime (a link)
# Then build with
#   GO111MODULE=off GOPATH=OUT:/usr/share/gocode go build ...
# Idempotent; prints OUT/env, the environment to build with.
set -euo pipefail
out=$(realpath -m "$1")
protoc=${2:-protoc}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export GO111MODULE=off GOFLAGS= GOPATH="$out:/usr/share/gocode"
export GOCACHE=${GOCACHE:-$out/cache}

mkdir -p "$out/bin" "$out/src/spawn-gateway/go/pb"
if [ ! -x "$out/bin/protoc-gen-go" ]; then
	go build -o "$out/bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$protoc" -I"$root/proto" -I/usr/include --plugin=protoc-gen-go="$out/bin/protoc-gen-go" \
	--go_out="$tmp" \
	spawn/actors/actor.proto spawn/actors/extensions.proto spawn/actors/protocol.proto \
	spawn/gateway/v1/gateway.proto
# Replace each generated package whole (a file that changed name leaves none behind).
for pkg in github.com/eigr/go-support/eigr/actors github.com/eigr/go-support/eigr/protocol \
	spawn-gateway/go/pb/gatewayv1; do
	mkdir -p "$out/src/$pkg"
	if ! diff -qr "$tmp/$pkg" "$out/src/$pkg" >/dev/null 2>&1; then
		rm -rf "$out/src/$pkg"
		mkdir -p "$(dirname "$out/src/$pkg")"
		cp -r "$tmp/$pkg" "$out/src/$pkg"
	fi
done
ln -sfn "$here/spawn" "$out/src/spawn-gateway/go/spawn"
cat >"$out/env" <<ENV
export GO111MODULE=off GOFLAGS= GOPATH="$out:/usr/share/gocode" GOCACHE="$GOCACHE"
ENV
echo "$out/env"
