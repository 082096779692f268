"""A loopback stand-in for an OpenTelemetry collector's OTLP/HTTP receiver.

Point ``OTEL_EXPORTER_OTLP_ENDPOINT`` at ``endpoint``: the SDK's OTLP/HTTP exporters post
protobuf to ``/v1/traces``, ``/v1/metrics`` and ``/v1/logs`` under it. Every request is
recorded by path; trace exports are decoded into span dicts (see ``otlp_decode``), so a test
can check that the user's own pipeline received the spans, with the resource they carry.
"""

from __future__ import annotations

import gzip
import threading
import time

from ._http import BaseHandler, LoopbackServer
from .otlp_decode import decode_export

TRACES_PATH = "/v1/traces"


class FakeCollector(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.handler_class = _CollectorHandler
        self._cond = threading.Condition()
        self._spans: list[dict] = []
        self._paths: list[str] = []

    @property
    def endpoint(self) -> str:
        """The value for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (signal paths are appended to it)."""
        return self.root_url

    @property
    def spans(self) -> list[dict]:
        with self._cond:
            return list(self._spans)

    @property
    def paths(self) -> list[str]:
        """The path of every request received, in order (one per export, any signal)."""
        with self._cond:
            return list(self._paths)

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._spans) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = [span["name"] for span in self._spans]
                    raise AssertionError(f"FakeCollector: waited {timeout}s for {count} span(s); got {names}")
                self._cond.wait(remaining)
            return list(self._spans)

    def _add(self, path: str, spans: list) -> None:
        with self._cond:
            self._paths.append(path)
            self._spans.extend(spans)
            self._cond.notify_all()


class _CollectorHandler(BaseHandler):
    server_version = "fake-collector/1"

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        path, _ = self.split_path()
        raw = self.read_body()
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        spans = decode_export(raw) if path == TRACES_PATH else []
        self.owner._add(path, spans)
        # An empty Export*ServiceResponse: zero bytes of protobuf.
        self.send_body(200, b"", "application/x-protobuf")


class ForwardingCollector(LoopbackServer):
    """A Collector whose pipeline is an OTLP/HTTP receiver and an ``otlphttp`` exporter to PostHog.

    Each trace export it receives at ``/v1/traces`` is forwarded as it came (the same protobuf,
    gzip-compressed as the exporter's default compression is) to ``upstream`` (the exporter's
    ``traces_endpoint``), with the Collector's own ``Authorization`` header, and the upstream's
    status is its answer. ``plan`` refuses requests first, one step each: a status code (answered
    without forwarding). Every request is recorded with its headers and protobuf body.
    """

    def __init__(self, upstream: str, token: "str | None" = None, plan: "list[str] | None" = None) -> None:
        super().__init__()
        self.handler_class = _ForwardingHandler
        self.upstream = upstream
        self.token = token
        self.plan = list(plan or [])
        self._lock = threading.Lock()
        self._received: list[dict] = []

    @property
    def traces_url(self) -> str:
        """The value for ``POSTHOG_OTLP_ENDPOINT``: the receiver's full traces URL."""
        return self.root_url + TRACES_PATH

    @property
    def received(self) -> list[dict]:
        """Every request: ``path``, ``headers`` (lower-cased), ``body`` (protobuf), ``status``, ``forwarded``."""
        with self._lock:
            return list(self._received)

    def _record(self, record: dict) -> None:
        with self._lock:
            self._received.append(record)

    def _next_refusal(self) -> "int | None":
        with self._lock:
            return int(self.plan.pop(0)) if self.plan else None

    def forward(self, body: bytes) -> int:
        """POST ``body`` upstream as an otlphttp exporter does; the upstream's status."""
        import urllib.error
        import urllib.request

        headers = {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
            "User-Agent": "forwarding-collector/1",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.upstream, data=gzip.compress(body), headers=headers, method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never the test machine's proxy
        try:
            with opener.open(request, timeout=10) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code


class _ForwardingHandler(BaseHandler):
    server_version = "forwarding-collector/1"

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        path, _ = self.split_path()
        headers = self.lowered_headers()
        raw = self.read_body()
        body = gzip.decompress(raw) if headers.get("content-encoding", "").lower() == "gzip" else raw
        record = {"path": path, "headers": headers, "body": body, "status": None, "forwarded": False}
        refusal = self.owner._next_refusal()
        if path != TRACES_PATH:
            record["status"] = 404
        elif refusal is not None:
            record["status"] = refusal
        else:
            record["status"] = self.owner.forward(body)
            record["forwarded"] = True
        self.owner._record(record)
        self.send_body(record["status"], b"", "application/x-protobuf")
