#!/bin/sh
# sdk/node/test.sh - install the Node SDK's dependencies from the lockfile
# (npm ci), build it (tsc) and run its tests (node --test).
# With SPAWN_GATEWAY_BIN set to a built spawn-gateway, the end-to-end test
# runs too (and fails if that gateway does not start); without it, it is
# skipped. Concurrent runs (several build trees) take turns on a lock.
set -eu
cd "$(dirname "$0")"
if [ -z "${SPAWN_NODE_TEST_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
  SPAWN_NODE_TEST_LOCKED=1 exec flock "$(pwd)/.test.lock" sh "$(pwd)/test.sh" "$@"
fi
npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null
rm -rf dist
npm run --silent build
exec node --test dist/test/*.test.js
