"""Encoding batches of spans as OTLP protobuf and delivering them to PostHog over HTTP.

Runs only on the export thread. Requests respect PostHog's limits (at most 100 AI spans and
4 MiB per request), are gzip-compressed, and are retried with backoff on 429/502/503/504 and
connection errors, honouring ``Retry-After``. Other rejections are final and are reported
once per status code.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import sys
import time
import types
from typing import Callable, Optional, Sequence

from .. import __version__
from ..config import say
from ..genai.plain_span import FinishedSpan
from . import egress
from .otlp import encode_request, fill_small_varints

logger = logging.getLogger("posthog_autoinstrument")

MAX_SPANS_PER_REQUEST = 100
# PostHog rejects bodies over 4 MiB (wire and decompressed); stay well clear of it.
MAX_REQUEST_BYTES = 3 * 1024 * 1024
# On bodies of varied chat text (100 spans, ~3.6 kB each) level 1 costs half the CPU of
# level 6 (37 against 76 µs a span) for 12% more bytes; the host's CPU is the scarcer.
GZIP_LEVEL = 1
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
MAX_BACKOFF_SECONDS = 30.0


def encode(spans: Sequence[FinishedSpan]) -> bytes:
    """The OTLP/protobuf body: our direct writer (see ``otlp.py``), or the official encoder,
    whose output it reproduces byte for byte, for spans it cannot write."""
    try:
        return encode_request(spans)
    except Exception:
        logger.debug("posthog-instrument: falling back to the official OTLP encoder", exc_info=True)
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        return encode_spans(spans).SerializeToString()  # type: ignore[arg-type]  # reads what a PlainSpan has too


def split_into_requests(spans: Sequence[FinishedSpan]) -> list[tuple[int, bytes]]:
    """Encode spans into request bodies that each fit PostHog's limits.

    Returns ``(span_count, body)`` pairs; a single span too large to send alone is dropped
    (the dialect step caps span sizes, so this only happens with huge foreign spans).
    """
    bodies: list[tuple[int, bytes]] = []
    pending = [list(spans[i : i + MAX_SPANS_PER_REQUEST]) for i in range(0, len(spans), MAX_SPANS_PER_REQUEST)]
    while pending:
        batch = pending.pop()
        body = encode(batch)
        if len(body) <= MAX_REQUEST_BYTES:
            bodies.append((len(batch), body))
        elif len(batch) > 1:
            middle = len(batch) // 2
            pending.extend((batch[:middle], batch[middle:]))
        else:
            logger.warning("posthog-instrument: dropped one span of %d bytes, over PostHog's request limit", len(body))
    return bodies


def import_httpx():
    """Import httpx, at a moment chosen by the caller.

    When: the LLM SDKs (openai, anthropic) look httpx up in ``sys.modules`` without importing
    it, so a half-imported httpx seen from another thread crashes them. We therefore import it
    while an LLM library is being imported (see ``lifecycle.prepare_export``), on the app's own
    importing thread, and not at start-up, so a program that makes no LLM call never pays for it.

    How: ``import httpx`` also imports its command-line interface (click, rich and pygments,
    about 60 ms) whenever those are installed. We never use it; a stand-in ``httpx.main``
    loads the real one on first use.
    """
    httpx = sys.modules.get("httpx")
    if httpx is not None:
        return httpx
    stub = types.ModuleType("httpx._main")

    def main(*args, **kwargs):  # pragma: no cover - the httpx CLI, never run by us
        sys.modules.pop("httpx._main", None)
        from httpx._main import main as real_main

        return real_main(*args, **kwargs)

    vars(stub)["main"] = main
    installed = sys.modules.setdefault("httpx._main", stub) is stub
    try:
        import httpx
    finally:
        if installed and sys.modules.get("httpx._main") is stub:
            del sys.modules["httpx._main"]
    return httpx


class Delivery:
    """What happened to one request: delivered, or dropped and why."""

    __slots__ = ("ok", "status", "reason")

    def __init__(self, ok: bool, status: Optional[int] = None, reason: str = ""):
        self.ok = ok
        self.status = status
        self.reason = reason


class PostHogSender:
    """POSTs OTLP bodies to ``{host}/i/v0/ai/otel``, or to ``POSTHOG_OTLP_ENDPOINT``.

    Our requests are not the app's, so they must not show up in the app's own tracing. They go
    straight to an ``httpx.HTTPTransport``, never through ``httpx.Client.send``: that method is
    what Sentry's (``sentry_sdk/integrations/httpx.py``) and Datadog's httpx integrations patch to
    record spans and breadcrumbs. OpenTelemetry's httpx instrumentation patches the transport
    instead and honours the suppression the export thread sets (``processor._run``).

    The proxy and CA bundle come from the standard environment variables (``egress``), read
    when the transport is made, as ``httpx.Client`` would read them.
    """

    def __init__(self, endpoint: str, api_key: Optional[str], timeout: float, destination: str = "PostHog"):
        self.endpoint = endpoint
        # Named in what we print: "PostHog", or the OTLP endpoint the stream goes to instead.
        self.destination = destination
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
            "User-Agent": f"posthog-autoinstrument/{__version__}",
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = timeout
        self._transport = None
        self._route: Optional[egress.Route] = None
        self._reported: set = set()

    def prepare(self) -> None:
        # Everything the first export would otherwise load on the export thread, where each
        # import competes for the GIL with a busy app and can take seconds: httpx, the HTTP
        # client (which imports httpcore), the OTLP writer's tables.
        self._http()
        fill_small_varints()

    def _http(self):
        if self._transport is None:
            httpx = import_httpx()
            self._route = route = egress.route(self.endpoint)
            self._transport = httpx.HTTPTransport(
                proxy=httpx.Proxy(route.proxy) if route.proxy else None,
                verify=egress.ssl_context(route) if route.tls else True,
            )
        return self._transport

    def _post(self, payload: bytes, timeout: float):
        httpx = import_httpx()
        request = httpx.Request(
            "POST",
            self.endpoint,
            content=payload,
            headers=self._headers,
            extensions={"timeout": httpx.Timeout(timeout).as_dict()},
        )
        response = self._http().handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        return response

    def send(self, body: bytes, deadline, stopping: Callable[[], bool], report: bool = True) -> Delivery:
        """Deliver one body, retrying what may succeed later, until ``deadline``.

        ``deadline`` is a monotonic time, or a function returning one: it is read again before
        every attempt and while waiting, so a process that starts exiting cuts retries short.
        """
        httpx = import_httpx()
        deadline_at = deadline if callable(deadline) else (lambda: deadline)

        payload = gzip.compress(body, compresslevel=GZIP_LEVEL)
        attempt = 0
        while True:
            remaining = deadline_at() - time.monotonic()
            if remaining <= 0:
                return self._dropped(None, "gave up retrying (export deadline reached)", report)
            try:
                response = self._post(payload, timeout=min(self._timeout, max(remaining, 0.05)))
            except httpx.HTTPError as exc:
                # Retrying cannot help an untrusted certificate or a proxy that forbids the way.
                final = egress.untrusted_certificate(exc) or egress.proxy_refusal(exc, self._route)
                if final:
                    return self._dropped(None, final, report)
                status, reason, retry_after = None, f"{type(exc).__name__}: {exc}", None
            except Exception as exc:  # a broken proxy setting, an SSL library error, ...
                return self._dropped(None, f"{type(exc).__name__}: {exc}", report)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return Delivery(True, status)
                reason = _reason(response)
                if status not in RETRYABLE_STATUS:
                    return self._dropped(status, reason, report)
                retry_after = _retry_after(response.headers.get("retry-after"))
            attempt += 1
            delay = retry_after if retry_after is not None else min(0.5 * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
            delay *= random.uniform(0.9, 1.1) if retry_after is None else 1.0
            if stopping() or time.monotonic() + delay >= deadline_at():
                return self._dropped(status, f"{reason} (retries exhausted)", report)
            logger.debug("posthog-instrument: export attempt %d failed (%s); retrying in %.2fs", attempt, reason, delay)
            wake_at = time.monotonic() + delay
            while time.monotonic() < wake_at:
                if stopping() or time.monotonic() >= deadline_at():
                    return self._dropped(status, f"{reason} (gave up at exit)", report)
                time.sleep(min(0.05, max(wake_at - time.monotonic(), 0)))

    def _dropped(self, status: Optional[int], reason: str, report: bool = True) -> Delivery:
        key = status if status is not None else reason.split(":", 1)[0]
        if report and key not in self._reported:
            self._reported.add(key)
            what = (
                f"{self.destination} did not accept LLM events"
                if status is not None
                else f"LLM events could not be sent to {self.destination}"
            )
            say(
                f"{what} ({_explain(status, reason)}); they were dropped. "
                "Further failures of this kind are not reported."
            )
        return Delivery(False, status, reason)

    def close(self) -> None:
        if self._transport is not None:
            try:
                self._transport.close()
            except Exception:
                pass


class PrintingSender:
    """Dry run: prints each span exactly as it would be exported, one JSON object a line.

    The lines go to ``path`` (POSTHOG_DRY_RUN_FILE, appended), else to ``stream``, else to the
    process's standard error itself (``sys.__stderr__``, file descriptor 2), never to whatever
    object replaces ``sys.stderr`` at the time: export runs on our own thread, often after the
    call, and a replacement (pytest's capture, a notebook cell's output) may by then belong to
    another test or cell, or be closed, and the lines would be lost.
    """

    endpoint = "stderr"

    def __init__(self, stream=None, path: Optional[str] = None):
        self._stream = stream
        self._path = path

    def prepare(self) -> None:
        import opentelemetry.proto.collector.trace.v1.trace_service_pb2  # noqa: F401

    def send(self, body: bytes, deadline, stopping: Callable[[], bool], report: bool = True) -> Delivery:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        text = "".join(json.dumps(line, ensure_ascii=False, default=str) + "\n" for line in describe_request(request))
        if self._path is not None:
            try:
                with open(self._path, "a", encoding="utf-8") as file:
                    file.write(text)
                return Delivery(True, 200)
            except OSError as exc:
                say(
                    f"POSTHOG_DRY_RUN_FILE={self._path!r} cannot be written ({exc.strerror or exc}); "
                    "printing events to stderr instead."
                )
                self._path = None
        stream = self._stream or sys.__stderr__
        if stream is None:  # no standard error at all (pythonw)
            return Delivery(False, None, "no standard error to print to")
        try:
            stream.write(text)  # one write: the lines of a batch are not interleaved with the app's
            stream.flush()
        except (OSError, ValueError) as exc:  # closed or broken: the app's business, not an error of ours
            return Delivery(False, None, f"standard error could not be written ({exc})")
        return Delivery(True, 200)

    def close(self) -> None:
        pass


def original_stderr():
    """A stream on the standard error the process has now, which stays so when fd 2 is later
    redirected (pytest's capture, a Jupyter kernel's output pipe). None if there is none."""
    try:
        return open(os.dup(2), "w", encoding="utf-8", errors="replace", closefd=True)
    except (OSError, ValueError):
        return None


def describe_request(request) -> list:
    """Decoded spans as PostHog sees them, with the event type PostHog will create."""
    from google.protobuf.json_format import MessageToDict

    lines = []
    for resource_spans in request.resource_spans:
        resource = _attributes_to_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = _attributes_to_dict(span.attributes)
                lines.append(
                    {
                        "posthog_event": _event_type(attributes, bool(span.parent_span_id)),
                        "name": span.name,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex() or None,
                        "scope": scope_spans.scope.name,
                        "duration_ms": round((span.end_time_unix_nano - span.start_time_unix_nano) / 1e6, 3),
                        "status": MessageToDict(span.status) or {"code": "STATUS_CODE_UNSET"},
                        "attributes": attributes,
                        "resource": {
                            k: v
                            for k, v in resource.items()
                            if not k.startswith(("host.", "process.", "os.", "telemetry."))
                        },
                    }
                )
    return lines


def _event_type(attributes: dict, has_parent: bool) -> str:
    operation = attributes.get("gen_ai.operation.name")
    if operation == "chat":
        return "$ai_generation"
    if operation == "embeddings":
        return "$ai_embedding"
    return "$ai_span" if has_parent else "$ai_trace"


def _attributes_to_dict(attributes) -> dict:
    return {kv.key: _any_value(kv.value) for kv in attributes}


def _any_value(value):
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind is None:
        return None
    result = getattr(value, kind)
    if kind in ("string_value",):
        for key_hint in ("[", "{"):
            if result.startswith(key_hint):
                try:
                    return json.loads(result)
                except ValueError:
                    break
    return result


def _reason(response) -> str:
    text = ""
    try:
        text = response.text[:200]
    except Exception:
        pass
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")


def _retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), 60.0)
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value).timestamp()
        return min(max(when - time.time(), 0.0), 60.0)
    except Exception:
        return None


def _explain(status: Optional[int], reason: str) -> str:
    if status == 401:
        return "401: the project token was refused; check POSTHOG_API_KEY (phc_...) and POSTHOG_HOST"
    if status == 400:
        return f"400: {reason}"
    if status == 413:
        return "413: request too large"
    return reason
