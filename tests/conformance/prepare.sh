#!/usr/bin/env bash
# prepare.sh PROTOC PLUGIN SOURCE_DIR OUT_DIR
#
# The Python and TypeScript sides of the conformance suite, made once per
# build tree before the matrix runs (ctest fixture "conformance"):
#   OUT_DIR/py/   protoc --python_out and --spawn_out=lang=python of
#                 conformance.proto, and the protocol's modules
#                 (sdk/python/gen.sh)
#   OUT_DIR/ts/   --spawn_out=lang=ts of conformance.proto with host.ts,
#                 client.ts and tsconfig.json, compiled by sdk/node's tsc
#                 into OUT_DIR/ts/dist; node_modules/@spawn-gateway/sdk
#                 links sdk/node (installed from its lockfile with npm ci
#                 and built, under sdk/node's test lock, by
#                 tests/golden/node_sdk.sh)
# The C side is built by CMake (conformance-host-c, conformance-client-c).
set -euo pipefail
protoc=$1 plugin=$2 root=$3 out=$4
here=$root/tests/conformance
sdk_node=$root/sdk/node
if [ -z "${SPAWN_NODE_TEST_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
	SPAWN_NODE_TEST_LOCKED=1 exec flock "$sdk_node/.test.lock" bash "$0" "$@"
fi

tmp=$out.tmp
rm -rf "$tmp"
mkdir -p "$tmp/py" "$tmp/ts/gen" "$tmp/ts/node_modules/@spawn-gateway" "$tmp/ts/node_modules/@types"
gen() { # gen PROTOC-OUTPUT-ARGS...
	(cd "$here" && "$protoc" -I. -I"$root/proto" -I/usr/include \
		--plugin=protoc-gen-spawn="$plugin" "$@" conformance.proto)
}

gen --python_out="$tmp/py" --spawn_out=lang=python:"$tmp/py"
PROTOC=$protoc sh "$root/sdk/python/gen.sh" "$tmp/py" >/dev/null

. "$root/tests/golden/node_sdk.sh"
node_sdk_ready "$sdk_node" >"$tmp/npm.log" 2>&1 || {
	cat "$tmp/npm.log" >&2
	echo "prepare.sh: cannot install or build sdk/node" >&2
	exit 1
}
gen --spawn_out=lang=ts:"$tmp/ts/gen"
cp "$here/host.ts" "$here/client.ts" "$here/tsconfig.json" "$tmp/ts/"
ln -s "$sdk_node" "$tmp/ts/node_modules/@spawn-gateway/sdk"
ln -s "$sdk_node/node_modules/@types/node" "$tmp/ts/node_modules/@types/node"
"$sdk_node/node_modules/.bin/tsc" -p "$tmp/ts"

rm -rf "$out"
mv "$tmp" "$out"
echo "conformance: Python and TypeScript sides ready in $out"
