"""Shared body of the loopback stand-ins for OpenAI-shaped chat APIs with their own SDKs
(Groq, Together): JSON completions, SSE streams ending in ``data: [DONE]``, embeddings, and
each provider's own twists, chosen by a ``Flavor``.

Behaviour is chosen by the request: model ``error-<status>`` fails with that status and the
provider's error JSON; ``stream-error`` drops the connection after two content chunks; offering
tools while the user spoke last yields a tool call; Groq's ``reasoning_format="parsed"`` adds
reasoning text.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from ._http import JSONHandler, RecordingServer

PIECES = ["Hello", " from", " fake", " {name}"]
REASONING = "The user wants a greeting."
TOOL_ARGUMENTS = '{"city": "Paris"}'
PROMPT_TOKENS, COMPLETION_TOKENS, CACHED_TOKENS = 11, 7, 3
EMBEDDING_DIMENSIONS = 8


@dataclass(frozen=True)
class Flavor:
    name: str  # "Groq" | "Together"
    chat_path: str
    embeddings_path: str
    served_model_suffix: str = ""
    stop_reason: str = "stop"  # what a natural end is called
    usage_in_x_groq: bool = False  # streams put usage in x_groq.usage on the last chunk
    cached_tokens: bool = False


def _usage(flavor: Flavor) -> dict:
    usage = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }
    if flavor.usage_in_x_groq:
        usage.update(queue_time=0.01, prompt_time=0.002, completion_time=0.02, total_time=0.022)
    if flavor.cached_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": CACHED_TOKENS}
    return usage


def _wants_tool(body: dict) -> Optional[str]:
    tools, messages = body.get("tools"), body.get("messages") or []
    if not tools or not messages or messages[-1].get("role") != "user":
        return None
    return (tools[0].get("function") or {}).get("name")


class FakeCompatChat(RecordingServer):
    flavor: Flavor

    def __init__(self) -> None:
        super().__init__()
        self.handler_class = _Handler

    @property
    def base_url(self) -> str:
        return self.root_url


class _Handler(JSONHandler):
    server_version = "fake-compat-chat/1"

    def answer(self, path: str, query: dict, headers: dict, body: Any) -> None:
        flavor: Flavor = self.owner.flavor
        if not headers.get("authorization", "").startswith("Bearer "):
            return self._error(401, "Invalid API Key", "invalid_api_key")
        if path not in (flavor.chat_path, flavor.embeddings_path):
            return self._error(404, f"Unknown request URL: POST {path}", "unknown_url")
        if not isinstance(body, dict) or not body.get("model"):
            return self._error(400, "'model' : property 'model' is missing", "invalid_request_error")
        model = body["model"]
        fault = re.fullmatch(r"error-(\d{3})", model)
        if fault:
            return self._error(int(fault.group(1)), f"Fake failure for {model}", "rate_limit_exceeded")
        if path == flavor.embeddings_path:
            return self.send_json(200, self._embeddings(body))
        if body.get("stream"):
            return self._stream(self._chunks(body), cut_after=2 if model == "stream-error" else None)
        return self.send_json(200, self._completion(body))

    # -- payloads -------------------------------------------------------------------

    def _meta(self, body: dict, kind: str) -> dict:
        flavor: Flavor = self.owner.flavor
        meta = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": kind,
            "created": int(time.time()),
            "model": body["model"] + flavor.served_model_suffix,
        }
        if flavor.usage_in_x_groq:
            meta["system_fingerprint"] = "fp_fake"
        return meta

    def _text(self) -> str:
        return "".join(PIECES).format(name=self.owner.flavor.name)

    def _completion(self, body: dict) -> dict:
        flavor: Flavor = self.owner.flavor
        tool = _wants_tool(body)
        message: dict = {"role": "assistant", "content": None if tool else self._text()}
        if tool:
            message["tool_calls"] = [
                {"id": "call_1", "type": "function", "function": {"name": tool, "arguments": TOOL_ARGUMENTS}}
            ]
        if body.get("reasoning_format") == "parsed":
            message["reasoning"] = REASONING
        payload = {
            **self._meta(body, "chat.completion"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if tool else flavor.stop_reason,
                }
            ],
            "usage": _usage(flavor),
        }
        if flavor.usage_in_x_groq:
            payload["x_groq"] = {"id": "req_fake", "usage": {"dram_cached_tokens": 0, "sram_cached_tokens": 0}}
            payload["service_tier"] = "on_demand"
        else:
            payload["prompt"] = []
        return payload

    def _chunks(self, body: dict) -> Iterator[dict]:
        flavor: Flavor = self.owner.flavor
        meta = self._meta(body, "chat.completion.chunk")
        tool = _wants_tool(body)

        def chunk(delta: dict, finish: Optional[str] = None, **extra: Any) -> dict:
            payload = {
                **meta,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                **extra,
            }
            if flavor.usage_in_x_groq:
                payload.setdefault("x_groq", {"id": "req_fake"})
            else:
                payload.setdefault("usage", None)
            return payload

        yield chunk({"role": "assistant", "content": ""})
        if body.get("reasoning_format") == "parsed":
            for piece in (REASONING[:8], REASONING[8:]):
                yield chunk({"reasoning": piece})
        if tool:
            # Groq and Together send a whole tool call in one delta.
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": tool, "arguments": TOOL_ARGUMENTS},
                        }
                    ]
                }
            )
        else:
            for piece in PIECES:
                yield chunk({"role": "assistant", "content": piece.format(name=flavor.name)})
        finish = "tool_calls" if tool else flavor.stop_reason
        if flavor.usage_in_x_groq:
            yield chunk({}, finish, x_groq={"id": "req_fake", "usage": _usage(flavor)})
        else:
            yield chunk({"role": "assistant", "content": ""}, finish, usage=_usage(flavor))

    def _embeddings(self, body: dict) -> dict:
        flavor: Flavor = self.owner.flavor
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        payload = {
            "object": "list",
            "model": body["model"],
            "data": [
                {"object": "embedding", "index": i, "embedding": [0.01 * (i + 1)] * EMBEDDING_DIMENSIONS}
                for i in range(len(texts))
            ],
        }
        if flavor.usage_in_x_groq:
            payload["usage"] = {"prompt_tokens": 4 * len(texts), "total_tokens": 4 * len(texts)}
        return payload

    # -- transport ------------------------------------------------------------------

    def _stream(self, chunks: Iterator[dict], cut_after: Optional[int]) -> None:
        self.start_chunked(200, "text/event-stream")
        for n, chunk in enumerate(chunks):
            if cut_after is not None and n == cut_after + 1:
                return self.drop_connection()
            self.write_chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self.write_chunk(b"data: [DONE]\n\n")
        self.end_chunked()

    def _error(self, status: int, message: str, code: str) -> None:
        self.send_json(status, {"error": {"message": message, "type": "invalid_request_error", "code": code}})
