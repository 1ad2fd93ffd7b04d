#!/usr/bin/env bash
# go_check.sh PROTOC PLUGIN CASE_DIR SPAWN_PROTO_DIR PROTOBUF_INCLUDE_DIR GO_WORKSPACE
#
# The Go that protoc-gen-spawn generates for a golden case compiles: the
# case's contracts go through protoc with --go_out (protobuf-go's generator,
# built by sdk/go/setup.sh) and --spawn_out=lang=go into a scratch GOPATH
# laid over the workspace; every generated package is gofmt-clean and
# passes go vet (which type-checks it against sdk/go/spawn).
set -euo pipefail
protoc=$1 plugin=$2 case_dir=$3 proto_dir=$4 pb_include=$5 ws=$6
work=$(mktemp -d "${TMPDIR:-/tmp}/spawn-golden-go-XXXXXX")
trap 'rm -rf "$work"' EXIT
. "$ws/env"
export GOPATH="$work:$GOPATH"

cd "$case_dir"
params=lang=go
[ -f go.params ] && params="$params,$(cat go.params)"
prefix=$(sed -n 's/.*go_import_prefix=\([^,]*\).*/\1/p' go.params 2>/dev/null || true)
# protoc-gen-go gets the same import paths as the emitter derives: PREFIX/<package as a path>.
mflags=()
for p in *.proto; do
	grep -q '^option go_package' "$p" && continue
	pkg=$(sed -n 's/^package \([A-Za-z0-9_.]*\);/\1/p' "$p")
	mflags+=("--go_opt=M$p=$prefix/${pkg:-nopackage}")
	mflags[-1]=${mflags[-1]//./\/}
	mflags[-1]=${mflags[-1]/\/proto=/.proto=}
done
mkdir -p "$work/src"
"$protoc" -I"$case_dir" -I"$proto_dir" -I"$pb_include" \
	--plugin=protoc-gen-spawn="$plugin" --plugin=protoc-gen-go="$ws/bin/protoc-gen-go" \
	--go_out="$work/src" "${mflags[@]}" --spawn_out="$params:$work/src" *.proto
mapfile -t pkgs < <(cd "$work/src" && find . -name '*.spawn.go' -printf '%h\n' | sed 's|^\./||' | sort -u)
[ ${#pkgs[@]} -gt 0 ] || { echo "no *.spawn.go generated" >&2; exit 1; }
bad=$(cd "$work/src" && gofmt -l .)
[ -z "$bad" ] || { echo "gofmt: not formatted: $bad" >&2; exit 1; }
go vet "${pkgs[@]}"
echo "golden $(basename "$case_dir") (go): ${pkgs[*]} vet ok"
