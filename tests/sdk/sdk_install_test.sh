#!/bin/sh
# sdk_install_test.sh BUILD_DIR [EXTRA_CFLAGS]
# Installs the spawn_sdk component into a scratch prefix, checks what the
# shared library exports, and builds and runs a small program against the
# installed tree through pkg-config: once with libspawn.so, once with
# libspawn.a.
set -eu
build=$1
flags=${2:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/spawn-sdk-install-XXXXXX")
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --component spawn_sdk --prefix "$work/prefix" >/dev/null
pc=$(find "$work/prefix" -name spawn.pc)
test -n "$pc"
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
test "$(pkg-config --modversion spawn)" = "0.1.0"
libdir=$(pkg-config --variable=libdir spawn)
test -f "$libdir/libspawn.a"
test -f "$(pkg-config --variable=includedir spawn)/spawn/spawn.h"
# spawnctl comes with the SDK (docs/spawnctl.md) and runs from the prefix.
"$work/prefix/bin/spawnctl" --help | grep -q '^usage: spawnctl'

# The shared library exports the public API and nothing else.
extra=$(nm -D --defined-only "$libdir/libspawn.so" | awk '{print $3}' | grep -v '^spawn_' || true)
if [ -n "$extra" ]; then
	echo "libspawn.so exports non-API symbols:" >&2
	echo "$extra" >&2
	exit 1
fi
if nm -D --defined-only "$libdir/libspawn.so" | awk '{print $3}' | grep -q '^spawn__\|^spawni_\|^spawn_wire_\|^spawn_arena_'; then
	echo "libspawn.so exports internals" >&2
	exit 1
fi
# ... including the typed layer that generated code links against.
for sym in spawn_client_invoke_msg spawn_client_invoke_msg_async spawn_ctx_expect_state \
	spawn_ctx_expect_payload spawn_ctx_fail_on_error; do
	if ! nm -D --defined-only "$libdir/libspawn.so" | awk '{print $3}' | grep -qx "$sym"; then
		echo "libspawn.so does not export $sym" >&2
		exit 1
	fi
done

cat >"$work/consumer.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <spawn/spawn.h>

int main(void)
{
	spawn_client *c;
	spawn_client_opts co = {.target = "unix:/nonexistent-spawn-dir/gw.sock", .fail_fast = true};
	if (spawn_client_create_opts(&c, &co) != SPAWN_OK)
		return 1;
	spawn_request req = {.system = "s", .actor = "a", .action = "b"};
	spawn_reply r;
	int rc = spawn_client_invoke(c, &req, &r, 5000);
	printf("libspawn %s: %s\n", spawn_version(), spawn_status_name(rc));
	spawn_reply_fini(&r);
	char *why = NULL;
	if (spawn_client_invoke_msg(c, &req, NULL, NULL, NULL, &why, 5000) != SPAWN_EINVAL || !why)
		return 1;
	free(why);
	spawn_client_destroy(c);
	spawn_host *h;
	spawn_host_opts o = {.target = "unix:/nonexistent-spawn-dir/gw.sock", .system = "s"};
	if (spawn_host_create(&h, &o) != SPAWN_OK)
		return 1;
	spawn_host_destroy(h);
	return rc == SPAWN_UNAVAILABLE ? 0 : 1;
}
EOF

cc -std=c11 -Wall -Wextra -Werror $flags $(pkg-config --cflags spawn) "$work/consumer.c" \
	-o "$work/consumer-shared" $(pkg-config --libs spawn) -Wl,-rpath,"$libdir"
"$work/consumer-shared"

static_libs=$(pkg-config --static --libs spawn | sed 's/-lspawn\b/-Wl,-Bstatic -lspawn -Wl,-Bdynamic/')
cc -std=c11 -Wall -Wextra -Werror $flags $(pkg-config --cflags spawn) "$work/consumer.c" \
	-o "$work/consumer-static" $static_libs
if readelf -d "$work/consumer-static" | grep -q 'libspawn\.so'; then
	echo "static consumer still needs libspawn.so" >&2
	exit 1
fi
"$work/consumer-static"
echo "sdk install test: ok"
