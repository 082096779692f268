"""The two ways an :class:`~.inference_call.InferenceCall` is recorded.

* :data:`SDK_SPAN` (:class:`SpanRecording`): through the SDK span the call started, which
  every span processor sees live. The adapter's translation runs at once.
* :class:`DirectRecording`: the call's ids are made up front and put in the context (so work
  inside the call nests under it), but the span itself is built on the export thread
  (:meth:`DirectRecording.build_span`), together with the translation the adapter left for
  later (``InferenceCall.later``). The Recorder records direct when PostHog's processor is the
  only consumer of spans, so nobody else can miss a live span.

A call holds one of them and hands each moment of its life (``later``, the request body,
``end``, ``fail``) to it; what the two have in common (the attributes gathered so far, the
delegation mark) stays on the call.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from opentelemetry.sdk.trace import Event
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from .attributes import as_span_attributes, exception_event, request_attributes, span_name
from .call_types import InferenceRequest, RequestOrDescriber
from .caller_location import Caller, put_caller
from .messages import scan_json
from .plain_span import PlainSpan

if TYPE_CHECKING:
    from .inference_call import InferenceCall
    from .recorder import Recorder

logger = logging.getLogger("posthog_autoinstrument")

# A call's status until it fails. One shared instance: a Status is read-only, and making one
# validates its arguments (0.4 µs of every call's time on the app's thread).
UNSET = Status(StatusCode.UNSET)
_AWAITED = object()


def arguments_now(kwargs: dict) -> dict:
    """The keyword arguments as they are now, for translation that runs later: the app may
    append to the list it passed (its conversation) as soon as the call returns."""
    now = dict(kwargs)
    for key, value in now.items():  # (a loop: a comprehension is a function call of its own)
        if type(value) is list:
            now[key] = list(value)
    return now


class SpanRecording:
    """Recording through the call's SDK span. Stateless: one instance (:data:`SDK_SPAN`) serves
    every such call."""

    __slots__ = ()

    def later(self, call: InferenceCall, record: Callable[..., Any], args: tuple) -> None:
        record(*args)

    def expect_request_body(self, arguments: dict) -> None:
        pass  # the translation runs now, from the arguments themselves

    def request_body(self, body: Any) -> None:
        pass

    def app_resumes(self) -> None:
        pass

    def arguments_as_sent(self) -> Optional[dict]:
        return None

    def response_body(self, body: Any) -> None:
        pass

    def received_body(self) -> Optional[bytes]:
        return None

    def end(self, call: InferenceCall) -> None:
        if call._attrs:
            call.span.set_attributes(call._attrs)
        call.span.end()

    def fail(self, call: InferenceCall, exc: BaseException, status: Status) -> None:
        call.span.record_exception(exc, escaped=True)
        call.span.set_status(status)


SDK_SPAN = SpanRecording()


class DirectSpan(NonRecordingSpan):
    """The current span while a direct call runs, for work nested inside the call. Its
    ``SpanContext`` is made when first read: most calls have nothing inside them that reads it,
    and making one (a validating ``__new__``) is about a tenth of a call's cost on the app's thread."""

    def __init__(self, trace_id: int, span_id: int, flags: TraceFlags, trace_state: Optional[TraceState] = None):
        self._context: Optional[SpanContext] = None  # type: ignore[assignment]  # made when first read
        self._ids = (trace_id, span_id, flags, trace_state)

    def get_span_context(self) -> SpanContext:
        context = self._context
        if context is None:  # two threads may both make it: equal contexts, either one will do
            trace_id, span_id, flags, trace_state = self._ids
            context = self._context = SpanContext(trace_id, span_id, False, flags, trace_state)
        return context

    def __repr__(self) -> str:
        return f"NonRecordingSpan({self.get_span_context()!r})"


class DirectRecording:
    """What a direct call needs to become a span on the export thread."""

    __slots__ = (
        "recorder",
        "processor",
        "request",
        "span",
        "span_id",
        "parent",
        "caller",
        "identity",
        "start_time",
        "end_time",
        "pending",
        "events",
        "status",
        "sent",
        "arguments",
        "received",
    )

    def __init__(
        self,
        recorder: Recorder,
        processor: Any,
        request: RequestOrDescriber,
        span: DirectSpan,
        span_id: int,
        parent: Optional[SpanContext],
        caller: Optional[Caller],
        identity: Any,
    ):
        self.recorder = recorder
        self.processor = processor
        self.request = request
        self.span = span
        self.span_id = span_id
        self.parent = parent
        self.caller = caller
        self.identity = identity
        self.start_time = time.time_ns()
        self.end_time: Optional[int] = None
        # Translation left for the export thread: (function, *its arguments).
        self.pending: list[tuple] = []
        self.events: tuple[Event, ...] = ()
        self.status = UNSET
        # The request body the SDK serialised (bytes), once it has; _AWAITED before.
        self.sent: Any = None
        # The call's arguments: the app's own while the call runs, then a copy of them if no
        # JSON body replaces them, or the parsed body.
        self.arguments: Optional[dict] = None
        # The response body the SDK parsed its result from (bytes), if handed over.
        self.received: Optional[bytes] = None

    def later(self, call: InferenceCall, record: Callable[..., Any], args: tuple) -> None:
        self.pending.append((record, *args))  # one tuple a record, not two: a queued call keeps it

    # -- the request as sent -------------------------------------------------------------
    # Translation on the export thread must see the request as it was at the call, whatever the
    # app does to its message dicts and lists afterwards (an agent trimming its history in
    # place). Copying them deeply on the app's thread costs per message; the SDK serialises the
    # request anyway, and its body is bytes nobody can change: keep a reference to those.

    # A queued call keeps only the body (bytes, which collections never look at): the arguments
    # are the app's own dict until the call returns, and are copied then only if no JSON body
    # came to replace them (the call failed before it was sent, or its body is not JSON).

    def expect_request_body(self, arguments: dict) -> None:
        self.arguments = arguments
        self.sent = _AWAITED

    def request_body(self, body: Any) -> None:
        if self.sent is _AWAITED and isinstance(body, (bytes, bytearray)):
            self.sent = body
            if body[:1] == b"{":
                self.arguments = None

    def app_resumes(self) -> None:
        arguments = self.arguments
        if arguments is not None:
            self.arguments = arguments_now(arguments)

    def response_body(self, body: Any) -> None:
        if self.received is None and type(body) is bytes:
            self.received = body

    def received_body(self) -> Optional[bytes]:
        return self.received

    def arguments_as_sent(self) -> Optional[dict]:
        sent = self.sent
        if isinstance(sent, (bytes, bytearray)):
            self.sent = None
            try:
                # (the C scanner itself: json.loads adds an encoding check and a whitespace
                # regex, twice its cost on a small body; the SDKs send UTF-8 JSON)
                parsed = scan_json(sent.decode("utf-8"), 0)[0]
            except Exception:  # not JSON after all: the arguments as called stand
                parsed = None
            if isinstance(parsed, dict):
                self.arguments = parsed
        return self.arguments

    # -- end ---------------------------------------------------------------------------
    def end(self, call: InferenceCall) -> None:
        self.end_time = time.time_ns()
        self.processor.on_direct_end(call, self.span_id, self.parent, self.identity)

    def fail(self, call: InferenceCall, exc: BaseException, status: Status) -> None:
        self.events = (exception_event(exc),)
        self.status = status

    def run_pending(self, index: int) -> bool:
        """Run the ``index``-th translation left for later, if there is one (it may leave more)."""
        pending = self.pending
        if index >= len(pending):
            return False
        record, *args = pending[index]
        try:
            record(*args)
        except Exception:
            # What we cannot read is left out; the call is still recorded.
            logger.debug("posthog-autoinstrument: could not record %r", record, exc_info=True)
        return True

    def build_span(self, call: InferenceCall) -> PlainSpan:
        """The finished span. Export thread only, once the call has ended."""
        index = 0
        while self.run_pending(index):
            index += 1
        self.pending = []
        request = self.request
        if not isinstance(request, InferenceRequest):  # described only now (see Recorder.start)
            request = self.request = request(self.arguments_as_sent() or {})
        attrs = request_attributes(request)
        put_caller(attrs, self.caller)
        attrs.update(call._attrs)
        recorder = self.recorder
        return PlainSpan(
            span_name(request),
            self.span.get_span_context(),
            self.parent,
            recorder.tracer.resource,
            as_span_attributes(attrs),
            self.events,
            (),
            SpanKind.CLIENT,
            self.status,
            self.start_time,
            self.end_time,
            recorder.scope,
        )


def run_pending_translations(recordings: list[DirectRecording]) -> None:
    """The translation each of a batch of ended direct calls left for later, a column at a time:
    every call's first record, then every call's second, and so on. A batch's calls mostly come
    from one adapter, so each record's code and data stay in the CPU's caches from one call to
    the next; each call's own records still run in their order."""
    remaining, index = recordings, 0
    while remaining:
        remaining = [recording for recording in remaining if recording.run_pending(index)]
        index += 1
    for recording in recordings:
        recording.pending = []
