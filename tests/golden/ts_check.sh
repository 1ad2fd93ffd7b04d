#!/usr/bin/env bash
# ts_check.sh PROTOC PLUGIN CASE_DIR SPAWN_PROTO_DIR PROTOBUF_INCLUDE_DIR SOURCE_DIR
#
# The TypeScript that protoc-gen-spawn generates for a golden case passes
# `tsc --noEmit` under the strictest settings a user might have
# (tests/golden/golden_tsconfig.json), against the TypeScript runtime
# (sdk/node, installed from its lockfile and built under its test lock,
# reached the way a user project reaches it:
# node_modules/@spawn-gateway/sdk). Then the modules are compiled and
# loaded with node: each message codec's defaults survive an encode/decode
# round trip, which checks the embedded message definitions.
set -euo pipefail
protoc=$1 plugin=$2 case_dir=$3 proto_dir=$4 pb_include=$5 root=$6
sdk_node=$root/sdk/node
if [ -z "${SPAWN_NODE_TEST_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
	SPAWN_NODE_TEST_LOCKED=1 exec flock "$sdk_node/.test.lock" bash "$0" "$@"
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/spawn-golden-ts-XXXXXX")
trap 'rm -rf "$work"' EXIT

. "$root/tests/golden/node_sdk.sh"
node_sdk_ready "$sdk_node" >"$work/setup.log" 2>&1 || {
	cat "$work/setup.log" >&2
	echo "cannot install or build sdk/node" >&2
	exit 1
}

cd "$case_dir"
params=lang=ts
[ -f ts.params ] && params="$params,$(cat ts.params)"
mkdir -p "$work/gen" "$work/node_modules/@spawn-gateway"
"$protoc" -I"$case_dir" -I"$proto_dir" -I"$pb_include" --plugin=protoc-gen-spawn="$plugin" \
	--spawn_out="$params:$work/gen" *.proto
ln -s "$sdk_node" "$work/node_modules/@spawn-gateway/sdk"
cp "$root/tests/golden/golden_tsconfig.json" "$work/tsconfig.json"
"$sdk_node/node_modules/.bin/tsc" -p "$work" --noEmit
"$sdk_node/node_modules/.bin/tsc" -p "$work" --noEmit false --rootDir "$work" --outDir "$work/js"
cd "$work"
(cd js && find . -name '*.js' | sort) | node -e '
const path = require("node:path"), assert = require("node:assert/strict");
const { MessageCodec } = require("@spawn-gateway/sdk");
const files = require("node:fs").readFileSync(0, "utf8").trim().split("\n");
for (const f of files) {
  const mod = require(path.join(process.argv[1], f));
  let n = 0;
  for (const [name, v] of Object.entries(mod)) {
    if (!(v instanceof MessageCodec)) continue;
    const d = v.create();
    assert.deepEqual(v.decode(v.encode(d)), d, name);
    assert.ok(v.typeUrl.endsWith("/" + v.typeName), name);
    n++;
  }
  console.log(`${f}: ${n} message codecs round-trip`);
}' "$work/js"
echo "golden $(basename "$case_dir") ts: tsc --noEmit ok ($(cd "$work/gen" && find . -name '*.ts' | wc -l) files)"
