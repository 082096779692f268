"""AWS Bedrock adapter (boto3 / botocore): Converse, ConverseStream, InvokeModel and
InvokeModelWithResponseStream.

boto3 builds its client classes at run time, so there is no ``converse`` method to patch; every
call goes through ``botocore.client.BaseClient._make_api_call``. We patch that once at class level,
which covers clients created before and after start-up alike, and look only at the four
``bedrock-runtime`` inference operations; every other AWS call passes straight through.

InvokeModel bodies are each model family's own JSON. Rather than trusting the model id (inference
profiles and ARNs hide it), the translation reads the body's shape: Anthropic messages, Amazon Nova
(Converse-like blocks), Titan text and embeddings, Meta Llama, Mistral (text and chat), Cohere
(Command, Command R, Embed) and the OpenAI-like chat bodies of newer models. Token counts come from
the body where the family reports them, else from Bedrock's ``x-amzn-bedrock-*-token-count``
headers (streams: the last chunk's ``amazon-bedrock-invocationMetrics``). Bedrock reports input
tokens without cache reads and writes; the conventions count them in, so we add them.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from typing import Any, Optional

import wrapt

from ..formats import openai_chat
from ..formats.endpoints import host_and_port
from ..genai import InferenceCall, InferenceRequest, StreamAccumulator, SyncStreamProxy, Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Operation, Provider
from .base import CallHandler, LLMInstrumentor, Target, _sync_wrapper, number

logger = logging.getLogger("posthog_autoinstrument")

SERVICE = "bedrock-runtime"
CONVERSE = "Converse"
CONVERSE_STREAM = "ConverseStream"
INVOKE = "InvokeModel"
INVOKE_STREAM = "InvokeModelWithResponseStream"
_OPERATIONS = frozenset({CONVERSE, CONVERSE_STREAM, INVOKE, INVOKE_STREAM})

_METRICS_KEY = "amazon-bedrock-invocationMetrics"
_HEADER_INPUT = "x-amzn-bedrock-input-token-count"
_HEADER_OUTPUT = "x-amzn-bedrock-output-token-count"
_HEADER_CACHE_READ = "x-amzn-bedrock-cache-read-input-token-count"
_HEADER_CACHE_WRITE = "x-amzn-bedrock-cache-write-input-token-count"

# Finish reasons as the conventions name them; unknown values pass through unchanged.
_FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "stop": "stop", "eos": "stop",
    "max_tokens": "length", "length": "length", "model_context_window_exceeded": "length",
    "tool_use": "tool_call", "tool_calls": "tool_call",
    "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
    # Titan
    "FINISH": "stop", "FINISHED": "stop", "LENGTH": "length", "CONTENT_FILTERED": "content_filter",
    "STOP_CRITERIA_MET": "stop", "RAG_QUERY_WHEN_RAG_DISABLED": "stop",
    # Cohere
    "COMPLETE": "stop", "MAX_TOKENS": "length", "ERROR_TOXIC": "content_filter", "ERROR": "error",
    "ERROR_LIMIT": "length", "USER_CANCEL": "cancelled", "TOOL_CALL": "tool_call",
}

# Cross-region inference profile prefixes in front of a model id ("us.anthropic.claude-...").
_VENDORS = frozenset({"anthropic", "amazon", "meta", "mistral", "cohere", "ai21", "deepseek", "openai",
                      "qwen", "writer", "twelvelabs", "stability", "luma", "moonshot", "minimax"})


def _finish_reason(reason: Any) -> Optional[str]:
    if not reason or not isinstance(reason, str):
        return None
    return _FINISH_REASONS.get(reason, reason)


def _int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def vendor_of(model_id: Any) -> Optional[str]:
    """``us.anthropic.claude-...`` -> ``anthropic``; ARNs of custom models and profiles -> None."""
    if not isinstance(model_id, str):
        return None
    ident = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    for segment in ident.split(".")[:2]:
        if segment in _VENDORS:
            return segment
    return None


def _usage(input_tokens: Any, output_tokens: Any, cache_read: Any = None, cache_write: Any = None) -> Optional[Usage]:
    """Bedrock counts input without cache reads and writes; the conventions count them in."""
    fresh, read, write = _int(input_tokens), _int(cache_read), _int(cache_write)
    total = None if fresh is None else fresh + (read or 0) + (write or 0)
    if total is None and _int(output_tokens) is None:
        return None
    return Usage(input_tokens=total, output_tokens=_int(output_tokens),
                 cache_read_input_tokens=read, cache_creation_input_tokens=write)


def _merge(primary: Optional[Usage], fallback: Optional[Usage]) -> Optional[Usage]:
    if primary is None or fallback is None:
        return primary or fallback
    for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        if getattr(primary, name) is None:
            setattr(primary, name, getattr(fallback, name))
    return primary


def _invocation_metrics_usage(metrics: Any) -> Optional[Usage]:
    if not isinstance(metrics, dict):
        return None
    return _usage(metrics.get("inputTokenCount"), metrics.get("outputTokenCount"),
                  metrics.get("cacheReadInputTokenCount"), metrics.get("cacheWriteInputTokenCount"))


# -- content blocks (Converse, Nova) ------------------------------------------------------


def _b64(data: Any) -> str:
    if isinstance(data, (bytes, bytearray)):
        return base64.b64encode(data).decode("ascii")
    return str(data)


def _media(modality: str, block: dict, mime_prefix: str) -> dict:
    fmt = block.get("format")
    mime = f"{mime_prefix}/{fmt}" if fmt else None
    source = block.get("source") or {}
    if "bytes" in source:
        return m.blob(modality, mime, _b64(source["bytes"]))
    location = source.get("s3Location")
    if isinstance(location, dict) and location.get("uri"):
        return m.uri(modality, location["uri"], mime)
    if isinstance(source.get("text"), str):
        return m.text(source["text"])
    return m.generic(modality)


_DOCUMENT_MIME = {"pdf": "application/pdf", "csv": "text/csv", "html": "text/html", "txt": "text/plain",
                  "md": "text/markdown", "doc": "application/msword", "json": "application/json",
                  "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                  "xls": "application/vnd.ms-excel",
                  "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _tool_result_value(content: Any) -> Any:
    values = []
    for item in content or ():
        if not isinstance(item, dict):
            continue
        if "text" in item:
            values.append(item["text"])
        elif "json" in item:
            values.append(item["json"])
        else:
            values.append({"type": next(iter(item), "unknown")})
    return values[0] if len(values) == 1 else values


def block_parts(content: Any) -> list:
    """Converse (and Nova) content blocks as parts."""
    if isinstance(content, str):
        return [m.text(content)]
    parts = []
    for block in content or ():
        if not isinstance(block, dict):
            continue
        if "text" in block:
            parts.append(m.text(block["text"]))
        elif "toolUse" in block:
            use = block["toolUse"] or {}
            parts.append(m.tool_call(use.get("toolUseId"), use.get("name"), use.get("input")))
        elif "toolResult" in block:
            result = block["toolResult"] or {}
            parts.append(m.tool_call_response(result.get("toolUseId"), _tool_result_value(result.get("content"))))
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"] or {}
            text = (reasoning.get("reasoningText") or {}).get("text")
            if text:
                parts.append(m.reasoning(text))
            elif reasoning.get("redactedContent"):
                parts.append(m.generic("reasoning", content="[redacted]"))
        elif "image" in block:
            parts.append(_media("image", block["image"] or {}, "image"))
        elif "video" in block:
            parts.append(_media("video", block["video"] or {}, "video"))
        elif "document" in block:
            document = block["document"] or {}
            part = _media("document", {**document, "format": None}, "")
            if part.get("type") in ("blob", "uri") and document.get("format") in _DOCUMENT_MIME:
                part["mime_type"] = _DOCUMENT_MIME[document["format"]]
            parts.append(part)
        elif "guardContent" in block:
            text = ((block["guardContent"] or {}).get("text") or {}).get("text")
            if text:
                parts.append(m.text(text))
        elif "cachePoint" in block:
            continue
        elif "citationsContent" in block:
            for item in (block["citationsContent"] or {}).get("content") or ():
                if isinstance(item, dict) and "text" in item:
                    parts.append(m.text(item["text"]))
        else:
            parts.append(m.generic(next(iter(block), "unknown")))
    return parts


def _block_messages(messages: Any) -> list:
    return [m.message(msg.get("role") or "user", block_parts(msg.get("content")))
            for msg in messages or () if isinstance(msg, dict)]


def _system_parts(system: Any) -> list:
    if isinstance(system, str):
        return [m.text(system)] if system else []
    return [part for part in block_parts(system) if part.get("type") == "text"]


def _converse_tools(tool_config: Any) -> list:
    definitions = []
    tools = tool_config.get("tools") if isinstance(tool_config, dict) else None
    for tool in tools or ():
        if not isinstance(tool, dict):
            continue
        spec = tool.get("toolSpec")
        if isinstance(spec, dict):
            schema = (spec.get("inputSchema") or {}).get("json")
            definitions.append(m.function_tool(spec.get("name"), spec.get("description"), schema))
        elif isinstance(tool.get("systemTool"), dict):
            definitions.append(m.other_tool("system_tool", name=tool["systemTool"].get("name")))
    return definitions


# -- Anthropic messages bodies --------------------------------------------------------------


def anthropic_parts(content: Any) -> list:
    if isinstance(content, str):
        return [m.text(content)]
    parts = []
    for block in content or ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(m.text(block.get("text", "")))
        elif kind == "tool_use":
            parts.append(m.tool_call(block.get("id"), block.get("name"), block.get("input")))
        elif kind == "tool_result":
            result = block.get("content")
            if isinstance(result, list):
                result = _tool_result_value([{"text": b.get("text")} if b.get("type") == "text" else {b.get("type"): b}
                                             for b in result if isinstance(b, dict)])
            parts.append(m.tool_call_response(block.get("tool_use_id"), result))
        elif kind == "thinking":
            parts.append(m.reasoning(block.get("thinking", "")))
        elif kind == "redacted_thinking":
            parts.append(m.generic("reasoning", content="[redacted]"))
        elif kind in ("image", "document"):
            source = block.get("source") or {}
            modality = "image" if kind == "image" else "document"
            if source.get("type") == "base64":
                parts.append(m.blob(modality, source.get("media_type"), source.get("data", "")))
            elif source.get("type") == "url":
                parts.append(m.uri(modality, source.get("url", "")))
            elif source.get("type") == "text":
                parts.append(m.text(source.get("data", "")))
            else:
                parts.append(m.generic(modality))
        else:
            parts.append(m.generic(kind or "unknown"))
    return parts


def _anthropic_tools(tools: Any) -> list:
    definitions = []
    for tool in tools or ():
        if not isinstance(tool, dict):
            continue
        if tool.get("input_schema") is not None or tool.get("type") in (None, "custom"):
            definitions.append(m.function_tool(tool.get("name"), tool.get("description"), tool.get("input_schema")))
        else:
            definitions.append(m.other_tool(tool.get("type"), name=tool.get("name")))
    return definitions


# -- InvokeModel request bodies -----------------------------------------------------------

_MAX_TOKENS_KEYS = ("max_tokens", "max_gen_len", "max_tokens_to_sample", "maxTokens", "max_new_tokens",
                    "maxTokenCount", "max_completion_tokens")
_TOP_P_KEYS = ("top_p", "topP", "p")
_TOP_K_KEYS = ("top_k", "topK", "k")
_STOP_KEYS = ("stop_sequences", "stopSequences", "stop")


def _first_key(containers: list, keys: tuple) -> Any:
    for container in containers:
        for key in keys:
            value = container.get(key)
            if value is not None:
                return value
    return None


def parse_body(body: Any) -> Optional[dict]:
    """The JSON request body the app passed (bytes, bytearray or str); file objects are left alone."""
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body)
    elif not isinstance(body, str):
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def body_operation(body: dict, model_id: Any) -> str:
    if "texts" in body or "embedding_types" in body or ("inputText" in body and "textGenerationConfig" not in body and (
            "embed" in str(model_id) or "dimensions" in body or "inputImage" in body or "embeddingConfig" in body)):
        return Operation.EMBEDDINGS
    if "messages" in body or "message" in body:
        return Operation.CHAT
    return Operation.TEXT_COMPLETION


def fill_request_from_body(request: InferenceRequest, body: dict) -> None:
    containers = [body]
    for key in ("inferenceConfig", "textGenerationConfig"):
        if isinstance(body.get(key), dict):
            containers.append(body[key])
    request.max_tokens = number(_first_key(containers, _MAX_TOKENS_KEYS))
    request.temperature = number(_first_key(containers, ("temperature",)))
    request.top_p = number(_first_key(containers, _TOP_P_KEYS))
    request.top_k = number(_first_key(containers, _TOP_K_KEYS))
    stops = _first_key(containers, _STOP_KEYS)
    request.stop_sequences = stops if isinstance(stops, (list, str)) else None
    request.seed = number(body.get("seed"))
    request.frequency_penalty = number(body.get("frequency_penalty"))
    request.presence_penalty = number(body.get("presence_penalty"))


def body_input(body: dict, vendor: Optional[str]) -> tuple:
    """(messages, system instructions, tool definitions) of an InvokeModel request body."""
    messages = body.get("messages")
    if isinstance(messages, list):
        first = next((msg for msg in messages if isinstance(msg, dict)), {})
        content = first.get("content")
        if "anthropic_version" in body or vendor == "anthropic":
            return ([m.message(msg.get("role") or "user", anthropic_parts(msg.get("content")))
                     for msg in messages if isinstance(msg, dict)],
                    _system_parts(body.get("system")), _anthropic_tools(body.get("tools")))
        if "schemaVersion" in body or "inferenceConfig" in body or vendor == "amazon" or (
                isinstance(content, list) and content and isinstance(content[0], dict) and "type" not in content[0]):
            return (_block_messages(messages), _system_parts(body.get("system")),
                    _converse_tools(body.get("toolConfig")))
        # OpenAI-like chat bodies (Mistral Large, AI21 Jamba, DeepSeek, OpenAI open-weight models).
        return [openai_chat.input_message(msg) for msg in messages], [], openai_chat.tool_definitions(body.get("tools"))
    if isinstance(body.get("message"), str):  # Cohere Command R
        history = []
        for turn in body.get("chat_history") or ():
            if isinstance(turn, dict):
                role = {"USER": "user", "CHATBOT": "assistant", "SYSTEM": "system"}.get(turn.get("role"), "user")
                history.append(m.message(role, [m.text(turn.get("message", ""))]))
        history.append(m.message("user", [m.text(body["message"])]))
        preamble = body.get("preamble")
        tools = [m.function_tool(t.get("name"), t.get("description"), t.get("parameter_definitions"))
                 for t in body.get("tools") or () if isinstance(t, dict)]
        return history, [m.text(preamble)] if isinstance(preamble, str) and preamble else [], tools
    if isinstance(body.get("texts"), list):  # Cohere Embed
        return [m.message("user", [m.text(t)]) for t in body["texts"] if isinstance(t, str)], [], []
    for key in ("inputText", "prompt"):  # Titan, Llama, Mistral, Cohere Command, Claude text completions
        if isinstance(body.get(key), str):
            return [m.message("user", [m.text(body[key])])], [], []
    return [], [], []


# -- InvokeModel response bodies ----------------------------------------------------------


class Result:
    """What one model response said, whatever its family's body shape."""

    __slots__ = ("parts", "finish_reason", "usage", "model", "response_id", "dimensions")

    def __init__(self):
        self.parts: list = []
        self.finish_reason: Optional[str] = None
        self.usage: Optional[Usage] = None
        self.model: Optional[str] = None
        self.response_id: Optional[str] = None
        self.dimensions: Optional[int] = None


def read_response_body(data: dict) -> Result:
    result = Result()
    if data.get("type") == "message" or ("content" in data and "stop_reason" in data):  # Anthropic
        result.parts = anthropic_parts(data.get("content"))
        result.finish_reason = _finish_reason(data.get("stop_reason"))
        usage = data.get("usage") or {}
        result.usage = _usage(usage.get("input_tokens"), usage.get("output_tokens"),
                              usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens"))
        result.model, result.response_id = data.get("model"), data.get("id")
    elif isinstance(data.get("output"), dict):  # Nova (Converse-shaped)
        message = data["output"].get("message") or {}
        result.parts = block_parts(message.get("content"))
        result.finish_reason = _finish_reason(data.get("stopReason"))
        usage = data.get("usage") or {}
        result.usage = _usage(usage.get("inputTokens"), usage.get("outputTokens"),
                              usage.get("cacheReadInputTokenCount", usage.get("cacheReadInputTokens")),
                              usage.get("cacheWriteInputTokenCount", usage.get("cacheWriteInputTokens")))
    elif isinstance(data.get("results"), list):  # Titan text
        outputs = [r for r in data["results"] if isinstance(r, dict)]
        result.parts = [m.text(r.get("outputText", "")) for r in outputs[:1]]
        result.finish_reason = _finish_reason(outputs[0].get("completionReason")) if outputs else None
        output_tokens = sum(_int(r.get("tokenCount")) or 0 for r in outputs) if outputs else None
        result.usage = _usage(data.get("inputTextTokenCount"), output_tokens)
    elif "embedding" in data or "embeddingsByType" in data:  # Titan embeddings
        vector = data.get("embedding")
        result.dimensions = len(vector) if isinstance(vector, list) else None
        result.usage = _usage(data.get("inputTextTokenCount"), None)
    elif "embeddings" in data:  # Cohere embed
        vectors = data["embeddings"]
        if isinstance(vectors, dict):  # embedding_types given: {"float": [[...]]}
            vectors = next(iter(vectors.values()), None)
        if isinstance(vectors, list) and vectors and isinstance(vectors[0], list):
            result.dimensions = len(vectors[0])
        result.response_id = data.get("id")
    elif "generation" in data:  # Meta Llama
        result.parts = [m.text(data.get("generation") or "")]
        result.finish_reason = _finish_reason(data.get("stop_reason"))
        result.usage = _usage(data.get("prompt_token_count"), data.get("generation_token_count"))
    elif isinstance(data.get("outputs"), list):  # Mistral text
        outputs = [o for o in data["outputs"] if isinstance(o, dict)]
        result.parts = [m.text(o.get("text", "")) for o in outputs[:1]]
        result.finish_reason = _finish_reason(outputs[0].get("stop_reason")) if outputs else None
    elif isinstance(data.get("choices"), list):  # OpenAI-like chat (Mistral Large, Jamba, ...)
        choice = next((c for c in data["choices"] if isinstance(c, dict)), {})
        message = choice.get("message") or {}
        result.parts = openai_chat.content_parts(message.get("content"))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            result.parts.append(m.tool_call(call.get("id"), function.get("name"), function.get("arguments")))
        result.finish_reason = _finish_reason(choice.get("finish_reason") or choice.get("stop_reason"))
        usage = data.get("usage") or {}
        result.usage = _usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        result.model, result.response_id = data.get("model"), data.get("id")
    elif isinstance(data.get("generations"), list):  # Cohere Command
        generations = [g for g in data["generations"] if isinstance(g, dict)]
        result.parts = [m.text(g.get("text", "")) for g in generations[:1]]
        result.finish_reason = _finish_reason(generations[0].get("finish_reason")) if generations else None
        result.response_id = data.get("id")
    elif "text" in data and ("response_id" in data or "generation_id" in data or "finish_reason" in data):  # Command R
        result.parts = [m.text(data["text"])] if data.get("text") else []
        for call in data.get("tool_calls") or ():
            if isinstance(call, dict):
                result.parts.append(m.tool_call(None, call.get("name"), call.get("parameters")))
        result.finish_reason = _finish_reason(data.get("finish_reason"))
        billed = (data.get("meta") or {}).get("billed_units") or {}
        result.usage = _usage(billed.get("input_tokens"), billed.get("output_tokens"))
        result.response_id = data.get("response_id")
    elif "completion" in data:  # Claude text completions
        result.parts = [m.text(data.get("completion") or "")]
        result.finish_reason = _finish_reason(data.get("stop_reason"))
    return result


def _header_usage(response: dict) -> Optional[Usage]:
    headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    return _usage(headers.get(_HEADER_INPUT), headers.get(_HEADER_OUTPUT),
                  headers.get(_HEADER_CACHE_READ), headers.get(_HEADER_CACHE_WRITE))


def _request_id(response: Any) -> Optional[str]:
    if isinstance(response, dict):
        return (response.get("ResponseMetadata") or {}).get("RequestId")
    return None


def _record_result(call: InferenceCall, result: Result, usage: Optional[Usage], request_id: Optional[str]) -> None:
    call.set_response(
        model=result.model,
        response_id=result.response_id,
        finish_reasons=[result.finish_reason] if result.finish_reason else None,
        usage=usage,
        attributes={semconv.AWS_REQUEST_ID: request_id,
                    semconv.EMBEDDINGS_DIMENSION_COUNT: result.dimensions},
    )
    if call.capture_content and result.parts:
        call.set_output([m.output_message(result.parts, result.finish_reason)])


# -- streams ---------------------------------------------------------------------------------


class _Blocks:
    """Content assembled from streamed deltas, in block order."""

    __slots__ = ("blocks", "enabled")

    def __init__(self, enabled: bool = True):
        self.blocks: dict = {}  # index -> [kind, pieces, tool id, tool name]
        self.enabled = enabled  # off when content is not captured: nothing is kept

    def block(self, index: Any, kind: str) -> list:
        key = index if isinstance(index, int) else 0
        entry = self.blocks.get(key)
        if entry is None:
            entry = self.blocks[key] = [kind, [], None, None]
        elif entry[0] == "text" and kind != "text" and not entry[1]:
            entry[0] = kind
        return entry

    def text(self, index: Any, piece: Any) -> None:
        if self.enabled and isinstance(piece, str) and piece:
            self.block(index, "text")[1].append(piece)

    def reasoning(self, index: Any, piece: Any) -> None:
        if self.enabled and isinstance(piece, str) and piece:
            self.block(index, "reasoning")[1].append(piece)

    def tool(self, index: Any, call_id: Any = None, name: Any = None, arguments: Any = None) -> None:
        if not self.enabled:
            return
        entry = self.block(index, "tool_call")
        entry[0] = "tool_call"
        if call_id:
            entry[2] = call_id
        if name:
            entry[3] = name
        if isinstance(arguments, str) and arguments:
            entry[1].append(arguments)

    def parts(self) -> list:
        parts = []
        for index in sorted(self.blocks):
            kind, pieces, call_id, name = self.blocks[index]
            if kind == "tool_call":
                parts.append(m.tool_call(call_id, name, "".join(pieces) or {}))
            elif kind == "reasoning":
                parts.append(m.reasoning("".join(pieces)))
            elif pieces:
                parts.append(m.text("".join(pieces)))
        return parts


class ConverseStreamAccumulator(StreamAccumulator):
    """Folds ConverseStream events (messageStart ... messageStop, metadata)."""

    __slots__ = ("capture", "content", "finish_reason", "usage", "request_id")

    def __init__(self, capture: bool, request_id: Optional[str]):
        self.capture = capture
        self.content = _Blocks(capture)
        self.finish_reason: Optional[str] = None
        self.usage: Optional[Usage] = None
        self.request_id = request_id

    def on_chunk(self, event: Any) -> bool:
        if not isinstance(event, dict):
            return False
        if "contentBlockDelta" in event:
            if self.capture:
                body = event["contentBlockDelta"]
                index, delta = body.get("contentBlockIndex"), body.get("delta") or {}
                if "text" in delta:
                    self.content.text(index, delta["text"])
                elif "toolUse" in delta:
                    self.content.tool(index, arguments=(delta["toolUse"] or {}).get("input"))
                elif "reasoningContent" in delta:
                    self.content.reasoning(index, (delta["reasoningContent"] or {}).get("text"))
        elif "contentBlockStart" in event:
            body = event["contentBlockStart"]
            use = (body.get("start") or {}).get("toolUse")
            if isinstance(use, dict):
                self.content.tool(body.get("contentBlockIndex"), use.get("toolUseId"), use.get("name"))
        elif "messageStop" in event:
            self.finish_reason = _finish_reason(event["messageStop"].get("stopReason"))
        elif "metadata" in event:
            usage = event["metadata"].get("usage") or {}
            self.usage = _usage(usage.get("inputTokens"), usage.get("outputTokens"),
                                usage.get("cacheReadInputTokens"), usage.get("cacheWriteInputTokens"))
        return False

    def finish(self, call: InferenceCall) -> None:
        result = Result()
        result.finish_reason = self.finish_reason
        result.parts = self.content.parts() if self.capture else []
        _record_result(call, result, self.usage, self.request_id)


class InvokeStreamAccumulator(StreamAccumulator):
    """Folds InvokeModelWithResponseStream chunks, whichever model family wrote them."""

    __slots__ = ("capture", "content", "finish_reason", "body_usage", "metrics_usage", "model", "response_id",
                 "request_id")

    def __init__(self, capture: bool, request_id: Optional[str]):
        self.capture = capture
        self.content = _Blocks(capture)
        self.finish_reason: Optional[str] = None
        self.body_usage: dict = {}
        self.metrics_usage: Optional[Usage] = None
        self.model: Optional[str] = None
        self.response_id: Optional[str] = None
        self.request_id = request_id

    def on_chunk(self, event: Any) -> bool:
        chunk = event.get("chunk") if isinstance(event, dict) else None
        data = chunk.get("bytes") if isinstance(chunk, dict) else None
        if not data:
            return False
        try:
            payload = json.loads(data)
        except ValueError:
            return False
        if isinstance(payload, dict):
            self._fold(payload)
        return False

    def _fold(self, data: dict) -> None:
        metrics = data.get(_METRICS_KEY)
        if metrics is not None:
            self.metrics_usage = _invocation_metrics_usage(metrics)
        usage = self.body_usage
        kind = data.get("type")
        if isinstance(kind, str):  # Anthropic messages events
            self._fold_anthropic(kind, data)
        elif any(k in data for k in ("contentBlockDelta", "contentBlockStart", "messageStop", "metadata")):  # Nova
            if "contentBlockDelta" in data:
                body = data["contentBlockDelta"]
                delta = body.get("delta") or {}
                if "text" in delta:
                    self.content.text(body.get("contentBlockIndex"), delta["text"])
                elif "toolUse" in delta:
                    self.content.tool(body.get("contentBlockIndex"), arguments=(delta["toolUse"] or {}).get("input"))
                elif "reasoningContent" in delta:
                    self.content.reasoning(body.get("contentBlockIndex"), (delta["reasoningContent"] or {}).get("text"))
            elif "contentBlockStart" in data:
                body = data["contentBlockStart"]
                use = (body.get("start") or {}).get("toolUse")
                if isinstance(use, dict):
                    self.content.tool(body.get("contentBlockIndex"), use.get("toolUseId"), use.get("name"))
            elif "messageStop" in data:
                self.finish_reason = _finish_reason(data["messageStop"].get("stopReason"))
            else:
                meta = data["metadata"].get("usage") or {}
                usage.update(input=meta.get("inputTokens"), output=meta.get("outputTokens"),
                             read=meta.get("cacheReadInputTokenCount", meta.get("cacheReadInputTokens")),
                             write=meta.get("cacheWriteInputTokenCount", meta.get("cacheWriteInputTokens")))
        elif "outputText" in data:  # Titan
            self.content.text(0, data.get("outputText"))
            self.finish_reason = _finish_reason(data.get("completionReason")) or self.finish_reason
            if data.get("inputTextTokenCount") is not None:
                usage["input"] = data["inputTextTokenCount"]
            if data.get("totalOutputTextTokenCount") is not None:
                usage["output"] = data["totalOutputTextTokenCount"]
        elif "generation" in data:  # Llama
            self.content.text(0, data.get("generation"))
            self.finish_reason = _finish_reason(data.get("stop_reason")) or self.finish_reason
            if data.get("prompt_token_count") is not None:
                usage["input"] = data["prompt_token_count"]
            if data.get("generation_token_count") is not None:
                usage["output"] = data["generation_token_count"]
        elif isinstance(data.get("outputs"), list):  # Mistral text
            for output in data["outputs"][:1]:
                if isinstance(output, dict):
                    self.content.text(0, output.get("text"))
                    self.finish_reason = _finish_reason(output.get("stop_reason")) or self.finish_reason
        elif isinstance(data.get("choices"), list):  # OpenAI-like chat
            self.model = data.get("model") or self.model
            self.response_id = data.get("id") or self.response_id
            for choice in data["choices"][:1]:
                if not isinstance(choice, dict):
                    continue
                delta = choice.get("delta") or choice.get("message") or {}
                self.content.text(0, delta.get("content"))
                for fragment in delta.get("tool_calls") or ():
                    function = fragment.get("function") or {}
                    index = fragment.get("index") if isinstance(fragment.get("index"), int) else 0
                    self.content.tool(index + 1, fragment.get("id"), function.get("name"), function.get("arguments"))
                self.finish_reason = _finish_reason(choice.get("finish_reason") or choice.get("stop_reason")) or self.finish_reason
            if isinstance(data.get("usage"), dict):
                usage.update(input=data["usage"].get("prompt_tokens"), output=data["usage"].get("completion_tokens"))
        elif "event_type" in data:  # Cohere Command R
            if data["event_type"] == "text-generation":
                self.content.text(0, data.get("text"))
            elif data["event_type"] == "stream-end":
                self.finish_reason = _finish_reason(data.get("finish_reason"))
                response = data.get("response") or {}
                self.response_id = response.get("response_id")
                billed = (response.get("meta") or {}).get("billed_units") or {}
                usage.update(input=billed.get("input_tokens"), output=billed.get("output_tokens"))
                for call in response.get("tool_calls") or ():
                    if isinstance(call, dict):
                        self.content.tool(len(self.content.blocks) + 1, None, call.get("name"),
                                          json.dumps(call.get("parameters")))
        elif isinstance(data.get("generations"), list) or "is_finished" in data:  # Cohere Command
            for generation in data.get("generations") or [data]:
                if isinstance(generation, dict):
                    self.content.text(0, generation.get("text"))
                    self.finish_reason = _finish_reason(generation.get("finish_reason")) or self.finish_reason
        elif "completion" in data:  # Claude text completions
            self.content.text(0, data.get("completion"))
            self.finish_reason = _finish_reason(data.get("stop_reason")) or self.finish_reason

    def _fold_anthropic(self, kind: str, data: dict) -> None:
        usage = self.body_usage
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            index = data.get("index")
            delta_kind = delta.get("type")
            if delta_kind == "text_delta":
                self.content.text(index, delta.get("text"))
            elif delta_kind == "input_json_delta":
                self.content.tool(index, arguments=delta.get("partial_json"))
            elif delta_kind == "thinking_delta":
                self.content.reasoning(index, delta.get("thinking"))
        elif kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                self.content.tool(data.get("index"), block.get("id"), block.get("name"))
            elif block.get("type") == "text":
                self.content.text(data.get("index"), block.get("text"))
            elif block.get("type") == "thinking":
                self.content.reasoning(data.get("index"), block.get("thinking"))
        elif kind == "message_start":
            message = data.get("message") or {}
            self.model, self.response_id = message.get("model"), message.get("id")
            start = message.get("usage") or {}
            usage.update(input=start.get("input_tokens"), output=start.get("output_tokens"),
                         read=start.get("cache_read_input_tokens"), write=start.get("cache_creation_input_tokens"))
        elif kind == "message_delta":
            self.finish_reason = _finish_reason((data.get("delta") or {}).get("stop_reason"))
            if (data.get("usage") or {}).get("output_tokens") is not None:
                usage["output"] = data["usage"]["output_tokens"]

    def finish(self, call: InferenceCall) -> None:
        result = Result()
        result.finish_reason = self.finish_reason
        result.model, result.response_id = self.model, self.response_id
        result.parts = self.content.parts() if self.capture else []
        body = self.body_usage
        body_usage = _usage(body.get("input"), body.get("output"), body.get("read"), body.get("write")) if body else None
        # The invocation metrics are Bedrock's own final count; the body fills what they lack.
        _record_result(call, result, _merge(self.metrics_usage, body_usage), self.request_id)


class _EventStreamIterator(wrapt.ObjectProxy):
    """botocore's EventStream is iterable, not an iterator: one shared pass over its events."""

    def __init__(self, wrapped: Any):
        super().__init__(wrapped)
        self._self_events = None

    def __iter__(self):
        return self

    def __next__(self):
        if self._self_events is None:
            self._self_events = iter(self.__wrapped__)
        return next(self._self_events)


def _wrap_event_stream(stream: Any, call: InferenceCall, accumulator: StreamAccumulator) -> Any:
    return SyncStreamProxy(_EventStreamIterator(stream), call, accumulator)


# -- InvokeModel bodies: read once, hand the app an identical body ------------------------


class _Unreadable(io.RawIOBase):
    """Stands in for a body whose read failed: the app gets the same error when it reads."""

    def __init__(self, error: BaseException):
        self._error = error

    def readable(self) -> bool:
        return True

    def read(self, *args):
        raise self._error


def _replace_body(response: dict) -> Optional[bytes]:
    from botocore.response import StreamingBody  # botocore is imported: this call came from it

    body = response.get("body")
    if body is None or not hasattr(body, "read"):
        return None
    try:
        data = body.read()
    except Exception as exc:
        response["body"] = StreamingBody(_Unreadable(exc), None)
        raise
    response["body"] = StreamingBody(io.BytesIO(data), len(data))
    return data


# -- the call ------------------------------------------------------------------------------


class BedrockCall(CallHandler):
    """Translates one bedrock-runtime call; made per call so request and result share the parsed body."""

    __slots__ = ("operation", "params", "body", "vendor")

    def __init__(self, operation: str, params: Any):
        self.operation = operation
        self.params = params if isinstance(params, dict) else {}
        self.body: Optional[dict] = None
        self.vendor: Optional[str] = None

    def request(self, instance, args, kwargs):
        params = self.params
        model_id = params.get("modelId")
        self.vendor = vendor_of(model_id)
        address, port = _endpoint(instance)
        request = InferenceRequest(
            provider=Provider.AWS_BEDROCK, model=model_id, server_address=address, server_port=port,
            stream=self.operation in (CONVERSE_STREAM, INVOKE_STREAM),
        )
        if self.operation in (CONVERSE, CONVERSE_STREAM):
            config = params.get("inferenceConfig") or {}
            request.max_tokens = number(config.get("maxTokens"))
            request.temperature = number(config.get("temperature"))
            request.top_p = number(config.get("topP"))
            request.stop_sequences = config.get("stopSequences") or None
            extra = params.get("additionalModelRequestFields")
            if isinstance(extra, dict):
                request.top_k = number(_first_key([extra, extra.get("inferenceConfig") or {}], _TOP_K_KEYS))
            guardrail = params.get("guardrailConfig")
            if isinstance(guardrail, dict):
                request.attributes[semconv.AWS_BEDROCK_GUARDRAIL_ID] = guardrail.get("guardrailIdentifier")
        else:
            self.body = parse_body(params.get("body"))
            if self.body is not None:
                request.operation = body_operation(self.body, model_id)
                fill_request_from_body(request, self.body)
            guardrail = params.get("guardrailIdentifier")
            if isinstance(guardrail, str):
                request.attributes[semconv.AWS_BEDROCK_GUARDRAIL_ID] = guardrail
        return request, None

    def record_input(self, call, instance, args, kwargs):
        params = self.params
        if self.operation in (CONVERSE, CONVERSE_STREAM):
            call.set_input(messages=_block_messages(params.get("messages")),
                           system_instructions=_system_parts(params.get("system")),
                           tool_definitions=_converse_tools(params.get("toolConfig")))
        elif self.body is not None:
            messages, system, tools = body_input(self.body, self.vendor)
            call.set_input(messages=messages, system_instructions=system, tool_definitions=tools)

    def error_status(self, exc):
        # botocore's ClientError keeps the HTTP status in its parsed error response.
        response = getattr(exc, "response", None)
        metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
        status = metadata.get("HTTPStatusCode") if isinstance(metadata, dict) else None
        return status if isinstance(status, int) else None

    def result(self, call, result, kwargs):
        if not isinstance(result, dict):
            call.end()
            return result
        request_id = _request_id(result)
        if self.operation == CONVERSE:
            output = (result.get("output") or {}).get("message") or {}
            record = Result()
            record.parts = block_parts(output.get("content"))
            record.finish_reason = _finish_reason(result.get("stopReason"))
            usage = result.get("usage") or {}
            _record_result(call, record, _usage(usage.get("inputTokens"), usage.get("outputTokens"),
                                                usage.get("cacheReadInputTokens"), usage.get("cacheWriteInputTokens")),
                           request_id)
            call.end()
        elif self.operation == CONVERSE_STREAM and result.get("stream") is not None:
            result["stream"] = _wrap_event_stream(result["stream"], call,
                                                  ConverseStreamAccumulator(call.capture_content, request_id))
        elif self.operation == INVOKE_STREAM and result.get("body") is not None:
            result["body"] = _wrap_event_stream(result["body"], call,
                                                InvokeStreamAccumulator(call.capture_content, request_id))
        elif self.operation == INVOKE:
            try:
                data = _replace_body(result)
            except Exception as exc:
                call.fail(exc)
                return result
            parsed = parse_body(data) if data is not None else None
            record = read_response_body(parsed) if parsed is not None else Result()
            _record_result(call, record, _merge(record.usage, _header_usage(result)), request_id)
            call.end()
        else:
            call.end()
        return result


def _endpoint(client: Any) -> tuple:
    return host_and_port(getattr(getattr(client, "meta", None), "endpoint_url", None))


def _is_bedrock_inference(instance: Any, args: tuple) -> bool:
    if not args or args[0] not in _OPERATIONS:
        return False
    try:
        return instance.meta.service_model.service_name == SERVICE
    except Exception:
        return False


class BedrockInstrumentor(LLMInstrumentor):
    requirements = ("botocore >= 1.34.116, < 2",)  # Converse arrived in 1.34.116

    def targets(self) -> list:
        return [Target("botocore.client", "BaseClient._make_api_call", CallHandler())]

    def _patch(self, module: Any, target: Target) -> None:
        # One hook for every AWS call: only bedrock-runtime inference is recorded, and each such
        # call gets its own handler so its request and result translation share the parsed body.
        try:
            owner = module.BaseClient
            original = owner.__dict__["_make_api_call"]
        except (AttributeError, KeyError):
            logger.debug("posthog-instrument: botocore BaseClient._make_api_call not present; skipped")
            return
        if isinstance(original, wrapt.FunctionWrapper) and getattr(original, "_self_posthog", False):
            return
        instrumentor = self

        def wrapper(wrapped, instance, args, kwargs):
            if not _is_bedrock_inference(instance, args):
                return wrapped(*args, **kwargs)
            handler = BedrockCall(args[0], args[1] if len(args) > 1 else kwargs.get("api_params"))
            return _sync_wrapper(instrumentor, handler)(wrapped, instance, args, kwargs)

        try:
            patched = wrapt.FunctionWrapper(original, wrapper)
            patched._self_posthog = True
            owner._make_api_call = patched
            self._patched.append((owner, "_make_api_call", original))
        except Exception:
            logger.debug("posthog-instrument: could not patch botocore", exc_info=True)
