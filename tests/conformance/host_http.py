"""conformance host over Spawn's HTTP/1.1 protocol: the actors of
conformance.proto (Keeper, Echoer, Tally) with the semantics host.py has,
served the way Spawn's SDKs serve them (tests/spawnhttp/spawn_http.py: the
gateway calls POST /api/v1/actors/actions back; the host registers with
POST /api/v1/system), so that the same scenarios run against a host of
Spawn's protocol and the gRPC hosts.

    python3 host_http.py --system NAME

Prints "port N" once it listens (the gateway's --spawn-host-url), then reads
"proxy PORT" lines on stdin: each registers the system with the gateway's
HTTP listener on PORT (a Spawn SDK registers when it starts; run.py sends a
line after each gateway start) and prints "registered". Exits 0 on SIGTERM,
SIGINT or the end of stdin.

What the protocol cannot carry: a handler's error code (a failed handler is
HTTP 400 with an empty body, so callers get UNKNOWN and the gateway's
message); scenarios.json marks those scenarios for this host.
"""
import argparse
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "spawnhttp"))

from google.protobuf import any_pb2  # noqa: E402
from spawn.actors import actor_pb2  # noqa: E402

import conformance_pb2 as pb  # noqa: E402
import spawn_http as sh  # noqa: E402
from host import echo_of, merge  # noqa: E402  (the same semantics as host.py)


def pack(msg):
    a = any_pb2.Any()
    a.Pack(msg)
    return a


def unpack(any_msg, cls):
    m = cls()
    if any_msg is not None and any_msg.value:
        any_msg.Unpack(m)
    return m


class Failed(Exception):
    pass


def keeper(action):
    def run(ctx, payload):
        state = unpack(ctx.state, pb.Profile)
        if action == "Set":
            msg = unpack(payload, pb.Profile)
            return pack(msg), pack(msg)
        if action == "Merge":
            nxt = merge(state, unpack(payload, pb.Profile))
            return pack(nxt), pack(nxt)
        if action == "Get":
            return None, pack(state)
        if action == "Fail":
            raise Failed()
        if action == "Echo":
            return None, pack(echo_of(unpack(payload, pb.Blob)))
        msg = unpack(payload, pb.IncrementRequest)  # Increment
        state.counter += msg.by
        ctx.checkpoint = msg.checkpoint
        return pack(state), pack(state)
    return run


def echoer(action):
    def run(ctx, payload):
        if action == "Fail":
            raise Failed()
        return None, pack(echo_of(unpack(payload, pb.Blob)))
    return run


def tally(action):
    def run(ctx, payload):
        state = unpack(ctx.state, pb.Count)
        if action == "Get":
            return None, pack(state)
        msg = unpack(payload, pb.IncrementRequest)
        state.value += msg.by
        ctx.checkpoint = msg.checkpoint
        return pack(state), pack(state)
    return run


def actors(system):
    keeper_a = sh.actor(system, "Keeper", ["Set", "Merge", "Get", "Fail", "Echo", "Increment"],
                        kind=actor_pb2.UNNAMED, snapshot_ms=60000, deactivate_ms=60000)
    keeper_a.settings.state_type = "conformance.v1.Profile"
    echoer_a = sh.actor(system, "Echoer", ["Echo", "Fail"], kind=actor_pb2.POOLED,
                        stateful=False)
    tally_a = sh.actor(system, "Tally", ["Add", "Get"])
    tally_a.settings.state_type = "conformance.v1.Count"
    return [keeper_a, echoer_a, tally_a]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--system", default="conformance")
    ap.add_argument("--gateway", help="ignored: the HTTP port comes on stdin")
    args = ap.parse_args()
    handlers = {}
    for a in ("Set", "Merge", "Get", "Fail", "Echo", "Increment"):
        handlers[("Keeper", a)] = keeper(a)
    for a in ("Echo", "Fail"):
        handlers[("Echoer", a)] = echoer(a)
    for a in ("Add", "Get"):
        handlers[("Tally", a)] = tally(a)
    # A crash restart may bring back an older state than the host last
    # returned: only the presence checks apply here (tests/spawnhttp checks
    # byte for byte).
    host = sh.SpawnHttpHost(handlers, args.system, check_state=False).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    print("port %d" % host.port, flush=True)
    try:
        for line in sys.stdin:
            w = line.split()
            if len(w) != 2 or w[0] != "proxy":
                continue
            c = sh.SpawnHttpClient("127.0.0.1", int(w[1]))
            st, resp = c.register(args.system, actors(args.system),
                                  service_name="conformance-host-http")
            c.close()
            if st == 200 and resp.status.message == "Accepted":
                print("registered", flush=True)
            else:
                print("registration failed: %d %s" % (st, resp.status.message), flush=True)
    finally:
        if host.faults:
            print("host faults: %s" % host.faults, file=sys.stderr, flush=True)
        host.stop()
    return 3 if host.faults else 0


if __name__ == "__main__":
    sys.exit(main())
