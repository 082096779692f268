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
