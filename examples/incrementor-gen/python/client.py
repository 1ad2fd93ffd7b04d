"""incrementor-gen Python client: invokes the Incrementor through the typed
client protoc-gen-spawn generated from incrementor.proto (lang=python).

    python3 client.py [--gateway TARGET] [--system NAME] [--actor NAME] add N

Prints the total the actor replies. On failure prints
"client.py: STATUS: message" on stderr and exits 1.
"""
import argparse
import os
import sys

from spawn_client import SpawnClient, SpawnError

import incrementor_pb2 as pb
from incrementor_spawn import IncrementorClient


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", default=os.environ.get("SPAWN_GATEWAY") or "127.0.0.1:8090")
    ap.add_argument("--system", default="spawn-system")
    ap.add_argument("--actor", default=None)
    ap.add_argument("command", choices=["add"])
    ap.add_argument("value", type=int)
    args = ap.parse_args()

    with SpawnClient(args.gateway, timeout=10.0) as client:
        incrementor = IncrementorClient(client, args.system)
        try:
            total = incrementor.add(pb.Add(value=args.value), actor=args.actor)
        except SpawnError as e:
            print("client.py: %s: %s" % (e.code_name, e.message), file=sys.stderr)
            return 1
    print(total.total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
