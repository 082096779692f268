"""OpenAI's chat-completions wire format, which many providers and frameworks also speak.

Requests: :func:`input_message` per message (its content through :func:`content_parts`),
:func:`tool_definitions`, :func:`output_type` of the ``response_format``. Responses:
:func:`output_message` per choice, :func:`finish_reason`, :func:`usage`. Streams: one
:class:`ChoiceBuffer` per choice index gathers the deltas (with a :class:`ToolCallBuffer` per
tool-call index) until the stream ends.

``content_parts`` and ``tool_definitions`` also read the Responses API's shapes (``input_text``,
``input_image``, tools not nested under ``function``), which share these helpers.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from ..genai import messages as m
from ..genai.call_types import InferenceRequest, Usage
from .fields import arg, get, given, number, optional_field, reader

_FINISH_REASONS = {"tool_calls": "tool_call", "function_call": "tool_call"}


def finish_reason(reason: Any) -> Optional[str]:
    """A choice's ``finish_reason`` in the conventions' terms (``tool_calls`` -> ``tool_call``)."""
    if not reason:
        return None
    return _FINISH_REASONS.get(reason, reason)


# -- requests ------------------------------------------------------------------------------


def content_parts(content: Any) -> list:
    """A message's ``content``: a string, or a list of typed parts (text, image, audio, file, refusal)."""
    if isinstance(content, str):
        return [m.text(content)]
    if content is None or not given(content):
        return []
    parts = []
    for item in content if isinstance(content, (list, tuple)) else [content]:
        if isinstance(item, str):
            parts.append(m.text(item))
            continue
        kind = get(item, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(m.text(get(item, "text", "")))
        elif kind == "image_url":
            parts.append(m.media_from_data_url("image", get(get(item, "image_url"), "url", "") or ""))
        elif kind == "input_image":
            url = get(item, "image_url")
            parts.append(m.media_from_data_url("image", url) if url else m.file("image", get(item, "file_id") or ""))
        elif kind == "input_audio":
            audio = get(item, "input_audio")
            parts.append(m.blob("audio", f"audio/{get(audio, 'format', 'wav')}", get(audio, "data", "") or ""))
        elif kind in ("file", "input_file"):
            payload = get(item, "file") if kind == "file" else item
            data = get(payload, "file_data")
            if data:
                parts.append(
                    m.media_from_data_url("document", data)
                    if data.startswith("data:")
                    else m.blob("document", None, data)
                )
            else:
                parts.append(m.file("document", get(payload, "file_id") or get(payload, "file_url") or ""))
        elif kind == "refusal":
            parts.append(m.generic("refusal", content=get(item, "refusal")))
        else:
            parts.append(m.generic(kind or "unknown"))
    return parts


def tool_call_parts(message: Any) -> list:
    """The tool calls of a message (``tool_calls``, custom tools, the older ``function_call``)."""
    return _tool_call_parts(reader(message))


def _tool_call_parts(read: Callable[..., Any]) -> list:
    # (``read``: the message's reader, which its caller has made already)
    parts = []
    for call in read("tool_calls") or ():
        function = get(call, "function")
        if function is not None:
            parts.append(m.tool_call(get(call, "id"), get(function, "name"), get(function, "arguments")))
        else:
            custom = get(call, "custom")
            parts.append(m.tool_call(get(call, "id"), get(custom, "name"), get(custom, "input")))
    function_call = read("function_call")
    if function_call:
        parts.append(m.tool_call(None, get(function_call, "name"), get(function_call, "arguments")))
    return parts


def input_message(message: Any) -> dict:
    """One message of the request's ``messages`` (a tool's answer becomes a tool-call response)."""
    read = reader(message)
    role = read("role") or "user"
    if role == "tool":
        return m.message("tool", [m.tool_call_response(read("tool_call_id"), read("content"))])
    return m.message(role, _parts(read), read("name"))


def _parts(read: Callable[..., Any]) -> list:
    """The parts of a message (its ``reader``): its content, then its tool calls. A text without
    tool calls, most messages, takes no call to either reader of parts."""
    content = read("content")
    parts = [m.text(content)] if isinstance(content, str) else content_parts(content)
    if read("tool_calls") or read("function_call"):
        parts += _tool_call_parts(read)
    return parts


def tool_definitions(tools: Any) -> list:
    """The request's ``tools`` (chat completions nest each function; the Responses API does not)."""
    definitions = []
    for tool in tools or ():
        kind = get(tool, "type") or "function"
        function = get(tool, "function")
        if function is not None:
            read_function = reader(function)
            definitions.append(
                m.function_tool(read_function("name"), read_function("description"), read_function("parameters"))
            )
        elif kind == "function":
            definitions.append(m.function_tool(get(tool, "name"), get(tool, "description"), get(tool, "parameters")))
        else:
            definitions.append(
                m.other_tool(
                    kind,
                    name=get(tool, "name") or get(tool, "server_label"),
                    server_url=get(tool, "server_url"),
                    headers=get(tool, "headers"),
                    authorization=get(tool, "authorization"),
                )
            )
    return definitions


def request_tool_definitions(tools: Any, functions: Any) -> list:
    """``tools``, or else the older ``functions`` (each a bare function)."""
    if tools:
        definitions = tool_definitions(tools)
        if definitions:
            return definitions
    return tool_definitions([{"type": "function", "function": f} for f in functions]) if functions else []


def request_parameters(request: InferenceRequest, kwargs: dict) -> InferenceRequest:
    """``request`` (returned) with the sampling and output parameters of a chat-completions call's
    keyword arguments: temperature, top_p, seed, penalties, max tokens, stop, n, reasoning
    effort, response format."""
    request.temperature = number(kwargs.get("temperature"))
    request.top_p = number(kwargs.get("top_p"))
    request.seed = number(kwargs.get("seed"))
    request.frequency_penalty = number(kwargs.get("frequency_penalty"))
    request.presence_penalty = number(kwargs.get("presence_penalty"))
    request.max_tokens = number(arg(kwargs, "max_completion_tokens") or arg(kwargs, "max_tokens"))
    request.stop_sequences = arg(kwargs, "stop")
    request.choice_count = number(kwargs.get("n"))
    request.reasoning_level = arg(kwargs, "reasoning_effort")
    response_format = kwargs.get("response_format")
    request.output_type = output_type(response_format) if response_format is not None else None
    return request


def output_type(response_format: Any) -> Optional[str]:
    """``json`` for a JSON schema, JSON mode or a pydantic model passed to ``.parse()``; ``text``; else None."""
    if not given(response_format):
        return None
    if isinstance(response_format, type):
        return "json"
    kind = get(response_format, "type")
    if kind in ("json_schema", "json_object"):
        return "json"
    return "text" if kind == "text" else None


# -- responses -----------------------------------------------------------------------------


def usage(reported: Any) -> Optional[Usage]:
    """The completion's ``usage``, cached and reasoning tokens from its details."""
    return token_usage(reported, CHAT_USAGE_KEYS)


# (input tokens, output tokens, input details, output details): chat completions name them after
# the prompt and the completion, the Responses API after the input and the output.
CHAT_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")


def token_usage(reported: Any, keys: tuple, cache_write_key: str = "cache_write_tokens") -> Optional[Usage]:
    """OpenAI's usage shape under the names in ``keys``: the counts, cached and cache-write
    tokens from the input details, reasoning tokens from the output details."""
    if reported is None:
        return None
    input_key, output_key, input_details_key, output_details_key = keys
    read = reader(reported)
    input_details = read(input_details_key)
    output_details = read(output_details_key)
    return Usage(  # (fields in order, not by name: see instrumentation/openai.py _common_request)
        read(input_key),
        read(output_key),
        get(input_details, "cached_tokens") if input_details is not None else None,
        get(input_details, cache_write_key) if input_details is not None else None,
        get(output_details, "reasoning_tokens") if output_details is not None else None,
    )


def output_message(choice_message: Any, reason: Optional[str]) -> dict:
    """A choice's ``message``: its content, refusal, audio transcript and tool calls."""
    read = reader(choice_message)
    content = read("content")
    parts = [m.text(content)] if isinstance(content, str) else content_parts(content)
    refusal = read("refusal")
    if refusal:
        parts.append(m.generic("refusal", content=refusal))
    audio = optional_field(choice_message, "audio")
    if audio is not None and get(audio, "transcript"):
        parts.append(m.text(get(audio, "transcript")))
    if read("tool_calls") or read("function_call"):
        parts += _tool_call_parts(read)
    return m.output_message(parts, reason)


# -- streams -------------------------------------------------------------------------------


class ToolCallBuffer:
    """One streamed tool call: its id and name as they arrive, its arguments as JSON text in
    ``fragments``, or ``whole`` when an SDK sends them as one object."""

    __slots__ = ("id", "name", "fragments", "whole")

    def __init__(self):
        self.id: Optional[str] = None
        self.name: Optional[str] = None
        self.fragments: list = []
        self.whole: Any = None

    def add_arguments(self, arguments: Any) -> None:
        """A piece of JSON text is appended; an object (a dict) stands for all the arguments."""
        if isinstance(arguments, str):
            self.fragments.append(arguments)
        elif isinstance(arguments, dict):
            self.whole = arguments

    def part(self) -> dict:
        return m.tool_call(self.id, self.name, self.whole if self.whole is not None else "".join(self.fragments))


def tool_call_buffer(buffers: dict, index: Any) -> ToolCallBuffer:
    """The buffer of the tool call at ``index``, started on its first fragment."""
    buffer = buffers.get(index)
    if buffer is None:
        buffer = buffers[index] = ToolCallBuffer()
    return buffer


def tool_call_parts_of(buffers: dict) -> list:
    """The tool calls gathered in ``buffers`` (index -> :class:`ToolCallBuffer`), by index."""
    return [buffers[index].part() for index in sorted(buffers)]


class ChoiceBuffer:
    """One streamed choice: pieces of reasoning, text and refusal, tool calls by index, and the
    finish reason as sent (translate it with :func:`finish_reason`)."""

    __slots__ = ("text", "reasoning", "refusal", "tool_calls", "finish_reason")

    def __init__(self):
        self.text: list = []
        self.reasoning: list = []
        self.refusal: list = []
        self.tool_calls: dict = {}  # index -> ToolCallBuffer
        self.finish_reason: Any = None

    def tool_call(self, index: Any) -> ToolCallBuffer:
        return tool_call_buffer(self.tool_calls, index)

    def parts(self) -> list:
        """Reasoning, text, refusal, then the tool calls by index; a kind that never came is left out."""
        parts = [m.reasoning("".join(self.reasoning))] if self.reasoning else []
        if self.text:
            parts.append(m.text("".join(self.text)))
        if self.refusal:
            parts.append(m.generic("refusal", content="".join(self.refusal)))
        parts += tool_call_parts_of(self.tool_calls)
        return parts


def add_chunk_choices(buffers: dict, choices: Any, capture: bool, reasoning: Callable[[Any], Any]) -> None:
    """Folds one chunk's ``choices`` into ``buffers`` (index -> :class:`ChoiceBuffer`), every
    field read leniently, for SDKs whose chunk models lack some of OpenAI's fields (and plain
    dicts); ``reasoning`` reads a delta's reasoning text, which providers name differently. Only
    finish reasons are kept without ``capture``."""
    for choice in choices or ():
        index = _index(get(choice, "index"), 0)
        buffer = buffers.get(index)
        if buffer is None:
            buffer = buffers[index] = ChoiceBuffer()
        reason = get(choice, "finish_reason")
        if reason:
            buffer.finish_reason = reason
        delta = get(choice, "delta") if capture else None
        if delta is None:
            continue
        text = get(delta, "content")
        if text:
            buffer.text.append(text)
        thought = reasoning(delta)
        if thought:
            buffer.reasoning.append(thought)
        for position, fragment in enumerate(get(delta, "tool_calls") or ()):
            entry = buffer.tool_call(_index(get(fragment, "index"), position))
            call_id = get(fragment, "id")
            if call_id:
                entry.id = call_id
            function = get(fragment, "function")
            if function is not None:
                name = get(function, "name")
                if name:
                    entry.name = name
                entry.add_arguments(get(function, "arguments"))


def _index(value: Any, default: int) -> int:
    """A choice's or tool call's index (some providers send floats), else ``default``."""
    return int(value) if number(value) is not None else default


def ordered_choices(buffers: dict) -> list:
    """The choice buffers (index -> :class:`ChoiceBuffer`) by index."""
    return [buffers[index] for index in sorted(buffers)]
