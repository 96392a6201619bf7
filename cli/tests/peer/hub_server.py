"""A stand-in for the HuggingFace hub's file endpoint, for testing downloads offline.

usage: hub_server.py ROOT LOG

Serves ROOT/<org>/<name>/<file> at /<org>/<name>/resolve/<revision>/<file> on 127.0.0.1 with the
headers the hub clients rely on (ETag, X-Repo-Commit, Content-Range, byte ranges), prints the
port on stdout, and appends one line per request ("METHOD PATH RANGE") to LOG.
"""
import hashlib
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT, LOG = sys.argv[1], sys.argv[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class Hub(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def serve(self, body):
        with open(LOG, "a") as log:
            log.write(f"{self.command} {self.path} {self.headers.get('Range', '-')}\n")
        parts = self.path.split("?")[0].split("/")
        if len(parts) < 6 or parts[3] != "resolve" or ".." in parts:
            self.send_error(404)
            return
        path = os.path.join(ROOT, parts[1], parts[2], *parts[5:])
        if not os.path.isfile(path):
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = open(path, "rb").read()
        start, end = 0, len(data) - 1
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes="):
            a, _, b = ranged[6:].partition("-")
            start = int(a or 0)
            end = min(int(b), len(data) - 1) if b else len(data) - 1
        chunk = data[start:end + 1]
        self.send_response(206 if ranged else 200)
        self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if body:
            self.wfile.write(chunk)

    def do_GET(self):
        self.serve(True)

    def do_HEAD(self):
        self.serve(False)


server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
print(server.server_address[1], flush=True)
server.serve_forever()
