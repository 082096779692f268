"""A loopback stand-in for the Amazon Bedrock runtime API (``bedrock-runtime``).

boto3 reaches it through ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` (or ``endpoint_url=``) with fake
credentials: SigV4 signing works offline, and requests without a SigV4 ``Authorization`` header
are refused as AWS does. It speaks the real wire format:

* ``POST /model/{modelId}/converse`` and ``/invoke``: JSON (rest-json), errors as AWS sends them
  (status, ``x-amzn-ErrorType`` header, ``{"message": ...}`` body);
* ``/converse-stream`` and ``/invoke-with-response-stream``: ``application/vnd.amazon.eventstream``
  binary framing (prelude with total and header lengths, prelude CRC32, typed headers, payload,
  message CRC32), sent in HTTP chunks as Bedrock does.

InvokeModel answers in the body format of the model family named by the model id (Anthropic,
Nova, Titan text and embeddings, Llama, Mistral text and chat, Cohere Command, Command R, Embed),
with Bedrock's token-count headers, and the last stream chunk carries
``amazon-bedrock-invocationMetrics``.

Behaviour is chosen by the request: a model id containing ``error-<status>`` fails with that status
(400 ValidationException, 429 ThrottlingException, 500 InternalServerException); ``stream-error``
sends a ``modelStreamErrorException`` event after two content deltas; offering tools while the
user spoke last yields a tool call.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import uuid
import zlib
from typing import Any, Iterator, Optional
from urllib.parse import unquote

from ._http import BaseHandler, RecordingServer

REPLY = "Hello from fake Bedrock"
PIECES = ["Hello", " from", " fake", " Bedrock"]
TOOL_INPUT = {"city": "Paris"}
EMBEDDING_DIMENSIONS = 8

# Token counts the stand-in reports. Bedrock's input counts exclude cache reads and writes.
INPUT_TOKENS, OUTPUT_TOKENS, CACHE_READ, CACHE_WRITE = 11, 7, 3, 2

_ROUTE = re.compile(r"^/model/(?P<model>[^/]+)/(?P<op>converse|converse-stream|invoke|invoke-with-response-stream)$")
_ERRORS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


# -- event-stream framing -------------------------------------------------------------------


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def encode_message(headers: dict, payload: bytes) -> bytes:
    """One ``application/vnd.amazon.eventstream`` message (string headers only, as Bedrock sends)."""
    header_bytes = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_bytes))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + header_bytes + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(event_type: str, body: dict) -> bytes:
    # Bedrock pads events with a random "p" field so their sizes do not leak content.
    payload = json.dumps({**body, "p": "abcdefghijklmnopqrstuvwxyzABCDEF"[: len(event_type)]}).encode()
    return encode_message(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}, payload
    )


def exception_event(exception_type: str, message: str) -> bytes:
    payload = json.dumps({"message": message, "originalStatusCode": 500, "originalMessage": message}).encode()
    return encode_message(
        {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}, payload
    )


def chunk_event(obj: dict) -> bytes:
    return event("chunk", {"bytes": base64.b64encode(json.dumps(obj).encode()).decode()})


def invocation_metrics(input_tokens: int, output_tokens: int, read: int = 0, write: int = 0) -> dict:
    return {
        "inputTokenCount": input_tokens,
        "outputTokenCount": output_tokens,
        "invocationLatency": 321,
        "firstByteLatency": 123,
        "cacheReadInputTokenCount": read,
        "cacheWriteInputTokenCount": write,
    }


# -- request understanding -----------------------------------------------------------------


def family(model_id: str) -> str:
    ident = model_id.rsplit("/", 1)[-1]
    for name in (
        "anthropic",
        "nova",
        "titan-embed",
        "titan",
        "meta",
        "mistral-large",
        "mistral",
        "cohere.command-r",
        "cohere.embed",
        "cohere",
    ):
        if name in ident:
            return name
    return "unknown"


def wants_tool(tools: Any, messages: Any) -> Optional[str]:
    """The first offered tool's name when the user spoke last, else None."""
    if not tools or not isinstance(messages, list) or not messages:
        return None
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    if last.get("role") != "user":
        return None
    content = last.get("content")
    if isinstance(content, list) and any(
        isinstance(b, dict) and ("toolResult" in b or b.get("type") == "tool_result") for b in content
    ):
        return None
    first = tools[0]
    spec = first.get("toolSpec") or first.get("function") or first
    return spec.get("name")


# -- Converse -------------------------------------------------------------------------------


def converse_usage() -> dict:
    return {
        "inputTokens": INPUT_TOKENS,
        "outputTokens": OUTPUT_TOKENS,
        "totalTokens": INPUT_TOKENS + OUTPUT_TOKENS + CACHE_READ + CACHE_WRITE,
        "cacheReadInputTokens": CACHE_READ,
        "cacheWriteInputTokens": CACHE_WRITE,
    }


def converse_response(body: dict) -> dict:
    tool = wants_tool((body.get("toolConfig") or {}).get("tools"), body.get("messages"))
    if tool:
        content = [
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "tooluse_1", "name": tool, "input": TOOL_INPUT}},
        ]
        stop = "tool_use"
    else:
        content, stop = [{"text": REPLY}], "end_turn"
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": converse_usage(),
        "metrics": {"latencyMs": 321},
    }


def converse_stream_events(body: dict, cut_after: Optional[int]) -> Iterator[bytes]:
    tool = wants_tool((body.get("toolConfig") or {}).get("tools"), body.get("messages"))
    yield event("messageStart", {"role": "assistant"})
    for n, piece in enumerate(PIECES):
        if cut_after is not None and n == cut_after:
            yield exception_event("modelStreamErrorException", "The model stopped unexpectedly.")
            return
        yield event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
    yield event("contentBlockStop", {"contentBlockIndex": 0})
    if tool:
        yield event(
            "contentBlockStart",
            {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": tool}}},
        )
        arguments = json.dumps(TOOL_INPUT)
        for piece in (arguments[:5], arguments[5:]):
            yield event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": piece}}})
        yield event("contentBlockStop", {"contentBlockIndex": 1})
    yield event("messageStop", {"stopReason": "tool_use" if tool else "end_turn"})
    yield event("metadata", {"usage": converse_usage(), "metrics": {"latencyMs": 321}})


# -- InvokeModel bodies --------------------------------------------------------------------


def invoke_response(model_id: str, body: dict) -> tuple[dict, dict]:
    """(response body, token-count headers) for one InvokeModel call."""
    kind = family(model_id)
    headers = {
        "X-Amzn-Bedrock-Input-Token-Count": str(INPUT_TOKENS),
        "X-Amzn-Bedrock-Output-Token-Count": str(OUTPUT_TOKENS),
        "X-Amzn-Bedrock-Invocation-Latency": "321",
    }
    if kind == "anthropic":
        tool = wants_tool(body.get("tools"), body.get("messages"))
        content = (
            [{"type": "tool_use", "id": "toolu_1", "name": tool, "input": TOOL_INPUT}]
            if tool
            else [{"type": "text", "text": REPLY}]
        )
        headers.update(
            {
                "X-Amzn-Bedrock-Cache-Read-Input-Token-Count": str(CACHE_READ),
                "X-Amzn-Bedrock-Cache-Write-Input-Token-Count": str(CACHE_WRITE),
            }
        )
        return {
            "id": "msg_bdrk_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-haiku-20241022",
            "content": content,
            "stop_reason": "tool_use" if tool else "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": INPUT_TOKENS,
                "output_tokens": OUTPUT_TOKENS,
                "cache_read_input_tokens": CACHE_READ,
                "cache_creation_input_tokens": CACHE_WRITE,
            },
        }, headers
    if kind == "nova":
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": REPLY}]}},
            "stopReason": "end_turn",
            "usage": {
                "inputTokens": INPUT_TOKENS,
                "outputTokens": OUTPUT_TOKENS,
                "totalTokens": INPUT_TOKENS + OUTPUT_TOKENS,
                "cacheReadInputTokenCount": 0,
                "cacheWriteInputTokenCount": 0,
            },
        }, headers
    if kind == "titan-embed":
        return {
            "embedding": [0.1] * EMBEDDING_DIMENSIONS,
            "inputTextTokenCount": 5,
            "embeddingsByType": {"float": [0.1] * EMBEDDING_DIMENSIONS},
        }, {"X-Amzn-Bedrock-Input-Token-Count": "5"}
    if kind == "titan":
        return {
            "inputTextTokenCount": INPUT_TOKENS,
            "results": [{"tokenCount": OUTPUT_TOKENS, "outputText": REPLY, "completionReason": "FINISH"}],
        }, headers
    if kind == "meta":
        return {
            "generation": REPLY,
            "prompt_token_count": INPUT_TOKENS,
            "generation_token_count": OUTPUT_TOKENS,
            "stop_reason": "stop",
        }, headers
    if kind == "mistral-large":
        return {
            "id": "cmpl-1",
            "object": "chat.completion",
            "model": "mistral-large-2407",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY}, "stop_reason": "stop"}],
        }, headers
    if kind == "mistral":
        return {"outputs": [{"text": REPLY, "stop_reason": "stop"}]}, headers
    if kind == "cohere.command-r":
        return {
            "response_id": "resp-1",
            "text": REPLY,
            "generation_id": "gen-1",
            "finish_reason": "COMPLETE",
            "chat_history": [],
            "meta": {"billed_units": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS}},
        }, headers
    if kind == "cohere.embed":
        texts = body.get("texts") or []
        return {
            "id": "emb-1",
            "response_type": "embeddings_floats",
            "texts": texts,
            "embeddings": [[0.2] * EMBEDDING_DIMENSIONS for _ in texts],
        }, {"X-Amzn-Bedrock-Input-Token-Count": str(3 * len(texts))}
    if kind == "cohere":
        return {
            "id": "gen-2",
            "prompt": body.get("prompt"),
            "generations": [{"id": "g-1", "text": REPLY, "finish_reason": "COMPLETE"}],
        }, headers
    return {"unknown": True}, headers


def invoke_stream_chunks(model_id: str, body: dict) -> list:
    """The JSON chunks of InvokeModelWithResponseStream, the last one with invocation metrics."""
    kind = family(model_id)
    metrics = invocation_metrics(INPUT_TOKENS, OUTPUT_TOKENS)
    if kind == "anthropic":
        tool = wants_tool(body.get("tools"), body.get("messages"))
        chunks = [
            {
                "type": "message_start",
                "message": {
                    "id": "msg_bdrk_02",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-3-5-haiku-20241022",
                    "content": [],
                    "stop_reason": None,
                    "usage": {
                        "input_tokens": INPUT_TOKENS,
                        "output_tokens": 1,
                        "cache_read_input_tokens": CACHE_READ,
                        "cache_creation_input_tokens": CACHE_WRITE,
                    },
                },
            },
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ]
        chunks += [
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}} for p in PIECES
        ]
        chunks.append({"type": "content_block_stop", "index": 0})
        if tool:
            arguments = json.dumps(TOOL_INPUT)
            chunks += [
                {
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": {"type": "tool_use", "id": "toolu_2", "name": tool, "input": {}},
                },
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": arguments[:4]},
                },
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": arguments[4:]},
                },
                {"type": "content_block_stop", "index": 1},
            ]
        chunks += [
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use" if tool else "end_turn"},
                "usage": {"output_tokens": OUTPUT_TOKENS},
            },
            {
                "type": "message_stop",
                "amazon-bedrock-invocationMetrics": invocation_metrics(
                    INPUT_TOKENS, OUTPUT_TOKENS, CACHE_READ, CACHE_WRITE
                ),
            },
        ]
        return chunks
    if kind == "nova":
        return (
            [{"messageStart": {"role": "assistant"}}]
            + [{"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}} for p in PIECES]
            + [
                {"contentBlockStop": {"contentBlockIndex": 0}},
                {"messageStop": {"stopReason": "end_turn"}},
                {
                    "metadata": {
                        "usage": {"inputTokens": INPUT_TOKENS, "outputTokens": OUTPUT_TOKENS},
                        "metrics": {},
                        "trace": {},
                    },
                    "amazon-bedrock-invocationMetrics": metrics,
                },
            ]
        )
    if kind == "titan":
        chunks = [
            {
                "outputText": p,
                "index": 0,
                "totalOutputTextTokenCount": n + 1,
                "completionReason": None,
                "inputTextTokenCount": INPUT_TOKENS if n == 0 else None,
            }
            for n, p in enumerate(PIECES)
        ]
        chunks[-1].update(completionReason="FINISH", totalOutputTextTokenCount=OUTPUT_TOKENS)
    elif kind == "meta":
        chunks = [
            {
                "generation": p,
                "prompt_token_count": INPUT_TOKENS if n == 0 else None,
                "generation_token_count": n + 1,
                "stop_reason": None,
            }
            for n, p in enumerate(PIECES)
        ]
        chunks[-1].update(stop_reason="stop", generation_token_count=OUTPUT_TOKENS)
    elif kind == "mistral-large":
        chunks = [
            {
                "id": "cmpl-2",
                "object": "chat.completion.chunk",
                "model": "mistral-large-2407",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": p}, "stop_reason": None}],
            }
            for p in PIECES
        ]
        chunks[-1]["choices"][0]["stop_reason"] = "stop"
    elif kind == "mistral":
        chunks = [{"outputs": [{"text": p, "stop_reason": None}]} for p in PIECES]
        chunks[-1]["outputs"][0]["stop_reason"] = "stop"
    elif kind == "cohere.command-r":
        chunks = [{"is_finished": False, "event_type": "stream-start", "generation_id": "gen-3"}]
        chunks += [{"is_finished": False, "event_type": "text-generation", "text": p} for p in PIECES]
        chunks.append(
            {
                "is_finished": True,
                "event_type": "stream-end",
                "finish_reason": "COMPLETE",
                "response": {
                    "response_id": "resp-3",
                    "text": REPLY,
                    "generation_id": "gen-3",
                    "finish_reason": "COMPLETE",
                    "meta": {"billed_units": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS}},
                },
            }
        )
    else:  # Cohere Command (text)
        chunks = [{"text": p, "is_finished": False} for p in PIECES]
        chunks.append({"is_finished": True, "finish_reason": "COMPLETE", "text": ""})
    chunks[-1]["amazon-bedrock-invocationMetrics"] = metrics
    return chunks


# -- the server ------------------------------------------------------------------------------


class FakeBedrock(RecordingServer):
    """bedrock-runtime on 127.0.0.1; ``endpoint_url`` is the value for boto3."""

    def __init__(self) -> None:
        super().__init__()
        self.handler_class = _BedrockHandler

    @property
    def endpoint_url(self) -> str:
        return self.root_url


class _BedrockHandler(BaseHandler):
    server_version = "fake-bedrock/1"

    def do_POST(self) -> None:  # noqa: N802
        path, _ = self.split_path()
        headers = self.lowered_headers()
        raw = self.read_body()
        match = _ROUTE.match(path)
        model_id = unquote(match.group("model")) if match else ""
        operation = match.group("op") if match else ""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        self.owner._record({"path": path, "model": model_id, "operation": operation, "headers": headers, "json": body})
        try:
            self._answer(operation, model_id, headers, body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _answer(self, operation: str, model_id: str, headers: dict, body: Any) -> None:
        if not operation:
            return self._error(404, "UnknownOperationException", "Unknown operation")
        if not headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 Credential="):
            return self._error(403, "AccessDeniedException", "Missing Authentication Token")
        if not isinstance(body, dict):
            return self._error(
                400, "ValidationException", "Malformed input request, please reformat your input and try again."
            )
        fault = re.search(r"error-(\d{3})", model_id)
        if fault:
            status = int(fault.group(1))
            return self._error(status, _ERRORS.get(status, "InternalServerException"), f"Fake failure {status}")
        if operation in ("converse", "converse-stream") and not body.get("messages"):
            return self._error(400, "ValidationException", "A conversation must start with a user message.")
        if operation == "converse":
            return self.send_json(200, converse_response(body), self._meta())
        if operation == "converse-stream":
            cut_after = 2 if "stream-error" in model_id else None
            return self._stream(converse_stream_events(body, cut_after))
        if operation == "invoke":
            payload, token_headers = invoke_response(model_id, body)
            return self.send_body(
                200, json.dumps(payload).encode(), "application/json", {**self._meta(), **token_headers}
            )
        chunks = invoke_stream_chunks(model_id, body)
        return self._stream((chunk_event(c) for c in chunks), {"X-Amzn-Bedrock-Content-Type": "application/json"})

    def _meta(self) -> dict:
        return {"x-amzn-RequestId": str(uuid.uuid4())}

    def _stream(self, messages: Iterator[bytes], extra: Optional[dict] = None) -> None:
        self.start_chunked(200, "application/vnd.amazon.eventstream", {**self._meta(), **(extra or {})})
        for message in messages:
            self.write_chunk(message)
        self.end_chunked()

    def _error(self, status: int, code: str, message: str) -> None:
        self.send_json(
            status,
            {"message": message},
            {**self._meta(), "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"},
        )
