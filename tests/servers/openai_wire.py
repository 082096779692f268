"""OpenAI wire payloads, built exactly as the real API sends them.

This module is pure data: given a parsed request body it returns the JSON
objects (or the sequence of streamed objects) that api.openai.com would send.
The HTTP side lives in ``openai_server``. Field names and shapes follow the
``openai`` SDK's ``types`` package and captured real responses, including the
details instrumentation code tends to trip over: ``usage: null`` on every
chunk but the last when usage is requested, a final usage chunk with an empty
``choices`` list, the tool-call header delta with empty ``arguments``,
``obfuscation`` padding on stream chunks, and Azure's leading chunk that has
no choices and an empty model.

Everything is deterministic apart from ids and timestamps.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

DEFAULT_REPLY = "Hello from fake OpenAI"
SERVED_MODEL_SUFFIX = "-2024-08-06"
SYSTEM_FINGERPRINT = "fp_f4ke0001"
TOOL_CALL_ID = "call_1"
TOOL_ARGUMENTS = '{"city": "Paris"}'
EMBEDDING_DIMENSIONS = 8
OBFUSCATION = "nQ3x"

PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7
CACHED_TOKENS = 3
REASONING_TOKENS = 2

_CHUNKS_DIRECTIVE = re.compile(r"\bchunks=(\d+)\b")
_REPLY_DIRECTIVE = re.compile(r'\breply=(?:"([^"]*)"|(\S+))')
_CALL_DIRECTIVE = re.compile(r"\bcall=(\w+)")
_ARGS_DIRECTIVE = re.compile(r"\bargs=(\{\S*\})")


# ---------------------------------------------------------------------------
# Identity of one generated answer
# ---------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    """Ids look like the real ones (``chatcmpl-…``, ``resp_…``, ``msg_…``)."""
    return prefix + uuid.uuid4().hex


def served_model(requested: str) -> str:
    """The dated snapshot name OpenAI reports back for an alias."""
    if requested.endswith(SERVED_MODEL_SUFFIX):
        return requested
    return requested + SERVED_MODEL_SUFFIX


@dataclass(frozen=True)
class Meta:
    """Per-answer constants shared by every chunk/event of one response."""

    id: str
    model: str
    created: int = field(default_factory=lambda: int(time.time()))


# ---------------------------------------------------------------------------
# Deciding what to answer
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What the fake model "decided" to say for one request.

    ``tool_name`` set means answer with a single tool call instead of text.
    ``pieces`` is how the text is split into streamed deltas.
    """

    text: str
    pieces: list[str]
    tool_name: Optional[str] = None
    tool_arguments: str = TOOL_ARGUMENTS


def content_text(content: Any) -> str:
    """Text of a message ``content``: a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def split_into_pieces(text: str, count: Optional[int]) -> list[str]:
    """Split ``text`` into streamed pieces that concatenate back to the text.

    Without a count, pieces are word-like tokens ("Hello", " from", ...), as
    real streams look. With a count the result has exactly ``count`` non-empty
    pieces: words are grouped, or, if there are fewer words than pieces,
    characters are used (the text is padded with "." if even that is short).
    """
    words = re.findall(r"\s*\S+", text) or [text]
    if count is None:
        return words
    count = max(count, 1)
    units = words if count <= len(words) else list(text.ljust(count, "."))
    return ["".join(units[len(units) * i // count : len(units) * (i + 1) // count]) for i in range(count)]


def plan_reply(text_source: str, default_text: str, tool_name: Optional[str]) -> Reply:
    """Apply the in-prompt directives ``reply=...`` and ``chunks=N``."""
    text = default_text
    reply_match = _REPLY_DIRECTIVE.search(text_source)
    if reply_match:
        text = reply_match.group(1) if reply_match.group(1) is not None else reply_match.group(2)
    chunks_match = _CHUNKS_DIRECTIVE.search(text_source)
    count = int(chunks_match.group(1)) if chunks_match else None
    return Reply(text=text, pieces=split_into_pieces(text, count), tool_name=tool_name)


def chat_reply(body: dict, default_text: str, *, structured: bool = True) -> Reply:
    """A tool call when tools were offered and the user spoke last, or whenever ``tool_choice``
    names a function (the model must then call it, as OpenAI's does), else text.

    With ``structured``, the text is JSON when ``response_format`` asks for structured output.
    Other APIs with OpenAI's messages and tools (Cohere v2, Mistral) take ``structured=False``.
    """
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    user_texts = [content_text(m.get("content")) for m in messages if m.get("role") == "user"]
    tool_name = None
    if last.get("role") == "user":
        tool_name = _first_function_name(body.get("tools"), nested=True)
    tool_name = _forced_function_name(body.get("tool_choice")) or tool_name
    if structured:
        default_text = structured_text(body.get("response_format"), default_text) or default_text
    reply = plan_reply(user_texts[-1] if user_texts else "", default_text, tool_name)
    called = _CALL_DIRECTIVE.search(user_texts[-1]) if tool_name and user_texts else None
    chosen = _function(body.get("tools"), called.group(1)) if called else None
    if chosen is not None:
        # ``call=NAME`` in the last user message: call that offered function, with arguments
        # that satisfy its schema.
        # ``args={...}`` (JSON without spaces) beside it sets some of those arguments.
        parameters = chosen.get("parameters") or {}
        arguments = schema_instance(parameters, parameters)
        given = _ARGS_DIRECTIVE.search(user_texts[-1])
        if given and isinstance(arguments, dict):
            arguments.update(json.loads(given.group(1)))
        reply = Reply(reply.text, reply.pieces, chosen["name"], json.dumps(arguments))
    return reply


def _function(tools: Any, name: str) -> Optional[dict]:
    """The chat request's function tool called ``name``, if offered."""
    for tool in tools or []:
        function = tool.get("function") or {}
        if tool.get("type") == "function" and function.get("name") == name:
            return function
    return None


def responses_reply(body: dict, default_text: str) -> Reply:
    """Same rule for the Responses API, whose ``input`` may be a bare string."""
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    items = items or []
    user_texts = [content_text(i.get("content")) for i in items if i.get("role") == "user"]
    last = items[-1] if items else {}
    tool_name = None
    if last.get("role") == "user":
        tool_name = _first_function_name(body.get("tools"), nested=False)
    output_format = (body.get("text") or {}).get("format")
    default_text = structured_text(output_format, default_text) or default_text
    return plan_reply(user_texts[-1] if user_texts else "", default_text, tool_name)


def structured_text(output_format: Any, default_text: str) -> Optional[str]:
    """The JSON a model returns under structured outputs, or None for plain text.

    ``json_schema`` gets a deterministic instance of the schema (so the SDK's
    ``.parse()`` helpers validate it); ``json_object`` gets a one-key object.
    Chat nests the schema under ``json_schema``; Responses' ``text.format`` is flat.
    """
    if not isinstance(output_format, dict):
        return None
    if output_format.get("type") == "json_object":
        return json.dumps({"message": default_text})
    if output_format.get("type") == "json_schema":
        schema = (output_format.get("json_schema") or output_format).get("schema") or {}
        return json.dumps(schema_instance(schema, schema))
    return None


_SAMPLE_VALUES = {"string": "sample", "integer": 1, "number": 1.5, "boolean": True, "null": None}


def schema_instance(schema: dict, root: dict) -> Any:
    """A small deterministic value satisfying ``schema`` (every property filled in)."""
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return schema_instance(target, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(combinator) or [] if o.get("type") != "null"]
        if options:
            return schema_instance(options[0], root)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {name: schema_instance(prop, root) for name, prop in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [schema_instance(schema.get("items") or {}, root)]
    return _SAMPLE_VALUES.get(kind, "sample")


def _forced_function_name(tool_choice: Any) -> Optional[str]:
    """The function a chat request's ``tool_choice`` makes the model call, if it names one."""
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        return (tool_choice.get("function") or {}).get("name")
    return None


def _first_function_name(tools: Any, *, nested: bool) -> Optional[str]:
    """Chat nests the name under ``function``; Responses tools are flat."""
    for tool in tools or []:
        if tool.get("type") == "function":
            return (tool.get("function") or {}).get("name") if nested else tool.get("name")
    return None


# ---------------------------------------------------------------------------
# Usage blocks
# ---------------------------------------------------------------------------


def chat_usage() -> dict:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": REASONING_TOKENS,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def responses_usage() -> dict:
    return {
        "input_tokens": PROMPT_TOKENS,
        "input_tokens_details": {"cached_tokens": CACHED_TOKENS, "cache_write_tokens": 0},
        "output_tokens": COMPLETION_TOKENS,
        "output_tokens_details": {"reasoning_tokens": REASONING_TOKENS},
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }


# ---------------------------------------------------------------------------
# Chat Completions
# ---------------------------------------------------------------------------

_SAFE = {"filtered": False, "severity": "safe"}
AZURE_CONTENT_FILTER = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
AZURE_PROMPT_FILTER = [{"prompt_index": 0, "content_filter_results": AZURE_CONTENT_FILTER}]


def _tool_call(name: str, arguments: str = TOOL_ARGUMENTS) -> dict:
    return {"id": TOOL_CALL_ID, "type": "function", "function": {"name": name, "arguments": arguments}}


def chat_completion(body: dict, reply: Reply, meta: Meta, *, azure: bool = False) -> dict:
    """A non-streaming ``chat.completion`` object with ``n`` identical choices."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
    finish_reason = "stop"
    if reply.tool_name:
        message.update(content=None, tool_calls=[_tool_call(reply.tool_name, reply.tool_arguments)])
        finish_reason = "tool_calls"
    choices = [
        {"index": i, "message": dict(message), "logprobs": None, "finish_reason": finish_reason}
        for i in range(_choice_count(body))
    ]
    completion = {
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": choices,
        "usage": chat_usage(),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if azure:
        for choice in choices:
            choice["content_filter_results"] = AZURE_CONTENT_FILTER
        completion["prompt_filter_results"] = AZURE_PROMPT_FILTER
    return completion


def _choice_count(body: dict) -> int:
    return max(int(body.get("n") or 1), 1)


def _chat_deltas(reply: Reply) -> list[tuple[dict, Optional[str]]]:
    """(delta, finish_reason) steps for one choice, first to last."""
    if reply.tool_name:
        function = {"name": reply.tool_name, "arguments": ""}
        header = {"index": 0, "id": TOOL_CALL_ID, "type": "function", "function": function}
        steps = [({"role": "assistant", "content": None, "tool_calls": [header], "refusal": None}, None)]
        for fragment in split_into_pieces(reply.tool_arguments, 4):
            steps.append(({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}, None))
        steps.append(({}, "tool_calls"))
        return steps
    steps = [({"role": "assistant", "content": "", "refusal": None}, None)]
    steps += [({"content": piece}, None) for piece in reply.pieces]
    steps.append(({}, "stop"))
    return steps


def chat_chunks(body: dict, reply: Reply, meta: Meta, *, azure: bool = False) -> Iterator[dict]:
    """The ``chat.completion.chunk`` objects of a stream, in order.

    Choices of ``n > 1`` are interleaved step by step, one choice per chunk.
    The usage chunk (``choices: []``) is sent only for
    ``stream_options.include_usage``; then every other chunk has ``usage: null``.
    """
    stream_options = body.get("stream_options") or {}
    include_usage = bool(stream_options.get("include_usage"))
    obfuscate = not azure and stream_options.get("include_obfuscation", True) is not False

    def chunk(choices: list[dict], usage: Any = None) -> dict:
        obj: dict[str, Any] = {
            "id": meta.id,
            "object": "chat.completion.chunk",
            "created": meta.created,
            "model": meta.model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        }
        if include_usage:
            obj["usage"] = usage
        if obfuscate:
            obj["obfuscation"] = OBFUSCATION
        return obj

    if azure:
        yield {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": AZURE_PROMPT_FILTER,
        }
    steps = _chat_deltas(reply)
    for delta, finish_reason in steps:
        for index in range(_choice_count(body)):
            choice = {"index": index, "delta": dict(delta), "logprobs": None, "finish_reason": finish_reason}
            if azure:
                choice["content_filter_results"] = AZURE_CONTENT_FILTER if delta.get("content") else {}
            yield chunk([choice])
    if include_usage:
        yield chunk([], chat_usage())


def is_content_chunk(obj: dict) -> bool:
    """True for a stream object that carries generated text or tool arguments.

    Used by the ``stream-error`` fault, which cuts the stream after two of them.
    """
    if obj.get("type") in ("response.output_text.delta", "response.function_call_arguments.delta"):
        return True
    for choice in obj.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content"):
            return True
        if any((call.get("function") or {}).get("arguments") for call in delta.get("tool_calls") or []):
            return True
    return False


# ---------------------------------------------------------------------------
# Responses API
# ---------------------------------------------------------------------------


def response_object(body: dict, meta: Meta, *, status: str, output: list, usage: Optional[dict]) -> dict:
    """A ``response`` object; request settings are echoed as the API does."""
    return {
        "id": meta.id,
        "object": "response",
        "created_at": meta.created,
        "status": status,
        "background": False,
        "completed_at": meta.created if status == "completed" else None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": meta.model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _output_text_part(text: str) -> dict:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message_item(item_id: str, status: str, content: list) -> dict:
    return {"id": item_id, "type": "message", "status": status, "content": content, "role": "assistant"}


def _function_call_item(item_id: str, status: str, name: str, arguments: str) -> dict:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": TOOL_CALL_ID,
        "name": name,
    }


def _completed_item(reply: Reply, item_id: str) -> dict:
    if reply.tool_name:
        return _function_call_item(item_id, "completed", reply.tool_name, TOOL_ARGUMENTS)
    return _message_item(item_id, "completed", [_output_text_part(reply.text)])


def _item_id(reply: Reply) -> str:
    return new_id("fc_" if reply.tool_name else "msg_")


def response(body: dict, reply: Reply, meta: Meta) -> dict:
    """The non-streaming, completed ``response`` object."""
    output = [_completed_item(reply, _item_id(reply))]
    return response_object(body, meta, status="completed", output=output, usage=responses_usage())


def response_events(body: dict, reply: Reply, meta: Meta) -> Iterator[dict]:
    """The server-sent events of a streamed response, each with its ``type``.

    ``sequence_number`` starts at 0 and increases by one per event.
    """
    item_id = _item_id(reply)
    events = _tool_call_events(reply, item_id) if reply.tool_name else _text_events(reply, item_id)
    in_progress = response_object(body, meta, status="in_progress", output=[], usage=None)
    completed = response_object(
        body, meta, status="completed", output=[_completed_item(reply, item_id)], usage=responses_usage()
    )
    sequence = [
        ("response.created", {"response": in_progress}),
        ("response.in_progress", {"response": in_progress}),
        *events,
        ("response.completed", {"response": completed}),
    ]
    for number, (event_type, fields) in enumerate(sequence):
        yield {"type": event_type, "sequence_number": number, **fields}


def _text_events(reply: Reply, item_id: str) -> list[tuple[str, dict]]:
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    events: list[tuple[str, dict]] = [
        ("response.output_item.added", {"output_index": 0, "item": _message_item(item_id, "in_progress", [])}),
        ("response.content_part.added", {**where, "part": _output_text_part("")}),
    ]
    for piece in reply.pieces:
        delta = {**where, "delta": piece, "logprobs": [], "obfuscation": OBFUSCATION}
        events.append(("response.output_text.delta", delta))
    events += [
        ("response.output_text.done", {**where, "text": reply.text, "logprobs": []}),
        ("response.content_part.done", {**where, "part": _output_text_part(reply.text)}),
        ("response.output_item.done", {"output_index": 0, "item": _completed_item(reply, item_id)}),
    ]
    return events


def _tool_call_events(reply: Reply, item_id: str) -> list[tuple[str, dict]]:
    assert reply.tool_name is not None
    where = {"item_id": item_id, "output_index": 0}
    added = _function_call_item(item_id, "in_progress", reply.tool_name, "")
    events: list[tuple[str, dict]] = [("response.output_item.added", {"output_index": 0, "item": added})]
    for fragment in split_into_pieces(TOOL_ARGUMENTS, 4):
        delta = {**where, "delta": fragment, "obfuscation": OBFUSCATION}
        events.append(("response.function_call_arguments.delta", delta))
    events += [
        ("response.function_call_arguments.done", {**where, "arguments": TOOL_ARGUMENTS}),
        ("response.output_item.done", {"output_index": 0, "item": _completed_item(reply, item_id)}),
    ]
    return events


# ---------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------


def _embedding_inputs(raw: Any) -> list[Any]:
    """Normalise ``input`` (str, [str], [int] or [[int]]) to one entry per vector."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        return [raw]
    return list(raw or [])


def _token_count(entry: Any) -> int:
    """Words of a string or length of a token list: deterministic stand-in for tokens."""
    return len(entry.split()) if isinstance(entry, str) else len(entry)


def embedding_vector(index: int, dimensions: int) -> list[float]:
    """Values are multiples of 1/64, so they survive float32 base64 exactly."""
    return [(index + 1) * (j + 1) / 64 * (1 if j % 2 == 0 else -1) for j in range(dimensions)]


def _encode_vector(vector: list[float], encoding_format: str) -> Any:
    """``base64`` is little-endian float32 bytes, what the SDK decodes by default."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def embeddings(body: dict) -> dict:
    """A ``list`` of embeddings; the SDK asks for base64 unless told otherwise."""
    inputs = _embedding_inputs(body.get("input"))
    dimensions = int(body.get("dimensions") or EMBEDDING_DIMENSIONS)
    encoding_format = body.get("encoding_format") or "float"
    tokens = sum(_token_count(entry) for entry in inputs)
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": _encode_vector(embedding_vector(i, dimensions), encoding_format),
            }
            for i in range(len(inputs))
        ],
        "model": body.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

_ERRORS: dict[int, tuple[str, Optional[str], str]] = {
    400: ("invalid_request_error", None, "Invalid request for model '{model}' (fake 400)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported.",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 20s.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error_body(status: int, model: str = "", message: Optional[str] = None, param: Optional[str] = None) -> dict:
    """OpenAI's error envelope: ``{"error": {message, type, param, code}}``."""
    err_type, code, template = _ERRORS.get(status, ("api_error", None, "Fake error {status}."))
    return {
        "error": {
            "message": message or template.format(model=model, status=status),
            "type": err_type,
            "param": param,
            "code": code,
        }
    }


# ---------------------------------------------------------------------------
# Legacy completions (/v1/completions)
# ---------------------------------------------------------------------------

COMPLETION_TEXT = " Hello from fake OpenAI"


def text_completion(body: dict, meta: Meta) -> dict:
    """A ``text_completion`` object: ``n`` text choices per prompt, chat's usage shape."""
    prompts = (
        body.get("prompt")
        if isinstance(body.get("prompt"), list) and body["prompt"] and isinstance(body["prompt"][0], str)
        else [body.get("prompt")]
    )
    count = len(prompts) * _choice_count(body)
    return {
        "id": meta.id,
        "object": "text_completion",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {"text": COMPLETION_TEXT, "index": i, "logprobs": None, "finish_reason": "length" if i else "stop"}
            for i in range(count)
        ],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
    }


def text_completion_chunks(body: dict, meta: Meta) -> Iterator[dict]:
    """A streamed completion: text pieces, a finish reason, then (if asked) a usage-only chunk.
    Unlike chat chunks, ``usage`` appears only on that last chunk."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(choices: list) -> dict:
        return {
            "id": meta.id,
            "object": "text_completion",
            "created": meta.created,
            "model": meta.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        }

    for piece in split_into_pieces(COMPLETION_TEXT, 3):
        yield chunk([{"text": piece, "index": 0, "logprobs": None, "finish_reason": None}])
    yield chunk([{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}])
    if include_usage:
        yield dict(
            chunk([]),
            usage={
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
            },
        )


# ---------------------------------------------------------------------------
# Audio (/v1/audio/transcriptions, /translations: multipart uploads; /speech: JSON in, audio out)
# ---------------------------------------------------------------------------

TRANSCRIPT = "Hello from a fake transcript"
TRANSLATION = "Hello from a fake translation"
AUDIO_SECONDS = 9
AUDIO_DURATION = 8.47
# gpt-4o-transcribe's token usage: input tokens are the audio's plus the prompt's
TRANSCRIBE_USAGE = {
    "type": "tokens",
    "input_tokens": 14,
    "input_token_details": {"text_tokens": 4, "audio_tokens": 10},
    "output_tokens": 45,
    "total_tokens": 59,
}
SPEECH_AUDIO = b"ID3\x04\x00fake-mp3-speech-bytes"


def _duration_billed(model: str) -> bool:
    return model.startswith("whisper")


def transcription(form: dict, translate: bool = False) -> Any:
    """The answer for ``response_format``: a JSON object (``json``, ``verbose_json``) or text.
    whisper-1 reports the seconds of audio it was billed for; the gpt-4o models their tokens;
    translations (whisper-1 only) report no usage."""
    model = form.get("model", "")
    text = TRANSLATION if translate else TRANSCRIPT
    response_format = form.get("response_format") or "json"
    if response_format in ("text", "srt", "vtt"):
        return text + "\n"
    usage = (
        None
        if translate
        else ({"type": "duration", "seconds": AUDIO_SECONDS} if _duration_billed(model) else TRANSCRIBE_USAGE)
    )
    result: dict[str, Any] = {"text": text}
    if response_format == "verbose_json":
        result = {
            "task": "translate" if translate else "transcribe",
            "language": "english",
            "duration": AUDIO_DURATION,
            "text": text,
            "segments": [
                {
                    "id": 0,
                    "seek": 0,
                    "start": 0.0,
                    "end": AUDIO_DURATION,
                    "text": text,
                    "tokens": [50364],
                    "temperature": 0.0,
                    "avg_logprob": -0.2,
                    "compression_ratio": 1.1,
                    "no_speech_prob": 0.01,
                }
            ],
        }
    if usage is not None:
        result["usage"] = usage
    return result


def transcription_events(form: dict) -> Iterator[dict]:
    """A streamed transcription (gpt-4o models): text deltas, then the whole text with usage."""
    for piece in split_into_pieces(TRANSCRIPT, 3):
        yield {"type": "transcript.text.delta", "delta": piece, "logprobs": None}
    yield {"type": "transcript.text.done", "text": TRANSCRIPT, "logprobs": None, "usage": TRANSCRIBE_USAGE}


# ---------------------------------------------------------------------------
# Images (/v1/images/generations: JSON; /edits, /variations: multipart uploads)
# ---------------------------------------------------------------------------

# What a gpt-image model returns inline; tests check it never reaches an export.
IMAGE_BYTES = b"\x89PNG\r\n\x1a\nfake-generated-image-bytes"
IMAGE_B64 = base64.b64encode(IMAGE_BYTES).decode()
IMAGE_URL = "https://oaidalleapiprodscus.blob.core.windows.net/private/org-fake/img-{index}.png?se=2026&sig=fake"
REVISED_PROMPT = "A revised prompt for the fake image"


def images_response(body: dict, edit: bool = False) -> dict:
    """dall-e models answer with URLs (unless ``b64_json`` is asked) and no usage; gpt-image
    models always inline base64 and report token usage (image tokens in and out)."""
    model = body.get("model") or "dall-e-2"
    count = max(int(body.get("n") or 1), 1)
    now = int(time.time())
    if model.startswith("dall-e"):
        inline = body.get("response_format") == "b64_json"
        data = []
        for index in range(count):
            item: dict[str, Any] = {"b64_json": IMAGE_B64} if inline else {"url": IMAGE_URL.format(index=index)}
            if model == "dall-e-3":
                item["revised_prompt"] = REVISED_PROMPT
            data.append(item)
        return {"created": now, "data": data}
    image_in = 323 if edit else 0
    text_in = 17
    image_out = 272 * count
    return {
        "created": now,
        "background": "opaque",
        "data": [{"b64_json": IMAGE_B64} for _ in range(count)],
        "output_format": body.get("output_format") or "png",
        "quality": body.get("quality") or "low",
        "size": body.get("size") or "1024x1024",
        "usage": {
            "input_tokens": image_in + text_in,
            "input_tokens_details": {"image_tokens": image_in, "text_tokens": text_in},
            "output_tokens": image_out,
            "total_tokens": image_in + text_in + image_out,
            "output_tokens_details": {"image_tokens": image_out, "text_tokens": 0},
        },
    }


def image_events(body: dict, edit: bool = False) -> Iterator[dict]:
    """A streamed gpt-image generation: a partial image, then the completed one with usage."""
    prefix = "image_edit" if edit else "image_generation"
    final = images_response(dict(body, n=1), edit)
    common = {
        "background": "opaque",
        "created_at": final["created"],
        "output_format": final["output_format"],
        "quality": final["quality"],
        "size": final["size"],
    }
    yield dict(common, type=f"{prefix}.partial_image", b64_json=IMAGE_B64, partial_image_index=0)
    yield dict(common, type=f"{prefix}.completed", b64_json=IMAGE_B64, usage=final["usage"])
