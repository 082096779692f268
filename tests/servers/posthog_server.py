"""A loopback stand-in for PostHog's OTLP trace intake, ``POST /i/v0/ai/otel``.

It validates requests the way PostHog's capture service does, so an exporter
that passes here will not be rejected in production: a Bearer project token
is required (personal ``phx_`` keys are refused with 401), the body must be
``application/x-protobuf``, optionally gzip-encoded, at most 4 MiB on the wire
and after decompression, a decodable ``ExportTraceServiceRequest`` and at most
100 spans. Rejections are recorded like everything else so a test can assert
that none happened.

Accepted spans are decoded into plain dicts (see ``otlp_decode``). Faults are
injected with a plan, one step consumed per request::

    server.plan = ["503", "429:retry-after=1", "200"]

Steps: ``"200"`` (normal handling), any other status code, optionally with
response headers as ``"<code>:name=value,name=value"``; ``"hang"`` (never
answer; released by ``stop()``); ``"close"`` (drop the connection without a
response); ``"slow:<ms>"`` (wait, then handle normally); ``"garbage"`` (handle
normally but answer 200 with a non-JSON body). Spans are stored only when a
request is handled normally and accepted.

It also answers what an app's own ``posthog`` SDK asks of the same host, so an app can
evaluate feature flags against it: ``POST /flags/?v=4`` returns ``feature_flags`` (a dict of
flag key to variant or bool, optionally ``{distinct_id: value}`` per person), and the SDK's
event uploads (``/batch/``, ``/i/v0/e/``, ``/i/v1/analytics/events``) are accepted and ignored.
Those requests are recorded in ``sdk_requests``, never in ``requests`` (which holds only
what reached the OTLP intake and its neighbours).
"""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional

from google.protobuf.message import DecodeError

from ._http import BaseHandler, LoopbackServer
from .otlp_decode import decode_export

OTEL_PATH = "/i/v0/ai/otel"
FLAGS_PATH = "/flags"
SDK_EVENT_PATHS = ("/batch", "/i/v0/e", "/i/v1/analytics/events", "/capture")
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_SPANS_PER_REQUEST = 100
GARBAGE_BODY = b"<html>\x00not json"


# ---------------------------------------------------------------------------
# Fault plan
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanStep:
    """One parsed entry of ``FakePostHog.plan``."""

    text: str
    action: str  # "normal" | "status" | "hang" | "close" | "garbage"
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay_ms: int = 0


def parse_step(text: str) -> PlanStep:
    """Parse a plan entry; raises ValueError early for typos."""
    if text in ("hang", "close", "garbage"):
        return PlanStep(text, text)
    slow = re.fullmatch(r"slow:(\d+)", text)
    if slow:
        return PlanStep(text, "normal", delay_ms=int(slow.group(1)))
    status = re.fullmatch(r"(\d{3})(?::(.*))?", text)
    if not status:
        raise ValueError(f"unknown FakePostHog plan step {text!r}")
    code = int(status.group(1))
    if code == 200 and not status.group(2):
        return PlanStep(text, "normal")
    headers = dict(pair.split("=", 1) for pair in (status.group(2) or "").split(",") if pair)
    return PlanStep(text, "status", status=code, headers=headers)


# ---------------------------------------------------------------------------
# Validation, mirroring PostHog capture
# ---------------------------------------------------------------------------


@dataclass
class Verdict:
    """Outcome of validating one export request."""

    status: int
    reason: Optional[str] = None  # set when rejected
    decompressed: Optional[bytes] = None
    spans: list = field(default_factory=list)  # only when accepted
    span_count: int = 0  # also known for a request refused for having too many


def _reject(status: int, reason: str, decompressed: Optional[bytes] = None, span_count: int = 0) -> Verdict:
    return Verdict(status, reason, decompressed, span_count=span_count)


def validate_export(headers: dict, raw: bytes) -> Verdict:
    """Check one request as PostHog does, in the same order, and decode it."""
    auth_problem = _auth_problem(headers.get("authorization", ""))
    if auth_problem:
        return _reject(401, auth_problem)
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        return _reject(400, f"unsupported content-encoding {encoding!r}")
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-protobuf":
        return _reject(400, f"content-type must be application/x-protobuf, got {media_type!r}")
    if len(raw) > MAX_BODY_BYTES:
        return _reject(400, f"body of {len(raw)} bytes exceeds {MAX_BODY_BYTES}")
    try:
        body = _gunzip_bounded(raw) if encoding == "gzip" else raw
    except ValueError as exc:
        return _reject(400, str(exc))
    if len(body) > MAX_BODY_BYTES:
        return _reject(400, f"decompressed body exceeds {MAX_BODY_BYTES} bytes", body)
    if not body:
        return _reject(400, "empty body", body)
    try:
        spans = decode_export(body)
    except DecodeError as exc:
        return _reject(400, f"invalid protobuf: {exc}", body)
    if len(spans) > MAX_SPANS_PER_REQUEST:
        return _reject(400, f"{len(spans)} spans exceed {MAX_SPANS_PER_REQUEST} per request", body, len(spans))
    return Verdict(200, None, body, spans, len(spans))


def _auth_problem(authorization: str) -> Optional[str]:
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return "missing Authorization: Bearer <project token>"
    if token.startswith("phx_"):
        return "personal API keys (phx_) are not accepted; use the project token"
    return None


def _gunzip_bounded(raw: bytes) -> bytes:
    """Gunzip at most one byte past the limit, so a gzip bomb cannot eat memory."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(raw, MAX_BODY_BYTES + 1)
    except zlib.error as exc:
        raise ValueError(f"invalid gzip body: {exc}") from None
    if len(out) <= MAX_BODY_BYTES and not decompressor.eof:
        raise ValueError("truncated gzip body")
    return out


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------


class FakePostHog(LoopbackServer):
    """PostHog OTLP intake on 127.0.0.1; point the exporter at ``host``."""

    def __init__(self, plan: Optional[list[str]] = None) -> None:
        super().__init__()
        self.handler_class = _PostHogHandler
        self._cond = threading.Condition()
        self._spans: list[dict] = []
        self._requests: list[dict] = []
        self._plan: deque[PlanStep] = deque()
        self.plan = plan or []
        # Answer of the posthog SDK's /flags request: {flag key: value or {distinct_id: value}}.
        self.feature_flags: dict = {}
        self._sdk_requests: list[dict] = []

    # -- addresses ---------------------------------------------------------

    @property
    def host(self) -> str:
        """``http://127.0.0.1:PORT``: the PostHog host setting, no path."""
        return self.root_url

    @property
    def endpoint(self) -> str:
        """Full OTLP traces URL: ``host + "/i/v0/ai/otel"``."""
        return self.root_url + OTEL_PATH

    # -- fault plan ----------------------------------------------------------

    @property
    def plan(self) -> list[str]:
        """Remaining plan steps; after they run out every request is handled normally."""
        with self._cond:
            return [step.text for step in self._plan]

    @plan.setter
    def plan(self, steps: list[str]) -> None:
        parsed = deque(parse_step(text) for text in steps)
        with self._cond:
            self._plan = parsed

    # -- observations --------------------------------------------------------

    @property
    def spans(self) -> list[dict]:
        """Every span accepted so far, in arrival order."""
        with self._cond:
            return list(self._spans)

    @property
    def requests(self) -> list[dict]:
        """Every request so far (accepted, rejected or faulted), in arrival order."""
        with self._cond:
            return list(self._requests)

    @property
    def rejections(self) -> list[dict]:
        """Requests refused by validation (not by an injected fault)."""
        return [r for r in self.requests if r["rejection"] is not None]

    @property
    def sdk_requests(self) -> list[dict]:
        """Requests from an app's own posthog SDK (flags, event uploads): path and parsed JSON."""
        with self._cond:
            return list(self._sdk_requests)

    def flags_for(self, distinct_id: object) -> dict:
        """The flag values the /flags endpoint answers for one person."""
        values = {}
        for key, value in self.feature_flags.items():
            if isinstance(value, dict):
                if distinct_id in value:
                    values[key] = value[distinct_id]
            else:
                values[key] = value
        return values

    def reset(self) -> None:
        """Forget spans, requests and any remaining plan."""
        with self._cond:
            self._spans.clear()
            self._requests.clear()
            self._plan.clear()
            self._sdk_requests.clear()

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[dict]:
        """Block until at least ``count`` spans were accepted; return all spans."""
        self._wait_until(lambda: len(self._spans) >= count, timeout, f"at least {count} span(s)")
        return self.spans

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[dict]:
        """Block until at least ``count`` requests arrived (whatever their fate)."""
        self._wait_until(lambda: len(self._requests) >= count, timeout, f"at least {count} request(s)")
        return self.requests

    def _wait_until(self, predicate: Callable[[], bool], timeout: float, wanted: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"FakePostHog: waited {timeout}s for {wanted}; {self._summary()}")
                self._cond.wait(remaining)

    def _summary(self) -> str:
        """What did arrive, for timeout messages (caller holds the lock)."""
        names = [span["name"] for span in self._spans]
        attempts = [
            f"{r['status']}{' ' + r['fault'] if r['fault'] else ''}"
            f"{' rejected: ' + r['rejection'] if r['rejection'] else ''} ({r['span_count']} spans)"
            for r in self._requests
        ]
        return f"got {len(names)} span(s) {names} from {len(attempts)} request(s) {attempts}"

    # -- used by the handler -------------------------------------------------

    def _next_step(self) -> Optional[PlanStep]:
        with self._cond:
            return self._plan.popleft() if self._plan else None

    def _add_sdk_request(self, record: dict) -> None:
        with self._cond:
            self._sdk_requests.append(record)
            self._cond.notify_all()

    def _add_request(self, record: dict) -> None:
        with self._cond:
            self._requests.append(record)
            self._cond.notify_all()

    def _update_request(self, record: dict, spans: Optional[list] = None, **changes: object) -> None:
        with self._cond:
            record.update(changes)
            if spans:
                self._spans.extend(spans)
            self._cond.notify_all()


class _PostHogHandler(BaseHandler):
    server_version = "fake-posthog/1"

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        path, _ = self.split_path()
        headers = self.lowered_headers()
        raw = self.read_body()
        if path.rstrip("/") == FLAGS_PATH or path.rstrip("/").startswith(SDK_EVENT_PATHS):
            return self._answer_sdk(path, headers, raw)
        record = {
            "method": "POST",
            "path": path,
            "headers": headers,
            "raw": raw,
            "decompressed": None,
            "status": None,  # stays None for "hang" and "close"
            "span_count": 0,
            "fault": None,
            "rejection": None,
        }
        self.owner._add_request(record)
        if path != OTEL_PATH:
            return self._respond(record, Verdict(404, f"unknown path {path}"))
        step = self.owner._next_step()
        if step is not None:
            self.owner._update_request(record, fault=step.text)
            if self._apply_fault(record, step):
                return
        self._respond(record, validate_export(headers, raw), garbage=step is not None and step.action == "garbage")

    def _answer_sdk(self, path: str, headers: dict, raw: bytes) -> None:
        """The posthog SDK's own requests: feature flags answered, events accepted."""
        try:
            body = zlib.decompress(raw, 16 + zlib.MAX_WBITS) if headers.get("content-encoding") == "gzip" else raw
            payload = json.loads(body or b"null")
        except (ValueError, zlib.error):
            payload = None
        self.owner._add_sdk_request({"path": path, "headers": headers, "json": payload})
        if path.rstrip("/") == FLAGS_PATH:
            distinct_id = payload.get("distinct_id") if isinstance(payload, dict) else None
            flags = self.owner.flags_for(distinct_id)
            return self.send_json(
                200,
                {
                    "featureFlags": flags,
                    "featureFlagPayloads": {},
                    "errorsWhileComputingFlags": False,
                    "requestId": "fake-flags-request",
                },
            )
        self.send_json(200, {"status": 1})

    def _apply_fault(self, record: dict, step: PlanStep) -> bool:
        """Carry out a plan step; True when it replaced normal handling."""
        if step.action == "hang":
            self.owner.stopping.wait()
            self.drop_connection()
            return True
        if step.action == "close":
            self.drop_connection()
            return True
        if step.action == "status":
            self.send_json(step.status, {"error": f"injected {step.status}"}, step.headers)
            self.owner._update_request(record, status=step.status)
            return True
        if step.delay_ms:
            self.owner.stopping.wait(step.delay_ms / 1000)
        return False

    def _respond(self, record: dict, verdict: Verdict, garbage: bool = False) -> None:
        self.owner._update_request(
            record,
            spans=verdict.spans,
            status=verdict.status,
            rejection=verdict.reason,
            decompressed=verdict.decompressed,
            span_count=verdict.span_count,
        )
        if verdict.reason is not None:
            self.send_json(verdict.status, {"error": verdict.reason})
        elif garbage:
            self.send_body(200, GARBAGE_BODY, "application/json")
        else:
            self.send_body(200, b"{}", "application/json")
