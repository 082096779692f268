"""One model call in flight (:class:`InferenceCall`) and one step of an agent run
(:class:`StepCall`), as adapters drive them: ``start -> set_input -> set_response -> end | fail``.
Nothing here ever raises into the application: a failure to record is logged at debug level
and the call goes on unrecorded."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional, Sequence, Union

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from . import semconv
from .attributes import exception_type, http_status_code, put_usage
from .call_types import Layer, Usage
from .messages import to_json
from .one_generation import ACTIVE_CALL, detach
from .plain_span import PlainSpan
from .recording import SDK_SPAN, DirectRecording, SpanRecording, run_pending_translations

logger = logging.getLogger("posthog_autoinstrument")

# The context key under which the OpenTelemetry API keeps the current span, as the API itself
# sets it, so that attaching a call makes one new context instead of two.
_CURRENT_SPAN_KEY = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, otel_context.Context())))


class InferenceCall:
    """One model call in flight. Every method is safe to call in any order, any number of times.

    Recorded through its SDK span (``span``) or *direct*, built on the export thread: the
    ``recording`` decides (see :mod:`.recording`); the call gathers the attributes either way.
    """

    __slots__ = (
        "span",
        "capture_content",
        "layer",
        "delegated",
        "recording",
        "_attrs",
        "_ended",
        "_started",
        "_first_chunk_seen",
    )

    def __init__(
        self,
        span: trace.Span,
        capture_content: bool,
        layer: str = Layer.PROVIDER,
        recording: Union[SpanRecording, DirectRecording] = SDK_SPAN,
    ):
        self.span = span
        self.capture_content = capture_content
        self.layer = layer
        self.recording = recording
        # Set when a lower layer recorded this call's model request itself: this span then
        # stays in the trace as a step, and the lower layer's span is the generation.
        self.delegated = False
        self._attrs: dict = {}
        self._ended = False
        self._started = time.perf_counter()
        self._first_chunk_seen = False

    def later(self, record: Callable[..., Any], *args: Any) -> None:
        """Run ``record(*args)`` (translation that only reads its arguments and sets this call's
        attributes) on the export thread when the span is built there, else now. The arguments
        must not change after the call: pass copies of what the app may still mutate."""
        self.recording.later(self, record, args)

    # -- the request as sent (see DirectRecording) -----------------------------------------
    @property
    def deferred(self) -> bool:
        """Whether what :meth:`later` is given runs on the export thread (a direct call)."""
        return isinstance(self.recording, DirectRecording)

    def expect_request_body(self, arguments: dict) -> None:
        """Translate this call (on the export thread) from the JSON body its SDK sends, handed
        over by :meth:`request_body`; ``arguments``, the call's keyword arguments themselves,
        stand in if none comes (the call failed before it was sent): the caller must call
        :meth:`app_resumes` before the app regains control, which copies them if still needed."""
        self.recording.expect_request_body(arguments)

    def app_resumes(self) -> None:
        """The SDK's call returned or raised: the app may change its arguments from now on."""
        try:
            self.recording.app_resumes()
        except Exception:
            logger.debug("posthog-autoinstrument: arguments not kept", exc_info=True)

    def request_body(self, body: Any) -> None:
        """The body of the HTTP request the SDK built for this call (the first, if it retries)."""
        self.recording.request_body(body)

    def arguments_as_sent(self) -> Optional[dict]:
        """The call's arguments as sent: its parsed JSON body, else the copy of its arguments.
        Export thread only; None when not expected (see :meth:`expect_request_body`)."""
        return self.recording.arguments_as_sent()

    def response_body(self, body: Any) -> None:
        """The body of the HTTP response the SDK parsed this call's result from (the first one).
        A queued call then keeps these bytes, which collections never look at, for its
        translation instead of the SDK's result objects."""
        self.recording.response_body(body)

    def received_body(self) -> Optional[bytes]:
        """The response body handed over by :meth:`response_body`; None if none was."""
        return self.recording.received_body()

    # -- context -----------------------------------------------------------------------
    def attach(self, context: Optional[otel_context.Context] = None) -> object:
        """Make the span current, so work done inside the call (HTTP spans) nests under it.
        ``context``: the current context, when the caller has just read it."""
        try:
            values = dict(otel_context.get_current() if context is None else context)
            values[_CURRENT_SPAN_KEY] = self.span
            values[ACTIVE_CALL] = self
            return otel_context.attach(otel_context.Context(values))
        except Exception:
            return None

    detach = staticmethod(detach)

    # -- content -----------------------------------------------------------------------
    def set_input(
        self,
        messages: Optional[list] = None,
        system_instructions: Optional[list] = None,
        tool_definitions: Optional[list] = None,
    ) -> None:
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
    def set_response(
        self,
        *,
        model: Optional[str] = None,
        response_id: Optional[str] = None,
        finish_reasons: Optional[Sequence[Optional[str]]] = None,
        usage: Optional[Usage] = None,
        attributes: Optional[dict] = None,
    ) -> None:
        attrs = self._attrs
        if model:
            attrs[semconv.RESPONSE_MODEL] = str(model)
        if response_id:
            attrs[semconv.RESPONSE_ID] = str(response_id)
        if finish_reasons:
            attrs[semconv.RESPONSE_FINISH_REASONS] = list(map(str, filter(None, finish_reasons)))
        if usage is not None:
            put_usage(attrs, usage)
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
            self.recording.end(self)
        except Exception:
            logger.debug("posthog-autoinstrument: failed to end span", exc_info=True)

    def fail(self, exc: BaseException, status_code: Optional[int] = None) -> None:
        """End the call as failed. The application's exception itself is never touched.

        ``status_code``: the HTTP status where the adapter knows it better than the exception's
        ``status_code`` attribute (botocore keeps it in the error response).
        """
        if self._ended:
            return
        try:
            self._attrs[semconv.ERROR_TYPE] = exception_type(exc)
            status_code = http_status_code(exc, status_code)
            if status_code is not None:
                self._attrs[semconv.HTTP_RESPONSE_STATUS_CODE] = status_code
            self.recording.fail(self, exc, Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        except Exception:
            logger.debug("posthog-autoinstrument: failed to record error", exc_info=True)
        self.end()

    def build_span(self) -> PlainSpan:
        """The finished span of a direct call. Export thread only, once the call has ended."""
        recording = self.recording
        if not isinstance(recording, DirectRecording):
            raise TypeError("only a direct call builds its own span")
        return recording.build_span(self)


def translate_pending(calls: Sequence[InferenceCall]) -> None:
    """Run what a batch of ended direct calls left for later (``InferenceCall.later``) before
    their spans are built, all calls' first translations, then their second ones (see
    ``recording.run_pending_translations``). Export thread only."""
    run_pending_translations([call.recording for call in calls if isinstance(call.recording, DirectRecording)])


class StepCall(InferenceCall):
    """A step in flight. Its input and output are recorded as JSON state (content: subject to privacy)."""

    __slots__ = ("operation",)

    def __init__(self, span: trace.Span, capture_content: bool, operation: str):
        super().__init__(span, capture_content, Layer.FRAMEWORK)
        self.operation = operation

    def attach(self, context: Optional[otel_context.Context] = None) -> object:
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
