"""What the vector-store and reranker adapters share: a query to a store as a ``retrieval``
step, a rerank request as a ``rerank`` step.

A query becomes an ``$ai_span`` with the GenAI operation ``retrieval``, named after the
collection (``gen_ai.data_source.id``), the store as ``gen_ai.provider.name`` and the number of
results asked for as ``gen_ai.request.top_k``, shaped like the retrieval steps of the LangChain
and LlamaIndex adapters so that PostHog shows them alike:

* input state: ``{"query": text}`` (a list for several queries), or ``{"query_vector":
  {"dimensions": N}}`` when the app passed a vector (never the vector itself), with the filter
  the app passed, if any;
* output state: the results, each ``{"id", "score" or "distance", "text", "metadata"}`` (a list
  per query when several were asked), texts cut to ``MAX_TEXT`` characters. Never vectors.

Both are content: privacy mode and ``POSTHOG_RECORD_INPUTS`` / ``POSTHOG_RECORD_OUTPUTS``
remove them, as PostHog's own SDK removes ``gen_ai.retrieval.*`` (document ids are often made
from the user's data). A query made inside a run nests under the step that made it; one made
outside any run is its own trace (a root span, which PostHog shows as the trace).

A reranker (Cohere's, Voyage's) is recorded the same way, as a step of operation ``rerank``
named after its model: the query and the number of documents as input, the ranked documents
(``index``, ``score``, text) as output, the units the API bills as attributes.

A query method that calls another patched one (a client facade over its local or remote
implementation, ``search`` over ``query_points``) is recorded once, by the outer call.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from opentelemetry import context as otel_context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ..genai import StepRequest, semconv

logger = logging.getLogger("posthog_autoinstrument")

MAX_TEXT = 1000  # characters of each retrieved document's text kept in the output state

# Set while one of our retrieval steps is open in this context: a store method that another
# patched method calls is the same query.
_in_retrieval: contextvars.ContextVar = contextvars.ContextVar("posthog_in_retrieval", default=False)


@dataclass
class Retrieval:
    """One query to a vector store, or one rerank request, as the app asked it."""

    store: str  # gen_ai.provider.name: chroma, qdrant, pinecone, weaviate; cohere, voyage for reranks
    operation: str = semconv.Operation.RETRIEVAL
    model: Optional[str] = None  # a reranker's
    collection: Optional[str] = None
    texts: Optional[list] = None  # the query texts, when the app passed text
    vector_dimensions: Optional[int] = None  # else the length of the query vector
    vector_count: int = 1  # how many query vectors
    top_k: Optional[int] = None
    #: the rest of the query worth showing, by name: the filters the app passed, the kind of a
    #: query that is neither text nor a vector (a point id, a fusion)
    details: dict = field(default_factory=dict)
    server_address: Optional[str] = None
    server_port: Optional[int] = None

    def input_state(self) -> dict:
        state: dict = {}
        if self.texts:
            state["query"] = self.texts[0] if len(self.texts) == 1 else list(self.texts)
        elif self.vector_dimensions is not None:
            state["query_vector"] = {"dimensions": self.vector_dimensions}
            if self.vector_count != 1:
                state["query_vector"]["count"] = self.vector_count
        for name, value in self.details.items():
            if value is not None:
                state[name] = value
        return state


def document(
    doc_id: Any,
    score: Any = None,
    text: Any = None,
    metadata: Any = None,
    score_name: str = "score",
    id_name: str = "id",
) -> dict:
    """One retrieved document as it is recorded (``score_name``: ``distance`` where lower is
    closer; ``id_name``: ``index`` for a reranker's position in the documents it was given)."""
    entry: dict = {id_name: doc_id if isinstance(doc_id, (str, int)) or doc_id is None else str(doc_id)}
    if isinstance(score, (int, float)) and not isinstance(score, bool):
        entry[score_name] = float(score)
    if isinstance(text, str):
        entry["text"] = _short(text)
    if isinstance(metadata, dict) and metadata:
        entry["metadata"] = {key: _short(value) for key, value in metadata.items()}
    return entry


def ranked(results: list, documents: Any) -> list:
    """A reranker's ``(index, score)`` pairs as ``document`` entries with the text of the
    document each index names (a string, or a mapping's ``text``)."""
    documents = documents if isinstance(documents, (list, tuple)) else []
    entries = []
    for index, score in results:
        text = documents[index] if isinstance(index, int) and 0 <= index < len(documents) else None
        if isinstance(text, dict):
            text = text.get("text")
        entries.append(document(index, score, text, id_name="index"))
    return entries


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + "...[truncated]"
    return value


def vector_dimensions(vector: Any) -> tuple:
    """(dimensions, count) of one query vector or a list of them; (None, 1) if neither."""
    try:
        if hasattr(vector, "tolist"):  # numpy arrays
            vector = vector.tolist()
        if isinstance(vector, (list, tuple)) and vector:
            first = vector[0]
            if hasattr(first, "tolist"):
                first = first.tolist()
            if isinstance(first, (list, tuple)):
                return len(first), len(vector)
            return len(vector), 1
    except Exception:
        pass
    return None, 1


class RetrievalHandler:
    """Describes one vector-store query method. Adapters override both."""

    def describe(self, instance: Any, args: tuple, kwargs: dict) -> Optional[Retrieval]:
        raise NotImplementedError

    def documents(self, result: Any, retrieval: Retrieval, args: tuple, kwargs: dict) -> Optional[list]:
        """The results as ``document`` entries (a list per query when several were asked)."""
        return None

    def response_attributes(self, result: Any) -> Optional[dict]:
        """What the response says that is not content (billed units, the model that answered)."""
        return None

    def error_status(self, exc: BaseException) -> Optional[int]:
        """The HTTP status of a failed call, where the exception does not carry ``status_code``."""
        return None


def _fail(handler: RetrievalHandler, step: Any, exc: BaseException) -> None:
    try:
        status = handler.error_status(exc)
    except Exception:
        status = None
    step.fail(exc, status)


def _start(instrumentor: Any, handler: RetrievalHandler, instance: Any, args: tuple, kwargs: dict):
    """(step, retrieval, tokens) or None; never raises."""
    if _in_retrieval.get() or not is_instrumentation_enabled():
        return None
    try:
        retrieval = handler.describe(instance, args, kwargs)
        if retrieval is None:
            return None
        attributes = {
            semconv.REQUEST_TOP_K: retrieval.top_k,
            semconv.SERVER_ADDRESS: retrieval.server_address,
            semconv.SERVER_PORT: retrieval.server_port,
        }
        name = retrieval.collection if retrieval.operation == semconv.Operation.RETRIEVAL else retrieval.model
        step = instrumentor.recorder.start_step(
            StepRequest(
                retrieval.operation, name, provider=retrieval.store, model=retrieval.model, attributes=attributes
            )
        )
        if step is None:
            return None
        if step.capture_content:
            step.set_input_state(retrieval.input_state())
        return step, retrieval, (step.attach(), _in_retrieval.set(True))
    except Exception:
        logger.debug("posthog-instrument: could not describe the retrieval", exc_info=True)
        return None


def _detach(tokens: tuple) -> None:
    context_token, flag_token = tokens
    try:
        _in_retrieval.reset(flag_token)
        if context_token is not None:
            otel_context.detach(context_token)
    except Exception:
        pass


def _finish(handler: RetrievalHandler, step: Any, retrieval: Retrieval, result: Any, args: tuple, kwargs: dict) -> None:
    try:
        for key, value in (handler.response_attributes(result) or {}).items():
            if value is not None:
                step.set_attribute(key, value)
        if step.capture_content:
            step.set_output_state(handler.documents(result, retrieval, args, kwargs))
    except Exception:
        logger.debug("posthog-instrument: could not record the retrieved documents", exc_info=True)
    step.end()


def retrieval_wrapper(instrumentor: Any, handler: RetrievalHandler, is_async: bool = False) -> Callable:
    """A ``Target.wrapper`` recording each call of a store's query method as a retrieval step."""

    def wrapper(wrapped, instance, args, kwargs):
        started = _start(instrumentor, handler, instance, args, kwargs)
        if started is None:
            return wrapped(*args, **kwargs)
        step, retrieval, tokens = started
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(handler, step, exc)
            raise
        finally:
            _detach(tokens)
        _finish(handler, step, retrieval, result, args, kwargs)
        return result

    def async_wrapper(wrapped, instance, args, kwargs):
        async def traced():
            started = _start(instrumentor, handler, instance, args, kwargs)
            if started is None:
                return await wrapped(*args, **kwargs)
            step, retrieval, tokens = started
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                _fail(handler, step, exc)
                raise
            finally:
                _detach(tokens)
            _finish(handler, step, retrieval, result, args, kwargs)
            return result

        return traced()

    return async_wrapper if is_async else wrapper
