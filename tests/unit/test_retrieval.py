"""The vector-store adapters' shared pieces, without the stores: how a query and its results
are written down."""

from posthog_autoinstrument.instrumentation._retrieval import MAX_TEXT, Retrieval, document, vector_dimensions
from posthog_autoinstrument.instrumentation.pinecone import index_name


def test_a_query_is_its_text_or_its_vector_dimensions_never_the_vector():
    assert Retrieval("chroma", texts=["hello"], details={"where": {"a": 1}, "ids": None}).input_state() == {
        "query": "hello",
        "where": {"a": 1},
    }
    assert Retrieval("chroma", texts=["a", "b"]).input_state() == {"query": ["a", "b"]}
    assert Retrieval("qdrant", vector_dimensions=384, vector_count=2).input_state() == {
        "query_vector": {"dimensions": 384, "count": 2}
    }


def test_vector_dimensions_of_one_vector_or_several():
    assert vector_dimensions([0.1, 0.2, 0.3]) == (3, 1)
    assert vector_dimensions([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]) == (2, 3)
    assert vector_dimensions(None) == (None, 1)
    assert vector_dimensions("not a vector") == (None, 1)


def test_documents_are_capped_and_keep_plain_ids():
    long_text = "x" * (MAX_TEXT + 50)
    entry = document(7, 0.5, long_text, {"source": long_text, "page": 2})
    assert entry["id"] == 7 and entry["score"] == 0.5
    assert entry["text"] == "x" * MAX_TEXT + "...[truncated]"
    assert entry["metadata"] == {"source": "x" * MAX_TEXT + "...[truncated]", "page": 2}
    assert document("a", 0.25, score_name="distance") == {"id": "a", "distance": 0.25}
    assert document(object.__new__(type("PointId", (), {"__str__": lambda self: "uuid-1"})))["id"] == "uuid-1"


def test_the_pinecone_index_is_named_from_its_host():
    assert index_name("https://products-abc1234.svc.aped-4627-b74a.pinecone.io") == "products"
    assert index_name("my-docs-index-x1y2z3a.svc.us-east1-gcp.pinecone.io") == "my-docs-index"
    assert index_name("http://localhost:5081") is None
    assert index_name(None) is None


class Obj:
    def __init__(self, **fields):
        self.__dict__.update(fields)


def test_qdrant_search_before_1_16_and_batches_are_described_without_qdrant():
    from posthog_autoinstrument.instrumentation.qdrant import QueryBatch, QueryPoints, Search

    named = Search().describe(None, ("docs", ("text-dense", [0.1, 0.2, 0.3, 0.4])), {"limit": 4})
    assert (named.collection, named.top_k, named.vector_dimensions) == ("docs", 4, 4)
    assert named.input_state() == {"query_vector": {"dimensions": 4}, "using": "text-dense"}
    document_query = QueryPoints().describe(None, ("docs",), {"query": Obj(text="a question", model="m")})
    assert document_query.input_state() == {"query": "a question"}
    fusion = QueryPoints().describe(None, ("docs", Obj(fusion="rrf")), {})
    assert fusion.input_state() == {"query_type": "Obj"}
    batch = QueryBatch().describe(None, ("docs", [Obj(query=[0.1, 0.2], limit=2), Obj(query=[0.3, 0.4], limit=2)]), {})
    assert batch.top_k == 2 and batch.input_state() == {"query_vector": {"dimensions": 2, "count": 2}}
    points = [Obj(id="p1", score=0.5, payload={"text": "t"}, vector=[0.1, 0.2])]
    assert Search().documents(points, named, (), {}) == [{"id": "p1", "score": 0.5, "metadata": {"text": "t"}}]
