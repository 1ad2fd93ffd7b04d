#!/usr/bin/env bash
# resume.sh BUILD [RUNS]: how fast the client runtimes resume after a gateway
# restart (issue 9, item 7; docs/benchmarks.md "Client resume").
#
# Runs the resume tests RUNS times each (default 3; every run restarts the
# gateway three times on a TCP port and three times on a unix socket) and
# prints, per client and transport, the median and maximum of:
#   first answer    the new gateway's `listening` -> the first answer to a
#                   client that stayed idle across the restart
#   listen -> Add   `listening` -> the success of an Add that a long-lived
#                   client makes right after `listening`, while the host
#                   reconnects on its own (the gateway answers it UNAVAILABLE
#                   marked never dispatched until the host is back; the
#                   client retries)
# The tests run with SPAWN_RESUME_BENCH=1: the host is not stopped across
# the restart as the plain test does.
# C: integration_resume_test; Python: sdk/python/test_resume.py; TypeScript:
# sdk/node/test/resume.test.ts (built by the node_sdk test or `npm run build`).
set -euo pipefail
build=$(cd "${1:?usage: resume.sh BUILD [RUNS]}" && pwd)
runs=${2:-3}
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp)
export SPAWN_RESUME_BENCH=1
trap 'rm -f "$out"' EXIT

for ((i = 0; i < runs; i++)); do
	(cd "$build" && ctest -R '^integration_resume_test$' -V 2>&1 | grep -o 'resume .*' | sed 's/^resume /resume c /') >>"$out" || true
	(cd "$build" && ctest -R '^python_sdk_resume$' -V 2>&1 | grep -o 'resume python.*') >>"$out" || true
	if [ -f "$src/sdk/node/dist/test/resume.test.js" ]; then
		(cd "$src/sdk/node" && SPAWN_GATEWAY_BIN="$build/gateway/spawn-gateway" \
			node --test dist/test/resume.test.js 2>&1 | grep -o 'resume typescript.*') >>"$out" || true
	fi
done

/usr/bin/python3 - "$out" <<'PY'
import re, statistics, sys
pat = re.compile(r"resume (\w+) (\S+) round \d+: listening -> first answer ([\d.]+) ms; "
                 r"listening -> first Add OK ([\d.]+) ms")
rows = {}
for line in open(sys.argv[1]):
    m = pat.search(line)
    if m:
        lang, t = m.group(1), "unix" if m.group(2).startswith("unix") else "tcp"
        rows.setdefault((lang, t), []).append([float(x) for x in m.groups()[2:]])
print("| client | transport | restarts | first answer median / max | listen -> Add median / max |")
print("|---|---|---|---|---|")
for (lang, t), v in sorted(rows.items()):
    col = lambda i: sorted(x[i] for x in v)
    a, l = col(0), col(1)
    print("| %s | %s | %d | %.0f / %.0f ms | %.0f / %.0f ms |"
          % (lang, t, len(v), statistics.median(a), a[-1], statistics.median(l), l[-1]))
PY
