"""Real-time page measurements in headless Chromium over the DevTools protocol (no virtual time,
so performance.now() and the wall clock agree), with a minimal WebSocket client from the standard
library. Used by bench/dashboard, and by the dashboard's interaction tests
(cli/tests/peer/browser_steps.py imports `WebSocket` and `launch`).

usage: cdp.py BROWSER URL CONDITION [TIMEOUT_S]
  Opens URL in a fresh page and polls the JavaScript expression CONDITION every 10 ms until it is
  true; prints JSON {"ms": wall milliseconds from navigation to the condition, "elements": DOM
  element count then, "value": the value of window.__bench if the page set one}.
"""
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request


class WebSocket:
    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.s = socket.create_connection((u.hostname, u.port), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(
            f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.s.recv(1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise SystemExit(f"websocket refused: {head!r}")
        self.next_id = 0

    def _recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            if not chunk:
                raise SystemExit("websocket closed")
            out += chunk
        return out

    def send(self, obj):
        data = json.dumps(obj).encode()
        head = bytes([0x81])
        n = len(data)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        msg = b""
        while True:
            b1, b2 = self._recv_exact(2)
            n = b2 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv_exact(8))[0]
            msg += self._recv_exact(n)
            if b1 & 0x80:
                return json.loads(msg)

    def call(self, method, **params):
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        while True:
            m = self.recv()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise SystemExit(f"{method}: {m['error']}")
                return m.get("result", {})


def launch(browser):
    """Starts headless `browser` with a fresh profile; returns (process, a WebSocket to its page)."""
    profile = tempfile.mkdtemp(prefix="fp-cdp-")
    port = 9300 + os.getpid() % 500
    proc = subprocess.Popen(
        [browser, "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,900",
         f"--remote-debugging-port={port}", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pages = []
    for _ in range(200):
        try:
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=1))
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                break
        except OSError:
            pass
        time.sleep(0.05)
    if not pages:
        proc.kill()
        raise SystemExit("the browser opened no page")
    ws = WebSocket(pages[0]["webSocketDebuggerUrl"])
    ws.call("Page.enable")
    return proc, ws


def main():
    browser, url, condition = sys.argv[1:4]
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 60
    proc, ws = launch(browser)
    try:
        start = time.perf_counter()
        ws.call("Page.navigate", url=url)
        while True:
            r = ws.call("Runtime.evaluate", expression=f"Boolean({condition})", returnByValue=True)
            if r.get("result", {}).get("value") is True:
                break
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"timed out waiting for {condition}")
            time.sleep(0.01)
        ms = (time.perf_counter() - start) * 1000
        r = ws.call("Runtime.evaluate", returnByValue=True,
                    expression="JSON.stringify({elements: document.getElementsByTagName('*').length, value: window.__bench ?? null})")
        extra = json.loads(r["result"]["value"])
        print(json.dumps({"ms": round(ms, 1), **extra}))
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
