"""A loopback stand-in for the Ollama server API (``OLLAMA_HOST``).

``POST /api/chat``, ``/api/generate``, ``/api/embed`` and ``/api/embeddings`` answer as Ollama does:
JSON, or NDJSON lines when ``stream`` is true (Ollama's default; the Python SDK always sends it),
the last line ``"done": true`` with ``done_reason`` and the counts (``prompt_eval_count``,
``eval_count``, durations in nanoseconds).

Behaviour is chosen by the request: an unknown model (``missing-model``) answers 404 with
``{"error": "model '...' not found"}``; ``stream-error`` sends an ``{"error": ...}`` line after two
parts, as Ollama does when generation fails midway; ``think`` adds thinking text; offering tools
while the user spoke last yields a tool call (arguments as an object, as Ollama sends them).
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from ._http import JSONHandler, RecordingServer

PIECES = ["Hello", " from", " fake", " Ollama"]
REPLY = "".join(PIECES)
THINKING = ["Greeting ", "requested."]
PROMPT_EVAL_COUNT, EVAL_COUNT = 11, 7
EMBEDDING_DIMENSIONS = 8
CREATED_AT = "2025-01-01T00:00:00.000000Z"


def _final(model: str, done_reason: str = "stop") -> dict:
    return {
        "model": model,
        "created_at": CREATED_AT,
        "done": True,
        "done_reason": done_reason,
        "total_duration": 123456789,
        "load_duration": 1234567,
        "prompt_eval_count": PROMPT_EVAL_COUNT,
        "prompt_eval_duration": 2345678,
        "eval_count": EVAL_COUNT,
        "eval_duration": 3456789,
    }


def _tool_call(body: dict) -> Any:
    tools, messages = body.get("tools"), body.get("messages") or []
    if not tools or not messages or messages[-1].get("role") != "user":
        return None
    return {"function": {"name": tools[0]["function"]["name"], "arguments": {"city": "Paris"}}}


class FakeOllama(RecordingServer):
    def __init__(self) -> None:
        super().__init__()
        self.handler_class = _OllamaHandler

    @property
    def host(self) -> str:
        """The value for ``OLLAMA_HOST`` / ``Client(host=...)``."""
        return self.root_url


class _OllamaHandler(JSONHandler):
    server_version = "fake-ollama/1"

    def answer(self, path: str, query: dict, headers: dict, body: Any) -> None:
        if path not in ("/api/chat", "/api/generate", "/api/embed", "/api/embeddings"):
            return self.send_body(404, b"404 page not found", "text/plain")
        if not isinstance(body, dict):
            return self.send_json(400, {"error": "invalid request body"})
        model = body.get("model") or ""
        if not model:
            return self.send_json(400, {"error": "model is required"})
        if model == "missing-model":
            return self.send_json(404, {"error": f"model '{model}' not found"})
        if path == "/api/embed":
            texts = body.get("input")
            texts = [texts] if isinstance(texts, str) else list(texts or [])
            return self.send_json(
                200,
                {
                    "model": model,
                    "embeddings": [[0.1] * EMBEDDING_DIMENSIONS for _ in texts],
                    "total_duration": 1000,
                    "load_duration": 100,
                    "prompt_eval_count": 4 * len(texts),
                },
            )
        if path == "/api/embeddings":
            return self.send_json(200, {"embedding": [0.2] * EMBEDDING_DIMENSIONS})
        chat = path == "/api/chat"
        parts = list(self._parts(model, body, chat))
        if body.get("stream", True):
            self.start_chunked(200, "application/x-ndjson")
            for part in parts:
                self.write_chunk(json.dumps(part).encode() + b"\n")
            return self.end_chunked()
        whole = self._whole(parts, chat)
        return self.send_json(500 if "error" in whole else 200, whole)

    def _parts(self, model: str, body: dict, chat: bool) -> Iterator[dict]:
        def part(text: str = "", thinking: str = "", tool_calls: Any = None) -> dict:
            if chat:
                message: dict = {"role": "assistant", "content": text}
                if thinking:
                    message["thinking"] = thinking
                if tool_calls:
                    message["tool_calls"] = tool_calls
                return {"model": model, "created_at": CREATED_AT, "message": message, "done": False}
            generated = {"model": model, "created_at": CREATED_AT, "response": text, "done": False}
            if thinking:
                generated["thinking"] = thinking
            return generated

        if body.get("think"):
            for piece in THINKING:
                yield part(thinking=piece)
        call = _tool_call(body) if chat else None
        if call:
            yield part(tool_calls=[call])
        else:
            for n, piece in enumerate(PIECES):
                if model == "stream-error" and n == 2:
                    yield {"error": "an error was encountered while running the model: unexpected EOF"}
                    return
                yield part(piece)
        final = part()
        final.update(_final(model, "length" if (body.get("options") or {}).get("num_predict") == 4 else "stop"))
        if not chat:
            final["context"] = [1, 2, 3]
        yield final

    def _whole(self, parts: list, chat: bool) -> dict:
        if any("error" in p for p in parts):
            return {"error": parts[-1]["error"]}
        whole = dict(parts[-1])
        if chat:
            message = {"role": "assistant", "content": "".join(p["message"]["content"] for p in parts)}
            thinking = "".join(p["message"].get("thinking", "") for p in parts)
            calls = [c for p in parts for c in p["message"].get("tool_calls", [])]
            if thinking:
                message["thinking"] = thinking
            if calls:
                message["tool_calls"] = calls
            whole["message"] = message
        else:
            whole["response"] = "".join(p["response"] for p in parts)
            thinking = "".join(p.get("thinking", "") for p in parts)
            if thinking:
                whole["thinking"] = thinking
        return whole
