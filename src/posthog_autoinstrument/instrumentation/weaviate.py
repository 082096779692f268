"""Weaviate adapter (``weaviate-client`` v4): every collection query as a retrieval step.

A v4 collection's queries (``query.near_text``, ``near_vector``, ``hybrid``, ``bm25``,
``near_object``, the media searches, ``fetch_objects``, ``fetch_object(s)_by_id(s)`` and the
``generate`` twins of the searches), sync and async, all reach Weaviate through one gRPC
``Search`` call made by the connection (``ConnectionSync.grpc_search`` and
``ConnectionAsync.grpc_search``). That is the one place patched: the request it is given says
the collection, the kind of search, its text or vector, the limit and the filters
(formats/weaviate.py reads it), and the reply the objects found. The query is recorded as text,
by its vector's dimensions, or by the object it starts from; results are uuids with their
distance, score or certainty and their properties, never vectors.

A failed search is an error step with the HTTP status that means what the gRPC status means (the
client raises ``WeaviateQueryError`` from the ``RpcError`` it caught).
"""

from __future__ import annotations

from typing import Any, Optional

from ..formats import weaviate as wire
from ..formats.grpc_status import http_status
from ._retrieval import Retrieval, RetrievalHandler, document, retrieval_wrapper
from .base import LLMInstrumentor, Target, integer

STORE = "weaviate"


def _grpc_endpoint(connection: Any) -> tuple:
    """(host, port) of the gRPC server the connection talks to."""
    try:
        grpc = connection._connection_params.grpc
        return grpc.host, integer(grpc.port)
    except Exception:
        return None, None


class GrpcSearch(RetrievalHandler):
    def describe(self, instance, args, kwargs) -> Optional[Retrieval]:
        request = kwargs.get("request", args[0] if args else None)
        if request is None:
            return None
        query = wire.search_query(request)
        address, port = _grpc_endpoint(instance)
        retrieval = Retrieval(
            STORE,
            collection=query["collection"],
            texts=query["texts"],
            vector_dimensions=query["vector_dimensions"],
            vector_count=query["vector_count"],
            top_k=query["top_k"],
            server_address=address,
            server_port=port,
        )
        retrieval.details = {"query_type": query["kind"], **query["details"]}
        return retrieval

    def documents(self, result, retrieval, args, kwargs) -> Optional[list]:
        return [
            document(
                found["id"], found["score"], metadata=found["properties"], score_name=found["score_name"] or "score"
            )
            for found in wire.search_results(result)
        ]

    def error_status(self, exc: BaseException) -> Optional[int]:
        if type(exc).__name__ == "InsufficientPermissionsError":
            return 403
        for error in (exc, exc.__cause__, exc.__context__):
            status = http_status(error) if error is not None else None
            if status is not None:
                return status
        return None


class WeaviateInstrumentor(LLMInstrumentor):
    requirements = ("weaviate-client >= 4.13.0, < 5",)

    def targets(self) -> list:
        search = GrpcSearch()
        return [
            Target(
                "weaviate.connect.v4",
                "ConnectionSync.grpc_search",
                wrapper=retrieval_wrapper(self, search),
                required_since="4.13.0",
            ),
            Target(
                "weaviate.connect.v4",
                "ConnectionAsync.grpc_search",
                wrapper=retrieval_wrapper(self, search, is_async=True),
                required_since="4.13.0",
            ),
        ]
