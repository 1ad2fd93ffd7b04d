"""conformance host in Python: the actors of conformance.proto (Keeper,
Echoer, Tally) on the code protoc-gen-spawn generated from it
(lang=python), with the semantics the contract's comments define.

    python3 host.py --gateway TARGET [--system NAME]

Needs on sys.path: the generated modules (conformance_pb2,
conformance_spawn), the protocol's modules (sdk/python/gen.sh) and
sdk/python. Prints "registered" each time the gateway accepts the
registration; exits 0 on SIGTERM or SIGINT.
"""
import argparse
import signal
import sys
import threading

from spawn_host import ActorError, ActorHost

import conformance_pb2 as pb
from conformance_spawn import (EchoerActor, KeeperActor, TallyActor,
                               register_echoer, register_keeper,
                               register_tally)


def echo_of(msg):
    return pb.Blob(data=msg.data, text=msg.text, size=len(msg.data))


def merge(state, msg):
    """Keeper.Merge's rules (conformance.proto)."""
    nxt = pb.Profile()
    nxt.CopyFrom(state)
    for field in ("name", "counter", "level", "active", "blob", "ratio", "big"):
        value = getattr(msg, field)
        if value:
            setattr(nxt, field, value)
    if msg.HasField("shape"):
        nxt.shape.SetInParent()
        nxt.shape.CopyFrom(msg.shape)
    nxt.labels.extend(msg.labels)
    nxt.numbers.extend(msg.numbers)
    nxt.levels.extend(msg.levels)
    nxt.history.extend(msg.history)
    for key, value in msg.scores.items():
        if value == 0:
            nxt.scores.pop(key, None)
        else:
            nxt.scores[key] = value
    for key, value in msg.shapes.items():
        nxt.shapes[key].CopyFrom(value)
    for key, value in msg.names.items():
        nxt.names[key] = value
    for key, value in msg.ranks.items():
        nxt.ranks[key] = value
    which = msg.WhichOneof("contact")
    if which == "location":
        nxt.location.SetInParent()
        nxt.location.CopyFrom(msg.location)
    elif which is not None:
        setattr(nxt, which, getattr(msg, which))
    return nxt


class Keeper(KeeperActor):
    def set(self, state, msg, ctx):
        return msg, msg

    def merge(self, state, msg, ctx):
        nxt = merge(state, msg)
        return nxt, nxt

    def get(self, state, msg, ctx):
        return None, state

    def fail(self, state, msg, ctx):
        raise ActorError(msg.code, msg.message)

    def echo(self, state, msg, ctx):
        return None, echo_of(msg)

    def increment(self, state, msg, ctx):
        state.counter += msg.by
        ctx.checkpoint = msg.checkpoint
        return state, state


class Echoer(EchoerActor):
    def echo(self, msg, ctx):
        return echo_of(msg)

    def fail(self, msg, ctx):
        raise ActorError(msg.code, msg.message)


class Tally(TallyActor):
    def add(self, state, msg, ctx):
        state.value += msg.by
        ctx.checkpoint = msg.checkpoint
        return state, state

    def get(self, state, msg, ctx):
        return None, state


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--system", default="conformance")
    args = ap.parse_args()

    def on_registered(_host):
        print("registered", flush=True)

    host = ActorHost(args.gateway, args.system, service_name="conformance-host-py",
                     on_registered=on_registered)
    register_keeper(host, Keeper())
    register_echoer(host, Echoer())
    register_tally(host, Tally())
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
