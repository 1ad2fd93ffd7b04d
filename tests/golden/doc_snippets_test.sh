#!/usr/bin/env bash
# doc_snippets_test.sh DOC LANG FILE...
#
# Every ```LANG block of DOC is tested code: its lines (leading blanks
# aside) appear, consecutively, in one of FILE... (the examples, and the
# golden code generated for their contract).
set -euo pipefail
doc=$1 lang=$2
shift 2
/usr/bin/python3 - "$doc" "$lang" "$@" <<'PY'
import sys
doc, lang, files = sys.argv[1], sys.argv[2], sys.argv[3:]
def lines(text):
    return [l.strip() for l in text.splitlines()]
sources = {f: lines(open(f, encoding="utf-8").read()) for f in files}
parts = open(doc, encoding="utf-8").read().split("```")
blocks = [p[len(lang) + 1:] for i, p in enumerate(parts) if i % 2 and p.startswith(lang + "\n")]
if not blocks:
    sys.exit("%s: no ```%s block" % (doc, lang))
bad = 0
for b in blocks:
    want = lines(b.strip("\n"))
    if not any(any(src[i:i + len(want)] == want for i in range(len(src) - len(want) + 1))
               for src in sources.values()):
        print("%s: this ```%s block is in none of %s:\n%s" % (doc, lang, ", ".join(files), b), file=sys.stderr)
        bad += 1
if bad:
    sys.exit(1)
print("%s: %d %s blocks, all from the examples or their generated code" % (doc, len(blocks), lang))
PY
