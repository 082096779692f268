"""A loopback stand-in for one Pinecone index's data plane (``POST /query``).

It answers as an index host (``<index>-<project>.svc.<region>.pinecone.io``) does: the request
is camelCase JSON (``topK``, ``vector`` or ``id``, ``namespace``, ``filter``,
``includeMetadata``, ``includeValues``) with the key in the ``Api-Key`` header; the answer is
``{"matches": [{"id", "score", "values", "metadata"}], "namespace", "usage": {"readUnits"}}``,
matches ranked by dot product over a few stored records, ``values`` empty and ``metadata``
absent unless asked for. Errors are ``{"code", "message"}`` (gRPC-style code names) with the
HTTP status: a ``namespace`` of ``error-<status>`` answers with that status.
"""

from __future__ import annotations

import re
from typing import Any

from ._http import JSONHandler, RecordingServer

RECORDS = {
    "doc-paris": ([1.0, 0.0, 0.0], {"text": "Paris is the capital of France.", "country": "France"}),
    "doc-berlin": ([0.0, 1.0, 0.0], {"text": "Berlin is the capital of Germany.", "country": "Germany"}),
    "doc-madrid": ([0.0, 0.0, 1.0], {"text": "Madrid is the capital of Spain.", "country": "Spain"}),
}
READ_UNITS = 5
_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}


class FakePinecone(RecordingServer):
    """An index host on 127.0.0.1: ``Pinecone(api_key=...).Index(host=host)``."""

    def __init__(self) -> None:
        super().__init__()
        self.handler_class = _PineconeHandler

    @property
    def host(self) -> str:
        return self.root_url


class _PineconeHandler(JSONHandler):
    server_version = "fake-pinecone/1"

    def error(self, status: int, message: str) -> None:
        self.send_json(status, {"code": _CODES.get(status, "UNKNOWN"), "message": message})

    def answer(self, path: str, query: dict, headers: dict, body: Any) -> None:
        if not headers.get("api-key"):
            return self.error(401, "Invalid API Key")
        if path != "/query":
            return self.error(404, f"no route {path}")
        if not isinstance(body, dict) or not isinstance(body.get("topK"), int):
            return self.error(400, "Invalid request: topK is required")
        namespace = body.get("namespace") or ""
        fault = re.fullmatch(r"error-(\d{3})", namespace)
        if fault:
            return self.error(int(fault.group(1)), "fake error")
        if "id" in body:
            if body["id"] not in RECORDS:
                return self.error(400, f"Vector with id {body['id']} not found")
            vector = RECORDS[body["id"]][0]
        else:
            vector = body.get("vector") or []
        wanted = (body.get("filter") or {}).get("country", {}).get("$eq")
        ranked = sorted(
            (
                (sum(a * b for a, b in zip(vector, values)), record_id, values, metadata)
                for record_id, (values, metadata) in RECORDS.items()
                if wanted is None or metadata["country"] == wanted
            ),
            reverse=True,
        )
        matches = []
        for score, record_id, values, metadata in ranked[: body["topK"]]:
            match = {"id": record_id, "score": round(score, 6), "values": values if body.get("includeValues") else []}
            if body.get("includeMetadata"):
                match["metadata"] = metadata
            matches.append(match)
        self.send_json(
            200, {"results": [], "matches": matches, "namespace": namespace, "usage": {"readUnits": READ_UNITS}}
        )
