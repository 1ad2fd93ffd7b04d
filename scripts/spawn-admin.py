#!/usr/bin/python3
"""spawn-admin.py: the gateway's Admin service (spawn.gateway.v1.Admin) from a shell.

  spawn-admin.py [--gateway TARGET] get-state SYSTEM ACTOR [--revision N]
  spawn-admin.py [--gateway TARGET] list-revisions SYSTEM ACTOR
  spawn-admin.py [--gateway TARGET] key-rotation
  spawn-admin.py [--gateway TARGET] forget SYSTEM ACTOR

Prints the answer as JSON on stdout (an actor's state is decoded when its
type's module is in --proto-out: the example's is) and exits 0; on a failed
call prints "spawn-admin.py: CODE: message" on stderr and exits 1; TLS
settings that cannot be used (a file missing, a certificate without its key)
exit 2.

TARGET defaults to SPAWN_GATEWAY, then 127.0.0.1:8090. TLS and credentials
come from the Python SDK's environment fallbacks (sdk/python, spawn_host.Security):
SPAWN_TLS_CA (TLS), SPAWN_TLS_CERT + SPAWN_TLS_KEY (mTLS), SPAWN_TLS_SERVER_NAME,
SPAWN_TOKEN (authorization: Bearer). With an access policy (--access) the
principal needs `admin: true` (docs/security.md).

Needs Debian's python3-grpcio and python3-protobuf and the modules that the
build generates (build/python-gen, or --proto-out DIR / SPAWN_PY_PROTO_OUT)."""
import argparse
import glob
import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROG = "spawn-admin.py"


def main():
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", default=os.environ.get("SPAWN_GATEWAY", "127.0.0.1:8090"))
    ap.add_argument("--proto-out", default=os.environ.get(
        "SPAWN_PY_PROTO_OUT", os.path.join(HERE, "..", "build", "python-gen")))
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    gs = sub.add_parser("get-state", help="an actor's state and revision")
    gs.add_argument("system")
    gs.add_argument("actor")
    gs.add_argument("--revision", type=int, default=0, help="a kept revision (0 = current)")
    lr = sub.add_parser("list-revisions", help="the revisions kept for an actor")
    lr.add_argument("system")
    lr.add_argument("actor")
    sub.add_parser("key-rotation", help="progress of --rotate-keys")
    fg = sub.add_parser("forget", help="erase an actor: state, history, instance, schedules")
    fg.add_argument("system")
    fg.add_argument("actor")
    args = ap.parse_args()

    sys.path.insert(0, os.path.abspath(args.proto_out))
    sys.path.insert(0, os.path.join(HERE, "..", "sdk", "python"))
    import grpc
    from google.protobuf import json_format
    from spawn.gateway.v1 import gateway_pb2
    from spawn_host import Security, TLSConfigError
    # The state is a google.protobuf.Any: import every generated module at
    # the top of proto-out so that its type can be printed.
    for path in glob.glob(os.path.join(os.path.abspath(args.proto_out), "*_pb2.py")):
        importlib.import_module(os.path.basename(path)[:-3])

    try:
        sec = Security()
    except (TLSConfigError, ValueError) as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        return 2
    channel = sec.channel(args.gateway)

    def rpc(method, req, reply):
        call = channel.unary_unary("/spawn.gateway.v1.Admin/" + method,
                                   request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=reply.FromString)
        return call(req, timeout=args.timeout, metadata=sec.metadata)

    try:
        if args.cmd == "get-state":
            req = gateway_pb2.GetStateRequest(revision=args.revision)
            req.actor.system = args.system
            req.actor.actor = args.actor
            out = rpc("GetState", req, gateway_pb2.ActorStateView)
        elif args.cmd == "list-revisions":
            req = gateway_pb2.ActorRef(system=args.system, actor=args.actor)
            out = rpc("ListRevisions", req, gateway_pb2.RevisionList)
        elif args.cmd == "forget":
            req = gateway_pb2.ActorRef(system=args.system, actor=args.actor)
            out = rpc("Forget", req, gateway_pb2.ForgetResult)
        else:
            out = rpc("KeyRotation", gateway_pb2.KeyRotationRequest(),
                      gateway_pb2.KeyRotationStatus)
    except grpc.RpcError as e:
        print("%s: %s: %s" % (PROG, e.code().name, e.details()), file=sys.stderr)
        return 1
    finally:
        channel.close()
    print(to_json(json_format, out))
    return 0


def to_json(json_format, msg):
    """msg as JSON, fields named as in the .proto and printed at their
    defaults too (protobuf renamed that option in 5.26)."""
    opts = dict(indent=2, sort_keys=True, preserving_proto_field_name=True)
    try:
        return json_format.MessageToJson(msg, including_default_value_fields=True, **opts)
    except TypeError:
        return json_format.MessageToJson(msg, always_print_fields_with_no_presence=True, **opts)


if __name__ == "__main__":
    sys.exit(main())
