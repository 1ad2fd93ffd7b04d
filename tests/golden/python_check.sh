#!/usr/bin/env bash
# python_check.sh PROTOC PLUGIN CASE_DIR SPAWN_PROTO_DIR PROTOBUF_INCLUDE_DIR SOURCE_DIR
#
# The Python that protoc-gen-spawn generates for a golden case compiles and
# imports: the case's contracts go through protoc with --python_out and
# --spawn_out=lang=python into a scratch folder; every generated module is
# byte-compiled with /usr/bin/python3 -m py_compile, then imported beside
# protoc's modules, the protocol's (sdk/python/gen.sh) and sdk/python, and
# each generated client, actor class and registration function is checked
# to exist and to register on an ActorHost.
set -euo pipefail
protoc=$1 plugin=$2 case_dir=$3 proto_dir=$4 pb_include=$5 root=$6
work=$(mktemp -d "${TMPDIR:-/tmp}/spawn-golden-py-XXXXXX")
trap 'rm -rf "$work"' EXIT

cd "$case_dir"
params=lang=python
[ -f python.params ] && params="$params,$(cat python.params)"
mkdir -p "$work/gen"
"$protoc" -I"$case_dir" -I"$proto_dir" -I"$pb_include" --plugin=protoc-gen-spawn="$plugin" \
	--python_out="$work/gen" --spawn_out="$params:$work/gen" *.proto
PROTOC=$protoc sh "$root/sdk/python/gen.sh" "$work/proto-py" >/dev/null

mapfile -t modules < <(cd "$work/gen" && find . -name '*_spawn.py' | sed 's|^\./||' | sort)
[ ${#modules[@]} -gt 0 ] || { echo "no *_spawn.py generated" >&2; exit 1; }
for m in "${modules[@]}"; do
	PYTHONDONTWRITEBYTECODE= /usr/bin/python3 -m py_compile "$work/gen/$m"
done
PYTHONPATH=$work/gen:$work/proto-py:$root/sdk/python PYTHONDONTWRITEBYTECODE=1 \
	/usr/bin/python3 - "${modules[@]}" <<'PY'
import importlib, inspect, sys
import spawn_host
for path in sys.argv[1:]:
    mod = importlib.import_module(path[:-3].replace("/", "."))
    host = spawn_host.ActorHost("127.0.0.1:1", "golden")
    for name, reg in sorted(vars(mod).items()):
        if not name.startswith("register_") or not callable(reg):
            continue
        actor = name[len("register_"):]
        base = [c for n, c in vars(mod).items()
                if n.endswith("Actor") and inspect.isclass(c)
                and n[:-5].lower() == actor.replace("_", "")]
        assert len(base) == 1, (path, name, base)
        reg(host, base[0]())
        client = getattr(mod, base[0].__name__[:-5] + "Client")
        client(None)
    req = host.registration_request()
    print("%s: %d actor(s) register: %s" % (path, len(req.actor_system.registry.actors),
          ", ".join(sorted(req.actor_system.registry.actors))))
PY
echo "golden $(basename "$case_dir") python: compiles and imports"
