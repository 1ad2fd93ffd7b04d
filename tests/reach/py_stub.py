"""py_stub.py STUBS TARGET MODULE SERVICE METHOD JSON | STUBS TARGET --raw PATH

One call with the Python gRPC stubs that protoc and grpc_python_plugin
generated into STUBS (MODULE_pb2.py, MODULE_pb2_grpc.py): SERVICE's stub
class, METHOD with a request read from JSON (the proto3 JSON mapping).
Prints the reply as JSON, or "error CODE DETAILS" (exit 1). With --raw,
calls PATH with an empty request through the channel itself. Its own
process, so two contracts with the same package can be called in one test.
With SPAWN_REACH_TOKEN set, every call carries "authorization: Bearer" it.
"""
import importlib
import json
import os
import sys
import time

import grpc
from google.protobuf import json_format, symbol_database


def main():
    stubs, target = sys.argv[1], sys.argv[2]
    sys.path.insert(0, stubs)
    ch = grpc.insecure_channel(target)
    token = os.environ.get("SPAWN_REACH_TOKEN")
    md = [("authorization", f"Bearer {token}")] if token else None
    start = time.monotonic()
    try:
        if sys.argv[3] == "--raw":
            call = ch.unary_unary(sys.argv[4], request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
            call(b"", timeout=20, metadata=md)
            print("ok")
            return 0
        module, service, method, body = sys.argv[3:7]
        pb = importlib.import_module(module + "_pb2")
        grpc_mod = importlib.import_module(module + "_pb2_grpc")
        stub = getattr(grpc_mod, service + "Stub")(ch)
        desc = pb.DESCRIPTOR.services_by_name[service].methods_by_name[method]
        req_cls = symbol_database.Default().GetSymbol(desc.input_type.full_name)
        req = json_format.ParseDict(json.loads(body), req_cls())
        reply = getattr(stub, method)(req, timeout=20, metadata=md)
        print(json.dumps(json_format.MessageToDict(reply), sort_keys=True))
        return 0
    except grpc.RpcError as e:
        print(f"error {e.code().name} {e.details()} ({time.monotonic() - start:.3f} s)")
        return 1
    finally:
        ch.close()


if __name__ == "__main__":
    sys.exit(main())
