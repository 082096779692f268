"""A minimal loopback stand-in for Ollama's native API, as LiteLLM's ``ollama_chat/`` and
``ollama/`` providers call it (LiteLLM's own httpx handlers, no SDK).

Routes: ``POST /api/chat`` (NDJSON stream, or one JSON object with ``"stream": false``),
``POST /api/embed`` and ``POST /api/show`` (model details; LiteLLM reads the context length). Shapes follow Ollama's API docs: every stream line is a JSON object with
``message`` and ``done``; the last line has ``done: true``, ``done_reason`` and the token
counts ``prompt_eval_count`` / ``eval_count`` (Ollama's usage), plus the durations.

Behaviour is chosen by the request, like the OpenAI fake: model ``error-<status>`` answers with
that status and Ollama's ``{"error": ...}``; model ``stream-error`` drops the connection after
two content lines; offering ``tools`` while the user spoke last yields a tool call (Ollama sends
arguments as an object); ``think: true`` adds a ``thinking`` text.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any, Iterator

from ._http import JSONHandler, RecordingServer

REPLY_PIECES = ("Hello", " from", " fake", " Ollama")
THINKING = "The user wants a greeting."
TOOL_ARGUMENTS = {"city": "Paris"}
PROMPT_EVAL_COUNT = 26
EVAL_COUNT = 9
EMBEDDING_DIMENSIONS = 4
EMBED_PROMPT_EVAL_COUNT = 5


class FakeOllama(RecordingServer):
    """Point LiteLLM at ``base_url`` (``api_base=`` or ``OLLAMA_API_BASE``)."""

    def __init__(self) -> None:
        super().__init__()
        self.handler_class = _OllamaHandler

    @property
    def base_url(self) -> str:
        return self.root_url


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _final_fields(done_reason: str) -> dict:
    return {
        "done": True,
        "done_reason": done_reason,
        "total_duration": 4_883_583_458,
        "load_duration": 1_334_875,
        "prompt_eval_count": PROMPT_EVAL_COUNT,
        "prompt_eval_duration": 342_546_000,
        "eval_count": EVAL_COUNT,
        "eval_duration": 4_535_599_000,
    }


def _tool_name(body: dict) -> str | None:
    messages = body.get("messages") or []
    if not messages or messages[-1].get("role") != "user":
        return None
    for tool in body.get("tools") or []:
        if tool.get("type") == "function":
            return (tool.get("function") or {}).get("name")
    return None


def chat_lines(body: dict) -> Iterator[dict]:
    """The stream's objects, in order (the last one is the ``done`` line)."""
    model = body.get("model")
    tool = _tool_name(body)
    if body.get("think"):
        yield {
            "model": model,
            "created_at": _now(),
            "message": {"role": "assistant", "content": "", "thinking": THINKING},
            "done": False,
        }
    if tool:
        yield {
            "model": model,
            "created_at": _now(),
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": tool, "arguments": TOOL_ARGUMENTS}}],
            },
            "done": False,
        }
    else:
        for piece in REPLY_PIECES:
            yield {
                "model": model,
                "created_at": _now(),
                "message": {"role": "assistant", "content": piece},
                "done": False,
            }
    yield {
        "model": model,
        "created_at": _now(),
        "message": {"role": "assistant", "content": ""},
        **_final_fields("stop"),
    }


def chat_response(body: dict) -> dict:
    """The non-streamed answer: one object holding the whole message and the counts."""
    model = body.get("model")
    tool = _tool_name(body)
    message: dict = {"role": "assistant", "content": "" if tool else "".join(REPLY_PIECES)}
    if body.get("think"):
        message["thinking"] = THINKING
    if tool:
        message["tool_calls"] = [{"function": {"name": tool, "arguments": TOOL_ARGUMENTS}}]
    return {"model": model, "created_at": _now(), "message": message, **_final_fields("stop")}


def show_response(body: dict) -> dict:
    return {
        "template": "{{ .Prompt }}",
        "details": {
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M",
        },
        "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
        "capabilities": ["completion", "tools"],
    }


def embed_response(body: dict) -> dict:
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
    return {
        "model": body.get("model"),
        "embeddings": [
            [round(0.1 * (i + 1) + 0.01 * d, 4) for d in range(EMBEDDING_DIMENSIONS)] for i in range(len(inputs))
        ],
        "total_duration": 14_143_917,
        "load_duration": 1_019_500,
        "prompt_eval_count": EMBED_PROMPT_EVAL_COUNT,
    }


class _OllamaHandler(JSONHandler):
    server_version = "fake-ollama/1"

    def answer(self, path: str, query: dict, headers: dict, body: Any) -> None:
        if not isinstance(body, dict):
            return self.send_json(400, {"error": "invalid request body"})
        if path == "/api/show":
            return self.send_json(200, show_response(body))
        model = str(body.get("model") or "")
        fault = re.fullmatch(r"error-(\d{3})", model)
        if fault:
            return self.send_json(int(fault.group(1)), {"error": f"model '{model}' not found"})
        if path == "/api/embed":
            return self.send_json(200, embed_response(body))
        if path != "/api/chat":
            return self.send_json(404, {"error": "404 page not found"})
        if body.get("stream") is False:
            return self.send_json(200, chat_response(body))
        self.start_chunked(200, "application/x-ndjson")
        sent = 0
        for line in chat_lines(body):
            self.write_chunk(json.dumps(line, separators=(",", ":")).encode() + b"\n")
            sent += bool(line["message"].get("content"))
            if model == "stream-error" and sent >= 2:
                time.sleep(0.01)
                return self.drop_connection()
        self.end_chunked()
