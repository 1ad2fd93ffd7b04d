"""ccounter_host.py --gateway TARGET --contract SET.pb: actor "Counter"
(tests/reach/ccounter.proto, NAMED, stateful) of system "spawn-system" on
the bare Python runtime (sdk/python/spawn_host.py), sending SET.pb (the
contract's FileDescriptorSet, imports included) as its contract. Add adds
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
    target = sys.argv[sys.argv.index("--gateway") + 1]
    with open(sys.argv[sys.argv.index("--contract") + 1], "rb") as f:
        contract = f.read()
    host = ActorHost(target, "spawn-system",
                     on_registered=lambda _h: print("registered", flush=True))
    host.add_actor("Counter", {"Add": add}, state_type=ccounter_pb2.Total)
    host.add_contract(contract)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    host.start()
    while not done.wait(1.0):
        pass
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
