"""Every place we read OpenTelemetry's internals, in one module.

Each probe reads something the SDK or API does not promise (an underscore name, or a name only
some versions have), says why we need it and on which versions it was checked, and falls back
to an answer that is safe when the internals are not what we expect: recording through the
SDK's public API (slower, never wrong), or doing nothing. None of them raises.
tests/unit/test_otel_internals.py checks each against the installed SDK, so an upgrade that
changes one fails there rather than silently taking the fallback.

Checked on opentelemetry-api / opentelemetry-sdk 1.45.2 (tests/constraints.txt).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence


def tracer_span_processors(tracer: Any) -> Optional[Sequence[Any]]:
    """The span processors an SDK ``Tracer`` hands its spans to; None when unknown.

    Why: a call is recorded *direct* (its span built on the export thread, see
    ``genai.recording``) only when PostHog's processor is the only one that could see the span.
    ``Tracer.span_processor`` is the provider's ``SynchronousMultiSpanProcessor`` (or the
    concurrent one), which keeps its list in ``_span_processors`` (a tuple).
    Fallback: None, and the call is recorded through an SDK span.
    """
    try:
        processors = tracer.span_processor._span_processors
    except Exception:
        return None
    return processors if isinstance(processors, (tuple, list)) else None


def tracer_is_enabled(tracer: Any) -> bool:
    """Whether an SDK ``Tracer`` records spans at all (``Tracer._is_enabled()``: False when the
    provider's tracer configurator, an experimental SDK feature, disables it); False when unknown.

    Why: a disabled tracer starts non-recording spans; a direct call would be recorded anyway.
    Fallback: False, and the call goes through the SDK's ``start_span``, which knows.
    """
    try:
        return bool(tracer._is_enabled())
    except Exception:
        return False


def tracer_scope(tracer: Any) -> Optional[Any]:
    """The ``InstrumentationScope`` an SDK ``Tracer`` gives its spans (``_instrumentation_scope``).

    Why: a direct call's span must carry the same scope an SDK span of that tracer would.
    Fallback: None, and the caller makes the scope from our own name and version.
    """
    scope = getattr(tracer, "_instrumentation_scope", None)
    return scope if hasattr(scope, "name") else None


def random_trace_id_flag() -> int:
    """The W3C ``random`` trace flag (``TraceFlags.RANDOM_TRACE_ID``), or 0.

    Why: a direct call that starts a trace sets the flags the SDK would set on a root span;
    older APIs have no such flag (and do not set it).
    """
    from opentelemetry.trace import TraceFlags

    flag = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
    return flag if isinstance(flag, int) else 0
