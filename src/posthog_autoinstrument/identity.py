"""Who an AI event belongs to, and the optional one-line API for what nothing else can know.

The person and session of a call come from the first source that names them:

1. an explicit :func:`context` block in the application;
2. PostHog's own SDK context (``posthog.new_context()`` / ``identify_context()`` /
   ``set_context_session()`` / ``tag()``), when the app uses the ``posthog`` package;
3. the ``X-POSTHOG-DISTINCT-ID`` / ``X-POSTHOG-SESSION-ID`` headers posthog-js sends, on the
   web request being served (see ``instrumentation/web.py``);
4. W3C baggage ``posthog.distinct_id`` / ``posthog.session_id`` from an upstream service;
5. the end user named in the LLM request itself (OpenAI ``user``, Anthropic ``metadata.user_id``);
6. ``POSTHOG_DISTINCT_ID``;
7. otherwise the event is anonymous and creates no person.

Sources 1 to 4 live in the context of the running code; :func:`capture` snapshots them when a
span starts (on the application's thread), and the export pipeline applies the snapshot to
the copy PostHog receives. Sources 5 to 7 are applied there too.
"""

from __future__ import annotations

import contextvars
import functools
import json
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional
from urllib.parse import unquote

__all__ = ["Identity", "capture", "context"]


@dataclass(frozen=True)
class Identity:
    """What the contexts around a span said about it. Immutable: shared by many spans."""

    distinct_id: Optional[str] = None
    distinct_id_source: Optional[str] = None
    session_id: Optional[str] = None
    properties: tuple = ()  # (key, value) pairs
    groups: tuple = ()  # (group type, key) pairs
    feature_flags: tuple = ()  # (flag key, variant) pairs
    privacy_mode: bool = False
    trace_name: Optional[str] = None


# Set by context() blocks; an Identity merged from every enclosing block.
_EXPLICIT: contextvars.ContextVar[Optional[Identity]] = contextvars.ContextVar("posthog_ai_explicit", default=None)
# Set for the duration of a web request that carried PostHog tracing headers or baggage.
_REQUEST: contextvars.ContextVar[Optional[Identity]] = contextvars.ContextVar("posthog_ai_request", default=None)
# Feature flags the app evaluated with the posthog SDK in this context: {distinct_id: ((key, variant), ...)}.
_FLAGS: contextvars.ContextVar[Optional[dict]] = contextvars.ContextVar("posthog_ai_flags", default=None)
# Whether anything in this process ever set one of the three above: until then a call's snapshot
# has only the posthog SDK and baggage to ask (see capture).
_ever_set = False


def _setting_a_source() -> None:
    """Called wherever one of the three is set: snapshots read them from then on."""
    global _ever_set
    _ever_set = True


# context() blocks entered in this context: (block, identity token, trace span and its token).
_ENTERED: contextvars.ContextVar[tuple] = contextvars.ContextVar("posthog_ai_entered", default=())
# Bound on the people whose flag variants one context remembers.
_MAX_FLAG_PEOPLE = 1000

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_ID_LENGTH = 1000


def clean_id(value: Any) -> Optional[str]:
    """A distinct or session id from an untrusted source: a short printable string, or None."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    return _CONTROL_CHARS.sub("", value).strip()[:_MAX_ID_LENGTH] or None


# -- sources -------------------------------------------------------------------------------


def _posthog_sdk() -> Optional[Identity]:
    contexts = sys.modules.get("posthog.contexts")
    if contexts is None:  # the app does not use the posthog SDK: nothing to ask
        return None
    try:
        distinct_id = clean_id(contexts.get_context_distinct_id())
        session_id = clean_id(contexts.get_context_session_id())
        tags = contexts.get_tags() or {}
    except Exception:
        return None
    if not (distinct_id or session_id or tags):
        return None
    return Identity(distinct_id, "posthog_context" if distinct_id else None, session_id, tuple(tags.items()))


def _baggage(context: Any = None) -> Optional[Identity]:
    baggage = sys.modules.get("opentelemetry.baggage")
    if baggage is None or (context is not None and not context):
        return None  # nothing in this process can have set baggage, or this context is empty
    try:
        entries = baggage.get_all(context)
    except Exception:
        return None
    if not entries:
        return None
    distinct_id = clean_id(entries.get("posthog.distinct_id"))
    session_id = clean_id(entries.get("posthog.session_id"))
    if not (distinct_id or session_id):
        return None
    return Identity(distinct_id, "baggage" if distinct_id else None, session_id)


def request_identity(get_header: Callable[[str], Any]) -> Optional[Identity]:
    """Identity from an incoming request's headers: PostHog tracing headers, then baggage."""
    distinct_id = clean_id(get_header("x-posthog-distinct-id"))
    session_id = clean_id(get_header("x-posthog-session-id"))
    source = "tracing_headers" if distinct_id else None
    if not (distinct_id and session_id):
        bag = parse_baggage(get_header("baggage"))
        if not distinct_id and bag.get("posthog.distinct_id"):
            distinct_id, source = clean_id(bag["posthog.distinct_id"]), "baggage"
        session_id = session_id or clean_id(bag.get("posthog.session_id"))
    if not (distinct_id or session_id):
        return None
    return Identity(distinct_id, source, session_id)


def parse_baggage(header: Any) -> dict:
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    if not isinstance(header, str) or "posthog." not in header:
        return {}
    entries = {}
    for member in header.split(","):
        key, sep, value = member.split(";", 1)[0].partition("=")
        if sep:
            entries[unquote(key.strip())] = unquote(value.strip())
    return entries


def enter_request(identity: Optional[Identity]):
    """Serve one web request as ``identity``; flag variants evaluated while serving it stay with it."""
    _setting_a_source()
    return _REQUEST.set(identity), _FLAGS.set(None)


def exit_request(tokens) -> None:
    if tokens is None:
        return
    request_token, flags_token = tokens
    for var, token in ((_REQUEST, request_token), (_FLAGS, flags_token)):
        try:
            var.reset(token)
        except ValueError:  # reset from another context (a framework moved the request across threads)
            var.set(None)


def record_feature_flag(distinct_id: Any, key: Any, variant: Any) -> None:
    """Remember a flag the app evaluated for a person, for that person's AI events in this context."""
    distinct_id, key = clean_id(distinct_id), clean_id(key)
    if not distinct_id or not key or variant is None:
        return
    flags = dict(_FLAGS.get() or {})  # copy on write: sibling tasks must not see each other's flags
    if distinct_id not in flags and len(flags) >= _MAX_FLAG_PEOPLE:
        flags.pop(next(iter(flags)))
    current = dict(flags.get(distinct_id, ()))
    current[key] = variant
    flags[distinct_id] = tuple(current.items())
    _setting_a_source()
    _FLAGS.set(flags)


# -- the snapshot taken when a span starts ---------------------------------------------------


def capture(context: Any = None) -> Optional[Identity]:
    """Merge the context sources (1 to 4) in precedence order; None when none says anything.
    ``context``: the OpenTelemetry context to read baggage from, when the caller has it at hand
    (the current one otherwise)."""
    if not _ever_set and context is not None and not context and "posthog.contexts" not in sys.modules:
        return None  # the common case, a script or worker with none of them: one check per call
    explicit = _EXPLICIT.get()
    sdk = _posthog_sdk()
    request = _REQUEST.get()
    bag = _baggage(context)
    flags = _FLAGS.get()
    if explicit is None and sdk is None and request is None and bag is None and not flags:
        return None
    sources = [s for s in (explicit, sdk, request, bag) if s is not None]
    distinct = next((s for s in sources if s.distinct_id), None)
    distinct_id = distinct.distinct_id if distinct else None
    session_id = next((s.session_id for s in sources if s.session_id), None)
    properties: dict = {}
    groups: dict = {}
    for source in reversed(sources):  # higher precedence applied last, so it wins
        properties.update(source.properties)
        groups.update(source.groups)
    evaluated = dict((flags or {}).get(distinct_id, ())) if distinct_id else {}
    if explicit is not None:
        evaluated.update(explicit.feature_flags)
    return Identity(
        distinct_id=distinct_id,
        distinct_id_source=distinct.distinct_id_source if distinct else None,
        session_id=session_id,
        properties=tuple(properties.items()),
        groups=tuple(groups.items()),
        feature_flags=tuple(evaluated.items()),
        privacy_mode=bool(explicit and explicit.privacy_mode),
        trace_name=explicit.trace_name if explicit else None,
    )


def privacy_requested() -> bool:
    """Whether the code running now is inside ``context(privacy_mode=True)``."""
    if not _ever_set:
        return False
    explicit = _EXPLICIT.get()
    return bool(explicit and explicit.privacy_mode)


# -- the public API --------------------------------------------------------------------------


class context:
    """Attach a person, session, properties, groups, flags or a trace name to AI events.

    Use as a context manager or a decorator (sync or async). Blocks nest: inner values win,
    properties and groups merge. Thread- and task-safe (``contextvars``)::

        with posthog_autoinstrument.context(distinct_id=user.id, properties={"plan": "pro"},
                                            trace_name="summarize-ticket"):
            summarize(ticket)

    ``trace_name`` starts a trace for the unit of work: every AI call inside it belongs to one
    PostHog trace with that name. ``privacy_mode=True`` keeps prompts and outputs of the calls
    inside it out of the export. Nothing here raises into the application.
    """

    def __init__(
        self,
        distinct_id: Optional[str] = None,
        *,
        session_id: Optional[str] = None,
        properties: Optional[Mapping[str, Any]] = None,
        groups: Optional[Mapping[str, str]] = None,
        feature_flags: Optional[Mapping[str, Any]] = None,
        trace_name: Optional[str] = None,
        privacy_mode: Optional[bool] = None,
    ):
        self._values = dict(
            distinct_id=distinct_id,
            session_id=session_id,
            properties=properties,
            groups=groups,
            feature_flags=feature_flags,
            trace_name=trace_name,
            privacy_mode=privacy_mode,
        )

    def _merged(self) -> Identity:
        outer = _EXPLICIT.get() or Identity()
        v = self._values
        distinct_id = clean_id(v["distinct_id"])
        return Identity(
            distinct_id=distinct_id or outer.distinct_id,
            distinct_id_source="context" if (distinct_id or outer.distinct_id) else None,
            session_id=clean_id(v["session_id"]) or outer.session_id,
            properties=tuple({**dict(outer.properties), **dict(v["properties"] or {})}.items()),
            groups=tuple({**dict(outer.groups), **dict(v["groups"] or {})}.items()),
            feature_flags=tuple({**dict(outer.feature_flags), **dict(v["feature_flags"] or {})}.items()),
            privacy_mode=outer.privacy_mode if v["privacy_mode"] is None else bool(v["privacy_mode"]),
            trace_name=v["trace_name"] or outer.trace_name,
        )

    def __enter__(self) -> "context":
        _setting_a_source()
        try:
            token = _EXPLICIT.set(self._merged())
            span_token = _start_trace(self._values["trace_name"])
            # Tokens live in the context, not on this object: one context() instance may be
            # entered by several threads or tasks at once.
            _ENTERED.set(_ENTERED.get() + ((self, token, span_token),))
        except Exception:
            pass
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        entered = _ENTERED.get()
        for index in range(len(entered) - 1, -1, -1):
            if entered[index][0] is self:
                _, token, span_token = entered[index]
                _ENTERED.set(entered[:index] + entered[index + 1 :])
                break
        else:
            return
        try:
            _end_trace(span_token, exc)
            _EXPLICIT.reset(token)
        except Exception:
            pass

    async def __aenter__(self) -> "context":
        return self.__enter__()

    async def __aexit__(self, exc_type, exc, tb) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, function: Callable) -> Callable:
        import inspect  # only decorators need it; it is slow to import at start-up

        values = self._values
        if inspect.isgeneratorfunction(function):

            @functools.wraps(function)
            def run_generator(*args, **kwargs):
                # The generator's body runs in a context of its own, entered for each step, so the
                # block applies while it runs and never leaks to the code iterating it.
                scope = contextvars.copy_context()
                scope.run(context(**values).__enter__)
                generator = scope.run(function, *args, **kwargs)
                try:
                    sent = None
                    while True:
                        try:
                            item = scope.run(generator.send, sent)
                        except StopIteration as stop:
                            return stop.value
                        sent = yield item
                finally:
                    generator.close()
                    scope.run(_exit_all)

            return run_generator
        if inspect.isasyncgenfunction(function):

            @functools.wraps(function)
            async def run_async_generator(*args, **kwargs):
                # Identity only (no trace span): each step runs inside the block.
                step_values = dict(values, trace_name=None)
                generator = function(*args, **kwargs)
                try:
                    sent = None
                    while True:
                        with context(**step_values):
                            try:
                                item = await generator.asend(sent)
                            except StopAsyncIteration:
                                return
                        sent = yield item
                finally:
                    await generator.aclose()

            return run_async_generator
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args, **kwargs):
                with context(**values):
                    return await function(*args, **kwargs)

            return run_async

        @functools.wraps(function)
        def run(*args, **kwargs):
            with context(**values):
                return function(*args, **kwargs)

        return run


def _exit_all() -> None:
    for entered in reversed(_ENTERED.get()):
        entered[0].__exit__(None, None, None)


def _start_trace(name: Optional[str]):
    """A root span for a named unit of work, so its AI calls form one trace in PostHog."""
    if not name:
        return None
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    from . import __version__
    from .genai import semconv

    tracer = trace.get_tracer("posthog_autoinstrument", __version__)
    span = tracer.start_span(
        str(name),
        attributes={
            semconv.OPERATION_NAME: semconv.Operation.INVOKE_WORKFLOW,
            semconv.WORKFLOW_NAME: str(name),
        },
    )
    return span, otel_context.attach(trace.set_span_in_context(span))


def _end_trace(started, exc: Optional[BaseException]) -> None:
    if started is None:
        return
    from opentelemetry import context as otel_context
    from opentelemetry.trace import Status, StatusCode

    span, token = started
    if exc is not None:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
    try:
        otel_context.detach(token)
    finally:
        span.end()


def properties_json(value: Any) -> Any:
    """An event property value as an OpenTelemetry attribute (primitives kept, the rest JSON)."""
    if isinstance(value, (str, bool, int, float)):
        return value
    try:
        return json.dumps(value, separators=(",", ":"), default=str)
    except Exception:
        return str(value)
