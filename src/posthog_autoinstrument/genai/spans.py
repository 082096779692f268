"""The one place that turns a model call into a span that follows the GenAI conventions.

Adapters describe a call with plain values (:class:`InferenceRequest`, :class:`Usage`, parts
from :mod:`.messages`) and drive an :class:`InferenceCall` through its life:
``start -> set_input -> set_response -> end | fail``. Nothing here knows which library is
being served, and nothing here ever raises into the application: a failure to record is
logged at debug level and the call goes on unrecorded.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import sysconfig
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event
from opentelemetry.sdk.trace.sampling import DEFAULT_ON
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from ..identity import privacy_requested
from . import semconv
from .messages import to_json

logger = logging.getLogger("posthog_autoinstrument")

_OUR_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_STDLIB = sysconfig.get_paths()["stdlib"]

# The model call in progress in this context, so that one call is recorded once however many
# instrumented layers it passes through (a framework over a provider SDK over HTTP).
_ACTIVE_CALL = otel_context.create_key("posthog_autoinstrument.active_call")
# A model call that another recorder, chosen by the application, records itself (PostHog's own
# SDK wrappers, its LangChain callback handler): set around the code that makes the request.
_RECORDED_ELSEWHERE = otel_context.create_key("posthog_autoinstrument.recorded_elsewhere")
# What recorders following the GenAI conventions keep in the context while their inference or
# embedding is in progress (``opentelemetry-util-genai``: CLIENT_INFERENCE_CONTEXT_KEY,
# CLIENT_EMBEDDING_CONTEXT_KEY). Plain strings, not ``create_key`` keys: anyone can read them.
GENAI_CALL_CONTEXT_KEYS = ("opentelemetry.genai.client.inference.context",
                           "opentelemetry.genai.client.embedding.context")
# Span ids of our recent provider-level calls (oldest first, bounded): another instrumentation's
# span of a model request made under one of them is a second view of the same request, even
# where that instrumentation carried only the ids across (logfire's span of a finished stream).
_provider_call_ids: dict = {}
_MAX_PROVIDER_CALL_IDS = 4096
# The context key under which the OpenTelemetry API keeps the current span, as the API itself
# sets it, so that attaching a call makes one new context instead of two.
_CURRENT_SPAN_KEY = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, otel_context.Context())))


class Layer:
    """Where in the stack an instrumented call sits; decides which layer is the generation."""

    PROVIDER = "provider"  # a provider's SDK talking to the model API (openai, anthropic, ...)
    FRAMEWORK = "framework"  # a library that reaches models through other libraries (litellm, langchain)


@dataclass(slots=True)
class Usage:
    """Token counts as the conventions define them: ``input_tokens`` includes cache tokens."""

    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    cache_read_input_tokens: Optional[int] = None
    cache_creation_input_tokens: Optional[int] = None
    reasoning_tokens: Optional[int] = None


@dataclass(slots=True)
class InferenceRequest:
    """What the application asked for. Unset fields are simply not recorded."""

    provider: str
    model: Optional[str]
    operation: str = semconv.Operation.CHAT
    server_address: Optional[str] = None
    server_port: Optional[int] = None
    stream: bool = False
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[float] = None
    max_tokens: Optional[int] = None
    stop_sequences: Optional[Sequence[str]] = None
    seed: Optional[int] = None
    choice_count: Optional[int] = None
    frequency_penalty: Optional[float] = None
    presence_penalty: Optional[float] = None
    reasoning_level: Optional[str] = None
    encoding_formats: Optional[Sequence[str]] = None
    output_type: Optional[str] = None
    conversation_id: Optional[str] = None
    layer: str = Layer.PROVIDER
    # Further attributes, keyed by constants from :mod:`.semconv`.
    attributes: dict = field(default_factory=dict)


# A call's description, or a function that makes it later (see Recorder.start) from the call's
# arguments as the SDK sent them (see InferenceCall.expect_request_body), None when unknown.
RequestOrDescriber = Union[InferenceRequest, Callable[[Optional[dict]], InferenceRequest]]

_NUMERIC_REQUEST_FIELDS = (
    ("temperature", semconv.REQUEST_TEMPERATURE),
    ("top_p", semconv.REQUEST_TOP_P),
    ("top_k", semconv.REQUEST_TOP_K),
    ("max_tokens", semconv.REQUEST_MAX_TOKENS),
    ("seed", semconv.REQUEST_SEED),
    ("frequency_penalty", semconv.REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", semconv.REQUEST_PRESENCE_PENALTY),
)
_TEXT_REQUEST_FIELDS = (
    ("reasoning_level", semconv.REQUEST_REASONING_LEVEL),
    ("output_type", semconv.OUTPUT_TYPE),
    ("conversation_id", semconv.CONVERSATION_ID),
)

_USAGE_FIELDS = (
    ("input_tokens", semconv.USAGE_INPUT_TOKENS),
    ("output_tokens", semconv.USAGE_OUTPUT_TOKENS),
    ("cache_read_input_tokens", semconv.USAGE_CACHE_READ_INPUT_TOKENS),
    ("cache_creation_input_tokens", semconv.USAGE_CACHE_CREATION_INPUT_TOKENS),
    ("reasoning_tokens", semconv.USAGE_REASONING_OUTPUT_TOKENS),
)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def request_attributes(request: InferenceRequest) -> dict:
    """The attributes known when the call starts (the sampling-relevant ones among them)."""
    attrs: dict = {
        semconv.OPERATION_NAME: request.operation,
        semconv.PROVIDER_NAME: request.provider,
    }
    if request.model:
        attrs[semconv.REQUEST_MODEL] = str(request.model)
    if request.server_address:
        attrs[semconv.SERVER_ADDRESS] = request.server_address
        if request.server_port:
            attrs[semconv.SERVER_PORT] = request.server_port
    if request.stream:
        attrs[semconv.REQUEST_STREAM] = True
    for name, key in _NUMERIC_REQUEST_FIELDS:
        value = getattr(request, name)
        if value is not None and _is_number(value):  # mostly unset: no call for those
            attrs[key] = value
    for name, key in _TEXT_REQUEST_FIELDS:
        value = getattr(request, name)
        if value and isinstance(value, str):
            attrs[key] = value
    if _is_number(request.choice_count) and request.choice_count != 1:
        attrs[semconv.REQUEST_CHOICE_COUNT] = request.choice_count
    if request.stop_sequences:
        stops = request.stop_sequences
        attrs[semconv.REQUEST_STOP_SEQUENCES] = [stops] if isinstance(stops, str) else [str(s) for s in stops]
    if request.encoding_formats:
        attrs[semconv.REQUEST_ENCODING_FORMATS] = [str(f) for f in request.encoding_formats]
    for key, value in request.attributes.items():
        if value is not None:
            attrs[key] = value
    return attrs


def exception_type(exc: BaseException) -> str:
    """A low-cardinality ``error.type``: the exception class under its package's public name."""
    cls = type(exc)
    package = cls.__module__.split(".", 1)[0]
    if package == "builtins":
        return cls.__qualname__
    return f"{package}.{cls.__qualname__}"


_PLAIN_ATTRIBUTE_TYPES = frozenset({str, int, float, bool})
# A call's status until it fails. One shared instance: a Status is read-only, and making one
# validates its arguments (0.4 µs of every call's time on the app's thread).
_UNSET = Status(StatusCode.UNSET)


class _DirectSpan(NonRecordingSpan):
    """The current span while a direct call runs, for work nested inside the call. Its
    ``SpanContext`` is made when first read: most calls have nothing inside them that reads it,
    and making one (a validating ``__new__``) is about a tenth of a call's cost on the app's thread."""

    def __init__(self, trace_id: int, span_id: int, flags: TraceFlags, trace_state: Any = None):
        self._context = None
        self._ids = (trace_id, span_id, flags, trace_state)

    def get_span_context(self) -> SpanContext:
        context = self._context
        if context is None:  # two threads may both make it: equal contexts, either one will do
            trace_id, span_id, flags, trace_state = self._ids
            context = self._context = SpanContext(trace_id, span_id, False, flags, trace_state)
        return context

    def __repr__(self) -> str:
        return f"NonRecordingSpan({self.get_span_context()!r})"


class _Direct:
    """What a direct call (see InferenceCall) needs to become a span on the export thread."""

    __slots__ = ("recorder", "processor", "request", "span", "span_id", "parent", "caller", "identity",
                 "start_time", "end_time", "pending", "events", "status", "sent", "arguments", "received")

    def __init__(self, recorder: "Recorder", processor: Any, request: RequestOrDescriber, span: _DirectSpan,
                 span_id: int, parent: Optional[SpanContext], caller: Optional[tuple], identity: Any):
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
        self.pending: list = []
        self.events: tuple = ()
        self.status = _UNSET
        # The request body the SDK serialised (bytes), once it has; _AWAITED before.
        self.sent: Any = None
        # The call's arguments as sent: the parsed body, or until then a copy of the arguments.
        self.arguments: Optional[dict] = None
        # The response body the SDK parsed its result from (bytes), if handed over.
        self.received: Optional[bytes] = None


_AWAITED = object()
_scan_json = json.JSONDecoder().scan_once


def _exception_event(exc: BaseException) -> Event:
    """The event ``Span.record_exception(exc, escaped=True)`` adds, made the same way."""
    cls = type(exc)
    module = cls.__module__
    return Event("exception", {
        "exception.type": f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__,
        "exception.message": str(exc),
        "exception.stacktrace": "".join(traceback.format_exception(cls, exc, exc.__traceback__)),
        "exception.escaped": "True",
    })


class InferenceCall:
    """One model call in flight. Every method is safe to call in any order, any number of times.

    Two ways to record: with an SDK span (``span``), or *direct* (``direct`` is set): the call's
    ids are made up front and put in the context (so work inside the call nests under it), but
    the span itself is built on the export thread (:meth:`build_span`), together with the
    translation the adapter left for later (:meth:`later`). The Recorder records direct when
    PostHog's processor is the only consumer of spans, so nobody else can miss a live span.
    """

    __slots__ = ("span", "capture_content", "layer", "delegated", "_attrs", "_ended", "_started", "_first_chunk_seen",
                 "_direct")

    def __init__(self, span: trace.Span, capture_content: bool, layer: str = Layer.PROVIDER,
                 direct: Optional["_Direct"] = None):
        self.span = span
        self.capture_content = capture_content
        self.layer = layer
        # Set when a lower layer recorded this call's model request itself: this span then
        # stays in the trace as a step, and the lower layer's span is the generation.
        self.delegated = False
        self._attrs: dict = {}
        self._ended = False
        self._started = time.perf_counter()
        self._first_chunk_seen = False
        self._direct = direct

    def later(self, record: Any, *args: Any) -> None:
        """Run ``record(*args)`` (translation that only reads its arguments and sets this call's
        attributes) on the export thread when the span is built there, else now. The arguments
        must not change after the call: pass copies of what the app may still mutate."""
        direct = self._direct
        if direct is None:
            record(*args)
        else:
            direct.pending.append((record, args))

    # -- the request as sent -------------------------------------------------------------
    # Translation on the export thread must see the request as it was at the call, whatever the
    # app does to its message dicts and lists afterwards (an agent trimming its history in
    # place). Copying them deeply on the app's thread costs per message; the SDK serialises the
    # request anyway, and its body is bytes nobody can change: keep a reference to those.

    def expect_request_body(self, arguments: dict) -> None:
        """Translate this call (on the export thread) from the JSON body its SDK sends, handed
        over by :meth:`request_body`; ``arguments``, a copy of the call's keyword arguments,
        stand in if none comes (the call failed before it was sent)."""
        direct = self._direct
        if direct is not None:
            direct.arguments = arguments
            direct.sent = _AWAITED

    def request_body(self, body: Any) -> None:
        """The body of the HTTP request the SDK built for this call (the first, if it retries)."""
        direct = self._direct
        if direct is not None and direct.sent is _AWAITED and isinstance(body, (bytes, bytearray)):
            direct.sent = body

    def response_body(self, body: Any) -> None:
        """The body of the HTTP response the SDK parsed this call's result from (the first one).
        A queued call then keeps these bytes, which collections never look at, for its
        translation instead of the SDK's result objects."""
        direct = self._direct
        if direct is not None and direct.received is None and type(body) is bytes:
            direct.received = body

    def received_body(self) -> Optional[bytes]:
        """The response body handed over by :meth:`response_body`; None if none was."""
        direct = self._direct
        return None if direct is None else direct.received

    def arguments_as_sent(self) -> Optional[dict]:
        """The call's arguments as sent: its parsed JSON body, else the copy taken at the call.
        Export thread only; None when not expected (see :meth:`expect_request_body`)."""
        direct = self._direct
        if direct is None:
            return None
        sent = direct.sent
        if isinstance(sent, (bytes, bytearray)):
            direct.sent = None
            try:
                # (the C scanner itself: json.loads adds an encoding check and a whitespace
                # regex, twice its cost on a small body; the SDKs send UTF-8 JSON)
                parsed = _scan_json(sent.decode("utf-8"), 0)[0]
            except Exception:  # not JSON after all: the arguments as called stand
                parsed = None
            if isinstance(parsed, dict):
                direct.arguments = parsed
        return direct.arguments

    # -- context -----------------------------------------------------------------------
    def attach(self, context: Optional[otel_context.Context] = None) -> object:
        """Make the span current, so work done inside the call (HTTP spans) nests under it.
        ``context``: the current context, when the caller has just read it."""
        try:
            values = dict(otel_context.get_current() if context is None else context)
            values[_CURRENT_SPAN_KEY] = self.span
            values[_ACTIVE_CALL] = self
            return otel_context.attach(otel_context.Context(values))
        except Exception:
            return None

    @staticmethod
    def detach(token: object) -> None:
        if token is not None:
            try:
                otel_context.detach(token)
            except Exception:
                logger.debug("posthog-autoinstrument: context detach failed", exc_info=True)

    # -- content -----------------------------------------------------------------------
    def set_input(self, messages: Optional[list] = None, system_instructions: Optional[list] = None,
                  tool_definitions: Optional[list] = None) -> None:
        if messages:
            self._set_content(semconv.INPUT_MESSAGES, messages)
        if system_instructions:
            self._set_content(semconv.SYSTEM_INSTRUCTIONS, system_instructions)
        if tool_definitions:
            # Tool definitions are metadata, not content: PostHog shows them even in privacy mode
            # (credentials inside them are scrubbed at export).
            self._attrs[semconv.TOOL_DEFINITIONS] = to_json(tool_definitions)

    def set_output(self, messages: Optional[list]) -> None:
        if messages:
            self._set_content(semconv.OUTPUT_MESSAGES, messages)

    def _set_content(self, key: str, value: list) -> None:
        if self.capture_content:
            self._attrs[key] = to_json(value)

    # -- response ----------------------------------------------------------------------
    def set_response(self, *, model: Optional[str] = None, response_id: Optional[str] = None,
                     finish_reasons: Optional[Sequence[str]] = None, usage: Optional[Usage] = None,
                     attributes: Optional[dict] = None) -> None:
        attrs = self._attrs
        if model:
            attrs[semconv.RESPONSE_MODEL] = str(model)
        if response_id:
            attrs[semconv.RESPONSE_ID] = str(response_id)
        if finish_reasons:
            attrs[semconv.RESPONSE_FINISH_REASONS] = [str(r) for r in finish_reasons if r]
        if usage is not None:
            for name, key in _USAGE_FIELDS:
                value = getattr(usage, name)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    attrs[key] = value
        if attributes:
            for key, value in attributes.items():
                if value is not None:
                    attrs[key] = value

    def set_attribute(self, key: str, value: Any) -> None:
        if value is not None:
            self._attrs[key] = value

    def chunk_received(self) -> None:
        """Note the first streamed chunk's arrival (time to first chunk)."""
        if not self._first_chunk_seen:
            self._first_chunk_seen = True
            self._attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] = time.perf_counter() - self._started

    # -- end ---------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self._ended

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            if self.delegated:
                self._attrs[semconv.DELEGATED] = True
            direct = self._direct
            if direct is not None:
                direct.end_time = time.time_ns()
                direct.processor.on_direct_end(self, direct.span_id, direct.parent, direct.identity)
                return
            if self._attrs:
                self.span.set_attributes(self._attrs)
            self.span.end()
        except Exception:
            logger.debug("posthog-autoinstrument: failed to end span", exc_info=True)

    def build_span(self) -> PlainSpan:
        """The finished span of a direct call. Export thread only, once the call has ended."""
        direct = self._direct
        for record, args in direct.pending:
            try:
                record(*args)
            except Exception:
                # What we cannot read is left out; the call is still recorded.
                logger.debug("posthog-autoinstrument: could not record %r", record, exc_info=True)
        direct.pending = []
        request = direct.request
        if not isinstance(request, InferenceRequest):  # described only now (see Recorder.start)
            request = direct.request = request(self.arguments_as_sent())
        attrs = request_attributes(request)
        if direct.caller is not None:
            attrs[semconv.CODE_FUNCTION_NAME], attrs[semconv.CODE_FILE_PATH], attrs[semconv.CODE_LINE_NUMBER] = direct.caller
        attrs.update(self._attrs)
        unusual = False
        for key, value in attrs.items():
            kind = type(value)
            if kind in _PLAIN_ATTRIBUTE_TYPES:
                continue
            if (kind is list or kind is tuple) and all(type(v) is str for v in value):
                attrs[key] = tuple(value)  # as the SDK stores a sequence
            else:
                unusual = True
        if unusual:  # a value that is not plain: the SDK's own rules decide, as on an SDK span
            attrs = dict(BoundedAttributes(attributes=attrs, immutable=False))
        recorder = direct.recorder
        return PlainSpan(
            f"{request.operation} {request.model}" if request.model else request.operation,
            direct.span.get_span_context(), direct.parent, recorder.tracer.resource, attrs, direct.events, (),
            SpanKind.CLIENT, direct.status, direct.start_time, direct.end_time, recorder.scope)

    def fail(self, exc: BaseException, status_code: Optional[int] = None) -> None:
        """End the call as failed. The application's exception itself is never touched.

        ``status_code``: the HTTP status where the adapter knows it better than the exception's
        ``status_code`` attribute (botocore keeps it in the error response).
        """
        if self._ended:
            return
        try:
            self._attrs[semconv.ERROR_TYPE] = exception_type(exc)
            if status_code is None:
                status_code = getattr(exc, "status_code", None)
            if isinstance(status_code, int) and not isinstance(status_code, bool) and 100 <= status_code <= 599:
                self._attrs[semconv.HTTP_RESPONSE_STATUS_CODE] = status_code
            status = Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
            direct = self._direct
            if direct is not None:
                direct.events = (_exception_event(exc),)
                direct.status = status
            else:
                self.span.record_exception(exc, escaped=True)
                self.span.set_status(status)
        except Exception:
            logger.debug("posthog-autoinstrument: failed to record error", exc_info=True)
        self.end()


@dataclass(slots=True)
class PlainSpan:
    """A finished span as the export reads it: what ``ReadableSpan`` offers, in plain fields.

    The span of a direct call (``InferenceCall.build_span``) and PostHog's copy of any span
    (``export.dialect.for_posthog``): made on the export thread for export alone, and read there
    a few dozen times a span, where a ``ReadableSpan``'s properties copy its attributes, events
    and links on every read. Nobody else holds one, so ``for_posthog`` takes over the attributes
    of the one it is given.
    """

    name: str
    context: SpanContext
    parent: Optional[SpanContext]
    resource: Any
    attributes: dict
    events: Sequence
    links: Sequence
    kind: SpanKind
    status: Status
    start_time: Optional[int]
    end_time: Optional[int]
    instrumentation_scope: Any
    dropped_attributes = dropped_events = dropped_links = 0  # class attributes: never any

    def get_span_context(self) -> SpanContext:
        return self.context


_LIBRARY_PATH_MARKERS = ("site-packages", "dist-packages", "<frozen", "<string>")
# id(code) -> (code, from a library?). Keyed by id: a code object's hash is computed anew on
# every call, over its bytecode and constants (~1 µs for an SDK method). The entry holds the
# code object, so its id cannot be reused while the entry lives.
_is_library_code: dict = {}


def _classify_library(code) -> bool:
    """Whether ``code`` is a library's (or ours), remembered in ``_is_library_code``, which
    ``find_caller`` reads first."""
    filename = code.co_filename
    known = any(marker in filename for marker in _LIBRARY_PATH_MARKERS) or filename.startswith(_OUR_PACKAGE) \
        or filename.startswith(_STDLIB)
    if len(_is_library_code) > 4096:
        _is_library_code.clear()
    _is_library_code[id(code)] = (code, known)
    return known


def find_caller(depth: int = 1, frame: Any = None) -> Optional[tuple]:
    """(function, file, line) of the application code that made the call: the first frame
    outside libraries, ``depth`` frames above this function's caller (or from ``frame``), so
    calls can be told apart by where they come from even without a trace name.

    Each frame looked at becomes a frame object (``f_back``), ~2.5k instructions on a chat call's
    path: a caller that knows where our own frames end passes that ``frame``.
    """
    if frame is None:
        frame = sys._getframe(depth + 1)
    known = _is_library_code
    for _ in range(64):
        if frame is None:
            return None
        code = frame.f_code
        entry = known.get(id(code))  # read here, not in a call: runs for every frame of every call
        if not (entry[1] if entry is not None and entry[0] is code else _classify_library(code)):
            return getattr(code, "co_qualname", None) or code.co_name, code.co_filename, frame.f_lineno  # 3.11+
        frame = frame.f_back
    return None


def caller_location(attrs: dict, depth: int = 2, frame: Any = None) -> None:
    """Put the caller's ``code.*`` attributes in ``attrs`` (see find_caller)."""
    caller = find_caller(depth, frame)
    if caller is not None:
        attrs[semconv.CODE_FUNCTION_NAME], attrs[semconv.CODE_FILE_PATH], attrs[semconv.CODE_LINE_NUMBER] = caller


# The instrumentation scope of our own spans (instrumentation/base.py names its tracers so).
SCOPE_NAME = "posthog_autoinstrument"

# Operations that are one model request, as opposed to steps around model requests.
MODEL_CALL_OPERATIONS = frozenset({
    semconv.Operation.CHAT, semconv.Operation.TEXT_COMPLETION, semconv.Operation.GENERATE_CONTENT,
    semconv.Operation.EMBEDDINGS,
})


def active_call() -> Optional[InferenceCall]:
    """The call of ours in progress in the current context, if any."""
    return otel_context.get_value(_ACTIVE_CALL)


class RecordedElsewhere:
    """Stands in for a model call that another recorder records (see ``_RECORDED_ELSEWHERE``):
    attached around the code that makes the request, like an ``InferenceCall``, it makes every
    model call started inside unrecorded by us (``model_call_starts``) and keeps the spans of
    libraries that trace themselves from PostHog (``model_call_recorded_in``)."""

    ended = False
    delegated = False

    @staticmethod
    def attach(context: Optional[otel_context.Context] = None) -> object:
        try:
            return otel_context.attach(otel_context.set_value(_RECORDED_ELSEWHERE, True, context))
        except Exception:
            return None

    detach = staticmethod(InferenceCall.detach)


RECORDED_ELSEWHERE = RecordedElsewhere()


def model_call_recorded_in(context: Optional[otel_context.Context]) -> bool:
    """Whether a span starting in ``context`` (the current one when None) is inside a model call
    that is recorded already: by one of our provider-level calls (a span of another
    instrumentation beneath it, such as logfire's or OpenInference's of the HTTP request, is
    the same request), or by a recorder the application chose. Never raises."""
    try:
        if otel_context.get_value(_RECORDED_ELSEWHERE, context):
            return True
        call = otel_context.get_value(_ACTIVE_CALL, context)
        if call is not None and call.layer == Layer.PROVIDER:
            return True
        return trace.get_current_span(context).get_span_context().span_id in _provider_call_ids
    except Exception:
        return False


def _note_provider_call(span_id: int) -> None:
    ids = _provider_call_ids
    ids[span_id] = None
    if len(ids) > _MAX_PROVIDER_CALL_IDS:
        try:
            del ids[next(iter(ids))]
        except (KeyError, RuntimeError, StopIteration):  # another thread evicted it first
            pass


def model_call_starts(layer: str, parent: Optional[otel_context.Context] = None) -> bool:
    """The rule that makes one model call one generation, applied whenever a span of a model
    request starts in ``parent`` (the current context when None): ours (``Recorder.start``) and
    the spans of libraries that trace themselves (the export processor's ``on_start``).

    The innermost span of a model request is its generation; a model-call span that directly
    encloses it is a framework's view of the same request, and becomes a step (delegated):

    * our own call in progress (``InferenceCall.attach``): marked through the call, unless both
      are provider-level (an SDK built on another SDK), when the inner call is the same request
      and must not be recorded at all: then this returns False;
    * a recording span of another instrumentation (pydantic-ai's ``chat`` span around its
      OpenAI model's call into the openai SDK): marked with ``semconv.DELEGATED``, which the
      PostHog dialect turns into a step without tokens.

    A framework model call that no instrumented provider call happens inside (a model we do
    not instrument) keeps its generation. A call made where another recorder the application
    chose records the request (``RecordedElsewhere``) is not recorded (False), and what encloses
    it becomes a step as above: that recorder's event is the generation. Never raises.
    """
    if parent is not None and not parent:
        return True  # an empty context (an app with no span of its own): nothing encloses the call
    try:
        outer = otel_context.get_value(_ACTIVE_CALL, parent)
        if outer is not None and not outer.ended:
            if layer == Layer.PROVIDER and outer.layer == Layer.PROVIDER:
                return False
            outer.delegated = True
        enclosing = trace.get_current_span(parent)
        if (outer is None or enclosing is not outer.span) and is_foreign_model_call(enclosing, parent):
            enclosing.set_attribute(semconv.DELEGATED, True)
        # Recorded by the app's own choice: what encloses it is a step all the same (above).
        return not otel_context.get_value(_RECORDED_ELSEWHERE, parent)
    except Exception:
        logger.debug("posthog-autoinstrument: could not check the enclosing model call", exc_info=True)
    return True


def _name_enclosing_framework(call: InferenceCall, parent: Optional[otel_context.Context]) -> None:
    """A provider call made by a framework's model call (LangChain's chat model through the
    openai SDK) is the generation: it names the framework, as PostHog's own LangChain handler's
    generations do ($ai_framework), so the generations of a framework can be found by it."""
    if not parent:
        return  # an empty context: nothing encloses the call
    outer = otel_context.get_value(_ACTIVE_CALL, parent)
    if outer is not None and outer.layer == Layer.FRAMEWORK:
        attributes = getattr(outer.span, "attributes", None)
        if attributes:
            call.set_attribute(semconv.FRAMEWORK, attributes.get(semconv.FRAMEWORK))


# How other recorders mark a model request, besides the conventions' operation name:
# OpenLLMetry's ``llm.request.type`` and OpenInference's span kind (both read by PostHog's
# ingestion to make a generation or an embedding: rust/capture/src/otel/providers.rs).
_TRACELOOP_REQUEST_TYPE = "llm.request.type"
_TRACELOOP_MODEL_CALLS = frozenset({"chat", "completion", "embedding", "embeddings"})
_OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
_OPENINFERENCE_MODEL_CALLS = frozenset({"LLM", "EMBEDDING"})


def is_model_call(attributes: Any) -> bool:
    """Whether a span with these attributes records one model request, by whichever convention."""
    if not attributes:
        return False
    get = attributes.get
    return get(semconv.OPERATION_NAME) in MODEL_CALL_OPERATIONS or \
        get(_TRACELOOP_REQUEST_TYPE) in _TRACELOOP_MODEL_CALLS or \
        get(_OPENINFERENCE_SPAN_KIND) in _OPENINFERENCE_MODEL_CALLS


def is_foreign_model_call(span: Any, context: Optional[otel_context.Context] = None) -> bool:
    """Whether ``span`` (current in ``context``) is an unfinished model-request span that another
    instrumentation records: by its attributes, or because a recorder following the GenAI
    conventions says in the context that its inference is in progress."""
    if not span.is_recording():
        return False
    scope = getattr(span, "instrumentation_scope", None)
    if scope is None or scope.name == SCOPE_NAME:
        return False  # ours are marked through their InferenceCall
    if is_model_call(getattr(span, "attributes", None)):
        return True
    return any(otel_context.get_value(key, context) is not None for key in GENAI_CALL_CONTEXT_KEYS)


class Recorder:
    """Starts inference and embedding spans for one instrumented library."""

    def __init__(self, tracer: trace.Tracer, capture_content: bool = True):
        self.tracer = tracer
        self.capture_content = capture_content
        from .. import __version__

        self.scope = getattr(tracer, "_instrumentation_scope", None) or InstrumentationScope(SCOPE_NAME, __version__)
        try:
            random_ids = bool(tracer.id_generator.is_trace_id_random())
        except Exception:
            random_ids = False
        flags = TraceFlags.SAMPLED | (getattr(TraceFlags, "RANDOM_TRACE_ID", 0) if random_ids else 0)
        self._root_flags = TraceFlags(flags)

    def _direct_processor(self) -> Any:
        """The processor to hand a direct call to, or None to record with an SDK span.

        Direct only when the spans of this tracer go to PostHog's processor alone, with the
        SDK's default sampler (so "sampled" means: the parent was, or there is none) and the
        tracer enabled: then nobody but that processor could ever see the span, and it takes
        a finished span as well from the export thread as from ``on_end``.
        """
        tracer = self.tracer
        try:
            processors = tracer.span_processor._span_processors
            if len(processors) != 1 or tracer.sampler is not DEFAULT_ON:
                return None
            processor = processors[0]
            if not hasattr(processor, "on_direct_end") or not tracer._is_enabled():
                return None
            return processor
        except Exception:  # a tracer that is not the SDK's, or another SDK version
            return None

    def _start_direct(self, request: RequestOrDescriber, parent: Optional[otel_context.Context],
                      processor: Any, capture: bool, caller_frame: Any) -> Optional[InferenceCall]:
        # (An empty context, an app with no span of its own, has no parent to read.)
        parent_context = trace.get_current_span(parent).get_span_context() if parent else INVALID_SPAN_CONTEXT
        ids = self.tracer.id_generator
        if parent_context.is_valid:
            if not parent_context.trace_flags.sampled:
                return None  # the caller records with an SDK span, which the sampler drops
            span_id = ids.generate_span_id()
            span = _DirectSpan(parent_context.trace_id, span_id, parent_context.trace_flags, parent_context.trace_state)
        else:
            parent_context = None
            span_id = ids.generate_span_id()
            span = _DirectSpan(ids.generate_trace_id(), span_id, self._root_flags)
        caller = find_caller(2, caller_frame)  # from start's caller up
        identity = processor.on_direct_start(span_id, parent)
        direct = _Direct(self, processor, request, span, span_id, parent_context, caller, identity)
        return InferenceCall(span, capture, Layer.PROVIDER, direct)

    def start(self, request: RequestOrDescriber, parent: Optional[otel_context.Context] = None,
              caller_frame: Any = None) -> Optional[InferenceCall]:
        """Start the span for one call, or return None when it must not (or cannot) be recorded.

        A provider-level call made inside another provider-level call is the same model request
        (an SDK built on another SDK): only the outer one is recorded. A call made inside a
        framework-level call is the generation, and the framework's span becomes a step (see
        ``model_call_starts``). ``parent`` is the context to nest under when it is not the
        current one (callbacks).

        ``request``: the call's description, or for a provider-level call a function that
        returns it (a handler whose description reads nothing but the call's arguments): a
        direct call then runs it on the export thread, any other call at once.

        ``caller_frame``: where to start looking for the app's code (``code.*`` attributes); by
        default, at the caller of ``start``.
        """
        try:
            if parent is None:  # read once: each check below looks in the same context
                parent = otel_context.get_current()
            described_later = not isinstance(request, InferenceRequest)
            layer = Layer.PROVIDER if described_later else request.layer
            if not model_call_starts(layer, parent):
                return None
            if layer == Layer.PROVIDER:  # framework adapters use their span's SDK API
                processor = self._direct_processor()
                if processor is not None:
                    call = self._start_direct(request, parent, processor,
                                              self.capture_content and not privacy_requested(), caller_frame)
                    if call is not None:
                        _note_provider_call(call._direct.span_id)
                        _name_enclosing_framework(call, parent)
                        return call
            if described_later:
                request = request(None)
            attrs = request_attributes(request)
            caller_location(attrs, frame=caller_frame)
            name = f"{request.operation} {request.model}" if request.model else request.operation
            span = self.tracer.start_span(name, context=parent, kind=SpanKind.CLIENT, attributes=attrs)
            if layer == Layer.PROVIDER and span.is_recording():  # (not a stand-in of another's span)
                _note_provider_call(span.get_span_context().span_id)
            capture = self.capture_content and not privacy_requested()
            call = InferenceCall(span, capture, request.layer)
            if layer == Layer.PROVIDER:
                _name_enclosing_framework(call, parent)
            return call
        except Exception:
            logger.debug("posthog-autoinstrument: failed to start span", exc_info=True)
            return None

    def start_step(self, step: "StepRequest", parent: Optional[otel_context.Context] = None) -> Optional["StepCall"]:
        """Start a span for a step of an agent run: an agent, a tool, a chain, a retriever."""
        try:
            attrs = {semconv.OPERATION_NAME: step.operation}
            for key, value in ((semconv.PROVIDER_NAME, step.provider), (semconv.FRAMEWORK, step.framework),
                               (_STEP_NAME_KEYS.get(step.operation), step.name),
                               (semconv.TOOL_CALL_ID, step.tool_call_id), (semconv.TOOL_TYPE, step.tool_type),
                               (semconv.REQUEST_MODEL, step.model)):
                if key and value is not None:
                    attrs[key] = value
            for key, value in step.attributes.items():
                if value is not None:
                    attrs[key] = value
            name = f"{step.operation} {step.name}" if step.name else step.operation
            span = self.tracer.start_span(name, context=parent, kind=SpanKind.INTERNAL, attributes=attrs)
            capture = self.capture_content and not privacy_requested()
            return StepCall(span, capture, step.operation)
        except Exception:
            logger.debug("posthog-autoinstrument: failed to start step", exc_info=True)
            return None


_STEP_NAME_KEYS = {
    semconv.Operation.INVOKE_AGENT: semconv.AGENT_NAME,
    semconv.Operation.EXECUTE_TOOL: semconv.TOOL_NAME,
    semconv.Operation.INVOKE_WORKFLOW: semconv.WORKFLOW_NAME,
    semconv.Operation.RETRIEVAL: semconv.DATA_SOURCE_ID,
}


@dataclass(slots=True)
class StepRequest:
    """A step of an agent run. ``operation`` is a conventions value where one fits
    (invoke_agent, execute_tool, invoke_workflow, retrieval), else the framework's own word."""

    operation: str
    name: Optional[str] = None
    framework: Optional[str] = None
    provider: Optional[str] = None
    model: Optional[str] = None
    tool_call_id: Optional[str] = None
    tool_type: Optional[str] = None
    attributes: dict = field(default_factory=dict)


class StepCall(InferenceCall):
    """A step in flight. Its input and output are recorded as JSON state (content: subject to privacy)."""

    __slots__ = ("operation",)

    def __init__(self, span: trace.Span, capture_content: bool, operation: str):
        super().__init__(span, capture_content, Layer.FRAMEWORK)
        self.operation = operation

    def attach(self) -> object:
        # Steps are not model calls: they nest spans, but take no part in generation dedup.
        try:
            return otel_context.attach(trace.set_span_in_context(self.span))
        except Exception:
            return None

    def set_input_state(self, value: Any) -> None:
        key = semconv.TOOL_CALL_ARGUMENTS if self.operation == semconv.Operation.EXECUTE_TOOL else semconv.INPUT_STATE
        if self.capture_content and value is not None:
            self._attrs[key] = value if isinstance(value, str) else to_json(value)

    def set_output_state(self, value: Any) -> None:
        key = semconv.TOOL_CALL_RESULT if self.operation == semconv.Operation.EXECUTE_TOOL else semconv.OUTPUT_STATE
        if self.capture_content and value is not None:
            self._attrs[key] = value if isinstance(value, str) else to_json(value)


# -- a trace carried to another process ------------------------------------------------------
# When an AI span of ours hands its trace context to another process (an MCP tool call, in the
# request's ``_meta``), that process's spans have a remote parent. The export keeps a remote
# parent only when PostHog receives that span from the caller, which the caller says with this
# W3C tracestate entry, naming the span id it vouches for: a parent from any other trace context
# (a web request's ``traceparent`` header) is a span PostHog never gets, so the child is
# exported as a root, as for a local parent that is not an AI span. The entry names one span,
# so the processes further down, which inherit it, do not take it for their own parents.
AI_PARENT_TRACESTATE_KEY = "posthog"


def with_ai_parent_mark(span_context: SpanContext) -> SpanContext:
    """``span_context`` (an AI span's, exported to PostHog) marked as such for another process."""
    span_id = format(span_context.span_id, "016x")
    trace_state = span_context.trace_state
    if AI_PARENT_TRACESTATE_KEY in trace_state:
        trace_state = trace_state.update(AI_PARENT_TRACESTATE_KEY, span_id)
    else:
        trace_state = trace_state.add(AI_PARENT_TRACESTATE_KEY, span_id)
    return SpanContext(span_context.trace_id, span_context.span_id, span_context.is_remote,
                       span_context.trace_flags, trace_state)


def is_remote_ai_parent(parent: Optional[SpanContext]) -> bool:
    """Whether ``parent``, a span of another process, is one that process exports to PostHog."""
    try:
        return bool(parent is not None and parent.is_remote and parent.trace_state is not None
                    and parent.trace_state.get(AI_PARENT_TRACESTATE_KEY) == format(parent.span_id, "016x"))
    except Exception:
        return False
