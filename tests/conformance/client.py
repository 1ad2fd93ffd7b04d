"""conformance client driver in Python: runs the calls run.py sends on
stdin through the typed clients protoc-gen-spawn generated from
conformance.proto (lang=python) and writes their outcomes on stdout
(the line protocol of README.md, "Client drivers").

    python3 client.py --gateway TARGET [--system NAME]

Needs the same sys.path as host.py.
"""
import argparse
import base64
import sys
from concurrent.futures import ThreadPoolExecutor

from spawn_client import SpawnClient, SpawnError

import conformance_pb2 as pb
from conformance_spawn import EchoerClient, KeeperClient, TallyClient

CLIENTS = {"Keeper": KeeperClient, "Echoer": EchoerClient, "Tally": TallyClient}


def b64(data):
    return base64.b64encode(data).decode("ascii") if data else "-"


def unb64(text):
    return b"" if text == "-" else base64.b64decode(text)


def input_type(actor, action):
    """The input message class of actor.action, from the contract."""
    method = pb.DESCRIPTOR.services_by_name[actor].methods_by_name[action]
    cls = pb
    for part in method.input_type.full_name[len(pb.DESCRIPTOR.package) + 1:].split("."):
        cls = getattr(cls, part)
    return cls


def snake(name):
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class Driver:
    def __init__(self, target, system):
        self.target = target
        self.system = system
        self.pool = ThreadPoolExecutor(max_workers=64)
        self.connect()

    def connect(self):
        self.client = SpawnClient(self.target, timeout=30.0)
        self.typed = {name: cls(self.client, self.system) for name, cls in CLIENTS.items()}

    def reconnect(self):
        self.client.close()
        self.connect()

    def call(self, line, timeout):
        actor, instance, action, data = line.split(" ")
        msg = input_type(actor, action).FromString(unb64(data))
        method = getattr(self.typed[actor], snake(action))
        try:
            reply = method(msg, None if instance == "-" else instance, timeout=timeout)
        except SpawnError as e:
            return "ERR %d %s" % (e.code, b64(e.message.encode("utf-8")))
        return "OK " + b64(reply.SerializeToString())

    def run(self, lines, timeout):
        if len(lines) == 1:
            return [self.call(lines[0], timeout)]
        return list(self.pool.map(lambda ln: self.call(ln, timeout), lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--system", default="conformance")
    args = ap.parse_args()
    driver = Driver(args.gateway, args.system)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    stdin = sys.stdin
    for line in stdin:
        line = line.rstrip("\n")
        if line == "QUIT":
            break
        if line == "RECONNECT":
            driver.reconnect()
            out.write("OK\n")
        else:
            word, n, timeout_ms = line.split(" ")
            if word != "CALL":
                print("client.py: bad command %r" % line[:80], file=sys.stderr)
                return 1
            calls = [stdin.readline().rstrip("\n") for _ in range(int(n))]
            for result in driver.run(calls, int(timeout_ms) / 1000.0):
                out.write(result + "\n")
        out.flush()
    driver.client.close()
    driver.pool.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
