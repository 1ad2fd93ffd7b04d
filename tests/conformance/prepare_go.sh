#!/usr/bin/env bash
# prepare_go.sh PROTOC PLUGIN SOURCE_DIR GO_WORKSPACE OUT_DIR
#
# The Go side of the conformance suite (ctest fixture "conformance_go"), in
# the Go workspace sdk/go/setup.sh made (fixture "go_workspace"):
# conformance.proto's messages (protoc-gen-go) and typed code
# (--spawn_out=lang=go) as package spawn-gateway/conformance/conformance/v1,
# then OUT_DIR/conformance-host-go and OUT_DIR/conformance-client-go.
set -euo pipefail
protoc=$1 plugin=$2 root=$3 ws=$4 out=$5
here=$root/tests/conformance
. "$ws/env"
pkg=spawn-gateway/conformance/conformance/v1
rm -rf "$ws/src/spawn-gateway/conformance"
mkdir -p "$ws/src/spawn-gateway/conformance/cmd" "$out"
(cd "$here" && "$protoc" -I. -I"$root/proto" -I/usr/include \
	--plugin=protoc-gen-go="$ws/bin/protoc-gen-go" --plugin=protoc-gen-spawn="$plugin" \
	--go_out="$ws/src" --go_opt=Mconformance.proto=$pkg \
	--spawn_out=lang=go,go_import_prefix=spawn-gateway/conformance:"$ws/src" conformance.proto)
cp -r "$here/go/host" "$here/go/client" "$ws/src/spawn-gateway/conformance/cmd/"
go vet "$pkg" spawn-gateway/conformance/cmd/host spawn-gateway/conformance/cmd/client
go build -o "$out/conformance-host-go" spawn-gateway/conformance/cmd/host
go build -o "$out/conformance-client-go" spawn-gateway/conformance/cmd/client
echo "conformance: Go side ready in $out"
