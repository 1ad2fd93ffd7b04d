"""ccounter_host.py --gateway TARGET [--contract SET.pb] [--system NAME]:
actor "Counter" (tests/reach/ccounter.proto, NAMED, stateful) of system NAME
(default "spawn-system") on the bare Python runtime
(sdk/python/spawn_host.py), sending SET.pb (the contract's
FileDescriptorSet, imports included) as its contract when given. Add adds
its value to the total, saved at every call. Prints "registered"; exits 0
on SIGTERM. PYTHONPATH: sdk/python, the protocol's modules and
ccounter_pb2.
"""
import signal
import sys
import threading

import ccounter_pb2
from spawn_host import ActorHost, unpack


def add(state, payload, ctx):
    total = unpack(state, ccounter_pb2.Total) if state is not None else ccounter_pb2.Total()
    req = unpack(payload, ccounter_pb2.Add) if payload is not None else ccounter_pb2.Add()
    total.total += req.value
    return total, ccounter_pb2.Total(total=total.total), True


def main():
    def opt(name, default=None):
        return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default

    host = ActorHost(opt("--gateway"), opt("--system", "spawn-system"),
                     on_registered=lambda _h: print("registered", flush=True))
    host.add_actor("Counter", {"Add": add}, state_type=ccounter_pb2.Total)
    if opt("--contract"):
        with open(opt("--contract"), "rb") as f:
            host.add_contract(f.read())
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    host.start()
    while not done.wait(1.0):
        pass
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
