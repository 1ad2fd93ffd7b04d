#!/usr/bin/env bash
# test.sh WORKSPACE - go vet and go test of the runtime in the workspace
# setup.sh made (SPAWN_GATEWAY: the gateway binary the tests start).
set -euo pipefail
ws=$1
. "$ws/env"
cd "$ws/src/spawn-gateway/go/spawn"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt: not formatted: $unformatted" >&2
	exit 1
fi
go vet .
exec go test -count=1 -v -timeout 240s .
