"""incrementor-gen Python host: serves the Incrementor actor with the code
protoc-gen-spawn generated from incrementor.proto (lang=python).

    python3 host.py [--gateway TARGET] [--system NAME] [--checkpoint]

Needs on sys.path (PYTHONPATH): the generated modules (incrementor_pb2,
incrementor_spawn), the protocol's modules (sdk/python/gen.sh) and
sdk/python. Prints "registered" each time the gateway accepts the
registration; exits 0 on SIGTERM or SIGINT.
"""
import argparse
import os
import signal
import sys
import threading

from spawn_host import ActorError, ActorHost, StatusCode

import incrementor_pb2 as pb
from incrementor_spawn import IncrementorActor, register_incrementor

INT64_MAX = 2**63 - 1


class Incrementor(IncrementorActor):
    def __init__(self, checkpoint):
        self.checkpoint = checkpoint

    def add(self, state, msg, ctx):
        total = state.total + msg.value
        if not -INT64_MAX - 1 <= total <= INT64_MAX:
            raise ActorError(StatusCode.OUT_OF_RANGE, "total would overflow int64")
        ctx.checkpoint = self.checkpoint
        return pb.State(total=total), pb.Total(total=total)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", default=os.environ.get("SPAWN_GATEWAY") or "127.0.0.1:8090")
    ap.add_argument("--system", default="spawn-system")
    ap.add_argument("--checkpoint", action="store_true")
    args = ap.parse_args()

    def on_registered(_host):
        print("registered", flush=True)

    host = ActorHost(args.gateway, args.system, on_registered=on_registered)
    register_incrementor(host, Incrementor(args.checkpoint))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    host.start()
    while not done.wait(1.0):
        pass
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
