#!/usr/bin/env bash
# e2e_incrementor_lang_test.sh LANG PROTOC PLUGIN GATEWAY SOURCE_DIR
#
# Generated code end to end in LANG (python or ts): protoc-gen-spawn
# generates examples/incrementor-gen/incrementor.proto into a scratch
# folder, and the example's host and client in that language
# (examples/incrementor-gen/LANG/) run on it against the real gateway on an
# ephemeral port: add 1, add 1 -> 2, an unknown actor (NOT_FOUND with the
# gateway's message), a handler's error (OUT_OF_RANGE with its message,
# state unchanged), and the checkpointed total surviving a gateway restart.
# Readiness comes from the processes' "listening" and "registered" lines,
# read with a timeout: no sleeps.
#
# python: /usr/bin/python3 with Debian's python3-grpcio and python3-protobuf.
# ts: sdk/node installed (npm ci) and built under sdk/node's test lock,
# the example compiled with sdk/node's tsc; runs with node.
# ruby: Debian's ruby-grpc and ruby-google-protobuf, the modules from
# protoc --ruby_out and sdk/ruby/gen.sh.
# go: the Go workspace of sdk/go/setup.sh ($SPAWN_GO_WS), the contract's
# package (protoc-gen-go and lang=go, go_import_prefix=example) built there
# with the example's host and client.
set -euo pipefail
lang=$1 protoc=$2 plugin=$3 gw_bin=$4 root=$5
sdk_node=$root/sdk/node

if [ "$lang" = ts ] && [ -z "${SPAWN_NODE_TEST_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
	SPAWN_NODE_TEST_LOCKED=1 exec flock "$sdk_node/.test.lock" bash "$0" "$@"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/spawn-e2e-$lang-XXXXXX")
gw_pid= host_pid=
cleanup() {
	[ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null || true
	[ -n "$gw_pid" ] && kill -9 "$gw_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "e2e $lang: $*" >&2
	for f in gw.log host.err setup.log; do
		[ -s "$work/$f" ] && { echo "--- $f" >&2; tail -50 "$work/$f" >&2; }
	done
	exit 1
}

contract_dir=$root/examples/incrementor-gen
example=$contract_dir/$lang
gen() { # gen OUT-DIR EXTRA-PROTOC-ARGS...: generate the contract
	local out=$1
	shift
	mkdir -p "$out"
	"$protoc" -I"$contract_dir" -I"$root/proto" -I/usr/include \
		--plugin=protoc-gen-spawn="$plugin" "$@" incrementor.proto
}

case $lang in
python)
	PROTOC=$protoc sh "$root/sdk/python/gen.sh" "$work/proto-py" >"$work/setup.log" 2>&1 ||
		fail "sdk/python/gen.sh failed"
	(cd "$contract_dir" && gen "$work/gen" --python_out="$work/gen" \
		--spawn_out=lang=python:"$work/gen") || fail "protoc failed"
	export PYTHONPATH=$work/gen:$work/proto-py:$root/sdk/python
	export PYTHONDONTWRITEBYTECODE=1
	host_cmd=(/usr/bin/python3 "$example/host.py")
	client_cmd=(/usr/bin/python3 "$example/client.py")
	;;
ts)
	. "$root/tests/golden/node_sdk.sh"
	node_sdk_ready "$sdk_node" >"$work/setup.log" 2>&1 || fail "cannot install or build sdk/node"
	app=$work/app
	mkdir -p "$app/node_modules/@spawn-gateway" "$app/node_modules/@types"
	ln -s "$sdk_node" "$app/node_modules/@spawn-gateway/sdk"
	ln -s "$sdk_node/node_modules/@types/node" "$app/node_modules/@types/node"
	cp "$example/host.ts" "$example/client.ts" "$example/tsconfig.json" "$app/"
	(cd "$contract_dir" && gen "$app/gen" --spawn_out=lang=ts:"$app/gen") || fail "protoc failed"
	"$sdk_node/node_modules/.bin/tsc" -p "$app" >>"$work/setup.log" 2>&1 || fail "tsc failed"
	host_cmd=(node "$app/dist/host.js")
	client_cmd=(node "$app/dist/client.js")
	;;
go)
	[ -n "${SPAWN_GO_WS:-}" ] || fail "SPAWN_GO_WS names no Go workspace (sdk/go/setup.sh)"
	. "$SPAWN_GO_WS/env"
	export GOPATH="$work/gopath:$GOPATH"
	(cd "$contract_dir" && gen "$work/gopath/src" \
		--plugin=protoc-gen-go="$SPAWN_GO_WS/bin/protoc-gen-go" --go_out="$work/gopath/src" \
		--go_opt=Mincrementor.proto=example/examples/incrementor \
		--spawn_out=lang=go,go_import_prefix=example:"$work/gopath/src") || fail "protoc failed"
	mkdir -p "$work/gopath/src/example/cmd"
	cp -r "$example/host" "$example/client" "$work/gopath/src/example/cmd/"
	(go vet example/examples/incrementor example/cmd/host example/cmd/client &&
		go build -o "$work/host" example/cmd/host && go build -o "$work/client" example/cmd/client) \
		>>"$work/setup.log" 2>&1 || fail "go build failed"
	host_cmd=("$work/host")
	client_cmd=("$work/client")
	;;
ruby)
	PROTOC=$protoc sh "$root/sdk/ruby/gen.sh" "$work/proto-rb" >"$work/setup.log" 2>&1 ||
		fail "sdk/ruby/gen.sh failed"
	(cd "$contract_dir" && gen "$work/gen" --ruby_out="$work/gen" \
		--spawn_out=lang=ruby:"$work/gen") || fail "protoc failed"
	host_cmd=(ruby -I "$work/gen" -I "$work/proto-rb" -I "$root/sdk/ruby/lib" "$example/host.rb")
	client_cmd=(ruby -I "$work/gen" -I "$work/proto-rb" -I "$root/sdk/ruby/lib" "$example/client.rb")
	;;
*)
	fail "unknown language $lang"
	;;
esac

mkfifo "$work/gw.out" "$work/host.out"
exec 3<>"$work/gw.out" 4<>"$work/host.out"

start_gateway() { # sets target from the gateway's "listening ADDR PORT"
	"$gw_bin" --listen 127.0.0.1:0 --statestore "sqlite://$work/state.db" \
		>"$work/gw.out" 2>>"$work/gw.log" &
	gw_pid=$!
	local word addr port
	read -r -t 60 word addr port <&3 || fail "the gateway did not print 'listening' within 60 s"
	[ "$word" = listening ] || fail "the gateway said '$word $addr $port'"
	target="127.0.0.1:$port"
}

start_host() {
	"${host_cmd[@]}" --gateway "$target" --checkpoint >"$work/host.out" 2>>"$work/host.err" &
	host_pid=$!
	local line
	read -r -t 60 line <&4 || fail "no 'registered' from the host within 60 s"
	[ "$line" = registered ] || fail "the host said '$line'"
}

stop_host() {
	kill -TERM "$host_pid"
	wait "$host_pid" || fail "the host did not exit 0 on SIGTERM"
	host_pid=
}

expect_total() { # expect_total WANT CLIENT-ARGS...
	local want=$1 got
	shift
	got=$("${client_cmd[@]}" --gateway "$target" "$@" 2>>"$work/host.err") ||
		fail "client $* failed"
	[ "$got" = "$want" ] || fail "client $* gave '$got', expected '$want'"
}

start_gateway
start_host
expect_total 1 add 1
expect_total 2 add 1

# An actor that does not exist: the status and the gateway's message.
if err=$("${client_cmd[@]}" --gateway "$target" --actor nobody add 1 2>&1); then
	fail "invoking an unknown actor succeeded: $err"
fi
case $err in
*NOT_FOUND*nobody*) ;;
*) fail "unexpected error for an unknown actor: $err" ;;
esac

# A handler's failure reaches the caller with its code and message, and
# leaves the state as it was.
if err=$("${client_cmd[@]}" --gateway "$target" add 9223372036854775807 2>&1); then
	fail "an overflowing add succeeded: $err"
fi
case $err in
*OUT_OF_RANGE*"total would overflow"*) ;;
*) fail "unexpected error for an overflowing add: $err" ;;
esac
expect_total 2 add 0

# The gateway restarts on the same store (new port: the host is started
# again on it) and the checkpointed total goes on.
{
	kill -9 "$gw_pid"
	wait "$gw_pid" || true
} 2>/dev/null
start_gateway
stop_host
start_host
expect_total 3 add 1

stop_host
echo "codegen e2e incrementor ($lang): ok"
