"""A loopback stand-in for Voyage AI's API (``POST /v1/embeddings``, ``POST /v1/rerank``).

It answers as ``api.voyageai.com`` does: embeddings are ``{"object": "list", "data":
[{"object": "embedding", "embedding", "index"}], "model", "usage": {"total_tokens"}}``, each
embedding base64-encoded little-endian float32 when the request asks ``encoding_format:
base64`` (the SDK always does unless told otherwise); rerank is ``{"object": "list", "data":
[{"index", "relevance_score"}], "model", "usage": {"total_tokens"}}``, documents ranked by the
words they share with the query. Errors are ``{"detail": "..."}`` with the HTTP status: the
model name ``error-<status>`` answers with that status.
"""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

from ._http import JSONHandler, RecordingServer

EMBEDDING_DIMENSIONS = 4
TOKENS_PER_TEXT = 3


class FakeVoyage(RecordingServer):
    """Voyage AI on 127.0.0.1: ``voyageai.Client(api_key=..., base_url=base_url)``."""

    def __init__(self) -> None:
        super().__init__()
        self.handler_class = _VoyageHandler

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"


def _words(text: str) -> set:
    return set(text.lower().rstrip(".").split())


def _tokens(*texts: str) -> int:
    return sum(len(t.split()) for t in texts)


def embedding(text: str) -> list[float]:
    seed = sum(text.encode())
    return [((seed + 7 * i) % 10) / 10.0 for i in range(EMBEDDING_DIMENSIONS)]


class _VoyageHandler(JSONHandler):
    server_version = "fake-voyage/1"

    def answer(self, path: str, query: dict, headers: dict, body: Any) -> None:
        auth = headers.get("authorization", "")
        if not (auth.lower().startswith("bearer ") and auth[7:].strip()):
            return self.send_json(401, {"detail": "Provided API key is invalid."})
        if not isinstance(body, dict):
            return self.send_json(400, {"detail": "Request body must be JSON."})
        model = body.get("model") or ""
        fault = re.fullmatch(r"error-(\d{3})", model)
        if fault:
            return self.send_json(int(fault.group(1)), {"detail": "You have exceeded your rate limit."})
        if path == "/v1/embeddings":
            texts = body.get("input") or []
            data = []
            for index, text in enumerate(texts):
                vector: Any = embedding(text)
                if body.get("encoding_format") == "base64":
                    vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                data.append({"object": "embedding", "embedding": vector, "index": index})
            return self.send_json(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": model,
                    "usage": {"total_tokens": TOKENS_PER_TEXT * len(texts)},
                },
            )
        if path == "/v1/rerank":
            documents = body.get("documents") or []
            words = _words(body.get("query") or "")
            order = sorted(range(len(documents)), key=lambda i: (-len(words & _words(documents[i])), i))
            order = order[: body.get("top_k") or len(documents)]
            data = [{"index": i, "relevance_score": round(0.8 ** (rank + 1), 6)} for rank, i in enumerate(order)]
            return self.send_json(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": model,
                    "usage": {"total_tokens": _tokens(body.get("query") or "", *documents)},
                },
            )
        return self.send_json(404, {"detail": "Not Found"})
