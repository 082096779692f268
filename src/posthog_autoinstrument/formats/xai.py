"""xAI's chat API as the ``xai-sdk`` sends it: protobuf messages over gRPC (``chat_pb2``).

A request is a ``GetCompletionsRequest``; an answer is a ``GetChatCompletionResponse`` (the SDK
folds a stream's chunks into one itself, so a stream's end is read like a whole answer). Enum
fields (roles, finish reasons, reasoning effort, response format) are read by their names in the
message's own descriptor, never by number, so a newer proto revision cannot mistranslate them.
Nothing here imports the SDK: any message with these fields is read.
"""

from __future__ import annotations

from typing import Any, Optional

from ..genai import Usage
from ..genai import messages as m
from ..genai import semconv

_ROLES = {
    "ROLE_USER": "user",
    "ROLE_ASSISTANT": "assistant",
    "ROLE_SYSTEM": "system",
    "ROLE_DEVELOPER": "developer",
    "ROLE_TOOL": "tool",
    "ROLE_FUNCTION": "tool",
}
FINISH_REASONS = {
    "REASON_STOP": "stop",
    "REASON_MAX_LEN": "length",
    "REASON_MAX_CONTEXT": "length",
    "REASON_TOOL_CALLS": "tool_call",
    "REASON_TIME_LIMIT": "time_limit",
}
_OUTPUT_TYPES = {"FORMAT_TYPE_TEXT": "text", "FORMAT_TYPE_JSON_OBJECT": "json", "FORMAT_TYPE_JSON_SCHEMA": "json"}


def enum_name(message: Any, field: str) -> Optional[str]:
    """The name of an enum field's value (``"ROLE_USER"``), None when unset or unknown."""
    try:
        number = getattr(message, field)
        value = message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number.get(number)
    except (AttributeError, KeyError):
        return None
    return value.name if value is not None and number else None


def _present(message: Any, field: str) -> bool:
    """Whether the app set ``field``: ``HasField`` where the field tracks presence (``optional``
    scalars, messages), else a non-zero value (proto3's unset is zero)."""
    try:
        return message.HasField(field)
    except ValueError:
        return bool(getattr(message, field, None))


def _value(message: Any, field: str) -> Any:
    return getattr(message, field) if _present(message, field) else None


def parameters(request: Any) -> dict:
    """The request's parameters as the conventions' attributes (unset ones left out)."""
    effort = enum_name(request, "reasoning_effort")
    output_type = None
    if _present(request, "response_format"):
        output_type = _OUTPUT_TYPES.get(enum_name(request.response_format, "format_type") or "")
    attributes = {
        semconv.REQUEST_TEMPERATURE: _value(request, "temperature"),
        semconv.REQUEST_TOP_P: _value(request, "top_p"),
        semconv.REQUEST_MAX_TOKENS: _value(request, "max_tokens"),
        semconv.REQUEST_SEED: _value(request, "seed"),
        # The SDK always sends n; the conventions record it only when more than one is asked for.
        semconv.REQUEST_CHOICE_COUNT: request.n if request.n > 1 else None,
        semconv.REQUEST_FREQUENCY_PENALTY: _value(request, "frequency_penalty"),
        semconv.REQUEST_PRESENCE_PENALTY: _value(request, "presence_penalty"),
        semconv.REQUEST_STOP_SEQUENCES: list(request.stop) or None,
        semconv.REQUEST_REASONING_LEVEL: effort.removeprefix("EFFORT_").lower() if effort else None,
        semconv.OUTPUT_TYPE: output_type,
    }
    return {key: value for key, value in attributes.items() if value is not None}


def _content_part(content: Any) -> Optional[dict]:
    kind = content.WhichOneof("content")
    if kind == "text":
        return m.text(content.text)
    if kind == "image_url":
        return m.media_from_data_url("image", content.image_url.image_url)
    if kind == "file":
        file = content.file
        if file.file_id:
            return m.file("document", file.file_id, file.mime_type or None)
        if file.url:
            return m.uri("document", file.url, file.mime_type or None)
        # Inline file bytes are never exported: their name stands for them.
        return m.generic("file", name=file.filename or None, mime_type=file.mime_type or None)
    return None


def _tool_call_parts(tool_calls: Any) -> list:
    return [
        m.tool_call(call.id or None, call.function.name, m.parse_json_arguments(call.function.arguments))
        for call in tool_calls
    ]


def input_messages(request: Any) -> list:
    """The conversation the request sends, as conventions messages."""
    messages = []
    for message in request.messages:
        role = _ROLES.get(enum_name(message, "role") or "", "user")
        if role == "tool":
            result = "".join(c.text for c in message.content if c.WhichOneof("content") == "text")
            messages.append(m.message("tool", [m.tool_call_response(message.tool_call_id or None, result)]))
            continue
        parts = [m.reasoning(message.reasoning_content)] if message.reasoning_content else []
        # (an answer appended to the chat carries an empty text beside its tool calls)
        parts += [part for part in map(_content_part, message.content) if part and part.get("content") != ""]
        parts += _tool_call_parts(message.tool_calls)
        messages.append(m.message(role, parts, message.name or None))
    return messages


def tool_definitions(request: Any) -> list:
    tools = []
    for tool in request.tools:
        kind = tool.WhichOneof("tool")
        if kind == "function":
            function = tool.function
            tools.append(
                m.function_tool(
                    function.name,
                    function.description or None,
                    m.parse_json_arguments(function.parameters) if function.parameters else None,
                )
            )
        elif kind == "mcp":
            tools.append(
                m.other_tool("mcp", server_label=tool.mcp.server_label or None, server_url=tool.mcp.server_url or None)
            )
        elif kind:
            tools.append(m.other_tool(kind))
    return tools


def finish_reason(output: Any) -> Optional[str]:
    name = enum_name(output, "finish_reason")
    return FINISH_REASONS.get(name, name.lower()) if name else None


def usage(response: Any) -> Optional[Usage]:
    """Tokens as xAI reports them: its completion tokens do not include the reasoning tokens,
    which it reports (and bills) beside them."""
    counts = response.usage if _present(response, "usage") else None
    if counts is None or not (counts.prompt_tokens or counts.completion_tokens):
        return None  # none reported (a stream left before its last chunk)
    return Usage(
        input_tokens=counts.prompt_tokens,
        output_tokens=counts.completion_tokens,
        cache_read_input_tokens=counts.cached_prompt_text_tokens or None,
        reasoning_tokens=counts.reasoning_tokens or None,
    )


def outputs(response: Any) -> tuple:
    """(finish reasons, output messages) of an answer, one message per choice index: a choice
    that used server-side tools arrives as several outputs of the same index."""
    by_index: dict = {}
    for output in response.outputs:
        parts, reason = by_index.get(output.index, ([], None))
        message = output.message
        if message.reasoning_content:
            parts.append(m.reasoning(message.reasoning_content))
        if message.content:
            parts.append(m.text(message.content))
        parts += _tool_call_parts(message.tool_calls)
        by_index[output.index] = (parts, finish_reason(output) or reason)
    ordered = [by_index[index] for index in sorted(by_index)]
    return [reason for _, reason in ordered if reason], [m.output_message(parts, reason) for parts, reason in ordered]
