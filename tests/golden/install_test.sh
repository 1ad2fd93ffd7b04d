#!/usr/bin/env bash
# install_test.sh BUILD_DIR CONTRACT [EXTRA_CFLAGS]
#
# spawn_generate() outside this tree: installs the spawn_sdk and
# spawn_codegen components into a scratch prefix, then configures and
# builds a small CMake project that include()s the installed
# SpawnGenerate.cmake, generates C from CONTRACT with the installed plugin
# (which finds its installed templates) and links the installed libspawn
# through pkg-config. The program registers the actor on a host and calls
# it through the typed stub against an address where no gateway listens.
set -euo pipefail
build=$1 contract=$2 flags=${3:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/spawn-codegen-install-XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --component spawn_sdk --prefix "$prefix" >/dev/null
cmake --install "$build" --component spawn_codegen --prefix "$prefix" >/dev/null
test -x "$prefix/bin/protoc-gen-spawn"
test -f "$prefix/share/spawn/sdk-templates/c/manifest"
module=$(find "$prefix" -name SpawnGenerate.cmake)
pc=$(find "$prefix" -name spawn.pc)
test -n "$module" && test -n "$pc"
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH

mkdir "$work/app"
cp "$contract" "$work/app/incrementor.proto"
cat >"$work/app/CMakeLists.txt" <<EOT
cmake_minimum_required(VERSION 3.20)
project(codegen_consumer C)
set(CMAKE_C_STANDARD 11)
include($module)
add_executable(app main.c)
target_compile_options(app PRIVATE -Wall -Wextra -Werror)
spawn_generate(TARGET app PROTOS incrementor.proto)
EOT
cat >"$work/app/main.c" <<'EOT'
#include <stdio.h>
#include <stdlib.h>

#include "incrementor.spawn.h"

static void on_add(spawn_ctx *ctx, const Examples__Incrementor__State *state,
                   const Examples__Incrementor__Add *in, void *user)
{
	(void)ctx, (void)state, (void)in, (void)user;
}

int main(void)
{
	const char *nowhere = "unix:/nonexistent-spawn-dir/gw.sock";
	spawn_host *h;
	spawn_host_opts o = {.target = nowhere, .system = "s"};
	static const incrementor_handlers hs = {.add = on_add};
	if (spawn_host_create(&h, &o) != SPAWN_OK || incrementor_register(h, &hs) != SPAWN_OK)
		return 1;
	spawn_host_destroy(h);

	spawn_client *c;
	/* fail_fast: UNAVAILABLE at once instead of waiting 5 s for a gateway */
	spawn_client_opts co = {.target = nowhere, .fail_fast = true};
	if (spawn_client_create_opts(&c, &co) != SPAWN_OK)
		return 1;
	Examples__Incrementor__Add add = EXAMPLES__INCREMENTOR__ADD__INIT;
	Examples__Incrementor__Total *total;
	char *message;
	int rc = incrementor_add(c, "s", NULL, &add, &total, &message, 5000);
	printf("incrementor_add: %s: %s\n", spawn_status_name(rc), message ? message : "-");
	free(message);
	spawn_client_destroy(c);
	return rc == SPAWN_UNAVAILABLE ? 0 : 1;
}
EOT
cmake -S "$work/app" -B "$work/app/build" -DCMAKE_C_FLAGS="$flags" \
	-DCMAKE_EXE_LINKER_FLAGS="$flags -Wl,-rpath,$(pkg-config --variable=libdir spawn)" >/dev/null
cmake --build "$work/app/build" >/dev/null
"$work/app/build/app"
echo "codegen install test: ok"
