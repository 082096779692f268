"""Shared plumbing for the loopback test servers.

Every fake needs the same things from an HTTP server: bind to an ephemeral
loopback port, serve from a daemon thread so a hung test can never keep the
interpreter alive, speak HTTP/1.1 keep-alive (real SDKs pool connections, and a
server that closes after every response would hide connection-reuse bugs), and
be able to misbehave at the transport level (chunked streams, dropped
connections). Only the standard library is used so the servers have no
dependency that the code under test might also import and patch.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping, Optional
from urllib.parse import parse_qsl, urlsplit


class _QuietThreadingServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that does not print client disconnects.

    Clients legitimately reset kept-alive connections (timeouts, closed
    pools); that is noise, not a server bug. Anything else is appended to
    ``owner.errors`` and printed, so a broken fake is visible.
    """

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        self.owner.errors.append(traceback.format_exc())  # type: ignore[attr-defined]
        super().handle_error(request, client_address)


class LoopbackServer:
    """Owns a ThreadingHTTPServer on 127.0.0.1:<ephemeral> running in a daemon thread.

    Subclasses set ``handler_class``; handlers reach the owning object through
    ``self.server.owner`` so per-test state (recorded requests, fault plans)
    lives on the fake object, not on the handler.
    """

    handler_class: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        # Tracebacks of unexpected handler exceptions (should stay empty).
        self.errors: list[str] = []
        # Set on stop() so handlers that sleep or hang return promptly.
        self.stopping = threading.Event()
        # Set before start() to serve HTTPS with this server-side ``ssl.SSLContext``.
        self.ssl_context = None

    # -- lifecycle -------------------------------------------------------

    def start(self):
        """Bind and begin serving; returns self so ``FakeX().start()`` chains."""
        if self._httpd is not None:
            return self
        self.stopping.clear()
        httpd = _QuietThreadingServer(("127.0.0.1", 0), self.handler_class)
        httpd.owner = self  # type: ignore[attr-defined]
        if self.ssl_context is not None:
            # The handshake runs in accept(); one that fails (a client that does not trust the
            # certificate) is an OSError there, which the server ignores, as it should.
            httpd.socket = self.ssl_context.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-serve",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._httpd.server_address[1]

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https`` with an ``ssl_context``), no path, no trailing slash."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"


class RecordingServer(LoopbackServer):
    """A provider fake that keeps every request its handler records, for tests to assert on."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._requests: list[dict] = []

    @property
    def requests(self) -> list[dict]:
        """Snapshot of every HTTP attempt so far, retries included (what the handler recorded)."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget recorded requests (for servers shared across tests)."""
        with self._lock:
            self._requests.clear()

    def _record(self, entry: dict) -> None:
        with self._lock:
            self._requests.append(entry)


class BaseHandler(BaseHTTPRequestHandler):
    """Request handler helpers shared by every fake.

    Nagle's algorithm is off: headers and body are written separately, and with it on every
    response waited ~40 ms for a delayed ACK.

    ``protocol_version`` is HTTP/1.1 so connections are kept alive exactly as
    with the real services; every non-streaming response therefore carries a
    Content-Length and streaming ones use chunked transfer encoding.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "fake-server/1"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence per-request stderr logging; tests read ``.requests`` instead."""

    # -- request side ----------------------------------------------------

    @property
    def owner(self) -> Any:
        return self.server.owner  # type: ignore[attr-defined]

    def split_path(self) -> tuple[str, dict[str, str]]:
        """Return (path without query, query parameters)."""
        parts = urlsplit(self.path)
        return parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))

    def lowered_headers(self) -> dict[str, str]:
        return {key.lower(): value for key, value in self.headers.items()}

    def read_body(self) -> bytes:
        """Read the whole request body (Content-Length or chunked).

        Always called before answering, even for requests that will be
        rejected, so leftover bytes never corrupt the next request on a
        kept-alive connection.
        """
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked_body(self) -> bytes:
        pieces = []
        while True:
            size_line = self.rfile.readline()
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # Skip optional trailers up to the blank line.
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(pieces)
            pieces.append(self.rfile.read(size))
            self.rfile.readline()  # CRLF after each chunk

    # -- response side ---------------------------------------------------

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        """Send a complete, Content-Length delimited response."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def send_json(self, status: int, payload: Any, headers: Optional[Mapping[str, str]] = None) -> None:
        self.send_body(status, json.dumps(payload).encode(), "application/json", headers)

    def start_chunked(self, status: int, content_type: str, headers: Optional[Mapping[str, str]] = None) -> None:
        """Send headers for a chunked (streaming) response."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()

    def write_chunk(self, data: bytes) -> None:
        """Write one HTTP chunk and flush, so the client sees it immediately."""
        if not data:
            return  # a zero-length chunk would terminate the body
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop_connection(self) -> None:
        """Close the socket without finishing the response.

        Mid-stream this leaves a chunked body incomplete, which clients report
        as a protocol/connection error rather than a clean end of stream.
        """
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class JSONHandler(BaseHandler):
    """A JSON API's handler: every POST is parsed, recorded on its ``RecordingServer`` as
    ``{"method", "path", "query", "headers", "json"}``, then answered by ``answer``.

    A client that goes away mid-answer (an app that stopped reading a stream) is not an error.
    """

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        path, query = self.split_path()
        headers = self.lowered_headers()
        body = self.parse_body(self.read_body())
        self.owner._record({"method": "POST", "path": path, "query": query, "headers": headers, "json": body})
        try:
            self.answer(path, query, headers, body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def parse_body(raw: bytes) -> Any:
        """The request's JSON; ``None`` for an empty body or one that is not JSON."""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def answer(self, path: str, query: dict, headers: dict, body: Any) -> None:
        raise NotImplementedError
