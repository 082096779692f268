"""Qdrant adapter (``qdrant-client``): ``query_points``, ``query_batch_points`` and, on releases
that still have it, ``search``, on ``QdrantClient`` and ``AsyncQdrantClient``, as retrieval steps.

The client classes are facades over a local (``:memory:``, a path) or remote (REST, gRPC)
implementation, so patching them covers every mode once. The query is recorded as text when it
is a ``Document`` (embedded by fastembed or Qdrant's cloud inference), by its dimensions when it
is a vector, by id when it names a stored point, and by its kind otherwise (recommend, fusion,
order-by...). Results: point ids, scores and payloads (as metadata); ``with_vectors`` results
are never recorded as vectors.
"""

from __future__ import annotations

from typing import Any, Optional

from ._retrieval import Retrieval, RetrievalHandler, document, retrieval_wrapper, vector_dimensions
from .base import LLMInstrumentor, Target, integer

STORE = "qdrant"


def _plain(value: Any) -> Any:
    """A pydantic model (a Qdrant filter) as the JSON it stands for."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(exclude_none=True, mode="json")
        except Exception:
            return None
    return value


def _describe_query(retrieval: Retrieval, query: Any) -> None:
    nearest = getattr(query, "nearest", None)
    if nearest is not None and type(query).__name__ == "NearestQuery":
        query = nearest
    text = getattr(query, "text", None)
    if isinstance(text, str):
        retrieval.texts = (retrieval.texts or []) + [text]
    elif isinstance(query, (str, int)):
        retrieval.details["query_point_id"] = query
    elif query is not None:
        dimensions, count = vector_dimensions(query)
        if dimensions is not None:
            retrieval.vector_dimensions, retrieval.vector_count = dimensions, count
        else:
            retrieval.details["query_type"] = type(query).__name__


def _points(response: Any) -> list:
    points = getattr(response, "points", response)  # search returns the points themselves
    return [
        document(getattr(p, "id", None), getattr(p, "score", None), metadata=getattr(p, "payload", None))
        for p in points or ()
    ]


def _collection(args: tuple, kwargs: dict) -> Optional[str]:
    name = kwargs.get("collection_name", args[0] if args else None)
    return name if isinstance(name, str) else None


class QueryPoints(RetrievalHandler):
    def describe(self, instance, args, kwargs) -> Optional[Retrieval]:
        retrieval = Retrieval(STORE, collection=_collection(args, kwargs), top_k=integer(kwargs.get("limit", 10)))
        _describe_query(retrieval, kwargs.get("query", args[1] if len(args) > 1 else None))
        retrieval.details = {
            **retrieval.details,
            "query_filter": _plain(kwargs.get("query_filter")),
            "using": kwargs.get("using"),
            "score_threshold": kwargs.get("score_threshold"),
        }
        return retrieval

    def documents(self, result, retrieval, args, kwargs) -> Optional[list]:
        return _points(result)


class Search(QueryPoints):
    """``search`` (qdrant-client before 1.16): a vector as ``query_vector``."""

    def describe(self, instance, args, kwargs) -> Optional[Retrieval]:
        retrieval = Retrieval(STORE, collection=_collection(args, kwargs), top_k=integer(kwargs.get("limit", 10)))
        vector = kwargs.get("query_vector", args[1] if len(args) > 1 else None)
        if isinstance(vector, tuple) and len(vector) == 2 and isinstance(vector[0], str):  # (vector name, vector)
            retrieval.details["using"], vector = vector
        _describe_query(retrieval, getattr(vector, "vector", vector))  # a NamedVector
        retrieval.details["query_filter"] = _plain(kwargs.get("query_filter"))
        return retrieval


class QueryBatch(RetrievalHandler):
    def describe(self, instance, args, kwargs) -> Optional[Retrieval]:
        requests = kwargs.get("requests", args[1] if len(args) > 1 else None) or []
        retrieval = Retrieval(STORE, collection=_collection(args, kwargs))
        limits = {getattr(r, "limit", None) for r in requests}
        retrieval.top_k = integer(limits.pop()) if len(limits) == 1 else None
        for request in requests:
            _describe_query(retrieval, getattr(request, "query", None))
        if retrieval.vector_dimensions is not None:
            retrieval.vector_count = len(requests)
        filters = [_plain(getattr(r, "filter", None)) for r in requests]
        if any(filters):
            retrieval.details["filters"] = filters
        return retrieval

    def documents(self, result, retrieval, args, kwargs) -> Optional[list]:
        return [_points(response) for response in result or ()]


class QdrantInstrumentor(LLMInstrumentor):
    requirements = ("qdrant-client >= 1.10.0, < 2",)

    def targets(self) -> list:
        targets = []
        for module, client, is_async in (
            ("qdrant_client.qdrant_client", "QdrantClient", False),
            ("qdrant_client.async_qdrant_client", "AsyncQdrantClient", True),
        ):
            targets += [
                Target(
                    module,
                    f"{client}.query_points",
                    wrapper=retrieval_wrapper(self, QueryPoints(), is_async),
                    required_since="1.10.0",
                ),
                Target(
                    module,
                    f"{client}.query_batch_points",
                    wrapper=retrieval_wrapper(self, QueryBatch(), is_async),
                    required_since="1.10.0",
                ),
                # Removed in 1.16 (query_points replaces it).
                Target(module, f"{client}.search", wrapper=retrieval_wrapper(self, Search(), is_async)),
            ]
        return targets
