"""A loopback stand-in for PostHog's intake and OTLP collectors: accepts every POST with 200.

Run as its own process (``python sink.py``): it prints its port on the first line and
serves until terminated. It reads each body in full and answers at once, so the exporters
do all of their real work (encoding, compression, HTTP) while the stand-in stays cheap.
``GET /stats`` returns how many requests and bytes arrived, per path.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, __import__("os").path.dirname(__file__))
from common import SINK_CPU, pin_to_cpu  # noqa: E402

_stats: dict = {}
_lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real services

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            length = len(self._read_chunked())
        else:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        with _lock:
            entry = _stats.setdefault(path, {"requests": 0, "bytes": 0})
            entry["requests"] += 1
            entry["bytes"] += length
        self._send(b"{}")

    def do_GET(self) -> None:  # noqa: N802
        with _lock:
            body = json.dumps(_stats).encode()
        self._send(body)

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, body: bytes) -> None:
        # One write for head and body: two small writes on a kept-alive connection meet
        # Nagle's algorithm and the client's delayed ACK, a 40 ms stall per request that
        # the real service does not have.
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        self.wfile.write(head.encode() + body)

    def _read_chunked(self) -> bytes:
        pieces = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(pieces)
            pieces.append(self.rfile.read(size))
            self.rfile.readline()


def main() -> None:
    pin_to_cpu(SINK_CPU)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
