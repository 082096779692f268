"""Anthropic's Messages format: content blocks, tool definitions, usage, stop reasons, the streamed
events folded into one message (``StreamedMessage``), and the spans the ``anthropic`` SDK records
itself. The Anthropic adapter and Bedrock's Anthropic bodies both translate through here.

Anthropic reports cache tokens apart from input tokens; the conventions count them inside input
tokens: input = input_tokens + cache_read + cache_creation.

Since 1.14 the SDK traces itself. Where it does, its span is the only span of the call (one
call, one generation), so the PostHog copy of that span must say what our adapter would have
said: the same attribute keys, the same message JSON, input tokens that include cache tokens,
the same finish reasons and error types. ``complete_sdk_span`` does that; the adapter registers
it for ``SCOPE`` (see ``genai.self_tracing``).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Optional

from ..genai import Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai.self_tracing import NOT_AI
from .conventions_json import part, rewrite_json
from .fields import get

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


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


# -- content blocks --------------------------------------------------------------------------
# Shapes follow the SDK's own spans wherever those keep the content (text, reasoning, tool
# calls and results), so that both paths send PostHog the same messages; media stays media.


def as_dict(value: Any) -> Optional[dict]:
    if isinstance(value, dict):
        return value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            result = to_dict()
            return result if isinstance(result, dict) else None
        except Exception:
            return None
    return None


def _without_data(value: Any) -> Any:
    """Tool-result blocks without opaque ``encrypted_`` fields or image/document bytes."""
    if isinstance(value, (list, tuple)):
        return [_without_data(item) for item in value]
    fields = as_dict(value)
    if fields is None:
        return value
    if fields.get("type") in ("image", "document"):
        return {"type": fields["type"]}
    file_view = fields.get("type") == "text_editor_code_execution_view_result" and fields.get("file_type") in (
        "image",
        "pdf",
    )
    return {
        key: _without_data(item)
        for key, item in fields.items()
        if not key.startswith("encrypted_") and not (key == "content" and file_view)
    }


def _kind(value: Any) -> str:
    return value if isinstance(value, str) else "unknown"


def _tool_result_content(content: Any) -> list:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, (list, tuple)):
        return []
    return [
        _without_data(block) if get(block, "type") in ("text", "search_result") else {"type": _kind(get(block, "type"))}
        for block in content
    ]


def _result_block_content(content: Any) -> Any:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, (list, tuple)):
        return [
            _without_data(block)
            if get(block, "type") in ("text", "search_result", "web_search_result")
            else {"type": _kind(get(block, "type"))}
            for block in content
        ]
    return _without_data(content) if as_dict(content) is not None else []


def _media(block: Any, modality: str) -> dict:
    source = get(block, "source")
    kind = get(source, "type")
    if kind == "base64":
        return m.blob(modality, get(source, "media_type"), get(source, "data") or "")
    if kind == "url":
        return m.uri(modality, get(source, "url") or "")
    if kind == "file":
        return m.file(modality, get(source, "file_id") or "")
    return m.generic(f"anthropic_{modality}")


def tool_call_part(call_id: Any, name: Any, arguments: Any, **extra: Any) -> dict:
    """A tool call as both paths write it (vendor fields after the standard ones)."""
    part = m.tool_call(call_id, name, arguments)
    part.update({key: value for key, value in extra.items() if value is not None})
    return part


def block_part(block: Any) -> dict:
    kind = get(block, "type")
    if kind == "text":
        return m.text(get(block, "text"))
    if kind == "thinking":
        return m.reasoning(get(block, "thinking"))
    if kind in ("tool_use", "server_tool_use"):
        toolset = get(block, "toolset_name") if kind == "tool_use" else None
        return tool_call_part(
            get(block, "id"),
            get(block, "name"),
            get(block, "input"),
            anthropic_toolset_name=toolset if isinstance(toolset, str) else None,
        )
    if kind == "mcp_tool_use":
        return tool_call_part(
            get(block, "id"),
            get(block, "name"),
            get(block, "input"),
            anthropic_mcp_server_name=get(block, "server_name"),
        )
    if kind == "tool_result":
        return m.tool_call_response(get(block, "tool_use_id"), _tool_result_content(get(block, "content")))
    if isinstance(kind, str) and kind.endswith("_tool_result"):
        return m.tool_call_response(get(block, "tool_use_id"), _result_block_content(get(block, "content")))
    if kind in ("image", "document"):
        return _media(block, kind)
    return m.generic(f"anthropic_{kind}" if isinstance(kind, str) else "anthropic_unknown")


def content_parts(content: Any) -> list:
    if isinstance(content, str):
        return [m.text(content)]
    if isinstance(content, (list, tuple)):
        return [block_part(block) for block in content]
    return []


def input_messages(messages: Any) -> list:
    return [
        m.message(str(get(message, "role") or "user"), content_parts(get(message, "content")))
        for message in (messages if isinstance(messages, (list, tuple)) else ())
    ]


def tool_definitions(tools: Any) -> list:
    definitions = []
    for tool in tools if isinstance(tools, (list, tuple)) else ():
        kind = get(tool, "type")
        if kind in (None, "custom") or get(tool, "input_schema") is not None:
            definitions.append(m.function_tool(get(tool, "name"), get(tool, "description"), get(tool, "input_schema")))
        else:
            definitions.append(
                m.other_tool(
                    _kind(kind),
                    name=get(tool, "name"),
                    server_url=get(tool, "url"),
                    authorization=get(tool, "authorization_token"),
                )
            )
    return definitions


# -- response translation --------------------------------------------------------------------


def usage(reported: Any, complete: bool = True) -> Optional[Usage]:
    """Usage as the conventions count it: input includes cache reads and cache writes.

    ``complete`` is False for a stream that ended before its ``message_delta``, whose output
    counts are still ``message_start``'s placeholders (never recorded, never estimated).
    """
    if reported is None:
        return None
    input_tokens = _int(get(reported, "input_tokens"))
    cache_read = _int(get(reported, "cache_read_input_tokens"))
    cache_creation = _int(get(reported, "cache_creation_input_tokens"))
    details = get(reported, "output_tokens_details") if complete else None
    return Usage(
        input_tokens=None if input_tokens is None else input_tokens + (cache_read or 0) + (cache_creation or 0),
        output_tokens=_int(get(reported, "output_tokens")) if complete else None,
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_creation,
        reasoning_tokens=_int(get(details, "thinking_tokens")) if details is not None else None,
    )


def usage_details(usage: Any) -> dict:
    """The vendor attributes of a message's usage: service tier, cache writes by lifetime."""
    cache_creation = get(usage, "cache_creation") if usage is not None else None
    return {
        semconv.ANTHROPIC_RESPONSE_SERVICE_TIER: _text(get(usage, "service_tier")) if usage is not None else None,
        semconv.ANTHROPIC_CACHE_CREATION_5M_INPUT_TOKENS: _int(get(cache_creation, "ephemeral_5m_input_tokens"))
        if cache_creation is not None
        else None,
        semconv.ANTHROPIC_CACHE_CREATION_1H_INPUT_TOKENS: _int(get(cache_creation, "ephemeral_1h_input_tokens"))
        if cache_creation is not None
        else None,
    }


def response_details(message: Any) -> dict:
    """A Message's model, id, finish reasons, usage and usage attributes, as the keyword
    arguments of the call's ``set_response``."""
    reason = finish_reason(get(message, "stop_reason"))
    reported = get(message, "usage")
    return dict(
        model=get(message, "model"),
        response_id=get(message, "id"),
        finish_reasons=[reason] if reason else None,
        usage=usage(reported),
        attributes=usage_details(reported),
    )


def output_message(message: Any) -> dict:
    """A Message's content as the output message."""
    return m.output_message(content_parts(get(message, "content")), finish_reason(get(message, "stop_reason")))


# -- streams ----------------------------------------------------------------------------------

_USAGE_UPDATES = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens_details",
    "server_tool_use",
)


class StreamedMessage:
    """The raw Messages stream (``message_start``, ``content_block_*``, ``message_delta``; SDK
    events or their JSON) folded into one message. Content is kept only with ``capture``."""

    __slots__ = ("capture", "response_id", "model", "usage", "stop_reason", "complete", "blocks", "json_parts")

    def __init__(self, capture: bool):
        self.capture = capture
        self.response_id = None
        self.model = None
        self.usage: Optional[dict] = None
        self.stop_reason = None
        self.complete = False  # message_delta seen: stop reason and output usage are final
        self.blocks: dict = {}
        self.json_parts: dict = {}

    def add(self, event: Any) -> None:
        kind = get(event, "type")
        if kind == "content_block_delta":
            if self.capture:
                self._delta(get(event, "index"), get(event, "delta"))
        elif kind == "content_block_start":
            if self.capture:
                block = as_dict(get(event, "content_block"))
                if block is not None:
                    self.blocks[get(event, "index")] = dict(block)
        elif kind == "message_start":
            message = get(event, "message")
            self.response_id = get(message, "id")
            self.model = get(message, "model")
            reported = as_dict(get(message, "usage"))
            self.usage = dict(reported) if reported is not None else None
        elif kind == "message_delta":
            self.complete = True
            self.stop_reason = get(get(event, "delta"), "stop_reason")
            reported = as_dict(get(event, "usage")) or {}
            if self.usage is None:
                self.usage = {}
            self.usage["output_tokens"] = reported.get("output_tokens")
            for key in _USAGE_UPDATES:
                if reported.get(key) is not None:
                    self.usage[key] = reported[key]

    def _delta(self, index: Any, delta: Any) -> None:
        block = self.blocks.get(index)
        if block is None:
            return
        kind = get(delta, "type")
        if kind == "text_delta":
            block["text"] = (block.get("text") or "") + (get(delta, "text") or "")
        elif kind == "thinking_delta":
            block["thinking"] = (block.get("thinking") or "") + (get(delta, "thinking") or "")
        elif kind == "signature_delta":
            block["signature"] = get(delta, "signature")
        elif kind == "input_json_delta":
            self.json_parts.setdefault(index, []).append(get(delta, "partial_json") or "")

    def content(self) -> list:
        """The content blocks so far, in the Message's shape (tool inputs parsed when whole)."""
        blocks = []
        for index in sorted(self.blocks, key=lambda i: i if isinstance(i, int) else 0):
            block = self.blocks[index]
            pieces = self.json_parts.get(index)
            if pieces and "".join(pieces):
                try:
                    block = dict(block, input=json.loads("".join(pieces)))
                except ValueError:
                    block = dict(block, input="".join(pieces))
            blocks.append(block)
        return blocks

    def finish_reason(self) -> Optional[str]:
        """Final only once ``message_delta`` came: a stream cut short has none."""
        return finish_reason(self.stop_reason) if self.complete else None

    def response_details(self) -> dict:
        """As :func:`response_details`; output tokens only once ``message_delta`` came (before,
        they are ``message_start``'s placeholders, never recorded, never estimated)."""
        reason = self.finish_reason()
        return dict(
            model=self.model,
            response_id=self.response_id,
            finish_reasons=[reason] if reason else None,
            usage=usage(self.usage, self.complete),
            attributes=usage_details(self.usage),
        )

    def output_message(self) -> dict:
        return m.output_message(content_parts(self.content()), self.finish_reason())


# -- the SDK's own spans ------------------------------------------------------------------------


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
    prefix = path[: endpoint.start()].rstrip("/") if endpoint else ""
    attrs[semconv.BASE_URL] = f"{scheme}://{netloc}{prefix + '/' if prefix else ''}"


# What the SDK's span records that our adapter does not: transport details, ids of the API
# request, organisation and workspace, the beta header, and its own truncation marker.
_ANTHROPIC_ONLY = frozenset(
    {
        "http.request.method",
        "http.route",
        "http.request.resend_count",
        "url.scheme",
        "url.path",
        "url.query",
        "url.full",
        "anthropic.request.id",
        "anthropic.organization.id",
        "anthropic.workspace.id",
        "anthropic.beta",
        "anthropic.content.truncated",
    }
)
_STOP_REASON = "anthropic.message.stop_reason"

# The SDK's error.type for failures that have no API error envelope.
_ANTHROPIC_TRANSPORT_ERRORS = {
    "client_timeout_error": "APITimeoutError",
    "connection_error": "APIConnectionError",
}
# Status codes to exception classes, for SDKs without a table of their own to consult.
_ANTHROPIC_STATUS_ERRORS = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    409: "ConflictError",
    413: "RequestTooLargeError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
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
    rewrite_json(
        attrs,
        semconv.INPUT_MESSAGES,
        lambda messages: [
            m.message(msg.get("role") or "user", [part(p) for p in msg.get("parts") or ()]) for msg in messages
        ],
    )
    rewrite_json(
        attrs,
        semconv.OUTPUT_MESSAGES,
        lambda messages: [
            m.output_message([part(p) for p in msg.get("parts") or ()], reason, msg.get("role") or "assistant")
            for msg in messages
        ],
    )

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
            name = _ANTHROPIC_STATUS_ERRORS.get(status) or (
                "InternalServerError" if status >= 500 else "APIStatusError"
            )
    if error == "transport_error":
        return "httpx2.TransportError"
    return f"anthropic.{name}" if name else None
