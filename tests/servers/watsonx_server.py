"""A loopback stand-in for IBM watsonx.ai (as a Cloud Pak for Data install answers it), over TLS
(the SDK accepts only ``https://`` URLs; tests give it this server's CA as ``verify``).

What the SDK asks when a client is made: ``GET /ml/wml_services/v2/version`` (a 404 is fine),
``GET /v2/projects/{id}``, ``GET /ml/v1/foundation_model_specs``. Then, as the API answers:
``POST /ml/v1/text/chat`` (OpenAI's chat shape, ``model_id`` for ``model``), ``/ml/v1/text/chat_stream``
(server-sent events, the last chunk carrying the usage), ``/ml/v1/text/generation`` and
``/ml/v1/text/generation_stream`` (``results`` with ``generated_text``, ``generated_token_count``,
``input_token_count``, ``stop_reason``), ``/ml/v1/text/embeddings``; errors as watsonx's
``{"errors": [{"code", "message"}], "status_code"}``.

Behaviour is chosen by the request: the **model** ``error-<status>`` answers with that status;
offering **tools** while the user spoke last yields a tool call (``finish_reason`` ``tool_calls``).
"""

from __future__ import annotations

import json
import re
import ssl
import uuid
from typing import Any

from ._http import JSONHandler, RecordingServer

MODEL = "ibm/granite-3-8b-instruct"
DEFAULT_REPLY = "Hello from fake watsonx"
PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7
EMBED_TOKENS_PER_TEXT = 4
EMBEDDING_DIMENSIONS = 8
TOOL_CALL_ID = "chatcmpl-tool-1"
TOOL_ARGUMENTS = '{"city": "Paris"}'


def _usage() -> dict:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }


def _wants_tool_call(body: dict) -> bool:
    messages = body.get("messages") or []
    return bool(body.get("tools")) and bool(messages) and messages[-1].get("role") == "user"


def _tool_call() -> dict:
    return {"id": TOOL_CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": TOOL_ARGUMENTS}}


def _generation(text: str, reason: str = "eos_token") -> dict:
    return {
        "generated_text": text,
        "generated_token_count": COMPLETION_TOKENS,
        "input_token_count": PROMPT_TOKENS,
        "stop_reason": reason,
    }


class _WatsonxHandler(JSONHandler):
    server_version = "fake-watsonx/1"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        path, _ = self.split_path()
        if path.startswith("/v2/projects/"):
            project = path.rsplit("/", 1)[-1]
            return self.send_json(
                200,
                {
                    "metadata": {"guid": project},
                    "entity": {"name": project, "storage": {"type": "assetfiles"}, "compute": []},
                },
            )
        if path == "/ml/v1/foundation_model_specs":
            return self.send_json(
                200,
                {
                    "total_count": 3,
                    "limit": 200,
                    "resources": [
                        {
                            "model_id": MODEL,
                            "label": "granite",
                            "provider": "IBM",
                            "functions": [{"id": "text_chat"}, {"id": "text_generation"}],
                            "lifecycle": [{"id": "available", "start_date": "2024-01-01"}],
                        },
                        {
                            "model_id": "error-400",
                            "label": "fails",
                            "provider": "IBM",
                            "functions": [{"id": "text_chat"}],
                            "lifecycle": [{"id": "available", "start_date": "2024-01-01"}],
                        },
                        {
                            "model_id": "ibm/slate-30m-english-rtrvr",
                            "label": "slate",
                            "provider": "IBM",
                            "functions": [{"id": "embedding"}],
                            "lifecycle": [{"id": "available", "start_date": "2024-01-01"}],
                        },
                    ],
                },
            )
        return self.send_json(404, {"errors": [{"code": "not_found", "message": f"no {path}"}], "status_code": 404})

    def answer(self, path: str, query: dict, headers: dict, body: Any) -> None:
        if not headers.get("authorization"):
            return self.send_json(401, {"errors": [{"code": "authentication_token_not_valid"}], "status_code": 401})
        body = body if isinstance(body, dict) else {}
        model = body.get("model_id") or ""
        fault = re.fullmatch(r"error-(\d{3})", model)
        if fault:
            status = int(fault.group(1))
            return self.send_json(
                status,
                {"errors": [{"code": "fake_error", "message": f"fake watsonx error {status}"}], "status_code": status},
            )
        response_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        if path == "/ml/v1/text/chat":
            message: dict = {"role": "assistant"}
            if _wants_tool_call(body):
                message["tool_calls"] = [_tool_call()]
                reason = "tool_calls"
            else:
                message["content"] = DEFAULT_REPLY
                reason = "stop"
            return self.send_json(
                200,
                {
                    "id": response_id,
                    "model_id": model,
                    "created": 1,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": reason}],
                    "usage": _usage(),
                },
            )
        if path == "/ml/v1/text/chat_stream":
            words = DEFAULT_REPLY.split(" ")
            chunks = [
                {
                    "id": response_id,
                    "model_id": model,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": w + (" " if i < len(words) - 1 else "")},
                            "finish_reason": None,
                        }
                    ],
                }
                for i, w in enumerate(words)
            ]
            chunks.append(
                {
                    "id": response_id,
                    "model_id": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": _usage(),
                }
            )
            return self._events(chunks)
        if path == "/ml/v1/text/generation":
            return self.send_json(
                200, {"model_id": model, "created_at": "2026-12-07T00:00:00Z", "results": [_generation(DEFAULT_REPLY)]}
            )
        if path == "/ml/v1/text/generation_stream":
            words = DEFAULT_REPLY.split(" ")
            return self._events(
                [
                    {
                        "model_id": model,
                        "results": [
                            _generation(
                                w + (" " if i < len(words) - 1 else ""),
                                "not_finished" if i < len(words) - 1 else "eos_token",
                            )
                        ],
                    }
                    for i, w in enumerate(words)
                ]
            )
        if path == "/ml/v1/text/embeddings":
            inputs = body.get("inputs") or []
            return self.send_json(
                200,
                {
                    "model_id": model,
                    "input_token_count": EMBED_TOKENS_PER_TEXT * len(inputs),
                    "results": [{"embedding": [0.1 * (i + 1)] * EMBEDDING_DIMENSIONS} for i, _ in enumerate(inputs)],
                },
            )
        return self.send_json(404, {"errors": [{"code": "not_found", "message": f"no {path}"}], "status_code": 404})

    def _events(self, chunks: list) -> None:
        self.start_chunked(200, "text/event-stream")
        for i, chunk in enumerate(chunks):
            self.write_chunk(f"id: {i + 1}\nevent: message\ndata: {json.dumps(chunk)}\n\n".encode())
        self.end_chunked()


class FakeWatsonx(RecordingServer):
    """watsonx.ai on https://127.0.0.1: ``Credentials(url=url, token=..., version="5.2",
    instance_id="openshift")`` and ``verify=ca_path``."""

    def __init__(self, ca_path: str, ssl_context: ssl.SSLContext) -> None:
        super().__init__()
        self.handler_class = _WatsonxHandler
        self.ssl_context = ssl_context
        self.ca_path = ca_path
