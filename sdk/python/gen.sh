#!/bin/sh
# gen.sh OUTDIR - generate the Python protobuf modules the Python SDK and the
# Python examples need into OUTDIR (put OUTDIR on sys.path):
#   OUTDIR/spawn/actors/{actor,extensions,protocol}_pb2.py
#   OUTDIR/spawn/gateway/v1/gateway_pb2.py
#   OUTDIR/incrementor_pb2.py        (examples/incrementor/incrementor.proto)
# google.protobuf.{any,timestamp,descriptor} come with the protobuf runtime.
# Environment: PROTOC (default: protoc), PROTOBUF_INCLUDE (default: /usr/include).
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
OUT=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PROTOC=${PROTOC:-protoc}
INC=${PROTOBUF_INCLUDE:-/usr/include}

# The example's contract; a copy next to the Python example stands in until
# (and unless) examples/incrementor/incrementor.proto exists.
EX=$ROOT/examples/incrementor
if [ -f "$EX/incrementor.proto" ]; then
  EXDIR=$EX
else
  EXDIR=$EX/python
fi

mkdir -p "$OUT"
"$PROTOC" --python_out="$OUT" -I"$ROOT/proto" -I"$INC" \
  spawn/actors/actor.proto \
  spawn/actors/extensions.proto \
  spawn/actors/protocol.proto \
  spawn/gateway/v1/gateway.proto
"$PROTOC" --python_out="$OUT" -I"$EXDIR" -I"$INC" "$EXDIR/incrementor.proto"

# Regular packages, so nothing else named `spawn` on sys.path shadows them.
for d in spawn spawn/actors spawn/gateway spawn/gateway/v1; do
  [ -f "$OUT/$d/__init__.py" ] || : > "$OUT/$d/__init__.py"
done
