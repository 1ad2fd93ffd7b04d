#!/usr/bin/python3
"""bench/otlp_sink.py [COUNT_FILE] - an OTLP/HTTP sink for the tracing bench
scenario: answers every POST with 200 and an empty ExportTraceServiceResponse
(an empty protobuf body), without decoding it, and prints "listening PORT"
once its ephemeral loopback port accepts requests. With COUNT_FILE, it
rewrites "requests=N bytes=M" there after each request."""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNT = sys.argv[1] if len(sys.argv) > 1 else None
stats = {"requests": 0, "bytes": 0}


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's libcurl handle does

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        stats["requests"] += 1
        stats["bytes"] += n
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
        if COUNT:
            with open(COUNT, "w") as f:
                f.write("requests=%d bytes=%d\n" % (stats["requests"], stats["bytes"]))

    def log_message(self, *a):
        pass


srv = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print("listening %d" % srv.server_address[1], flush=True)
srv.serve_forever()
