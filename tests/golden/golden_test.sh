#!/usr/bin/env bash
# golden_test.sh PROTOC PLUGIN CASE_DIR SPAWN_PROTO_DIR PROTOBUF_INCLUDE_DIR
#
# One golden case of protoc-gen-spawn: CASE_DIR holds the input contracts
# (*.proto, generated together, imports resolved inside CASE_DIR) and one
# folder per language with the expected output (c/, later python/, ts/).
# Each language is regenerated into a scratch folder and diffed. A file
# <lang>.params adds plugin parameters for that language (c_prefix=app_).
#
# SPAWN_GOLDEN_UPDATE=1 rewrites the expected output instead (for the
# languages in SPAWN_GOLDEN_LANGS, default: the folders present, else c);
# review the diff before committing it.
set -euo pipefail
protoc=$1 plugin=$2 case_dir=$3 proto_dir=$4 pb_include=$5
work=$(mktemp -d "${TMPDIR:-/tmp}/spawn-golden-XXXXXX")
trap 'rm -rf "$work"' EXIT

cd "$case_dir"
protos=(*.proto)
langs=()
for d in */; do
	[ -d "$d" ] && langs+=("${d%/}")
done
if [ "${SPAWN_GOLDEN_UPDATE:-0}" = 1 ]; then
	# shellcheck disable=SC2206
	[ -n "${SPAWN_GOLDEN_LANGS:-}" ] && langs=(${SPAWN_GOLDEN_LANGS//,/ })
	[ ${#langs[@]} -eq 0 ] && langs=(c)
fi
if [ ${#langs[@]} -eq 0 ]; then
	echo "$case_dir: no expected output (run with SPAWN_GOLDEN_UPDATE=1)" >&2
	exit 1
fi

status=0
for lang in "${langs[@]}"; do
	mkdir -p "$work/$lang"
	params="lang=$lang"
	[ -f "$lang.params" ] && params="$params,$(cat "$lang.params")"
	"$protoc" -I"$case_dir" -I"$proto_dir" -I"$pb_include" \
		--plugin=protoc-gen-spawn="$plugin" --spawn_out="$params:$work/$lang" \
		"${protos[@]}"
	if [ "${SPAWN_GOLDEN_UPDATE:-0}" = 1 ]; then
		rm -rf "${case_dir:?}/$lang"
		cp -r "$work/$lang" "$case_dir/$lang"
		echo "updated $case_dir/$lang"
	elif ! diff -ru "$case_dir/$lang" "$work/$lang"; then
		echo "$case_dir: generated $lang differs from the expected output (above)" >&2
		status=1
	fi
done
[ $status -eq 0 ] && echo "golden $(basename "$case_dir") (${langs[*]}): ok"
exit $status
