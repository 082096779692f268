"""AWS Bedrock's formats: Converse / ConverseStream, and the model bodies of InvokeModel and
InvokeModelWithResponseStream.

InvokeModel bodies are each model family's own JSON. Rather than trusting the model id (inference
profiles and ARNs hide it), the body's shape says which family wrote it: ``FAMILIES`` holds one
reader per family (Anthropic messages, Amazon Nova and Titan, Meta Llama, Mistral, the OpenAI-like
chat bodies of newer models, Cohere, Claude text completions), each answering for the request
bodies, response bodies and stream chunks it recognises, in that order of precedence. Token counts
come from the body where the family reports them, else from Bedrock's
``x-amzn-bedrock-*-token-count`` headers (streams: the last chunk's
``amazon-bedrock-invocationMetrics``). Bedrock reports input tokens without cache reads and
writes; the conventions count them in, so they are added.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Optional

from ..genai import InferenceRequest, Usage
from ..genai import messages as m
from ..genai.semconv import Operation
from . import anthropic, openai_chat
from .fields import number

METRICS_KEY = "amazon-bedrock-invocationMetrics"
_HEADER_INPUT = "x-amzn-bedrock-input-token-count"
_HEADER_OUTPUT = "x-amzn-bedrock-output-token-count"
_HEADER_CACHE_READ = "x-amzn-bedrock-cache-read-input-token-count"
_HEADER_CACHE_WRITE = "x-amzn-bedrock-cache-write-input-token-count"

# Finish reasons as the conventions name them; unknown values pass through unchanged.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "stop": "stop",
    "eos": "stop",
    "max_tokens": "length",
    "length": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_call",
    "tool_calls": "tool_call",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    # Titan
    "FINISH": "stop",
    "FINISHED": "stop",
    "LENGTH": "length",
    "CONTENT_FILTERED": "content_filter",
    "STOP_CRITERIA_MET": "stop",
    "RAG_QUERY_WHEN_RAG_DISABLED": "stop",
    # Cohere
    "COMPLETE": "stop",
    "MAX_TOKENS": "length",
    "ERROR_TOXIC": "content_filter",
    "ERROR": "error",
    "ERROR_LIMIT": "length",
    "USER_CANCEL": "cancelled",
    "TOOL_CALL": "tool_call",
}

# Cross-region inference profile prefixes in front of a model id ("us.anthropic.claude-...").
_VENDORS = frozenset(
    {
        "anthropic",
        "amazon",
        "meta",
        "mistral",
        "cohere",
        "ai21",
        "deepseek",
        "openai",
        "qwen",
        "writer",
        "twelvelabs",
        "stability",
        "luma",
        "moonshot",
        "minimax",
    }
)


def finish_reason(reason: Any) -> Optional[str]:
    if not reason or not isinstance(reason, str):
        return None
    return FINISH_REASONS.get(reason, reason)


def _int(value: Any) -> Optional[int]:
    """A token count, given as a number or (in headers) as digits."""
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


# -- usage ----------------------------------------------------------------------------------


def usage(input_tokens: Any, output_tokens: Any, cache_read: Any = None, cache_write: Any = None) -> Optional[Usage]:
    """Bedrock counts input without cache reads and writes; the conventions count them in."""
    fresh, read, write = _int(input_tokens), _int(cache_read), _int(cache_write)
    total = None if fresh is None else fresh + (read or 0) + (write or 0)
    if total is None and _int(output_tokens) is None:
        return None
    return Usage(
        input_tokens=total,
        output_tokens=_int(output_tokens),
        cache_read_input_tokens=read,
        cache_creation_input_tokens=write,
    )


def merge(primary: Optional[Usage], fallback: Optional[Usage]) -> Optional[Usage]:
    """``primary`` with the counts it lacks taken from ``fallback``."""
    if primary is None or fallback is None:
        return primary or fallback
    for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        if getattr(primary, name) is None:
            setattr(primary, name, getattr(fallback, name))
    return primary


def _converse_counts(reported: Any) -> tuple:
    """(input, output, cache read, cache write) of Converse's ``usage`` (Nova's bodies spell the
    cache counts ``...TokenCount``)."""
    reported = reported if isinstance(reported, dict) else {}
    return (
        reported.get("inputTokens"),
        reported.get("outputTokens"),
        reported.get("cacheReadInputTokenCount", reported.get("cacheReadInputTokens")),
        reported.get("cacheWriteInputTokenCount", reported.get("cacheWriteInputTokens")),
    )


def invocation_metrics_usage(metrics: Any) -> Optional[Usage]:
    """The usage in a stream's last chunk (``amazon-bedrock-invocationMetrics``)."""
    if not isinstance(metrics, dict):
        return None
    return usage(
        metrics.get("inputTokenCount"),
        metrics.get("outputTokenCount"),
        metrics.get("cacheReadInputTokenCount"),
        metrics.get("cacheWriteInputTokenCount"),
    )


def header_usage(response: dict) -> Optional[Usage]:
    """The usage in an InvokeModel response's ``x-amzn-bedrock-*-token-count`` headers."""
    headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    return usage(
        headers.get(_HEADER_INPUT),
        headers.get(_HEADER_OUTPUT),
        headers.get(_HEADER_CACHE_READ),
        headers.get(_HEADER_CACHE_WRITE),
    )


def request_id(response: Any) -> Optional[str]:
    if isinstance(response, dict):
        return (response.get("ResponseMetadata") or {}).get("RequestId")
    return None


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


# -- Converse content blocks (also Nova's bodies) ----------------------------------------------


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


_DOCUMENT_MIME = {
    "pdf": "application/pdf",
    "csv": "text/csv",
    "html": "text/html",
    "txt": "text/plain",
    "md": "text/markdown",
    "doc": "application/msword",
    "json": "application/json",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


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


def block_messages(messages: Any) -> list:
    return [
        m.message(msg.get("role") or "user", block_parts(msg.get("content")))
        for msg in messages or ()
        if isinstance(msg, dict)
    ]


def system_parts(system: Any) -> list:
    if isinstance(system, str):
        return [m.text(system)] if system else []
    return [part for part in block_parts(system) if part.get("type") == "text"]


def converse_tools(tool_config: Any) -> list:
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


# -- Converse ---------------------------------------------------------------------------------

_MAX_TOKENS_KEYS = (
    "max_tokens",
    "max_gen_len",
    "max_tokens_to_sample",
    "maxTokens",
    "max_new_tokens",
    "maxTokenCount",
    "max_completion_tokens",
)
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


def converse_request_parameters(request: InferenceRequest, params: dict) -> InferenceRequest:
    """``request`` (returned) with a Converse call's ``inferenceConfig`` and the top-k of its
    ``additionalModelRequestFields``."""
    config = params.get("inferenceConfig") or {}
    request.max_tokens = number(config.get("maxTokens"))
    request.temperature = number(config.get("temperature"))
    request.top_p = number(config.get("topP"))
    request.stop_sequences = config.get("stopSequences") or None
    extra = params.get("additionalModelRequestFields")
    if isinstance(extra, dict):
        request.top_k = number(_first_key([extra, extra.get("inferenceConfig") or {}], _TOP_K_KEYS))
    return request


def converse_input(params: dict) -> tuple:
    """(messages, system instructions, tool definitions) of a Converse call."""
    return (
        block_messages(params.get("messages")),
        system_parts(params.get("system")),
        converse_tools(params.get("toolConfig")),
    )


def converse_result(response: dict) -> Result:
    """A Converse response (and Nova's InvokeModel body, which has its shape)."""
    result = Result()
    message = (response.get("output") or {}).get("message") or {}
    result.parts = block_parts(message.get("content"))
    result.finish_reason = finish_reason(response.get("stopReason"))
    result.usage = usage(*_converse_counts(response.get("usage")))
    return result


# -- InvokeModel requests -------------------------------------------------------------------


def parse_body(body: Any) -> Optional[dict]:
    """A JSON body (bytes, bytearray or str) as a dict; file objects and other JSON are left alone."""
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
    if (
        "texts" in body
        or "embedding_types" in body
        or (
            "inputText" in body
            and "textGenerationConfig" not in body
            and ("embed" in str(model_id) or "dimensions" in body or "inputImage" in body or "embeddingConfig" in body)
        )
    ):
        return Operation.EMBEDDINGS
    if "messages" in body or "message" in body:
        return Operation.CHAT
    return Operation.TEXT_COMPLETION


def fill_request_from_body(request: InferenceRequest, body: dict) -> None:
    """The sampling parameters of any family's request body, under whichever name it uses."""
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
    for family in FAMILIES:
        found = family.request_input(body, vendor)
        if found is not None:
            return found
    for key in ("inputText", "prompt"):  # Titan, Llama, Mistral, Cohere Command, Claude text completions
        if isinstance(body.get(key), str):
            return [m.message("user", [m.text(body[key])])], [], []
    return [], [], []


def read_response_body(data: dict) -> Result:
    """An InvokeModel response body, read by the family that wrote it."""
    for family in FAMILIES:
        result = family.response(data)
        if result is not None:
            return result
    return Result()


# -- streams ---------------------------------------------------------------------------------


class _Block:
    """One streamed content block: its kind, its pieces of text (or of tool arguments as JSON
    text), and a tool call's id and name."""

    __slots__ = ("kind", "pieces", "call_id", "name")

    def __init__(self, kind: str):
        self.kind = kind
        self.pieces: list = []
        self.call_id: Any = None
        self.name: Any = None

    def part(self) -> Optional[dict]:
        if self.kind == "tool_call":
            return m.tool_call(self.call_id, self.name, "".join(self.pieces) or {})
        if self.kind == "reasoning":
            return m.reasoning("".join(self.pieces))
        return m.text("".join(self.pieces)) if self.pieces else None


class ContentBlocks:
    """Content assembled from streamed deltas, by block index; nothing is kept unless ``enabled``
    (content is captured)."""

    __slots__ = ("blocks", "enabled")

    def __init__(self, enabled: bool = True):
        self.blocks: dict = {}  # index -> _Block
        self.enabled = enabled

    def block(self, index: Any, kind: str) -> _Block:
        key = index if isinstance(index, int) else 0
        entry = self.blocks.get(key)
        if entry is None:
            entry = self.blocks[key] = _Block(kind)
        elif entry.kind == "text" and kind != "text" and not entry.pieces:
            entry.kind = kind
        return entry

    def text(self, index: Any, piece: Any) -> None:
        if self.enabled and isinstance(piece, str) and piece:
            self.block(index, "text").pieces.append(piece)

    def reasoning(self, index: Any, piece: Any) -> None:
        if self.enabled and isinstance(piece, str) and piece:
            self.block(index, "reasoning").pieces.append(piece)

    def tool(self, index: Any, call_id: Any = None, name: Any = None, arguments: Any = None) -> None:
        if not self.enabled:
            return
        entry = self.block(index, "tool_call")
        entry.kind = "tool_call"
        if call_id:
            entry.call_id = call_id
        if name:
            entry.name = name
        if isinstance(arguments, str) and arguments:
            entry.pieces.append(arguments)

    def parts(self) -> list:
        parts = []
        for index in sorted(self.blocks):
            part = self.blocks[index].part()
            if part is not None:
                parts.append(part)
        return parts


class StreamedResponse:
    """A ConverseStream's events, or an InvokeModelWithResponseStream's chunks whichever family
    wrote them, folded into one ``Result``."""

    __slots__ = (
        "capture",
        "content",
        "finish_reason",
        "body_usage",
        "metrics_usage",
        "model",
        "response_id",
        "message",
    )

    def __init__(self, capture: bool):
        self.capture = capture
        self.content = ContentBlocks(capture)
        self.finish_reason: Optional[str] = None
        self.body_usage: dict = {}  # the counts the body reported: input, output, read, write
        self.metrics_usage: Optional[Usage] = None
        self.model: Optional[str] = None
        self.response_id: Optional[str] = None
        self.message: Optional[anthropic.StreamedMessage] = None  # an Anthropic messages stream

    def add_converse_event(self, event: dict) -> bool:
        """One ConverseStream event (also Nova's chunks); False for another shape."""
        if "contentBlockDelta" in event:
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
            self.finish_reason = finish_reason(event["messageStop"].get("stopReason"))
        elif "metadata" in event:
            self.body_usage.update(
                zip(("input", "output", "read", "write"), _converse_counts(event["metadata"].get("usage")))
            )
        else:
            return False
        return True

    def add_chunk(self, data: dict) -> None:
        """One decoded InvokeModelWithResponseStream chunk."""
        metrics = data.get(METRICS_KEY)
        if metrics is not None:
            self.metrics_usage = invocation_metrics_usage(metrics)
        for family in FAMILIES:
            if family.chunk(self, data):
                return

    def add_chunk_bytes(self, event: Any) -> None:
        """One event of an InvokeModelWithResponseStream: ``{"chunk": {"bytes": b"{...}"}}``."""
        chunk = event.get("chunk") if isinstance(event, dict) else None
        data = chunk.get("bytes") if isinstance(chunk, dict) else None
        if not data:
            return
        try:
            payload = json.loads(data)
        except ValueError:
            return
        if isinstance(payload, dict):
            self.add_chunk(payload)

    def anthropic_message(self) -> anthropic.StreamedMessage:
        if self.message is None:
            self.message = anthropic.StreamedMessage(self.capture)
        return self.message

    def result(self) -> Result:
        """What the stream said; its usage is Bedrock's invocation metrics (its own final count),
        filled in from what the body reported."""
        result = Result()
        message = self.message
        if message is not None:
            result.finish_reason = message.finish_reason()
            result.model, result.response_id = message.model, message.response_id
            result.parts = anthropic.content_parts(message.content()) if self.capture else []
            body_usage = anthropic.usage(message.usage, message.complete) if message.usage is not None else None
        else:
            result.finish_reason = self.finish_reason
            result.model, result.response_id = self.model, self.response_id
            result.parts = self.content.parts() if self.capture else []
            body = self.body_usage
            body_usage = (
                usage(body.get("input"), body.get("output"), body.get("read"), body.get("write")) if body else None
            )
        result.usage = merge(self.metrics_usage, body_usage)
        return result


# -- the families -------------------------------------------------------------------------------


class Family:
    """One model family's InvokeModel bodies. Each method answers only for a body of its family:
    ``request_input`` None, ``response`` None and ``chunk`` False for any other."""

    def request_input(self, body: dict, vendor: Optional[str]) -> Optional[tuple]:
        """(messages, system instructions, tool definitions) of a request body."""
        return None

    def response(self, data: dict) -> Optional[Result]:
        return None

    def chunk(self, stream: StreamedResponse, data: dict) -> bool:
        """Fold one stream chunk into ``stream``."""
        return False


def _first_output(outputs: Any, text_key: str, reason_key: str) -> Result:
    """The first of a body's outputs (Titan's ``results``, Mistral's ``outputs``, Command's
    ``generations``): its text and finish reason."""
    result = Result()
    outputs = [o for o in outputs if isinstance(o, dict)]
    result.parts = [m.text(o.get(text_key, "")) for o in outputs[:1]]
    result.finish_reason = finish_reason(outputs[0].get(reason_key)) if outputs else None
    return result


def _text_result(text: Any, reason: Any, reported: Optional[Usage] = None) -> Result:
    result = Result()
    result.parts = [m.text(text or "")]
    result.finish_reason = finish_reason(reason)
    result.usage = reported
    return result


def _text_chunk(
    stream: "StreamedResponse",
    data: dict,
    text_key: str,
    reason_key: str,
    input_key: Optional[str] = None,
    output_key: Optional[str] = None,
) -> bool:
    """A chunk of a family that streams one text: a piece of it, maybe the finish reason and
    token counts."""
    if text_key not in data:
        return False
    stream.content.text(0, data.get(text_key))
    stream.finish_reason = finish_reason(data.get(reason_key)) or stream.finish_reason
    for name, key in (("input", input_key), ("output", output_key)):
        if key and data.get(key) is not None:
            stream.body_usage[name] = data[key]
    return True


def _messages(body: dict) -> Optional[list]:
    messages = body.get("messages")
    return messages if isinstance(messages, list) else None


class AnthropicMessages(Family):
    """Claude's Messages bodies: the format of :mod:`.anthropic`."""

    def request_input(self, body, vendor):
        messages = _messages(body)
        if messages is None or not ("anthropic_version" in body or vendor == "anthropic"):
            return None
        system = body.get("system")
        return (
            anthropic.input_messages(messages),
            anthropic.content_parts(system) if system else [],
            anthropic.tool_definitions(body.get("tools")),
        )

    def response(self, data):
        if not (data.get("type") == "message" or ("content" in data and "stop_reason" in data)):
            return None
        result = Result()
        result.parts = anthropic.content_parts(data.get("content"))
        result.finish_reason = anthropic.finish_reason(data.get("stop_reason"))
        result.usage = anthropic.usage(data.get("usage")) if data.get("usage") is not None else None
        result.model, result.response_id = data.get("model"), data.get("id")
        return result

    def chunk(self, stream, data):
        if not isinstance(data.get("type"), str):
            return False
        stream.anthropic_message().add(data)
        return True


class AmazonNova(Family):
    """Nova: Converse's shape in InvokeModel bodies."""

    def request_input(self, body, vendor):
        messages = _messages(body)
        if messages is None:
            return None
        first = next((msg for msg in messages if isinstance(msg, dict)), {})
        content = first.get("content")
        if not (
            "schemaVersion" in body
            or "inferenceConfig" in body
            or vendor == "amazon"
            or (isinstance(content, list) and content and isinstance(content[0], dict) and "type" not in content[0])
        ):
            return None
        return block_messages(messages), system_parts(body.get("system")), converse_tools(body.get("toolConfig"))

    def response(self, data):
        return converse_result(data) if isinstance(data.get("output"), dict) else None

    def chunk(self, stream, data):
        return stream.add_converse_event(data)


class AmazonTitan(Family):
    """Titan text (``results``, streamed ``outputText``) and Titan embeddings."""

    def response(self, data):
        if isinstance(data.get("results"), list):
            result = _first_output(data["results"], "outputText", "completionReason")
            outputs = [r for r in data["results"] if isinstance(r, dict)]
            output_tokens = sum(_int(r.get("tokenCount")) or 0 for r in outputs) if outputs else None
            result.usage = usage(data.get("inputTextTokenCount"), output_tokens)
            return result
        if "embedding" in data or "embeddingsByType" in data:
            result = Result()
            vector = data.get("embedding")
            result.dimensions = len(vector) if isinstance(vector, list) else None
            result.usage = usage(data.get("inputTextTokenCount"), None)
            return result
        return None

    def chunk(self, stream, data):
        return _text_chunk(
            stream, data, "outputText", "completionReason", "inputTextTokenCount", "totalOutputTextTokenCount"
        )


class CohereEmbed(Family):
    def request_input(self, body, vendor):
        if (
            _messages(body) is not None
            or isinstance(body.get("message"), str)
            or not isinstance(body.get("texts"), list)
        ):
            return None
        return [m.message("user", [m.text(t)]) for t in body["texts"] if isinstance(t, str)], [], []

    def response(self, data):
        if "embeddings" not in data:
            return None
        result = Result()
        vectors = data["embeddings"]
        if isinstance(vectors, dict):  # embedding_types given: {"float": [[...]]}
            vectors = next(iter(vectors.values()), None)
        if isinstance(vectors, list) and vectors and isinstance(vectors[0], list):
            result.dimensions = len(vectors[0])
        result.response_id = data.get("id")
        return result


class MetaLlama(Family):
    def response(self, data):
        if "generation" not in data:
            return None
        return _text_result(
            data.get("generation"),
            data.get("stop_reason"),
            usage(data.get("prompt_token_count"), data.get("generation_token_count")),
        )

    def chunk(self, stream, data):
        return _text_chunk(stream, data, "generation", "stop_reason", "prompt_token_count", "generation_token_count")


class MistralText(Family):
    """Mistral's text-completion bodies (``outputs``); its chat bodies are OpenAI-like."""

    def response(self, data):
        if not isinstance(data.get("outputs"), list):
            return None
        return _first_output(data["outputs"], "text", "stop_reason")

    def chunk(self, stream, data):
        if not isinstance(data.get("outputs"), list):
            return False
        for output in data["outputs"][:1]:
            if isinstance(output, dict):
                stream.content.text(0, output.get("text"))
                stream.finish_reason = finish_reason(output.get("stop_reason")) or stream.finish_reason
        return True


class OpenAILikeChat(Family):
    """The OpenAI-like chat bodies of Mistral Large, AI21 Jamba, DeepSeek and OpenAI's open-weight
    models: the format of :mod:`.openai_chat`, first choice only."""

    def request_input(self, body, vendor):
        messages = _messages(body)
        if messages is None:
            return None
        return [openai_chat.input_message(msg) for msg in messages], [], openai_chat.tool_definitions(body.get("tools"))

    def response(self, data):
        if not isinstance(data.get("choices"), list):
            return None
        result = Result()
        choice = next((c for c in data["choices"] if isinstance(c, dict)), {})
        message = choice.get("message") or {}
        result.parts = openai_chat.content_parts(message.get("content"))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            result.parts.append(m.tool_call(call.get("id"), function.get("name"), function.get("arguments")))
        result.finish_reason = finish_reason(choice.get("finish_reason") or choice.get("stop_reason"))
        reported = data.get("usage") or {}
        result.usage = usage(reported.get("prompt_tokens"), reported.get("completion_tokens"))
        result.model, result.response_id = data.get("model"), data.get("id")
        return result

    def chunk(self, stream, data):
        if not isinstance(data.get("choices"), list):
            return False
        stream.model = data.get("model") or stream.model
        stream.response_id = data.get("id") or stream.response_id
        for choice in data["choices"][:1]:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            stream.content.text(0, delta.get("content"))
            for fragment in delta.get("tool_calls") or ():
                function = fragment.get("function") or {}
                index = fragment.get("index") if isinstance(fragment.get("index"), int) else 0
                stream.content.tool(index + 1, fragment.get("id"), function.get("name"), function.get("arguments"))
            stream.finish_reason = (
                finish_reason(choice.get("finish_reason") or choice.get("stop_reason")) or stream.finish_reason
            )
        if isinstance(data.get("usage"), dict):
            stream.body_usage.update(
                input=data["usage"].get("prompt_tokens"), output=data["usage"].get("completion_tokens")
            )
        return True


_COHERE_ROLES = {"USER": "user", "CHATBOT": "assistant", "SYSTEM": "system"}


class Cohere(Family):
    """Command R (``message`` and ``chat_history``; streamed ``event_type``) and the older Command
    (``prompt``; ``generations``)."""

    def request_input(self, body, vendor):
        if _messages(body) is not None or not isinstance(body.get("message"), str):
            return None
        history = []
        for turn in body.get("chat_history") or ():
            if isinstance(turn, dict):
                history.append(
                    m.message(_COHERE_ROLES.get(str(turn.get("role")), "user"), [m.text(turn.get("message", ""))])
                )
        history.append(m.message("user", [m.text(body["message"])]))
        preamble = body.get("preamble")
        tools = [
            m.function_tool(t.get("name"), t.get("description"), t.get("parameter_definitions"))
            for t in body.get("tools") or ()
            if isinstance(t, dict)
        ]
        return history, [m.text(preamble)] if isinstance(preamble, str) and preamble else [], tools

    def response(self, data):
        if isinstance(data.get("generations"), list):  # Command
            result = _first_output(data["generations"], "text", "finish_reason")
            result.response_id = data.get("id")
            return result
        if "text" in data and (
            "response_id" in data or "generation_id" in data or "finish_reason" in data
        ):  # Command R
            result = Result()
            result.parts = [m.text(data["text"])] if data.get("text") else []
            for call in data.get("tool_calls") or ():
                if isinstance(call, dict):
                    result.parts.append(m.tool_call(None, call.get("name"), call.get("parameters")))
            result.finish_reason = finish_reason(data.get("finish_reason"))
            billed = (data.get("meta") or {}).get("billed_units") or {}
            result.usage = usage(billed.get("input_tokens"), billed.get("output_tokens"))
            result.response_id = data.get("response_id")
            return result
        return None

    def chunk(self, stream, data):
        if "event_type" in data:  # Command R
            if data["event_type"] == "text-generation":
                stream.content.text(0, data.get("text"))
            elif data["event_type"] == "stream-end":
                stream.finish_reason = finish_reason(data.get("finish_reason"))
                response = data.get("response") or {}
                stream.response_id = response.get("response_id")
                billed = (response.get("meta") or {}).get("billed_units") or {}
                stream.body_usage.update(input=billed.get("input_tokens"), output=billed.get("output_tokens"))
                for call in response.get("tool_calls") or ():
                    if isinstance(call, dict):
                        stream.content.tool(
                            len(stream.content.blocks) + 1, None, call.get("name"), json.dumps(call.get("parameters"))
                        )
            return True
        if isinstance(data.get("generations"), list) or "is_finished" in data:  # Command
            for generation in data.get("generations") or [data]:
                if isinstance(generation, dict):
                    stream.content.text(0, generation.get("text"))
                    stream.finish_reason = finish_reason(generation.get("finish_reason")) or stream.finish_reason
            return True
        return False


class ClaudeTextCompletions(Family):
    """Claude's legacy text completions (``prompt`` in, ``completion`` out)."""

    def response(self, data):
        return _text_result(data.get("completion"), data.get("stop_reason")) if "completion" in data else None

    def chunk(self, stream, data):
        return _text_chunk(stream, data, "completion", "stop_reason")


#: Asked in this order; a body is its first answering family's. The OpenAI-like chat reader takes
#: any ``messages`` body, so the families with their own messages shape come before it.
FAMILIES = (
    AnthropicMessages(),
    AmazonNova(),
    AmazonTitan(),
    CohereEmbed(),
    MetaLlama(),
    MistralText(),
    OpenAILikeChat(),
    Cohere(),
    ClaudeTextCompletions(),
)
