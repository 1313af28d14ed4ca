#!/usr/bin/env python3
"""A counting proxy in front of a local KMS endpoint, for tests.

Forwards every POST to the upstream endpoint unchanged and counts requests by their
X-Amz-Target action, so a test can check how many KMS calls Coffer made, counted
outside Coffer. Control routes (never forwarded):
  GET  /__counts  -> {"Decrypt": 1, "Sign": 10, ...}
  POST /__down    -> from now on, drop every forwarded request's connection (KMS "stopped")
  POST /__up      -> forward again
  POST /__deny    -> answer every forwarded request with AccessDeniedException, as KMS
                     does when the IAM policy lacks the action

usage: kms_counting_proxy.py UPSTREAM_URL PORT_FILE [PORT]
Listens on PORT (default: a free one) of 127.0.0.1 and writes the port to PORT_FILE.
"""
import json
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = sys.argv[1].rstrip("/")
COUNTS = {}
STATE = {"down": False, "deny": False}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/__counts":
            with LOCK:
                body = json.dumps(COUNTS).encode()
            return self.reply(200, body)
        self.reply(404, b"{}")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path in ("/__down", "/__up", "/__deny"):
            STATE["down"] = self.path == "/__down"
            STATE["deny"] = self.path == "/__deny"
            return self.reply(200, b"{}")
        if STATE["down"]:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        target = self.headers.get("X-Amz-Target", "")
        action = target.split(".")[-1] if target else "(none)"
        with LOCK:
            COUNTS[action] = COUNTS.get(action, 0) + 1
        if STATE["deny"]:
            message = "User: arn:aws:iam::123456789012:user/coffer is not authorized to perform: kms:%s" % action
            body = json.dumps({"__type": "AccessDeniedException", "message": message}).encode()
            return self.reply(400, body, "application/x-amz-json-1.1")
        request = urllib.request.Request(UPSTREAM + self.path, data=body, method="POST")
        for name, value in self.headers.items():
            if name.lower() not in ("host", "content-length", "connection"):
                request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload, ctype = response.status, response.read(), response.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as error:
            status, payload, ctype = error.code, error.read(), error.headers.get("Content-Type", "application/json")
        self.reply(status, payload, ctype)


def main():
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[3]) if len(sys.argv) > 3 else 0), Handler)
    with open(sys.argv[2], "w") as handle:
        handle.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
