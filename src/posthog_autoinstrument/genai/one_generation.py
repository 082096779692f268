"""The rule that makes one model call one generation, however many instrumented layers it
passes through (a framework over a provider SDK over HTTP), and whoever records them (us,
libraries that trace themselves, a recorder the application chose).

The calls in progress are found in the OpenTelemetry context: ours under ``ACTIVE_CALL``, one
another recorder records under ``RECORDED_ELSEWHERE``, and the span ids of our recent
provider-level calls in a bounded table. Everything here reads a call through what every call
offers (``layer``, ``ended``, ``delegated``, ``span``, ``set_attribute``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace

from ..recent import RecentKeys
from . import self_tracing, semconv
from .call_types import Layer

if TYPE_CHECKING:
    from .inference_call import InferenceCall

logger = logging.getLogger("posthog_autoinstrument")

# The instrumentation scope of our own spans (instrumentation/base.py names its tracers so).
SCOPE_NAME = "posthog_autoinstrument"

# Operations that are one model request, as opposed to steps around model requests.
MODEL_CALL_OPERATIONS = frozenset(
    {
        semconv.Operation.CHAT,
        semconv.Operation.TEXT_COMPLETION,
        semconv.Operation.GENERATE_CONTENT,
        semconv.Operation.EMBEDDINGS,
    }
)

# The model call of ours in progress in this context, so that one call is recorded once however
# many instrumented layers it passes through.
ACTIVE_CALL = otel_context.create_key("posthog_autoinstrument.active_call")
# A model call that another recorder, chosen by the application, records itself (PostHog's own
# SDK wrappers, its LangChain callback handler): set around the code that makes the request.
_RECORDED_ELSEWHERE_KEY = otel_context.create_key("posthog_autoinstrument.recorded_elsewhere")
# What recorders following the GenAI conventions keep in the context while their inference or
# embedding is in progress (``opentelemetry-util-genai``: CLIENT_INFERENCE_CONTEXT_KEY,
# CLIENT_EMBEDDING_CONTEXT_KEY). Plain strings, not ``create_key`` keys: anyone can read them.
GENAI_CALL_CONTEXT_KEYS = (
    "opentelemetry.genai.client.inference.context",
    "opentelemetry.genai.client.embedding.context",
)
# Span ids of our recent provider-level calls (bounded, see RecentKeys): another instrumentation's
# span of a model request made under one of them is a second view of the same request, even
# where that instrumentation carried only the ids across (logfire's span of a finished stream).
_MAX_PROVIDER_CALL_IDS = 4096
_provider_call_ids = RecentKeys(_MAX_PROVIDER_CALL_IDS)

# How other recorders mark a model request, besides the conventions' operation name:
# OpenLLMetry's ``llm.request.type`` and OpenInference's span kind (both read by PostHog's
# ingestion to make a generation or an embedding: rust/capture/src/otel/providers.rs).
_TRACELOOP_REQUEST_TYPE = "llm.request.type"
_TRACELOOP_MODEL_CALLS = frozenset({"chat", "completion", "embedding", "embeddings"})
_OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
_OPENINFERENCE_MODEL_CALLS = frozenset({"LLM", "EMBEDDING"})


def active_call() -> Optional[InferenceCall]:
    """The call of ours in progress in the current context, if any."""
    return otel_context.get_value(ACTIVE_CALL)  # type: ignore[return-value]  # only calls are kept there


def detach(token: object) -> None:
    """Undo an ``attach`` of a call (``None``: the attach failed, nothing to undo)."""
    if token is not None:
        try:
            otel_context.detach(token)  # type: ignore[arg-type]  # a token attach returned
        except Exception:
            logger.debug("posthog-autoinstrument: context detach failed", exc_info=True)


class RecordedElsewhere:
    """Stands in for a model call that another recorder records (see ``_RECORDED_ELSEWHERE_KEY``):
    attached around the code that makes the request, like an ``InferenceCall``, it makes every
    model call started inside unrecorded by us (``model_call_starts``) and keeps the spans of
    libraries that trace themselves from PostHog (``model_call_recorded_in``)."""

    ended = False
    delegated = False

    @staticmethod
    def attach(context: Optional[otel_context.Context] = None) -> object:
        try:
            return otel_context.attach(otel_context.set_value(_RECORDED_ELSEWHERE_KEY, True, context))
        except Exception:
            return None

    detach = staticmethod(detach)


RECORDED_ELSEWHERE = RecordedElsewhere()


def model_call_recorded_in(context: Optional[otel_context.Context]) -> bool:
    """Whether a span starting in ``context`` (the current one when None) is inside a model call
    that is recorded already: by one of our provider-level calls (a span of another
    instrumentation beneath it, such as logfire's or OpenInference's of the HTTP request, is
    the same request), or by a recorder the application chose. Never raises."""
    try:
        if otel_context.get_value(_RECORDED_ELSEWHERE_KEY, context):
            return True
        call: Any = otel_context.get_value(ACTIVE_CALL, context)
        if call is not None and call.layer == Layer.PROVIDER:
            return True
        return trace.get_current_span(context).get_span_context().span_id in _provider_call_ids
    except Exception:
        return False


def note_provider_call(span_id: int) -> None:
    """Remember the span id of a provider-level call of ours (see ``model_call_recorded_in``)."""
    _provider_call_ids.remember(span_id)


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
        outer: Any = otel_context.get_value(ACTIVE_CALL, parent)
        if outer is not None and not outer.ended:
            if layer == Layer.PROVIDER and outer.layer == Layer.PROVIDER:
                return False
            outer.delegated = True
        enclosing = trace.get_current_span(parent)
        if (outer is None or enclosing is not outer.span) and is_foreign_model_call(enclosing, parent):
            enclosing.set_attribute(semconv.DELEGATED, True)
        # Recorded by the app's own choice: what encloses it is a step all the same (above).
        return not otel_context.get_value(_RECORDED_ELSEWHERE_KEY, parent)
    except Exception:
        logger.debug("posthog-autoinstrument: could not check the enclosing model call", exc_info=True)
    return True


def name_enclosing_framework(call: Any, parent: Optional[otel_context.Context]) -> None:
    """A model call made by a framework's model call (LangChain's chat model through the openai
    SDK, Strands' ``chat`` through any model's client) is the generation: it names the framework,
    as PostHog's own LangChain handler's generations do ($ai_framework), so the generations of a
    framework can be found by it. ``call``: ours (an ``InferenceCall``) or the span of a library
    that traces itself (the anthropic SDK's), marked through ``set_attribute`` either way."""
    framework = _enclosing_framework(call, parent)
    if framework:
        call.set_attribute(semconv.FRAMEWORK, framework)


def _enclosing_framework(call: Any, parent: Optional[otel_context.Context]) -> Optional[str]:
    if parent is not None and not parent:
        return None  # an empty context (None: the current one): nothing encloses the call
    outer: Any = otel_context.get_value(ACTIVE_CALL, parent)
    if outer is not None and outer.layer == Layer.FRAMEWORK:
        # Only a provider call takes our framework adapter's name: a framework-level call inside
        # (CrewAI's LiteLLM call) is the framework that named itself, if any.
        if getattr(call, "layer", Layer.PROVIDER) != Layer.PROVIDER:
            return None
        attributes = getattr(outer.span, "attributes", None)
        return attributes.get(semconv.FRAMEWORK) if attributes else None
    # A framework that records its own spans (Strands' ``chat`` span around its model's call),
    # around our call at any layer (LiteLLM's, when its HTTP request is its own) or an SDK's span.
    enclosing = trace.get_current_span(parent)
    scope = getattr(enclosing, "instrumentation_scope", None)
    framework = self_tracing.framework_of(getattr(scope, "name", None))
    if framework and is_foreign_model_call(enclosing, parent):
        return framework
    return None


def is_model_call(attributes: Any) -> bool:
    """Whether a span with these attributes records one model request, by whichever convention."""
    if not attributes:
        return False
    get = attributes.get
    return (
        get(semconv.OPERATION_NAME) in MODEL_CALL_OPERATIONS
        or get(_TRACELOOP_REQUEST_TYPE) in _TRACELOOP_MODEL_CALLS
        or get(_OPENINFERENCE_SPAN_KIND) in _OPENINFERENCE_MODEL_CALLS
    )


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
