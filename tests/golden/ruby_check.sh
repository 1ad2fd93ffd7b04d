#!/usr/bin/env bash
# ruby_check.sh PROTOC PLUGIN CASE_DIR SPAWN_PROTO_DIR PROTOBUF_INCLUDE_DIR SOURCE_DIR
#
# The Ruby that protoc-gen-spawn generates for a golden case loads and
# registers: the case's contracts go through protoc with --ruby_out and
# --spawn_out=lang=ruby into a scratch folder; every generated file passes
# `ruby -c`, then each is required beside protoc's files, the protocol's
# (sdk/ruby/gen.sh) and sdk/ruby/lib, and every generated actor registers
# on a SpawnGateway::Host with its base class (whose actions answer
# UNIMPLEMENTED) and has its typed client.
set -euo pipefail
protoc=$1 plugin=$2 case_dir=$3 proto_dir=$4 pb_include=$5 root=$6
work=$(mktemp -d "${TMPDIR:-/tmp}/spawn-golden-rb-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$case_dir"
mkdir -p "$work/gen"
"$protoc" -I"$case_dir" -I"$proto_dir" -I"$pb_include" --plugin=protoc-gen-spawn="$plugin" \
	--ruby_out="$work/gen" --spawn_out=lang=ruby:"$work/gen" *.proto
PROTOC=$protoc sh "$root/sdk/ruby/gen.sh" "$work/proto-rb"
mapfile -t files < <(cd "$work/gen" && find . -name '*_spawn.rb' | sed 's|^\./||' | sort)
[ ${#files[@]} -gt 0 ] || { echo "no *_spawn.rb generated" >&2; exit 1; }
for f in "${files[@]}"; do
	ruby -c "$work/gen/$f" >/dev/null
done
ruby -I"$work/gen" -I"$work/proto-rb" -I"$root/sdk/ruby/lib" - "${files[@]}" <<'RB'
n = 0
ARGV.each do |f|
  require f.delete_suffix(".rb")
  src = File.read($LOAD_PATH.map { |d| File.join(d, f) }.find { |p| File.exist?(p) })
  mod = src[/^module .*?$\n(?:module .*?$\n)*/m].to_s.scan(/^module (\S+)/).flatten.join("::")
  scope = mod.empty? ? Object : Object.const_get(mod)
  src.scan(/^def (?:self\.)?register_(\w+)\(host, impl\)/).flatten.each do |a|
    actor = src[/^class (\w+)Actor$/] && src.scan(/^class (\w+)Actor$/).flatten.find { |c| c.gsub(/([a-z0-9])([A-Z])/, '\1_\2').downcase == a }
    raise "#{f}: no actor class for register_#{a}" unless actor

    host = SpawnGateway::Host.new("127.0.0.1:1", "golden")
    target = mod.empty? ? TOPLEVEL_BINDING.receiver : scope
    target.send("register_#{a}", host, scope.const_get("#{actor}Actor").new)
    reg = host.registration_request.actor_system.registry.actors
    raise "#{f}: #{actor} not registered" unless reg.size == 1

    scope.const_get("#{actor}Client").new(SpawnGateway::Client.new("127.0.0.1:1"), "golden")
    n += 1
  end
end
puts "#{n} actors registered from #{ARGV.join(", ")}"
RB
echo "golden $(basename "$case_dir") (ruby): ok"
