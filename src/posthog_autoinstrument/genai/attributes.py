"""The mapping from a call's plain description to span attributes and events, as the GenAI
conventions name them. Pure functions: nothing here starts, ends or exports a span."""

from __future__ import annotations

import traceback
from typing import Any, Optional

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event

from . import semconv
from .call_types import InferenceRequest, StepRequest, Usage

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

# The attribute naming a step by its operation (an agent's name, a tool's ...).
_STEP_NAME_KEYS = {
    semconv.Operation.INVOKE_AGENT: semconv.AGENT_NAME,
    semconv.Operation.EXECUTE_TOOL: semconv.TOOL_NAME,
    semconv.Operation.INVOKE_WORKFLOW: semconv.WORKFLOW_NAME,
    semconv.Operation.RETRIEVAL: semconv.DATA_SOURCE_ID,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def span_name(request: InferenceRequest) -> str:
    return f"{request.operation} {request.model}" if request.model else request.operation


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


def put_usage(attrs: dict, usage: Usage) -> None:
    """Put the token counts of ``usage`` in ``attrs``: those that are counts (whole, not negative)."""
    for name, key in _USAGE_FIELDS:
        value = getattr(usage, name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            attrs[key] = value


def step_attributes(step: StepRequest) -> dict:
    """The attributes of a step of an agent run, known when it starts."""
    attrs: dict = {semconv.OPERATION_NAME: step.operation}
    for key, value in (
        (semconv.PROVIDER_NAME, step.provider),
        (semconv.FRAMEWORK, step.framework),
        (_STEP_NAME_KEYS.get(step.operation), step.name),
        (semconv.TOOL_CALL_ID, step.tool_call_id),
        (semconv.TOOL_TYPE, step.tool_type),
        (semconv.REQUEST_MODEL, step.model),
    ):
        if key and value is not None:
            attrs[key] = value
    for key, value in step.attributes.items():
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


def http_status_code(exc: BaseException, status_code: Optional[int]) -> Optional[int]:
    """The HTTP status of a failed call: ``status_code`` when the adapter knows it, else the
    exception's own ``status_code``; None unless it is a valid status."""
    if status_code is None:
        status_code = getattr(exc, "status_code", None)
    if isinstance(status_code, int) and not isinstance(status_code, bool) and 100 <= status_code <= 599:
        return status_code
    return None


def exception_event(exc: BaseException) -> Event:
    """The event ``Span.record_exception(exc, escaped=True)`` adds, made the same way."""
    cls = type(exc)
    module = cls.__module__
    return Event(
        "exception",
        {
            "exception.type": f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__,
            "exception.message": str(exc),
            "exception.stacktrace": "".join(traceback.format_exception(cls, exc, exc.__traceback__)),
            "exception.escaped": "True",
        },
    )


_PLAIN_ATTRIBUTE_TYPES = frozenset({str, int, float, bool})
_STR_ONLY = frozenset({str})


def as_span_attributes(attrs: dict) -> dict:
    """``attrs`` as an SDK span would store them (changed in place where it can be): string
    sequences as tuples, and anything less plain through the SDK's own rules."""
    unusual = False
    for key, value in attrs.items():
        kind = type(value)
        if kind in _PLAIN_ATTRIBUTE_TYPES:
            continue
        if (kind is list or kind is tuple) and _STR_ONLY.issuperset(map(type, value)):
            attrs[key] = tuple(value)  # as the SDK stores a sequence
        else:
            unusual = True
    if unusual:  # a value that is not plain: the SDK's own rules decide, as on an SDK span
        return dict(BoundedAttributes(attributes=attrs, immutable=False))
    return attrs
