"""Spans that libraries record themselves, rewritten into what our own adapters record.

Some SDKs trace themselves (``anthropic`` since 1.14). Where one does, its span is the only
span of the call (one call, one generation), so the PostHog copy of that span must say what
our adapter would have said: the same attribute keys, the same message JSON, input tokens
that include cache tokens, the same finish reasons and error types. ``complete`` does that,
in place, on the export thread, for the spans it recognises by instrumentation scope; any
other span is left alone. It never raises.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Optional

from ..genai import messages as m
from ..genai import semconv

logger = logging.getLogger("posthog_autoinstrument")

ANTHROPIC_SCOPE = "com.anthropic.sdk.python"


# Returned by complete() for a native span that is not an AI event (an SDK's count_tokens,
# files or models call): PostHog should not receive it.
NOT_AI = object()


def complete(attrs: dict, scope_name: Optional[str]):
    """Rewrite a native span's attributes (``attrs``, a copy) into our adapter's dialect.

    Returns the span name our adapter would have used, ``NOT_AI`` for a span that must not be
    exported, or None to keep the span as it is.
    """
    if not scope_name:
        return None
    try:
        if scope_name == ANTHROPIC_SCOPE or scope_name.startswith(ANTHROPIC_SCOPE + "."):
            if attrs.get(semconv.OPERATION_NAME) != semconv.Operation.CHAT:
                return NOT_AI
            _anthropic_message(attrs)
            model = attrs.get(semconv.REQUEST_MODEL)
            return f"{semconv.Operation.CHAT} {model}" if model else semconv.Operation.CHAT
    except Exception:
        logger.debug("posthog-instrument: could not complete a %s span", scope_name, exc_info=True)
    return None


# -- anthropic ---------------------------------------------------------------------------------

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


def _anthropic_message(attrs: dict) -> None:
    from ..instrumentation.anthropic import finish_reason

    for key in _ANTHROPIC_ONLY:
        attrs.pop(key, None)
    cache_write = attrs.pop(semconv.USAGE_CACHE_WRITE_INPUT_TOKENS, None)
    if cache_write is not None:
        attrs.setdefault(semconv.USAGE_CACHE_CREATION_INPUT_TOKENS, cache_write)
    reason = finish_reason(attrs.pop(_STOP_REASON, None))
    if reason:
        attrs[semconv.RESPONSE_FINISH_REASONS] = (reason,)  # as a span attribute holds it

    _rewrite_json(attrs, semconv.SYSTEM_INSTRUCTIONS, lambda parts: [_part(p) for p in parts])
    _rewrite_json(attrs, semconv.INPUT_MESSAGES, lambda messages: [
        m.message(msg.get("role") or "user", [_part(p) for p in msg.get("parts") or ()]) for msg in messages])
    _rewrite_json(attrs, semconv.OUTPUT_MESSAGES, lambda messages: [
        m.output_message([_part(p) for p in msg.get("parts") or ()], reason, msg.get("role") or "assistant")
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


def _part(part: Any) -> Any:
    """A part as our message builders write it (same keys, same order)."""
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind == "text":
        return m.text(part.get("content"))
    if kind == "reasoning":
        return m.reasoning(part.get("content"))
    if kind == "tool_call":
        rebuilt = m.tool_call(part.get("id"), part.get("name"), part.get("arguments"))
        rebuilt.update({k: v for k, v in part.items() if k not in ("type", "id", "name", "arguments") and v is not None})
        return rebuilt
    if kind == "tool_call_response":
        return m.tool_call_response(part.get("id"), part.get("response"))
    return part


def _rewrite_json(attrs: dict, key: str, rewrite) -> None:
    value = attrs.get(key)
    if not isinstance(value, str):
        return
    try:
        parsed = json.loads(value)
    except ValueError:
        return
    if isinstance(parsed, list):
        attrs[key] = m.to_json(rewrite([item for item in parsed if isinstance(item, dict)]))
