"""Chroma adapter (``chromadb``): ``Collection.query`` and ``AsyncCollection.query`` as retrieval steps.

Every client (in-memory, persistent, HTTP, cloud) hands out the same collection classes, so
one patch covers them all. Query texts are recorded when the app passed text (the collection's
embedding function turns them into vectors: an embedding call it makes through an SDK we
instrument nests under the step); query embeddings only by their dimensions. Chroma reports
distances (lower is closer), recorded as ``distance``. ``get`` (a lookup by id or filter, no
similarity) and the newer ``search`` API are not recorded.
"""

from __future__ import annotations

from typing import Any, Optional

from ._retrieval import Retrieval, RetrievalHandler, document, retrieval_wrapper, vector_dimensions
from .base import LLMInstrumentor, Target, integer

STORE = "chroma"

# Collection.query's parameters in order, for calls that pass some positionally.
_QUERY_PARAMETERS = (
    "query_embeddings",
    "query_texts",
    "query_images",
    "query_uris",
    "ids",
    "n_results",
    "where",
    "where_document",
    "include",
)


def _arguments(args: tuple, kwargs: dict) -> dict:
    bound = dict(zip(_QUERY_PARAMETERS, args))
    bound.update(kwargs)
    return bound


def _column(result: Any, name: str, query: int, count: int) -> list:
    rows = result.get(name) if isinstance(result, dict) else None
    row = rows[query] if isinstance(rows, list) and len(rows) > query else None
    row = list(row) if row is not None else []
    return row + [None] * (count - len(row))


class Query(RetrievalHandler):
    def describe(self, instance, args, kwargs) -> Optional[Retrieval]:
        arguments = _arguments(args, kwargs)
        texts = arguments.get("query_texts")
        if isinstance(texts, str):
            texts = [texts]
        retrieval = Retrieval(
            STORE,
            collection=getattr(instance, "name", None),
            texts=[t for t in texts if isinstance(t, str)] if isinstance(texts, list) else None,
            top_k=integer(arguments.get("n_results", 10)),
        )
        if not retrieval.texts:
            dimensions, count = vector_dimensions(arguments.get("query_embeddings"))
            retrieval.vector_dimensions, retrieval.vector_count = dimensions, count
        retrieval.details = {
            "where": arguments.get("where"),
            "where_document": arguments.get("where_document"),
            "ids": arguments.get("ids"),
        }
        return retrieval

    def documents(self, result, retrieval, args, kwargs) -> Optional[list]:
        ids = result.get("ids") if isinstance(result, dict) else None
        if not isinstance(ids, list):
            return None
        per_query = []
        for query, row in enumerate(ids):
            count = len(row)
            columns = zip(
                row,
                _column(result, "distances", query, count),
                _column(result, "documents", query, count),
                _column(result, "metadatas", query, count),
            )
            per_query.append(
                [document(i, d, text, metadata, score_name="distance") for i, d, text, metadata in columns]
            )
        return per_query[0] if len(per_query) == 1 else per_query


class ChromaInstrumentor(LLMInstrumentor):
    requirements = ("chromadb >= 0.5.0, < 2",)

    def targets(self) -> list:
        query = Query()
        return [
            Target(
                "chromadb.api.models.Collection",
                "Collection.query",
                wrapper=retrieval_wrapper(self, query),
                required_since="0.5.0",
            ),
            Target(
                "chromadb.api.models.AsyncCollection",
                "AsyncCollection.query",
                wrapper=retrieval_wrapper(self, query, is_async=True),
            ),  # (the async client came later)
        ]
