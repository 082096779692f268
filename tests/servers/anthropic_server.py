"""A loopback stand-in for Anthropic's Messages API, as served by Anthropic, Amazon Bedrock and
Google Vertex AI.

Routes:

* Anthropic: ``POST /v1/messages`` (``?beta=true`` for the beta namespace); JSON, or an SSE
  stream (``message_start``, ``content_block_start`` / ``content_block_delta`` (``text_delta``,
  ``input_json_delta``, ``thinking_delta``, ``signature_delta``) / ``content_block_stop``,
  ``ping``, ``message_delta`` with usage, ``message_stop``); errors as Anthropic's error JSON.
* Bedrock: ``POST /model/{model}/invoke`` and ``/invoke-with-response-stream``; the stream is
  AWS event-stream framing (binary messages with CRCs) whose ``chunk`` events carry the same
  Messages events base64-encoded, as Bedrock sends them.
* Vertex AI: ``POST /projects/{p}/locations/{r}/publishers/anthropic/models/{model}:rawPredict``
  and ``:streamRawPredict`` (SSE, like Anthropic).

Behaviour is chosen by the request, since the app usually runs in a subprocess:

* model ``error-<status>``: that status with the provider's error body;
* model ``stream-error-event``: a stream that sends an SSE ``error`` event (overloaded) after
  its first text delta; ``stream-cut``: a stream whose connection is dropped mid-body;
* ``tools`` offered while the last user turn is plain text: a ``tool_use`` block
  (``{"city": "Paris"}`` for the first tool), streamed as ``input_json_delta`` pieces;
* ``thinking`` enabled: a ``thinking`` block (with signature) before the answer;
* a JSON-schema output format: ``{"city": "Paris", "celsius": 21}``;
* otherwise the text ``Hello from fake Claude`` (in ``chunks`` deltas when streaming).

Usage always has cache tokens: input 11, cache read 5, cache creation 3 (all 5-minute),
output 7 (4 of them thinking when thinking was asked for).
"""

from __future__ import annotations

import base64
import json
import re
import struct
import uuid
import zlib
from typing import Any

from ._http import JSONHandler, RecordingServer

REPLY = "Hello from fake Claude"
JSON_REPLY = '{"city": "Paris", "celsius": 21}'
THINKING = "The user wants a greeting."
SIGNATURE = "sig-abc123"
SERVED_MODEL_SUFFIX = "-20250101"  # what the stand-in reports as the model, as a served version

INPUT_TOKENS = 11
OUTPUT_TOKENS = 7
CACHE_READ = 5
CACHE_CREATION = 3
THINKING_TOKENS = 4

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

_BEDROCK = re.compile(r"^/model/(?P<model>[^/]+)/(?P<action>invoke|invoke-with-response-stream)$")
_VERTEX = re.compile(
    r"^/v1/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/(?P<model>[^/:]+):(?P<action>rawPredict|streamRawPredict)$"
)


class FakeAnthropic(RecordingServer):
    def __init__(self) -> None:
        super().__init__()
        self.handler_class = _AnthropicHandler

    @property
    def base_url(self) -> str:
        return self.root_url

    @property
    def vertex_base_url(self) -> str:
        return f"{self.root_url}/v1"


# -- payloads ---------------------------------------------------------------------------------


def served_model(model: str) -> str:
    return model if model.endswith(SERVED_MODEL_SUFFIX) else model + SERVED_MODEL_SUFFIX


def _usage(thinking: bool, output_tokens: int = OUTPUT_TOKENS) -> dict:
    usage = {
        "input_tokens": INPUT_TOKENS,
        "cache_creation_input_tokens": CACHE_CREATION,
        "cache_read_input_tokens": CACHE_READ,
        "cache_creation": {"ephemeral_5m_input_tokens": CACHE_CREATION, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if thinking:
        usage["output_tokens_details"] = {"thinking_tokens": THINKING_TOKENS}
    return usage


def _last_user_text(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        for block in content or []:
            if block.get("type") == "text":
                return block.get("text") or ""
        return ""
    return ""


def _wants_tool_call(body: dict) -> bool:
    if not body.get("tools"):
        return False
    messages = body.get("messages") or []
    if not messages or messages[-1].get("role") != "user":
        return False
    content = messages[-1].get("content")
    return isinstance(content, str) or all(b.get("type") != "tool_result" for b in content or [])


def plan_blocks(body: dict) -> tuple[list[dict], str]:
    """The content blocks of the answer and its stop reason."""
    blocks: list[dict] = []
    thinking = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
    if thinking:
        blocks.append({"type": "thinking", "thinking": THINKING, "signature": SIGNATURE})
    if _wants_tool_call(body):
        tool = body["tools"][0]
        blocks.append({"type": "tool_use", "id": "toolu_01", "name": tool.get("name"), "input": {"city": "Paris"}})
        return blocks, "tool_use"
    formats = ((body.get("output_config") or {}).get("format") or {}, body.get("output_format") or {})
    if any(f.get("type") == "json_schema" for f in formats):
        blocks.append({"type": "text", "text": JSON_REPLY})
        return blocks, "end_turn"
    match = re.search(r'reply="([^"]*)"', _last_user_text(body))
    blocks.append({"type": "text", "text": match.group(1) if match else REPLY})
    return blocks, "end_turn"


def message(body: dict, model: str) -> dict:
    blocks, stop_reason = plan_blocks(body)
    return {
        "id": f"msg_{uuid.uuid4().hex[:20]}",
        "type": "message",
        "role": "assistant",
        "model": served_model(model),
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _usage(any(b["type"] == "thinking" for b in blocks)),
    }


def _pieces(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // max(count, 1)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def stream_events(body: dict, model: str, chunks: int = 3) -> list[dict]:
    """The Messages stream of the same answer ``message`` gives."""
    whole = message(body, model)
    start = dict(whole, content=[], stop_reason=None, usage=dict(_usage(False), output_tokens=1))
    start["usage"].pop("service_tier")
    events: list[dict] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(whole["content"]):
        kind = block["type"]
        if kind == "text":
            events.append(
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
            )
            for piece in _pieces(block["text"], chunks):
                events.append(
                    {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}
                )
        elif kind == "thinking":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                }
            )
            for piece in _pieces(block["thinking"], 2):
                events.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "thinking_delta", "thinking": piece},
                    }
                )
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": block["signature"]},
                }
            )
        elif kind == "tool_use":
            events.append(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}},
                }
            )
            arguments = json.dumps(block["input"])
            for piece in ("", *_pieces(arguments, 3)):
                events.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    }
                )
        events.append({"type": "content_block_stop", "index": index})
        if index == 0:
            events.append({"type": "ping"})
    usage = whole["usage"]
    delta_usage = {
        key: usage[key]
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    }
    if "output_tokens_details" in usage:
        delta_usage["output_tokens_details"] = usage["output_tokens_details"]
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": whole["stop_reason"], "stop_sequence": None},
            "usage": delta_usage,
        }
    )
    events.append({"type": "message_stop"})
    return events


def error_body(status: int) -> dict:
    kind = _ERROR_TYPES.get(status, "api_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": f"fake {kind} ({status})"},
        "request_id": f"req_{uuid.uuid4().hex[:12]}",
    }


# -- AWS event stream ------------------------------------------------------------------------


def _event_stream_header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value


def event_stream_message(headers: dict, payload: bytes) -> bytes:
    """One ``application/vnd.amazon.eventstream`` message (prelude, headers, payload, CRCs)."""
    header_bytes = b"".join(_event_stream_header(k, v) for k, v in headers.items())
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack("!II", total, len(header_bytes))
    prelude += struct.pack("!I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + header_bytes + payload
    return body + struct.pack("!I", zlib.crc32(body) & 0xFFFFFFFF)


def bedrock_chunk(event: dict) -> bytes:
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode(), "p": "abcd"}).encode()
    return event_stream_message(
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}, payload
    )


# -- handler ----------------------------------------------------------------------------------


class _AnthropicHandler(JSONHandler):
    @staticmethod
    def parse_body(raw: bytes) -> Any:
        """The request's JSON, ``{}`` for an empty body, ``None`` for one that is not JSON."""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def answer(self, path: str, query: dict, headers: dict, body: Any) -> None:
        if not isinstance(body, dict):
            self.send_json(400, error_body(400))
            return

        platform, model, streaming = "anthropic", body.get("model") or "", bool(body.get("stream"))
        bedrock, vertex = _BEDROCK.match(path), _VERTEX.match(path)
        if bedrock:
            platform, model = "bedrock", bedrock.group("model")
            streaming = bedrock.group("action") == "invoke-with-response-stream"
        elif vertex:
            platform, model = "vertex", vertex.group("model")
            streaming = vertex.group("action") == "streamRawPredict"
        elif path != "/v1/messages":
            self.send_json(404, error_body(404))
            return

        fault = re.fullmatch(r"error-(\d{3})", model)
        if fault:
            status = int(fault.group(1))
            if platform == "bedrock":
                self.send_json(
                    status,
                    {"message": f"fake bedrock error ({status})"},
                    {"x-amzn-ErrorType": "ThrottlingException" if status == 429 else "ValidationException"},
                )
            else:
                self.send_json(status, error_body(status), {"request-id": "req_fake_error"})
            return

        if not streaming:
            self.send_json(200, message(body, model), {"request-id": "req_fake_ok"})
            return
        events = stream_events(body, model)
        if platform == "bedrock":
            self.start_chunked(200, "application/vnd.amazon.eventstream", {"x-amzn-requestid": "req_fake_stream"})
            for event in events:
                self.write_chunk(bedrock_chunk(event))
            self.end_chunked()
            return
        self.start_chunked(200, "text/event-stream", {"request-id": "req_fake_stream"})
        for number, event in enumerate(events):
            if model == "stream-cut" and event["type"] == "content_block_delta" and number > 2:
                self.drop_connection()
                return
            self.write_chunk(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            if model == "stream-error-event" and event["type"] == "content_block_delta":
                error = error_body(529)
                self.write_chunk(f"event: error\ndata: {json.dumps(error)}\n\n".encode())
                self.end_chunked()
                return
        self.end_chunked()
