# node_sdk.sh - sourced by the golden scripts that need the TypeScript
# runtime. node_sdk_ready SDK_DIR installs sdk/node's dependencies from its
# lockfile (npm ci) and builds it (tsc -> dist/) unless that is already
# done and up to date. Hold sdk/node's test lock (SDK_DIR/.test.lock, as
# sdk/node/test.sh does) while using it: the SDK's own test rebuilds dist/.
node_sdk_ready() {
	local sdk=$1
	if [ ! -x "$sdk/node_modules/.bin/tsc" ] ||
		[ "$sdk/package-lock.json" -nt "$sdk/node_modules/.package-lock.json" ]; then
		(cd "$sdk" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) || return 1
	fi
	if [ ! -f "$sdk/dist/src/index.d.ts" ] ||
		[ -n "$(find "$sdk/src" "$sdk/package.json" "$sdk/tsconfig.json" -newer "$sdk/dist/src/index.d.ts" 2>/dev/null)" ]; then
		(cd "$sdk" && rm -rf dist && npm run --silent build) || return 1
	fi
}
