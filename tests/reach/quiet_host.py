"""quiet_host.py --gateway TARGET: actor "Quiet" (tests/reach/quiet.proto)
on the bare Python runtime (sdk/python/spawn_host.py, no generated code,
so no contract sent): Ping replies nothing (a Noop), Wrong replies an
Int64Value where its rpc returns a StringValue. Prints "registered";
exits 0 on SIGTERM. PYTHONPATH: sdk/python and the protocol's modules.
"""
import signal
import sys
import threading

from google.protobuf import wrappers_pb2
from spawn_host import ActorHost


def main():
    target = sys.argv[sys.argv.index("--gateway") + 1]
    host = ActorHost(target, "spawn-system",
                     on_registered=lambda _h: print("registered", flush=True))
    host.add_actor("Quiet", {
        "Ping": lambda state, payload, ctx: (None, None, False),
        "Wrong": lambda state, payload, ctx: (None, wrappers_pb2.Int64Value(value=7), False),
    }, stateful=False)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    host.start()
    while not done.wait(1.0):
        pass
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
