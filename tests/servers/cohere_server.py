"""A loopback stand-in for Cohere's v2 API (``POST /v2/chat``, ``/v2/embed``, ``/v2/rerank``)
and the v1 ``/v1/rerank``.

It answers as ``api.cohere.com`` does: a chat response is ``{id, message, finish_reason,
usage}`` with the message's ``content`` a list of typed blocks (``text``, ``thinking``), tool
calls under ``message.tool_calls`` next to a ``tool_plan``; streaming is server-sent events
with named events (``message-start``, ``content-start`` / ``content-delta`` /
``content-end`` per block, ``tool-plan-delta``, ``tool-call-start`` / ``tool-call-delta`` /
``tool-call-end``, and ``message-end`` carrying the ``finish_reason`` and the usage). Usage
has two counts, as Cohere reports them: ``billed_units`` (what is charged) and ``tokens``
(everything the model read and wrote, including Cohere's own system preamble), plus
``cached_tokens``. Rerank answers ``{id, results: [{index, relevance_score}], meta:
{billed_units: {search_units}}}``, ranking documents by the words they share with the query.
Errors are ``{"id", "message"}`` with the HTTP status.

Behaviour is chosen by the request:

* the **model name** ``error-<status>`` answers with that status; ``stream-error`` drops the
  connection after two content deltas; a model whose name contains ``reasoning`` thinks
  first (a ``thinking`` block before the text);
* the **last user message** may carry ``reply="..."`` and ``chunks=N``;
* offering **tools** while the user spoke last yields a tool call, its arguments streamed
  in two fragments.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Iterator, Optional

from ._http import JSONHandler, RecordingServer
from .openai_wire import Reply, chat_reply

DEFAULT_REPLY = "Hello from fake Cohere"
THINKING_TEXT = "A greeting is expected."
TOOL_PLAN = "I will look up the weather in Paris."
TOOL_CALL_ID = "get_weather_1byjy32y4hvq"
TOOL_ARGUMENTS = '{"city":"Paris"}'
EMBEDDING_DIMENSIONS = 8

BILLED_INPUT_TOKENS = 5
BILLED_OUTPUT_TOKENS = 7
INPUT_TOKENS = 71  # includes the preamble Cohere adds and does not bill
OUTPUT_TOKENS = 9
CACHED_TOKENS = 64
EMBED_TOKENS_PER_TEXT = 4
RERANK_SEARCH_UNITS = 1


class FakeCohere(RecordingServer):
    """Cohere API on 127.0.0.1: ``cohere.ClientV2(api_key=..., base_url=base_url)`` or ``CO_API_URL``."""

    def __init__(self, reply_text: str = DEFAULT_REPLY) -> None:
        super().__init__()
        self.handler_class = _CohereHandler
        self.reply_text = reply_text

    @property
    def base_url(self) -> str:
        return self.root_url


def usage() -> dict:
    return {
        "billed_units": {"input_tokens": BILLED_INPUT_TOKENS, "output_tokens": BILLED_OUTPUT_TOKENS},
        "tokens": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS},
        "cached_tokens": CACHED_TOKENS,
    }


def _thinks(model: str) -> bool:
    return "reasoning" in model


def chat_response(reply: Reply, model: str) -> dict:
    if reply.tool_name:
        message = {
            "role": "assistant",
            "tool_plan": TOOL_PLAN,
            "tool_calls": [
                {
                    "id": TOOL_CALL_ID,
                    "type": "function",
                    "function": {"name": reply.tool_name, "arguments": TOOL_ARGUMENTS},
                }
            ],
        }
        reason = "TOOL_CALL"
    else:
        content = [{"type": "text", "text": reply.text}]
        if _thinks(model):
            content.insert(0, {"type": "thinking", "thinking": THINKING_TEXT})
        message = {"role": "assistant", "content": content}
        reason = "COMPLETE"
    return {"id": str(uuid.uuid4()), "message": message, "finish_reason": reason, "usage": usage()}


def stream_events(reply: Reply, model: str) -> Iterator[dict]:
    yield {
        "id": str(uuid.uuid4()),
        "type": "message-start",
        "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}},
    }
    if reply.tool_name:
        yield {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": TOOL_PLAN}}}
        yield {
            "type": "tool-call-start",
            "index": 0,
            "delta": {
                "message": {
                    "tool_calls": {
                        "id": TOOL_CALL_ID,
                        "type": "function",
                        "function": {"name": reply.tool_name, "arguments": ""},
                    }
                }
            },
        }
        half = len(TOOL_ARGUMENTS) // 2
        for fragment in (TOOL_ARGUMENTS[:half], TOOL_ARGUMENTS[half:]):
            yield {
                "type": "tool-call-delta",
                "index": 0,
                "delta": {"message": {"tool_calls": {"function": {"arguments": fragment}}}},
            }
        yield {"type": "tool-call-end", "index": 0}
        reason = "TOOL_CALL"
    else:
        index = 0
        if _thinks(model):
            yield {
                "type": "content-start",
                "index": 0,
                "delta": {"message": {"content": {"type": "thinking", "thinking": ""}}},
            }
            yield {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"thinking": THINKING_TEXT}}}}
            yield {"type": "content-end", "index": 0}
            index = 1
        yield {"type": "content-start", "index": index, "delta": {"message": {"content": {"type": "text", "text": ""}}}}
        for piece in reply.pieces:
            yield {
                "type": "content-delta",
                "index": index,
                "delta": {"message": {"content": {"text": piece}}},
                "logprobs": None,
            }
        yield {"type": "content-end", "index": index}
        reason = "COMPLETE"
    yield {"type": "message-end", "delta": {"finish_reason": reason, "usage": usage()}}


def embedding_values(text: str) -> list[float]:
    seed = sum(text.encode())
    return [round(((seed + 13 * i) % 83 + 1) / 100.0, 6) for i in range(EMBEDDING_DIMENSIONS)]


def rerank_response(body: dict, v1: bool) -> dict:
    """Documents ranked by how many of the query's words they share (ties by position)."""
    words = set((body.get("query") or "").lower().split())
    documents = body.get("documents") or []
    texts = [d if isinstance(d, str) else d.get("text", "") for d in documents]
    overlap = [len(words & set(t.lower().rstrip(".").split())) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: (-overlap[i], i))[: body.get("top_n") or len(texts)]
    results = [{"index": i, "relevance_score": round(0.9 ** (rank + 1), 6)} for rank, i in enumerate(order)]
    meta = {"api_version": {"version": "1" if v1 else "2"}, "billed_units": {"search_units": RERANK_SEARCH_UNITS}}
    return {"id": str(uuid.uuid4()), "results": results, "meta": meta}


class _CohereHandler(JSONHandler):
    server_version = "fake-cohere/1"

    def answer(self, path: str, query: dict, headers: dict, body: Any) -> None:
        auth = headers.get("authorization", "")
        if not (auth.lower().startswith("bearer ") and auth[7:].strip()):
            return self.send_json(401, {"id": str(uuid.uuid4()), "message": "no api key supplied"})
        if not isinstance(body, dict):
            return self.send_json(400, {"id": str(uuid.uuid4()), "message": "invalid request: body must be JSON"})
        model = body.get("model") or ""
        fault = re.fullmatch(r"error-(\d{3})", model)
        if fault:
            status = int(fault.group(1))
            message = (
                "You are using a Trial key, which is limited to 10 API calls / minute."
                if status == 429
                else "fake error"
            )
            return self.send_json(status, {"id": str(uuid.uuid4()), "message": message})
        if path == "/v2/embed":
            texts = body.get("texts") or []
            return self.send_json(
                200,
                {
                    "id": str(uuid.uuid4()),
                    "embeddings": {"float": [embedding_values(t) for t in texts]},
                    "texts": texts,
                    "meta": {
                        "api_version": {"version": "2"},
                        "billed_units": {"input_tokens": EMBED_TOKENS_PER_TEXT * len(texts)},
                    },
                    "response_type": "embeddings_by_type",
                },
            )
        if path in ("/v1/rerank", "/v2/rerank"):
            return self.send_json(200, rerank_response(body, path == "/v1/rerank"))
        if path != "/v2/chat":
            return self.send_json(404, {"id": str(uuid.uuid4()), "message": f"path {path} not found"})
        reply = chat_reply(body, self.owner.reply_text, structured=False)
        if body.get("stream"):
            return self._stream(stream_events(reply, model), cut_after=2 if model == "stream-error" else None)
        return self.send_json(200, chat_response(reply, model))

    def _stream(self, events: Iterator[dict], cut_after: Optional[int]) -> None:
        self.start_chunked(200, "text/event-stream")
        deltas = 0
        for event in events:
            data = json.dumps(event, separators=(",", ":"))
            self.write_chunk(f"event: {event['type']}\ndata: {data}\n\n".encode())
            deltas += event["type"] == "content-delta"
            if cut_after is not None and deltas >= cut_after:
                return self.drop_connection()
        self.end_chunked()
