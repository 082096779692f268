"""The :class:`Recorder`: starts the calls and steps of one instrumented library, choosing how
each is recorded (see :mod:`.recording`) and applying the one-generation rule (see
:mod:`.one_generation`) as each starts."""

from __future__ import annotations

import logging
from types import FrameType
from typing import Any, Callable, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import DEFAULT_ON
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext, SpanKind, TraceFlags

from .. import otel_internals
from .attributes import request_attributes, span_name, step_attributes
from .call_types import InferenceRequest, Layer, RequestOrDescriber, StepRequest
from .caller_location import caller_location, find_caller
from .inference_call import InferenceCall, StepCall
from .one_generation import SCOPE_NAME, model_call_starts, name_enclosing_framework, note_provider_call
from .recording import DirectRecording, DirectSpan

logger = logging.getLogger("posthog_autoinstrument")


def _never() -> bool:
    return False


class Recorder:
    """Starts inference and embedding spans for one instrumented library.

    ``capture_content``: whether prompts and outputs are recorded at all. ``privacy_requested``:
    asked as each call starts, whether the code running now asked to keep its content out (the
    application's ``posthog_autoinstrument.context(privacy_mode=True)``, which the adapters'
    base hands in: the core does not know where identities come from).
    """

    def __init__(
        self,
        tracer: Any,
        capture_content: bool = True,
        privacy_requested: Callable[[], bool] = _never,
        direct_frameworks: bool = False,
    ):
        # An OpenTelemetry tracer: the SDK's fields (id_generator, resource, sampler) are read
        # where it is the SDK's; any other is recorded through its start_span.
        self.tracer = tracer
        self.capture_content = capture_content
        self.privacy_requested = privacy_requested
        # Whether framework-level calls may be direct too (see ``start``).
        self.direct_frameworks = direct_frameworks
        from .. import __version__

        self.scope = otel_internals.tracer_scope(tracer) or InstrumentationScope(SCOPE_NAME, __version__)
        try:
            random_ids = bool(self.tracer.id_generator.is_trace_id_random())
        except Exception:
            random_ids = False
        flags = TraceFlags.SAMPLED | (otel_internals.random_trace_id_flag() if random_ids else 0)
        self._root_flags = TraceFlags(flags)

    def _direct_processor(self) -> Any:
        """The processor to hand a direct call to, or None to record with an SDK span.

        Direct only when the spans of this tracer go to PostHog's processor alone, with the
        SDK's default sampler (so "sampled" means: the parent was, or there is none) and the
        tracer enabled: then nobody but that processor could ever see the span, and it takes
        a finished span as well from the export thread as from ``on_end``.
        """
        tracer = self.tracer
        processors = otel_internals.enabled_tracer_span_processors(tracer)
        if processors is None or len(processors) != 1 or getattr(tracer, "sampler", None) is not DEFAULT_ON:
            return None
        processor = processors[0]
        return processor if hasattr(processor, "on_direct_end") else None

    def _start_direct(
        self,
        request: RequestOrDescriber,
        parent: Optional[otel_context.Context],
        processor: Any,
        caller_frame: Optional[FrameType],
        layer: str = Layer.PROVIDER,
    ) -> Optional[InferenceCall]:
        # (An empty context, an app with no span of its own, has no parent to read.)
        parent_context: Optional[SpanContext] = (
            trace.get_current_span(parent).get_span_context() if parent else INVALID_SPAN_CONTEXT
        )
        ids = self.tracer.id_generator
        if parent_context is not None and parent_context.is_valid:
            if not parent_context.trace_flags.sampled:
                return None  # the caller records with an SDK span, which the sampler drops
            span_id = ids.generate_span_id()
            span = DirectSpan(parent_context.trace_id, span_id, parent_context.trace_flags, parent_context.trace_state)
        else:
            parent_context = None
            span_id = ids.generate_span_id()
            span = DirectSpan(ids.generate_trace_id(), span_id, self._root_flags)
        caller = find_caller(2, caller_frame)  # from start's caller up
        identity = processor.on_direct_start(span_id, parent)
        recording = DirectRecording(self, processor, request, span, span_id, parent_context, caller, identity)
        if layer == Layer.PROVIDER:
            note_provider_call(span_id)
        return InferenceCall(span, self.capture_content and not self.privacy_requested(), layer, recording)

    def start(
        self,
        request: RequestOrDescriber,
        parent: Optional[otel_context.Context] = None,
        caller_frame: Optional[FrameType] = None,
        arguments: Optional[dict] = None,
    ) -> Optional[InferenceCall]:
        """Start the span for one call, or return None when it must not (or cannot) be recorded.

        A provider-level call made inside another provider-level call is the same model request
        (an SDK built on another SDK): only the outer one is recorded. A call made inside a
        framework-level call is the generation, and the framework's span becomes a step (see
        ``model_call_starts``). ``parent`` is the context to nest under when it is not the
        current one (callbacks).

        ``request``: the call's description, or for a provider-level call a function that
        returns it from the call's arguments (a handler whose description reads nothing else): a
        direct call then runs it on the export thread with the arguments as sent, any other call
        at once with ``arguments``.

        ``caller_frame``: where to start looking for the app's code (``code.*`` attributes); by
        default, at the caller of ``start``.

        A framework-level call is recorded direct as well when the recorder was made with
        ``direct_frameworks``: for adapters that drive their calls only through the
        ``InferenceCall`` (never renaming the span or setting its status themselves), since a
        direct call's span exists only once it is built on the export thread.
        """
        try:
            if parent is None:  # read once: each check below looks in the same context
                parent = otel_context.get_current()
            layer = request.layer if isinstance(request, InferenceRequest) else Layer.PROVIDER
            if not model_call_starts(layer, parent):
                return None
            # (Framework adapters use their span's SDK API, unless they say otherwise.)
            if layer == Layer.PROVIDER or self.direct_frameworks:
                processor = self._direct_processor()
                if processor is not None:
                    call = self._start_direct(request, parent, processor, caller_frame, layer)
                    if call is not None:
                        name_enclosing_framework(call, parent)
                        return call
            described = request if isinstance(request, InferenceRequest) else request(arguments or {})
            attrs = request_attributes(described)
            caller_location(attrs, frame=caller_frame)
            span = self.tracer.start_span(span_name(described), context=parent, kind=SpanKind.CLIENT, attributes=attrs)
            if layer == Layer.PROVIDER and span.is_recording():  # (not a stand-in of another's span)
                note_provider_call(span.get_span_context().span_id)
            call = InferenceCall(span, self.capture_content and not self.privacy_requested(), described.layer)
            name_enclosing_framework(call, parent)
            return call
        except Exception:
            logger.debug("posthog-autoinstrument: failed to start span", exc_info=True)
            return None

    def start_step(self, step: StepRequest, parent: Optional[otel_context.Context] = None) -> Optional[StepCall]:
        """Start a span for a step of an agent run: an agent, a tool, a chain, a retriever."""
        try:
            name = f"{step.operation} {step.name}" if step.name else step.operation
            span = self.tracer.start_span(
                name, context=parent, kind=SpanKind.INTERNAL, attributes=step_attributes(step)
            )
            return StepCall(span, self.capture_content and not self.privacy_requested(), step.operation)
        except Exception:
            logger.debug("posthog-autoinstrument: failed to start step", exc_info=True)
            return None
