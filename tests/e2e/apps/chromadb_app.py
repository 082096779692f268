"""An ordinary Chroma application, run unmodified by the end-to-end tests: an in-memory client,
one collection of three documents with explicit embeddings, and a local embedding function for
text queries (Chroma's default one would download a model). Each command-line argument names a
scenario; they run in order and print what the app saw.
"""

import sys

import chromadb
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

import posthog_autoinstrument

DOCUMENTS = {
    "doc-paris": ("Paris is the capital of France.", [1.0, 0.0, 0.0]),
    "doc-berlin": ("Berlin is the capital of Germany.", [0.0, 1.0, 0.0]),
    "doc-madrid": ("Madrid is the capital of Spain.", [0.0, 0.0, 1.0]),
}


class CityEmbedding(EmbeddingFunction[Documents]):
    """A toy embedding: one dimension per city named in the text."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return [
            [
                float("paris" in t.lower() or "france" in t.lower()),
                float("berlin" in t.lower()),
                float("madrid" in t.lower() or "spain" in t.lower()),
            ]
            for t in input
        ]

    @staticmethod
    def name() -> str:
        return "city-embedding"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config: dict) -> "CityEmbedding":
        return CityEmbedding()


def show(*values):
    print(*values, flush=True)


def collection(client=None):
    client = client or chromadb.EphemeralClient()
    cities = client.get_or_create_collection("cities", embedding_function=CityEmbedding())
    if cities.count() == 0:
        cities.add(
            ids=list(DOCUMENTS),
            documents=[d for d, _ in DOCUMENTS.values()],
            embeddings=[e for _, e in DOCUMENTS.values()],
            metadatas=[{"country": d.split()[-1].rstrip(".")} for d, _ in DOCUMENTS.values()],
        )
    return cities


def query_vector():
    r = collection().query(query_embeddings=[[0.9, 0.1, 0.0]], n_results=2)
    show("query_vector", r["ids"], [round(d, 3) for d in r["distances"][0]])


def query_text():
    r = collection().query(query_texts=["What is the capital of France?"], n_results=1, where={"country": "France"})
    show("query_text", r["ids"], r["documents"])


def query_many():
    r = collection().query(query_embeddings=[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], n_results=1, include=["distances"])
    show("query_many", r["ids"], r["documents"])


def in_a_run():
    # A retrieval inside a unit of work the app named: it nests under that trace.
    with posthog_autoinstrument.context(trace_name="answer-question"):
        r = collection().query(query_texts=["Tell me about Berlin"], n_results=1)
    show("in_a_run", r["ids"])


def private():
    with posthog_autoinstrument.context(privacy_mode=True):
        r = collection().query(query_texts=["A secret question about Madrid"], n_results=1)
    show("private", r["ids"])


def error():
    try:
        collection().query(query_embeddings=[[1.0, 0.0]], n_results=1)  # wrong dimension
    except Exception as exc:
        show("error", type(exc).__name__)


def langchain_retriever():
    # A LangChain retriever over the collection, as langchain-chroma's VectorStoreRetriever is.
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    class CityRetriever(BaseRetriever):
        def _get_relevant_documents(self, query, *, run_manager):
            r = collection().query(query_texts=[query], n_results=1)
            return [Document(page_content=d, id=i) for i, d in zip(r["ids"][0], r["documents"][0])]

    show("langchain_retriever", [d.id for d in CityRetriever().invoke("Where is Madrid?")])


def get_is_not_a_retrieval():
    show("get", collection().get(ids=["doc-paris"])["documents"])


def main() -> None:
    for scenario in sys.argv[1:]:
        globals()[scenario]()


if __name__ == "__main__":
    main()
