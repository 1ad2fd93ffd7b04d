#!/usr/bin/env bash
# prepare_ruby.sh PROTOC PLUGIN SOURCE_DIR OUT_DIR
#
# The Ruby side of the conformance suite (ctest fixture "conformance_ruby"):
# OUT_DIR/gen holds the protocol's Ruby modules (sdk/ruby/gen.sh) and
# conformance.proto's (--ruby_out, --spawn_out=lang=ruby); OUT_DIR/host.rb
# and client.rb run with `ruby -I OUT_DIR/gen -I sdk/ruby/lib`.
set -euo pipefail
protoc=$1 plugin=$2 root=$3 out=$4
here=$root/tests/conformance
rm -rf "$out"
mkdir -p "$out/gen"
PROTOC=$protoc sh "$root/sdk/ruby/gen.sh" "$out/gen"
(cd "$here" && "$protoc" -I. -I"$root/proto" -I/usr/include --plugin=protoc-gen-spawn="$plugin" \
	--ruby_out="$out/gen" --spawn_out=lang=ruby:"$out/gen" conformance.proto)
cp "$here/ruby/host.rb" "$here/ruby/client.rb" "$out/"
for f in "$out"/gen/conformance_spawn.rb "$out"/host.rb "$out"/client.rb; do
	ruby -c "$f" >/dev/null
done
echo "conformance: Ruby side ready in $out"
