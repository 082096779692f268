"""A loopback stand-in for Mistral AI's API (La Plateforme), and its Azure and Vertex AI hostings.

It answers as ``api.mistral.ai`` does: ``POST /v1/chat/completions`` (JSON, or server-sent
events ending with ``data: [DONE]`` when ``stream`` is true, the last chunk carrying the
``finish_reason`` and the ``usage``), ``POST /v1/embeddings``, and Mistral's error envelope
``{"object": "error", "message", "type", "param", "code"}``. The Azure AI path
(``/models/chat/completions``) and Vertex AI's ``rawPredict`` / ``streamRawPredict`` paths
take the same bodies.

Behaviour is chosen by the request:

* the **model name** ``error-<status>`` answers with that status; ``stream-error`` drops the
  connection after two content chunks; a model named ``magistral-*`` thinks first (a
  ``thinking`` content chunk before the text, as Magistral models answer);
* the **last user message** may carry ``reply="..."`` and ``chunks=N``;
* offering **tools** while the user spoke last yields a tool call (``finish_reason``
  ``tool_calls``, arguments as a JSON string, the whole call in one delta when streaming).

Usage follows the API: ``prompt_tokens`` includes ``prompt_tokens_details.cached_tokens``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, Iterator, Optional

from ._http import JSONHandler, RecordingServer
from .openai_wire import Reply, chat_reply

DEFAULT_REPLY = "Hello from fake Mistral"
THINKING_TEXT = "The user greets me."
TOOL_CALL_ID = "D681PevKs"
TOOL_ARGUMENTS = '{"city": "Paris"}'
EMBEDDING_DIMENSIONS = 8

PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7
CACHED_TOKENS = 3
EMBED_TOKENS_PER_TEXT = 4

_CHAT_PATH = re.compile(r"^(/v1/chat/completions|/models/chat/completions|.*[:/]rawPredict|.*[:/]streamRawPredict)$")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "unauthorized",
    404: "not_found",
    422: "invalid_request_error",
    429: "rate_limited",
    500: "internal_server_error",
    503: "service_unavailable",
}


class FakeMistral(RecordingServer):
    """Mistral API on 127.0.0.1: ``Mistral(api_key=..., server_url=server_url)``."""

    def __init__(self, reply_text: str = DEFAULT_REPLY) -> None:
        super().__init__()
        self.handler_class = _MistralHandler
        self.reply_text = reply_text

    @property
    def server_url(self) -> str:
        return self.root_url


def usage() -> dict:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS},
    }


def _tool_call() -> dict:
    return {"id": TOOL_CALL_ID, "function": {"name": None, "arguments": TOOL_ARGUMENTS}, "index": 0}


def completion(body: dict, reply: Reply, model: str) -> dict:
    if reply.tool_name:
        call = _tool_call()
        call["function"]["name"] = reply.tool_name
        message = {"role": "assistant", "content": "", "tool_calls": [call], "prefix": False}
        reason = "tool_calls"
    else:
        content: Any = reply.text
        if model.startswith("magistral"):
            content = [
                {"type": "thinking", "thinking": [{"type": "text", "text": THINKING_TEXT}]},
                {"type": "text", "text": reply.text},
            ]
        message = {"role": "assistant", "content": content, "tool_calls": None, "prefix": False}
        reason = "stop"
    return {
        "id": uuid.uuid4().hex,
        "object": "chat.completion",
        "model": model,
        "usage": usage(),
        "created": int(time.time()),
        "choices": [{"index": 0, "message": message, "finish_reason": reason}],
    }


def chunks(body: dict, reply: Reply, model: str) -> Iterator[dict]:
    base = {"id": uuid.uuid4().hex, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

    def chunk(delta: dict, reason: Optional[str] = None, last: bool = False) -> dict:
        payload = dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": reason}])
        if last:
            payload["usage"] = usage()
        return payload

    yield chunk({"role": "assistant", "content": ""})
    if model.startswith("magistral"):
        yield chunk({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": THINKING_TEXT}]}]})
    if reply.tool_name:
        call = _tool_call()
        call["function"]["name"] = reply.tool_name
        yield chunk({"tool_calls": [call]}, "tool_calls", last=True)
        return
    for i, piece in enumerate(reply.pieces):
        last = i == len(reply.pieces) - 1
        yield chunk({"content": piece}, "stop" if last else None, last=last)


def embedding_values(text: str) -> list[float]:
    seed = sum(text.encode())
    return [round(((seed + 17 * i) % 89 + 1) / 100.0, 6) for i in range(EMBEDDING_DIMENSIONS)]


def error_body(status: int, message: Optional[str] = None) -> dict:
    return {
        "object": "error",
        "message": message or f"fake error {status}",
        "type": _ERROR_TYPES.get(status, "error"),
        "param": None,
        "code": str(1000 + status),
    }


class _MistralHandler(JSONHandler):
    server_version = "fake-mistral/1"

    def answer(self, path: str, query: dict, headers: dict, body: Any) -> None:
        auth = headers.get("authorization", "")
        if not (auth.lower().startswith("bearer ") and auth[7:].strip()) and not headers.get("api-key"):
            return self.send_json(401, {"detail": "Unauthorized"})
        if not isinstance(body, dict):
            return self.send_json(400, error_body(400, "Invalid JSON body"))
        model = body.get("model") or ""
        fault = re.fullmatch(r"error-(\d{3})", model)
        if fault:
            status = int(fault.group(1))
            return self.send_json(status, error_body(status, "Requests rate limit exceeded" if status == 429 else None))
        if path == "/v1/embeddings":
            inputs = body.get("input")
            texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
            return self.send_json(
                200,
                {
                    "id": uuid.uuid4().hex,
                    "object": "list",
                    "model": model,
                    "data": [
                        {"object": "embedding", "embedding": embedding_values(t), "index": i}
                        for i, t in enumerate(texts)
                    ],
                    "usage": {
                        "prompt_tokens": EMBED_TOKENS_PER_TEXT * len(texts),
                        "completion_tokens": 0,
                        "total_tokens": EMBED_TOKENS_PER_TEXT * len(texts),
                    },
                },
            )
        if not _CHAT_PATH.match(path):
            return self.send_json(404, {"detail": "Not Found"})
        reply = chat_reply(body, self.owner.reply_text, structured=False)
        if body.get("stream"):
            return self._stream(chunks(body, reply, model), cut_after=2 if model == "stream-error" else None)
        return self.send_json(200, completion(body, reply, model))

    def _stream(self, payloads: Iterator[dict], cut_after: Optional[int]) -> None:
        self.start_chunked(200, "text/event-stream; charset=utf-8")
        content_seen = 0
        for payload in payloads:
            self.write_chunk(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n")
            delta = payload["choices"][0]["delta"]
            content_seen += bool(delta.get("content"))
            if cut_after is not None and content_seen >= cut_after:
                return self.drop_connection()
        self.write_chunk(b"data: [DONE]\n\n")
        self.end_chunked()
