"""Voyage AI adapter (``voyageai``): ``embed`` as an embedding and ``rerank`` as a ``rerank``
step, on ``Client`` and ``AsyncClient``.

Both report ``total_tokens``, which is what Voyage bills: the embedding's input tokens, and on
the rerank step ``gen_ai.usage.input_tokens`` (query and documents, as Voyage counts them).
Errors carry their HTTP status (``http_status``). Local models (``voyage-4-nano`` run on the
machine) are recorded like the API's, without a server address. ``contextualized_embed`` and
``multimodal_embed`` are not recorded.
"""

from __future__ import annotations

from typing import Any, Optional

from ..genai import InferenceRequest, Usage, semconv
from ..genai import messages as m
from ._retrieval import Retrieval, RetrievalHandler, ranked, retrieval_wrapper
from .base import CallHandler, LLMInstrumentor, Target, host_and_port, integer, number

PROVIDER = "voyage"

_EMBED_PARAMETERS = ("texts", "model", "input_type", "truncation", "output_dtype", "output_dimension")
_RERANK_PARAMETERS = ("query", "documents", "model", "top_k", "truncation")


def _arguments(names: tuple, args: tuple, kwargs: dict) -> dict:
    bound = dict(zip(names, args))
    bound.update(kwargs)
    return bound


def _endpoint(client: Any) -> tuple:
    params = getattr(client, "_params", None)
    return host_and_port(params.get("base_url") if isinstance(params, dict) else None)


class Embed(CallHandler):
    def request(self, instance, args, kwargs):
        arguments = _arguments(_EMBED_PARAMETERS, args, kwargs)
        address, port = _endpoint(instance)
        dtype = arguments.get("output_dtype")
        return InferenceRequest(
            provider=PROVIDER,
            model=arguments.get("model"),
            operation=semconv.Operation.EMBEDDINGS,
            server_address=address,
            server_port=port,
            encoding_formats=[dtype] if isinstance(dtype, str) else None,
        ), None

    def record_input(self, call, instance, args, kwargs):
        texts = _arguments(_EMBED_PARAMETERS, args, kwargs).get("texts")
        texts = [t for t in texts if isinstance(t, str)] if isinstance(texts, (list, tuple)) else []
        call.set_input(messages=[m.message("user", [m.text(t)]) for t in texts])

    def result(self, call, result, kwargs):
        embeddings = getattr(result, "embeddings", None)
        first = embeddings[0] if isinstance(embeddings, list) and embeddings else None
        tokens = integer(getattr(result, "total_tokens", None))
        call.set_response(
            usage=Usage(input_tokens=tokens) if tokens is not None else None,
            attributes={semconv.EMBEDDINGS_DIMENSION_COUNT: len(first) if hasattr(first, "__len__") else None},
        )
        call.end()
        return result

    def error_status(self, exc):
        return integer(getattr(exc, "http_status", None))


class Rerank(RetrievalHandler):
    def describe(self, instance, args, kwargs) -> Optional[Retrieval]:
        arguments = _arguments(_RERANK_PARAMETERS, args, kwargs)
        address, port = _endpoint(instance)
        query, documents = arguments.get("query"), arguments.get("documents")
        retrieval = Retrieval(
            PROVIDER,
            operation="rerank",
            model=arguments.get("model"),
            texts=[query] if isinstance(query, str) else None,
            top_k=integer(arguments.get("top_k")),
            server_address=address,
            server_port=port,
        )
        retrieval.details["document_count"] = len(documents) if isinstance(documents, (list, tuple)) else None
        return retrieval

    def documents(self, result, retrieval, args, kwargs) -> Optional[list]:
        pairs = [
            (getattr(r, "index", None), number(getattr(r, "relevance_score", None)))
            for r in getattr(result, "results", None) or ()
        ]
        return ranked(pairs, _arguments(_RERANK_PARAMETERS, args, kwargs).get("documents"))

    def response_attributes(self, result) -> Optional[dict]:
        return {semconv.USAGE_INPUT_TOKENS: integer(getattr(result, "total_tokens", None))}

    def error_status(self, exc):
        return integer(getattr(exc, "http_status", None))


class VoyageAIInstrumentor(LLMInstrumentor):
    requirements = ("voyageai >= 0.3.0, < 1",)

    def targets(self) -> list:
        embed, rerank = Embed(), Rerank()
        return [
            Target("voyageai.client", "Client.embed", embed, required_since="0.3.0"),
            Target("voyageai.client_async", "AsyncClient.embed", embed, is_async=True, required_since="0.3.0"),
            Target("voyageai.client", "Client.rerank", wrapper=retrieval_wrapper(self, rerank), required_since="0.3.0"),
            Target(
                "voyageai.client_async",
                "AsyncClient.rerank",
                wrapper=retrieval_wrapper(self, rerank, is_async=True),
                required_since="0.3.0",
            ),
        ]
