"""Pinecone adapter (``pinecone``): ``Index.query`` and ``AsyncIndex.query`` as retrieval steps.

The index is named from its host (``<index>-<project>.svc.<region>.pinecone.io``); a host of
another form (Pinecone Local, a proxy) gives a step named ``retrieval`` with the host as
``server.address``. The query
is recorded by its vector's dimensions (dense, or the number of sparse entries), or by the id
of the stored record it names; ``top_k``, ``namespace`` and ``filter`` as asked. Results: ids,
scores and metadata; never the ``values`` an ``include_values=True`` query returns.
"""

from __future__ import annotations

from typing import Any, Optional

from ._retrieval import Retrieval, RetrievalHandler, document, retrieval_wrapper, vector_dimensions
from .base import LLMInstrumentor, Target, host_and_port, integer

STORE = "pinecone"


def _address(host: Any) -> tuple:
    """(address, port) of an index host, given with or without its scheme."""
    if not isinstance(host, str) or not host:
        return None, None
    return host_and_port(host if "://" in host else f"https://{host}")


def index_name(host: Any) -> Optional[str]:
    """The index's name, read from a Pinecone-served host."""
    address, _ = _address(host)
    if not address or not address.endswith(".pinecone.io"):
        return None
    label = address.split(".", 1)[0]
    return label.rpartition("-")[0] or label


class Query(RetrievalHandler):
    def describe(self, instance, args, kwargs) -> Optional[Retrieval]:
        host = getattr(instance, "_host", None) or getattr(instance, "host", None)
        address, port = _address(host)
        retrieval = Retrieval(
            STORE,
            collection=index_name(host),
            top_k=integer(kwargs.get("top_k")),
            server_address=address,
            server_port=port,
        )
        vector, sparse = kwargs.get("vector"), kwargs.get("sparse_vector")
        if vector is not None:
            retrieval.vector_dimensions = vector_dimensions(vector)[0]
        elif sparse is not None:
            indices = sparse.get("indices") if isinstance(sparse, dict) else getattr(sparse, "indices", None)
            retrieval.details["query_sparse_vector"] = {"entries": len(indices or ())}
        if kwargs.get("id") is not None:
            retrieval.details["query_id"] = kwargs.get("id")
        retrieval.details.update(namespace=kwargs.get("namespace") or None, filter=kwargs.get("filter"))
        return retrieval

    def documents(self, result, retrieval, args, kwargs) -> Optional[list]:
        return [
            document(getattr(m, "id", None), getattr(m, "score", None), metadata=getattr(m, "metadata", None))
            for m in getattr(result, "matches", None) or ()
        ]


class PineconeInstrumentor(LLMInstrumentor):
    requirements = ("pinecone >= 10.0.0, < 12",)

    def targets(self) -> list:
        query = Query()
        return [
            Target("pinecone.index", "Index.query", wrapper=retrieval_wrapper(self, query), required_since="10.0.0"),
            Target(
                "pinecone.async_client.async_index",
                "AsyncIndex.query",
                wrapper=retrieval_wrapper(self, query, is_async=True),
                required_since="10.0.0",
            ),
        ]
