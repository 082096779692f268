"""Spans that other recorders made, rewritten into what our own adapters record.

Libraries that trace themselves (the ``anthropic`` SDK, Pydantic AI) register a completion
function for their instrumentation scope when their adapter is imported (see
``genai.self_tracing``); ``complete`` calls it, in place, on the export thread. A model call
another recorder made around one of ours is made a step in that recorder's conventions too.
Any other span is left alone. It never raises. ``content_from_events`` runs before privacy, for
SDKs whose content is in span events (see ``genai.self_tracing``).
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

from ..genai import self_tracing, semconv
from ..genai.self_tracing import NOT_AI

logger = logging.getLogger("posthog_autoinstrument")

__all__ = ["NOT_AI", "complete", "content_from_events", "may_rewrite"]


def content_from_events(attrs: dict, events: Sequence, scope_name: Optional[str]) -> Sequence:
    """For a scope whose SDK records content in span events: that content written into ``attrs``
    (a copy) under the conventions' keys, and the events the PostHog copy keeps (exceptions,
    which PostHog reads errors from; it ignores other span events). Other spans' events are
    returned as they are. Never raises."""
    read = self_tracing.event_reader_for(scope_name)
    if read is None:
        return events
    try:
        read(attrs, events)
    except Exception:
        logger.debug("posthog-instrument: could not read the events of a %s span", scope_name, exc_info=True)
    return tuple(event for event in events if event.name == "exception")


def may_rewrite(attrs: dict, scope_name: Optional[str]) -> bool:
    """Whether ``complete`` may change ``attrs`` or name the span; when not, it would return None
    and leave them as they are."""
    return bool(attrs.get(semconv.DELEGATED)) or self_tracing.completion_for(scope_name) is not None


def complete(attrs: dict, scope_name: Optional[str]):
    """Rewrite a span's attributes (``attrs``, a copy) into our adapters' dialect.

    Returns the span name our adapter would have used, ``NOT_AI`` for a span that must not be
    exported, or None to keep the span as it is.
    """
    if attrs.get(semconv.DELEGATED):
        _other_conventions_step(attrs)
    completion = self_tracing.completion_for(scope_name)
    if completion is None:
        return None
    try:
        return completion(attrs)
    except Exception:
        logger.debug("posthog-instrument: could not complete a %s span", scope_name, exc_info=True)
    return None


# -- another recorder's model call around ours ------------------------------------------------

# What makes PostHog's ingestion count a span of OpenLLMetry or OpenInference as a generation or
# an embedding, and the token counts it reads from them (rust/capture/src/otel/providers.rs,
# nodejs/src/ingestion/pipelines/ai/otel/middleware/{traceloop,openinference}.ts).
_OTHER_TOKEN_PREFIXES = ("llm.usage.", "llm.token_count.")
_OPENINFERENCE_SPAN_KIND = "openinference.span.kind"


def _other_conventions_step(attrs: dict) -> None:
    """A delegated model call (a step now, see genai.one_generation.model_call_starts) recorded in
    another convention: it must not stay a generation, nor carry tokens, under that one either
    (the PostHog dialect does the same for the GenAI conventions' keys)."""
    attrs.pop("llm.request.type", None)
    if attrs.get(_OPENINFERENCE_SPAN_KIND) in ("LLM", "EMBEDDING"):
        attrs[_OPENINFERENCE_SPAN_KIND] = "CHAIN"
    for key in [k for k in attrs if k.startswith(_OTHER_TOKEN_PREFIXES)]:
        del attrs[key]
