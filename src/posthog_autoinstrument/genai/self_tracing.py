"""Where SDKs that record their own spans plug into the export pipeline.

Some libraries trace themselves with OpenTelemetry (the ``anthropic`` SDK, Pydantic AI). Their
spans reach our span processor like ours do, but say things their own way; the PostHog copy of
such a span must say what our adapters record. The adapter for such a library registers, when
it is imported, the instrumentation scope its spans carry and a completion function; the
export pipeline looks the scope up here for each span and calls the function. The export
thread therefore never imports adapter code: a library must be imported (which loads its
adapter) before it can record a span.

A completion function takes the span's attributes (a copy, after privacy has removed content)
and rewrites them in place. It returns the span name our adapter would have used, ``NOT_AI``
for a span that must not reach PostHog, or None to keep the span's name. It may raise: the
pipeline then keeps whatever it had rewritten and logs the failure at debug level.

Two more things a registration may say, for SDKs that record differently:

* ``read_events``: the SDK records content in span events (Strands Agents, under the GenAI
  conventions' older event style), which PostHog ignores. The function takes the span's
  attributes (a copy) and its events, and writes the content into the attributes under the
  conventions' keys. It runs *before* privacy, so privacy removes that content like any other;
  the span's events, other than exceptions, are then left out of the PostHog copy.
* ``every_span_ai``: every span of the scope is an AI span, though the SDK sets its attributes
  only after starting it. The span processor then counts it as one from its start, so that
  the spans started inside it keep it as their parent.
* ``framework``: the scope is a framework's; a provider call of ours made inside one of its
  model-call spans (the generation) names it in ``$ai_framework``, as under our own framework
  adapters.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

# Returned by a completion function for a span that is not an AI event (an SDK's count_tokens,
# files or models call): PostHog should not receive it.
NOT_AI = object()

Completion = Callable[[dict], Any]

EventReader = Callable[[dict, Sequence[Any]], None]

_exact: dict = {}
_with_sub_scopes: dict = {}
_event_readers: dict = {}
_every_span_ai: set = set()
_frameworks: dict = {}


def register(
    scope: str,
    complete: Completion,
    sub_scopes: bool = False,
    read_events: Optional[EventReader] = None,
    every_span_ai: bool = False,
    framework: Optional[str] = None,
) -> None:
    """Complete the spans of instrumentation scope ``scope`` with ``complete``; with
    ``sub_scopes``, also those of ``scope.<anything>`` (an SDK's platform clients).
    ``read_events``, ``every_span_ai`` and ``framework`` (for ``scope`` itself): see the module
    docstring."""
    (_with_sub_scopes if sub_scopes else _exact)[scope] = complete
    _resolved.clear()
    if read_events is not None:
        _event_readers[scope] = read_events
    if every_span_ai:
        _every_span_ai.add(scope)
    if framework:
        _frameworks[scope] = framework


def event_reader_for(scope: Optional[str]) -> Optional[EventReader]:
    """The function that reads content from the span events of ``scope``, if any."""
    return _event_readers.get(scope) if scope else None


def every_span_ai(scope: Optional[str]) -> bool:
    """Whether every span of ``scope`` is an AI span, whatever its attributes at its start."""
    return scope in _every_span_ai


def completion_for(scope: Optional[str]) -> Optional[Completion]:
    """The completion function registered for spans of ``scope``, if any."""
    if not scope:
        return None
    # Asked for every exported span, mostly of the same few scopes (ours among them): the
    # answer is remembered per scope until the next registration, rather than looking through
    # the sub-scope registrations each time.
    if scope in _resolved:
        return _resolved[scope]
    found = _exact.get(scope) or _with_sub_scopes.get(scope)
    if found is None:
        for registered, complete in list(_with_sub_scopes.items()):
            if scope.startswith(registered + "."):
                found = complete
                break
    if len(_resolved) >= 256:
        _resolved.clear()
    _resolved[scope] = found
    return found


_resolved: dict = {}  # scope -> its completion function, or None


def framework_of(scope: Optional[str]) -> Optional[str]:
    """The framework whose spans carry instrumentation scope ``scope``, if registered as one."""
    return _frameworks.get(scope) if scope else None
