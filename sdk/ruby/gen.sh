#!/bin/sh
# gen.sh OUTDIR - the Ruby protobuf modules the Ruby runtime needs, into
# OUTDIR (put OUTDIR and sdk/ruby/lib on the load path, `ruby -I`):
#   OUTDIR/spawn/actors/{actor,extensions,protocol}_pb.rb
#   OUTDIR/spawn/gateway/v1/gateway_pb.rb
# with Debian's protoc --ruby_out (ruby-google-protobuf reads them).
# Environment: PROTOC (default: protoc), PROTOBUF_INCLUDE (default: /usr/include).
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUT=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$OUT"
"${PROTOC:-protoc}" --ruby_out="$OUT" -I"$ROOT/proto" -I"${PROTOBUF_INCLUDE:-/usr/include}" \
  spawn/actors/actor.proto spawn/actors/extensions.proto spawn/actors/protocol.proto \
  spawn/gateway/v1/gateway.proto
