#!/usr/bin/env bash
# errors_test.sh PROTOC PLUGIN ERRORS_DIR NAME SPAWN_PROTO_DIR PROTOBUF_INCLUDE_DIR
#
# One bad contract: protoc with protoc-gen-spawn on ERRORS_DIR/NAME.proto
# (plugin parameters from NAME.params, default lang=c) must fail and print
# exactly ERRORS_DIR/NAME.err on stderr. SPAWN_GOLDEN_UPDATE=1 rewrites
# NAME.err instead.
set -euo pipefail
protoc=$1 plugin=$2 dir=$3 name=$4 proto_dir=$5 pb_include=$6
work=$(mktemp -d "${TMPDIR:-/tmp}/spawn-golden-err-XXXXXX")
trap 'rm -rf "$work"' EXIT

params=lang=c
[ -f "$dir/$name.params" ] && params=$(cat "$dir/$name.params")
out="$work"
[ -n "$params" ] && out="$params:$work"

cd "$dir"
if "$protoc" -I"$dir" -I"$proto_dir" -I"$pb_include" --plugin=protoc-gen-spawn="$plugin" \
	--spawn_out="$out" "$name.proto" 2>"$work/stderr"; then
	echo "$name.proto: protoc succeeded; expected it to fail with:" >&2
	cat "$dir/$name.err" >&2 || true
	exit 1
fi
if [ "${SPAWN_GOLDEN_UPDATE:-0}" = 1 ]; then
	cp "$work/stderr" "$dir/$name.err"
	echo "updated $dir/$name.err"
	exit 0
fi
if ! diff -u "$dir/$name.err" "$work/stderr"; then
	echo "$name.proto: protoc's error differs from $name.err (above)" >&2
	exit 1
fi
echo "error case $name: ok"
