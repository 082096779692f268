"""Anthropic's formats: its stop reasons, and the spans the ``anthropic`` SDK records itself.

Since 1.14 the SDK traces itself. Where it does, its span is the only span of the call (one
call, one generation), so the PostHog copy of that span must say what our adapter would have
said: the same attribute keys, the same message JSON, input tokens that include cache tokens,
the same finish reasons and error types. ``complete_sdk_span`` does that; the adapter registers
it for ``SCOPE`` (see ``genai.self_tracing``).
"""

from __future__ import annotations

import re
import sys
from typing import Any, Optional

from ..genai import messages as m
from ..genai import semconv
from ..genai.self_tracing import NOT_AI
from .conventions_json import part, rewrite_json

#: The SDK's own instrumentation scope; platform clients append ``.bedrock`` / ``.vertex``.
SCOPE = "com.anthropic.sdk.python"

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_call",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> Optional[str]:
    """Anthropic's ``stop_reason`` as a conventions finish reason (unknown ones pass through)."""
    if not isinstance(stop_reason, str) or not stop_reason:
        return None
    return FINISH_REASONS.get(stop_reason, stop_reason)


def complete_sdk_span(attrs: dict) -> Any:
    """Rewrite the attributes of a span the SDK recorded (a copy, after privacy) in place.

    Returns the span name our adapter would have used, or ``NOT_AI`` for a call that is no
    model call (count_tokens, files, models).
    """
    _base_url_from_request_url(attrs)  # before the url.* keys go
    if attrs.get(semconv.OPERATION_NAME) != semconv.Operation.CHAT:
        return NOT_AI
    _message(attrs)
    model = attrs.get(semconv.REQUEST_MODEL)
    return f"{semconv.Operation.CHAT} {model}" if model else semconv.Operation.CHAT


# Where the anthropic SDK's request paths start below the client's base URL: its own API
# (/v1/messages...), Vertex AI (/projects/...) and Bedrock (/model/...).
_ANTHROPIC_ENDPOINTS = re.compile(r"/(?:v1/(?:messages|complete|models)|projects/|model/)")


def _base_url_from_request_url(attrs: dict) -> None:
    """The base URL of a span the anthropic SDK records itself: scheme, host, port and the request
    path above the endpoint, rendered as the client renders its base URL (a trailing slash
    after a path)."""
    if semconv.BASE_URL in attrs:
        return
    path: Any  # a string wherever the endpoint pattern matched it
    scheme, host, path = attrs.get("url.scheme"), attrs.get(semconv.SERVER_ADDRESS), attrs.get("url.path")
    if not (isinstance(scheme, str) and isinstance(host, str) and scheme and host):
        return
    port = attrs.get(semconv.SERVER_PORT)
    netloc = host if port in (None, {"https": 443, "http": 80}.get(scheme)) else f"{host}:{port}"
    endpoint = _ANTHROPIC_ENDPOINTS.search(path) if isinstance(path, str) else None
    prefix = path[:endpoint.start()].rstrip("/") if endpoint else ""
    attrs[semconv.BASE_URL] = f"{scheme}://{netloc}{prefix + '/' if prefix else ''}"



# What the SDK's span records that our adapter does not: transport details, ids of the API
# request, organisation and workspace, the beta header, and its own truncation marker.
_ANTHROPIC_ONLY = frozenset({
    "http.request.method", "http.route", "http.request.resend_count",
    "url.scheme", "url.path", "url.query", "url.full",
    "anthropic.request.id", "anthropic.organization.id", "anthropic.workspace.id",
    "anthropic.beta", "anthropic.content.truncated",
})
_STOP_REASON = "anthropic.message.stop_reason"

# The SDK's error.type for failures that have no API error envelope.
_ANTHROPIC_TRANSPORT_ERRORS = {
    "client_timeout_error": "APITimeoutError",
    "connection_error": "APIConnectionError",
}
# Status codes to exception classes, for SDKs without a table of their own to consult.
_ANTHROPIC_STATUS_ERRORS = {
    400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFoundError",
    409: "ConflictError", 413: "RequestTooLargeError", 422: "UnprocessableEntityError", 429: "RateLimitError",
    529: "OverloadedError",
}


def _message(attrs: dict) -> None:
    for key in _ANTHROPIC_ONLY:
        attrs.pop(key, None)
    cache_write = attrs.pop(semconv.USAGE_CACHE_WRITE_INPUT_TOKENS, None)
    if cache_write is not None:
        attrs.setdefault(semconv.USAGE_CACHE_CREATION_INPUT_TOKENS, cache_write)
    reason = finish_reason(attrs.pop(_STOP_REASON, None))
    if reason:
        attrs[semconv.RESPONSE_FINISH_REASONS] = (reason,)  # as a span attribute holds it

    rewrite_json(attrs, semconv.SYSTEM_INSTRUCTIONS, lambda parts: [part(p) for p in parts])
    rewrite_json(attrs, semconv.INPUT_MESSAGES, lambda messages: [
        m.message(msg.get("role") or "user", [part(p) for p in msg.get("parts") or ()]) for msg in messages])
    rewrite_json(attrs, semconv.OUTPUT_MESSAGES, lambda messages: [
        m.output_message([part(p) for p in msg.get("parts") or ()], reason, msg.get("role") or "assistant")
        for msg in messages])

    error = attrs.get(semconv.ERROR_TYPE)
    if error is None:
        # Our spans carry a status code only for a failed call (PostHog reads it as the error's).
        attrs.pop(semconv.HTTP_RESPONSE_STATUS_CODE, None)
    elif isinstance(error, str):
        status = attrs.get(semconv.HTTP_RESPONSE_STATUS_CODE)
        if error == "connection_error" and isinstance(status, int) and status < 400:
            # The body broke off after a successful response: the app saw the HTTP client's
            # transport error, which carries no status code.
            attrs.pop(semconv.HTTP_RESPONSE_STATUS_CODE, None)
            error = "transport_error"
        exception = _anthropic_exception(error, attrs.get(semconv.HTTP_RESPONSE_STATUS_CODE))
        if exception:
            attrs[semconv.ERROR_TYPE] = exception
            # The SDK's span has no exception event: say what failed, without any message text.
            attrs.setdefault("$ai_error", f"{exception}: {error}")


def _anthropic_exception(error: str, status: Any) -> Optional[str]:
    """The ``error.type`` our adapter records for the failure the SDK recorded as ``error``."""
    name = _ANTHROPIC_TRANSPORT_ERRORS.get(error)
    if name is None and isinstance(status, int) and not isinstance(status, bool):
        table = getattr(sys.modules.get("anthropic._error_classes"), "ERROR_CLASSES", None)
        found = table.get((status, None)) if isinstance(table, dict) else None
        if found is not None:
            name = found.__qualname__
        else:
            name = _ANTHROPIC_STATUS_ERRORS.get(status) or ("InternalServerError" if status >= 500 else "APIStatusError")
    if error == "transport_error":
        return "httpx2.TransportError"
    return f"anthropic.{name}" if name else None
