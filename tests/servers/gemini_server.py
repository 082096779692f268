"""A loopback stand-in for the Gemini API (and Vertex AI's Gemini endpoints).

It speaks the REST dialect the ``google-genai`` SDK uses: camelCase JSON,
``POST /{version}/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``
(server-sent events, one ``GenerateContentResponse`` per ``data:`` line, separated by
CRLF pairs as Google sends them; without ``alt=sse``, as the Vertex AI SDK's REST transport
asks, one JSON array sent element by element), ``:batchEmbedContents`` / ``:embedContent`` /
``:predict`` for embeddings, and Google's error envelope
``{"error": {"code", "message", "status"}}``. Vertex paths
(``/{version}/projects/{p}/locations/{l}/publishers/google/models/{m}:...``) are
accepted too.

Behaviour is chosen by the request, as with the OpenAI fake:

* the **model name** ``error-<status>`` answers with that HTTP status and Google's
  error body; ``stream-error`` cuts a stream after two content chunks by closing the
  connection mid-body;
* the **last user text** may carry ``reply="..."`` and ``chunks=N``;
* offering **function declarations** while the user spoke last yields a
  ``functionCall`` part (with a ``thoughtSignature``, as Gemini 2.5+ sends);
* ``thinkingConfig.includeThoughts`` adds a thought part before the answer.

Usage follows the real API: ``promptTokenCount`` includes ``cachedContentTokenCount``,
``candidatesTokenCount`` excludes ``thoughtsTokenCount``, and while streaming every
chunk carries the running ``usageMetadata`` but only the last one has the candidate
and thought counts (and the ``finishReason``).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Iterator, Optional

from ._http import JSONHandler, RecordingServer
from .openai_wire import Reply, plan_reply

DEFAULT_REPLY = "Hello from fake Gemini"
# What Model Garden says a text-embedding model takes (the Vertex AI SDK checks it).
VERTEX_EMBEDDING_SCHEMA = "gs://google-cloud-aiplatform/schema/predict/instance/text_embedding_1.0.0.yaml"
THOUGHT_TEXT = "Let me think about this."
THOUGHT_SIGNATURE = "c2lnbmF0dXJlLTE="  # base64, bytes in the SDK
TOOL_ARGS = {"city": "Paris"}
EMBEDDING_DIMENSIONS = 8

PROMPT_TOKENS = 11
CANDIDATES_TOKENS = 7
CACHED_TOKENS = 3
THOUGHTS_TOKENS = 2
TOOL_USE_PROMPT_TOKENS = 0
EMBED_TOKENS_PER_TEXT = 4

_PATH = re.compile(
    r"^/(?P<version>v1[a-z0-9]*)/"
    r"(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/[^/]+/)?"
    r"(?:models|tunedModels)/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$"
)
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_STATUS_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}


class FakeGemini(RecordingServer):
    """Gemini API on 127.0.0.1: ``genai.Client(api_key=..., http_options={"base_url": base_url})``."""

    def __init__(self, reply_text: str = DEFAULT_REPLY) -> None:
        super().__init__()
        self.handler_class = _GeminiHandler
        self.reply_text = reply_text

    @property
    def base_url(self) -> str:
        return self.root_url


# -- deciding what to answer ----------------------------------------------------------------


def _texts(content: Any) -> list[str]:
    return [
        p["text"] for p in (content or {}).get("parts") or () if isinstance(p, dict) and isinstance(p.get("text"), str)
    ]


def _function_names(body: dict) -> list[str]:
    names = []
    for tool in body.get("tools") or ():
        for declaration in tool.get("functionDeclarations") or ():
            names.append(declaration.get("name"))
    return [n for n in names if n]


def plan(body: dict, default_text: str) -> Reply:
    """A function call when functions were offered and the user's text came last, else text."""
    contents = body.get("contents") or []
    last = contents[-1] if contents else {}
    user_text = " ".join(_texts(last)) if last.get("role", "user") == "user" else ""
    names = _function_names(body)
    answered = any("functionResponse" in p for p in last.get("parts") or ())
    tool_name = names[0] if names and user_text and not answered else None
    return plan_reply(user_text, default_text, tool_name)


def _thinks(body: dict) -> bool:
    thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
    # Proto3 JSON accepts both spellings, and the SDK sends either depending on how it is given.
    return bool(thinking.get("includeThoughts") or thinking.get("include_thoughts"))


def _usage(final: bool) -> dict:
    usage = {
        "promptTokenCount": PROMPT_TOKENS,
        "totalTokenCount": PROMPT_TOKENS,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": PROMPT_TOKENS}],
    }
    if final:
        usage.update(
            {
                "candidatesTokenCount": CANDIDATES_TOKENS,
                "thoughtsTokenCount": THOUGHTS_TOKENS,
                "cachedContentTokenCount": CACHED_TOKENS,
                "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": CACHED_TOKENS}],
                "totalTokenCount": PROMPT_TOKENS + CANDIDATES_TOKENS + THOUGHTS_TOKENS,
            }
        )
    return usage


def _function_call_part(name: str) -> dict:
    return {"functionCall": {"name": name, "args": dict(TOOL_ARGS)}, "thoughtSignature": THOUGHT_SIGNATURE}


def generate_content(body: dict, reply: Reply, model: str, response_id: str) -> dict:
    parts: list[dict] = []
    if _thinks(body):
        parts.append({"text": THOUGHT_TEXT, "thought": True})
    parts.append(_function_call_part(reply.tool_name) if reply.tool_name else {"text": reply.text})
    return {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": _usage(final=True),
        "modelVersion": model,
        "responseId": response_id,
    }


def stream_chunks(body: dict, reply: Reply, model: str, response_id: str) -> Iterator[dict]:
    """The SSE payloads for one streamed answer (no ``index`` on candidates, as the API streams)."""
    part_lists: list[list[dict]] = []
    if _thinks(body):
        part_lists.append([{"text": THOUGHT_TEXT, "thought": True}])
    if reply.tool_name:
        part_lists.append([_function_call_part(reply.tool_name)])
    else:
        part_lists.extend([{"text": piece}] for piece in reply.pieces)
    for i, parts in enumerate(part_lists):
        last = i == len(part_lists) - 1
        candidate: dict = {"content": {"parts": parts, "role": "model"}}
        if last:
            candidate["finishReason"] = "STOP"
        yield {
            "candidates": [candidate],
            "usageMetadata": _usage(final=last),
            "modelVersion": model,
            "responseId": response_id,
        }


def embedding_values(text: str) -> list[float]:
    seed = sum(text.encode())
    return [round(((seed + 31 * i) % 97 + 1) / 100.0, 6) for i in range(EMBEDDING_DIMENSIONS)]


def _content_text(content: Any) -> str:
    return " ".join(_texts(content))


def error_body(status: int, message: Optional[str] = None) -> dict:
    return {
        "error": {
            "code": status,
            "message": message or _STATUS_MESSAGES.get(status, f"fake error {status}"),
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }


# -- HTTP ---------------------------------------------------------------------------------------


class _GeminiHandler(JSONHandler):
    server_version = "fake-gemini/1"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        """Model Garden's publisher model, which the Vertex AI SDK reads in ``from_pretrained``."""
        path, _ = self.split_path()
        found = re.fullmatch(r"/v1[a-z0-9]*/publishers/google/models/(?P<model>[^/:]+)", path)
        if found is None:
            return self.send_json(404, error_body(404, f"Invalid path {path}"))
        model = found.group("model")
        self.send_json(
            200,
            {
                "name": f"publishers/google/models/{model}",
                "versionId": "001",
                "publisherModelTemplate": f"projects/{{user-project}}/locations/{{location}}/publishers/google/models/{model}",
                "predictSchemata": {"instanceSchemaUri": VERTEX_EMBEDDING_SCHEMA},
            },
        )

    def answer(self, path: str, query: dict, headers: dict, body: Any) -> None:
        match = _PATH.match(path)
        if match is None:
            return self.send_json(404, error_body(404, f"Invalid path {path}"))
        if not (headers.get("x-goog-api-key") or query.get("key") or headers.get("authorization")):
            return self.send_json(401, error_body(401, "API key not valid. Please pass a valid API key."))
        if not isinstance(body, dict):
            return self.send_json(400, error_body(400, "Invalid JSON payload received."))
        model, method = match.group("model"), match.group("method")
        fault = re.fullmatch(r"error-(\d{3})", model)
        if fault:
            status = int(fault.group(1))
            return self.send_json(status, error_body(status))
        response_id = uuid.uuid4().hex[:22]
        if method == "generateContent":
            reply = plan(body, self.owner.reply_text)
            return self.send_json(200, generate_content(body, reply, model, response_id))
        if method == "streamGenerateContent":
            reply = plan(body, self.owner.reply_text)
            chunks = stream_chunks(body, reply, model, response_id)
            cut_after = 2 if model == "stream-error" else None
            if query.get("alt") == "sse":
                return self._stream(chunks, cut_after)
            return self._stream_json_array(chunks, cut_after)
        if method == "batchEmbedContents":
            requests = body.get("requests") or []
            return self.send_json(
                200,
                {
                    "embeddings": [{"values": embedding_values(_content_text(r.get("content")))} for r in requests],
                    "usageMetadata": {
                        "promptTokenCount": EMBED_TOKENS_PER_TEXT * len(requests),
                        "totalTokenCount": EMBED_TOKENS_PER_TEXT * len(requests),
                    },
                },
            )
        if method == "embedContent":
            return self.send_json(
                200,
                {
                    "embedding": {"values": embedding_values(_content_text(body.get("content")))},
                    "usageMetadata": {
                        "promptTokenCount": EMBED_TOKENS_PER_TEXT,
                        "totalTokenCount": EMBED_TOKENS_PER_TEXT,
                    },
                },
            )
        if method == "predict":  # Vertex AI text-embedding models
            instances = body.get("instances") or []
            return self.send_json(
                200,
                {
                    "predictions": [
                        {
                            "embeddings": {
                                "values": embedding_values(str(i.get("content"))),
                                "statistics": {"token_count": EMBED_TOKENS_PER_TEXT, "truncated": False},
                            }
                        }
                        for i in instances
                    ],
                    "metadata": {"billableCharacterCount": sum(len(str(i.get("content"))) for i in instances)},
                },
            )
        return self.send_json(404, error_body(404, f"Method {method} not found"))

    def _stream_json_array(self, chunks: Iterator[dict], cut_after: Optional[int]) -> None:
        """Google's REST streaming without ``alt=sse`` (the Vertex AI SDK's REST transport):
        one JSON array, its elements sent as they are made."""
        self.start_chunked(200, "application/json")
        for sent, chunk in enumerate(chunks, start=1):
            self.write_chunk((b"[" if sent == 1 else b",\r\n") + json.dumps(chunk, separators=(",", ":")).encode())
            if cut_after is not None and sent >= cut_after:
                return self.drop_connection()
        self.write_chunk(b"]")
        self.end_chunked()

    def _stream(self, chunks: Iterator[dict], cut_after: Optional[int]) -> None:
        self.start_chunked(200, "text/event-stream")
        for sent, chunk in enumerate(chunks, start=1):
            self.write_chunk(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\r\n\r\n")
            if cut_after is not None and sent >= cut_after:
                return self.drop_connection()
        self.end_chunked()
