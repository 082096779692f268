"""A trace carried to another process (an MCP tool call, in the request's ``_meta``).

That process's spans have a remote parent. The export keeps a remote parent only when PostHog
receives that span from the caller, which the caller says with this W3C tracestate entry, naming
the span id it vouches for: a parent from any other trace context (a web request's
``traceparent`` header) is a span PostHog never gets, so the child is exported as a root, as for
a local parent that is not an AI span. The entry names one span, so the processes further down,
which inherit it, do not take it for their own parents.
"""

from __future__ import annotations

from typing import Optional

from opentelemetry.trace import SpanContext

AI_PARENT_TRACESTATE_KEY = "posthog"


def with_ai_parent_mark(span_context: SpanContext) -> SpanContext:
    """``span_context`` (an AI span's, exported to PostHog) marked as such for another process."""
    span_id = format(span_context.span_id, "016x")
    trace_state = span_context.trace_state
    if AI_PARENT_TRACESTATE_KEY in trace_state:
        trace_state = trace_state.update(AI_PARENT_TRACESTATE_KEY, span_id)
    else:
        trace_state = trace_state.add(AI_PARENT_TRACESTATE_KEY, span_id)
    return SpanContext(
        span_context.trace_id, span_context.span_id, span_context.is_remote, span_context.trace_flags, trace_state
    )


def is_remote_ai_parent(parent: Optional[SpanContext]) -> bool:
    """Whether ``parent``, a span of another process, is one that process exports to PostHog."""
    try:
        return bool(
            parent is not None
            and parent.is_remote
            and parent.trace_state is not None
            and parent.trace_state.get(AI_PARENT_TRACESTATE_KEY) == format(parent.span_id, "016x")
        )
    except Exception:
        return False
