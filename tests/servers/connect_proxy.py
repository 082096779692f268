"""A loopback HTTP proxy that tunnels ``CONNECT`` requests, as corporate proxies do for HTTPS.

Point ``HTTPS_PROXY`` at ``url``. Each ``CONNECT host:port`` is recorded in ``targets``, then
answered ``200`` and tunnelled byte for byte (the TLS inside stays between client and server),
or, with ``refuse`` set to a status code, answered with that status and closed, as a proxy
that forbids the destination does. Any other request is recorded and answered 405.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading


class ConnectProxy:
    def __init__(self, refuse: "int | None" = None) -> None:
        self.refuse = refuse
        self._lock = threading.Lock()
        self._targets: list[str] = []
        self._other: list[str] = []
        self._server: "socketserver.ThreadingTCPServer | None" = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def targets(self) -> list[str]:
        """``host:port`` of every CONNECT received, in order."""
        with self._lock:
            return list(self._targets)

    @property
    def other_requests(self) -> list[str]:
        """Request lines of anything that was not a CONNECT."""
        with self._lock:
            return list(self._other)

    def __enter__(self) -> "ConnectProxy":
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _TunnelHandler)
        server.daemon_threads = True
        server.owner = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="ConnectProxy-serve", daemon=True
        ).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record(self, target: "str | None", line: str) -> None:
        with self._lock:
            (self._targets if target is not None else self._other).append(target if target is not None else line)


class _TunnelHandler(socketserver.StreamRequestHandler):
    rbufsize = 0  # unbuffered: nothing the client sends after the headers may be held back here

    def handle(self) -> None:
        owner = self.server.owner  # type: ignore[attr-defined]
        line = self.rfile.readline(8192).decode("latin-1").strip()
        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
            pass  # the request's headers: nothing in them matters here
        method, _, rest = line.partition(" ")
        if method.upper() != "CONNECT":
            owner._record(None, line)
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        target = rest.split(" ", 1)[0]
        owner._record(target, line)
        if owner.refuse is not None:
            self.wfile.write(
                f"HTTP/1.1 {owner.refuse} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            return
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        with upstream:
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _pump(self.connection, upstream)


def _pump(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    peers = {client: upstream, upstream: client}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 30)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            peers[sock].sendall(data)
