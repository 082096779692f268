"""End to end: an unmodified Weaviate app (weaviate-client v4, sync and async clients) under
``posthog-instrument``, against a loopback Weaviate (tests/servers/weaviate_server.py: its REST
meta endpoint and its gRPC ``Search``) and the PostHog stand-in. Each collection query
(``near_vector``, ``near_text``, ``hybrid``, ``bm25``, ``fetch_objects``) must be one
``retrieval`` step named after the collection: the query kind, its text or its vector's
dimensions, the limit as top-k, the filters, result uuids with their distances or scores and
properties, never a vector (the app asks for vectors once); nested in the trace the app named,
its own trace otherwise; content dropped in privacy mode; a failed search an error step with
its status.

All scenarios run in one app process, once instrumented and once plainly (stdout must not change).
weaviate-client runs in the vertex-watsonx environment (tests/requirements-vertex-watsonx.txt).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("weaviate")

from tests.e2e.retrieval import assert_no_vectors, by_query, record, retrievals, state  # noqa: E402
from tests.e2e.traces import event_type  # noqa: E402
from tests.servers.weaviate_server import OBJECTS, FakeWeaviate  # noqa: E402

SCENARIOS = (
    "near_vector",
    "near_text",
    "hybrid",
    "bm25",
    "fetch_objects",
    "in_a_run",
    "private",
    "error",
    "async_query",
)
SPAN_COUNT = 10  # nine queries and the run the app named
PARIS, BERLIN, MADRID = (o[0] for o in OBJECTS)
CITY_PROPERTIES = {uid: properties for uid, _, properties in OBJECTS}


@pytest.fixture(scope="module")
def recorded():
    with FakeWeaviate() as weaviate:
        stdout, spans = record(
            "weaviate_app",
            SCENARIOS,
            SPAN_COUNT,
            WEAVIATE_HTTP_PORT=str(weaviate.http_port),
            WEAVIATE_GRPC_PORT=str(weaviate.grpc_port),
        )
        return stdout, spans, weaviate.grpc_port


def of_type(spans: list, query_type: str) -> list:
    """The queries of ``query_type`` to the City collection."""
    return [
        s
        for s in retrievals(spans)
        if (state(s, "$ai_input_state") or {}).get("query_type") == query_type
        and s["attributes"]["gen_ai.data_source.id"] == "City"
    ]


def test_a_vector_query_is_a_retrieval_trace_with_uuids_distances_and_properties(recorded):
    stdout, spans, grpc_port = recorded
    assert "near_vector [('Paris', 0.006, [1.0, 0.0, 0.0]), ('Berlin', 0.89, [0.0, 1.0, 0.0])]" in stdout
    (span,) = [s for s in of_type(spans, "near_vector") if s["attributes"]["gen_ai.request.top_k"] == 2]
    attrs = span["attributes"]
    assert span["name"] == "retrieval City"
    assert event_type(span) == "$ai_trace"  # made outside any run: its own trace
    assert attrs["gen_ai.provider.name"] == "weaviate"
    assert attrs["gen_ai.data_source.id"] == "City"
    assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == grpc_port
    assert state(span, "$ai_input_state") == {"query_vector": {"dimensions": 3}, "query_type": "near_vector"}
    results = state(span, "$ai_output_state")
    assert [r["id"] for r in results] == [PARIS, BERLIN]
    assert round(results[0]["distance"], 3) == 0.006
    assert results[0]["metadata"] == CITY_PROPERTIES[PARIS]
    assert "vector" not in results[0]  # the app asked for vectors: they stay in the app


def test_near_text_with_a_filter(recorded):
    stdout, spans, _ = recorded
    assert f"near_text [('{BERLIN}', 'Berlin', 0.0)]" in stdout
    (span,) = by_query(spans)["capital of Germany"]
    assert state(span, "$ai_input_state") == {
        "query": "capital of Germany",
        "query_type": "near_text",
        "filters": {"operator": "Equal", "property": "country", "value": "Germany"},
    }
    assert span["attributes"]["gen_ai.request.top_k"] == 1
    assert state(span, "$ai_output_state") == [{"id": BERLIN, "distance": 0.0, "metadata": CITY_PROPERTIES[BERLIN]}]


def test_hybrid_and_bm25_record_their_scores(recorded):
    stdout, spans, _ = recorded
    assert "hybrid [('Madrid', 2.0), ('Paris', 0.0), ('Berlin', 0.0)]" in stdout
    (hybrid,) = of_type(spans, "hybrid")
    assert state(hybrid, "$ai_input_state") == {"query": "Madrid Spain", "query_type": "hybrid", "alpha": 0.5}
    assert [(r["id"], r["score"]) for r in state(hybrid, "$ai_output_state")] == [
        (MADRID, 2.0),
        (PARIS, 0.0),
        (BERLIN, 0.0),
    ]
    (bm25,) = of_type(spans, "bm25")
    assert bm25["attributes"]["gen_ai.request.top_k"] == 5
    # only the properties the app asked for came back, so only they are recorded
    assert state(bm25, "$ai_output_state") == [{"id": PARIS, "score": 1.0, "metadata": {"city": "Paris"}}]


def test_fetch_objects_with_combined_filters(recorded):
    stdout, spans, _ = recorded
    assert "fetch_objects ['Berlin']" in stdout
    (span,) = of_type(spans, "fetch_objects")
    assert state(span, "$ai_input_state") == {
        "query_type": "fetch_objects",
        "filters": {
            "operator": "And",
            "filters": [
                {"operator": "GreaterThan", "property": "population", "value": 3000000},
                {"operator": "NotEqual", "property": "country", "value": "Spain"},
            ],
        },
    }
    assert state(span, "$ai_output_state") == [{"id": BERLIN, "metadata": CITY_PROPERTIES[BERLIN]}]


def test_a_query_inside_a_run_nests_under_it(recorded):
    _, spans, _ = recorded
    (root,) = [s for s in spans if s["name"] == "answer-question"]
    children = [s for s in spans if s["parent_span_id"] == root["span_id"]]
    assert [c["name"] for c in children] == ["retrieval City"]
    assert event_type(children[0]) == "$ai_span"
    assert state(children[0], "$ai_input_state")["query"] == "Spain"


def test_the_async_client(recorded):
    stdout, spans, _ = recorded
    assert "async_query ['Berlin', 'Paris', 'Madrid']" in stdout
    (span,) = [s for s in of_type(spans, "near_vector") if s["attributes"]["gen_ai.request.top_k"] == 3]
    assert event_type(span) == "$ai_trace"
    assert [r["id"] for r in state(span, "$ai_output_state")] == [BERLIN, PARIS, MADRID]


def test_privacy_mode_keeps_no_query_and_no_results(recorded):
    _, spans, _ = recorded
    (span,) = by_query(spans)["private"]
    assert "$ai_input_state" not in span["attributes"] and "$ai_output_state" not in span["attributes"]
    assert span["attributes"]["gen_ai.data_source.id"] == "City"
    assert "secret" not in json.dumps(span) and "Madrid" not in json.dumps(span)


def test_a_failed_search_is_an_error_step_with_its_status(recorded):
    stdout, spans, _ = recorded
    assert "error WeaviateQueryError" in stdout
    (failed,) = [s for s in spans if s["status_code"] == "ERROR"]
    assert failed["name"] == "retrieval Nowhere"
    assert failed["attributes"]["error.type"].endswith("WeaviateQueryError")
    assert failed["attributes"]["http.response.status_code"] == 404  # gRPC NOT_FOUND


def test_no_vector_leaves_the_process(recorded):
    _, spans, _ = recorded
    assert_no_vectors(spans, [0.9, 0.1, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.7, 0.1])
