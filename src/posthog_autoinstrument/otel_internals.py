"""Every place we read OpenTelemetry's internals, in one module.

Each probe reads something the SDK or API does not promise (an underscore name, or a name only
some versions have), says why we need it and on which versions it was checked, and falls back
to an answer that is safe when the internals are not what we expect: recording through the
SDK's public API (slower, never wrong), or doing nothing. None of them raises.
tests/unit/test_otel_internals.py checks each against the installed SDK, so an upgrade that
changes one fails there rather than silently taking the fallback.

Checked on opentelemetry-api / opentelemetry-sdk 1.45.2 (tests/constraints.txt, where the tests run)
and read in the sources of 1.30.0 (the oldest release pyproject.toml allows) with
opentelemetry-instrumentation 0.51b0; each probe says where 1.30.0 differs.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence


def enabled_tracer_span_processors(tracer: Any) -> Optional[Sequence[Any]]:
    """The span processors an SDK ``Tracer`` hands its spans to, if it records spans at all;
    None when it does not, or when either is unknown. One probe for both: the Recorder asks at
    each call.

    Why: a call is recorded *direct* (its span built on the export thread, see
    ``genai.recording``) only when PostHog's processor is the only one that could see the span,
    and only when the tracer is enabled (a disabled one starts non-recording spans).
    ``Tracer.span_processor`` is the provider's ``SynchronousMultiSpanProcessor`` (or the
    concurrent one), which keeps its list in ``_span_processors`` (a tuple); ``_is_enabled()``
    is False when the provider's tracer configurator, an experimental SDK feature, disables it.
    Fallback: None, and the call is recorded through an SDK span, whose ``start_span`` knows.
    1.30.0 has ``_span_processors`` but no ``_is_enabled``: there every call is recorded
    through an SDK span.
    """
    try:
        processors = tracer.span_processor._span_processors
        if not tracer._is_enabled():
            return None
    except Exception:
        return None
    return processors if isinstance(processors, (tuple, list)) else None


def tracer_scope(tracer: Any) -> Optional[Any]:
    """The ``InstrumentationScope`` an SDK ``Tracer`` gives its spans (``_instrumentation_scope``).

    Why: a direct call's span must carry the same scope an SDK span of that tracer would.
    Fallback: None, and the caller makes the scope from our own name and version. (The same in 1.30.0.)
    """
    scope = getattr(tracer, "_instrumentation_scope", None)
    return scope if hasattr(scope, "name") else None


def random_trace_id_flag() -> int:
    """The W3C ``random`` trace flag (``TraceFlags.RANDOM_TRACE_ID``), or 0.

    Why: a direct call that starts a trace sets the flags the SDK would set on a root span;
    older APIs (1.30.0) have no such flag, and do not set it.
    """
    from opentelemetry.trace import TraceFlags

    flag = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
    return flag if isinstance(flag, int) else 0


def provider_span_processors(provider: Any) -> Sequence[Any]:
    """The span processors an SDK ``TracerProvider`` has (``_active_span_processor``'s
    ``_span_processors``); empty when unknown.

    Why: spans made through our provider while the application has its own are handed to the
    application's processors (``lifecycle._ForwardTo``), read at each span so that processors
    it adds later count too. Fallback: none, and the app's processors miss those spans. (The
    same in 1.30.0.)
    """
    active = getattr(provider, "_active_span_processor", None)
    processors = getattr(active, "_span_processors", ())
    return processors if isinstance(processors, (tuple, list)) else ()


def allow_tracer_provider_override() -> bool:
    """Let the next ``trace.set_tracer_provider`` replace the global provider (the API's
    ``_TRACER_PROVIDER_SET_ONCE``, a ``Once`` with ``_lock`` and ``_done``). Returns whether it could.

    Why: the provider we installed ourselves must give way to the application's, as if we had
    never set one: no "Overriding of current TracerProvider is not allowed", and
    ``get_tracer_provider()`` returns what the app set. Fallback: the API refuses the app's
    provider, which still receives our spans (``lifecycle``). (The same in 1.30.0.)
    """
    from opentelemetry import trace

    once = getattr(trace, "_TRACER_PROVIDER_SET_ONCE", None)
    lock = getattr(once, "_lock", None)
    if once is None or lock is None or not isinstance(getattr(once, "_done", None), bool):
        return False
    with lock:
        once._done = False
    return True


def follow_tracer(tracer: Any, replacement: Any) -> bool:
    """Make an SDK ``Tracer`` start its spans as ``replacement`` (another provider's tracer of the
    same class) does, by taking over its state (the SDK keeps it all in the instance's fields:
    resource, sampler, processors, scope). Returns whether it could.

    Why: libraries keep the tracers they got at import; when the app installs its own provider
    later, those must follow it (``configurator.StartupTracerProvider.adopt``). Fallback: they
    keep recording through our provider, which forwards to the app's processors. (The same in
    1.30.0.)
    """
    if type(replacement) is not type(tracer) or not hasattr(replacement, "__dict__"):
        return False
    tracer.__dict__.update(replacement.__dict__)
    return True


def forget_cached_tracers(provider: Any) -> None:
    """Empty an SDK ``TracerProvider``'s cache of the tracers it made (``_tracers``, under
    ``_tracers_lock``; recent SDKs), where it has one.

    Why: the SDK walks that cache at fork to reset the tracers' resource; the tracers our
    provider handed out follow the app's provider from then on and must not be reset to ours.
    Fallback: nothing to empty (1.30.0 has no such cache).
    """
    cached = getattr(provider, "_tracers", None)
    lock = getattr(provider, "_tracers_lock", None)
    if isinstance(cached, dict) and lock is not None:
        with lock:
            cached.clear()


def sdk_configurator() -> Optional[Any]:
    """The SDK's configurator class (``opentelemetry.sdk._configuration._OTelSDKConfigurator``),
    which sets up export from the ``OTEL_*`` variables as ``opentelemetry-instrument`` does; None
    when this SDK has none.

    Why: an application that configures OpenTelemetry only through ``OTEL_*`` variables gets
    that set-up under our launcher too. Fallback: None, and the caller says its settings could
    not be applied. (The same in 1.30.0.)
    """
    try:
        from opentelemetry.sdk._configuration import _OTelSDKConfigurator
    except Exception:
        return None
    return _OTelSDKConfigurator


def instrumentation_suppression_keys() -> tuple:
    """The context keys ``suppress_instrumentation()`` sets, found by entering it in an empty
    context (the instrumentation package names them ``_SUPPRESS_INSTRUMENTATION_KEY`` and
    ``_SUPPRESS_INSTRUMENTATION_KEY_PLAIN``).

    Why: every instrumented call checks them, and reading two keys is several times cheaper than
    ``is_instrumentation_enabled()``. Found through the public function rather than imported,
    so that a version that renames them still works (0.51b0 has the same two). Fallback: none,
    and nothing is suppressed.
    """
    try:
        from opentelemetry import context as otel_context
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        token = otel_context.attach(otel_context.Context())
        try:
            with suppress_instrumentation():
                current = otel_context.get_current()
                return tuple(key for key in current if current.get(key) is True)
        finally:
            otel_context.detach(token)
    except Exception:
        return ()
