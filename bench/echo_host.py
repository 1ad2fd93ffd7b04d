#!/usr/bin/env python3
"""echo_host.py - bench-echo-host on the Python runtime (sdk/python): the same
actor as bench/echo_host.c. Registers system S with one UNNAMED actor template
"echo-actor" (stateful) whose action A answers with the request's payload and
counts the calls in its state (an 8-byte counter). Prints "ready" once
registered; SIGTERM/SIGINT stop it.

Usage: echo_host.py --gateway HOST:PORT --system S --action A --proto-path DIR
(DIR: the generated protobuf modules, BUILD/python-gen).
"""
import argparse
import os
import signal
import struct
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sdk", "python"))

STATE_URL = "type.googleapis.com/bench.Counter"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", default="127.0.0.1:8090")
    ap.add_argument("--system", default="bench")
    ap.add_argument("--action", default="echo")
    ap.add_argument("--proto-path", required=True)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    sys.path.insert(0, a.proto_path)
    from google.protobuf import any_pb2
    from spawn_host import ActorHost

    def echo(state, payload, ctx):
        n = 0
        if state is not None and len(state.value) == 8:
            n = struct.unpack("<Q", state.value)[0]
        return any_pb2.Any(type_url=STATE_URL, value=struct.pack("<Q", n + 1)), payload

    done = threading.Event()

    def registered(_host):
        print("ready", flush=True)

    host = ActorHost(a.gateway, a.system, workers=a.workers, on_registered=registered)
    host.add_actor("echo-actor", {a.action: echo}, kind="UNNAMED", stateful=True)
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    host.start()
    done.wait()
    host.stop(timeout=5)


if __name__ == "__main__":
    main()
