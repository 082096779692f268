"""End to end: an unmodified Pinecone app (``Index`` and the asyncio ``IndexAsyncio``) under
``posthog-instrument``, against a loopback stand-in of an index's data plane
(tests/servers/pinecone_server.py) and the PostHog stand-in. Each ``query`` must be one
``retrieval`` step: the query vector's dimensions or the record id it names, top-k, namespace,
filter, result ids, scores and metadata, never a vector (the app asks for values once); nested
in the trace the app named, its own trace otherwise; content dropped in privacy mode; an API
error an error step.

All scenarios run in one app process, once instrumented and once plainly (stdout must not change).
pinecone runs in the vector-store environment (tests/requirements-vector-stores.txt).
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.retrieval import assert_no_vectors, by_query, record, retrievals, state
from tests.e2e.traces import event_type
from tests.servers.pinecone_server import FakePinecone

pytest.importorskip("pinecone")

SCENARIOS = ("query_vector", "query_filter", "query_id", "in_a_run", "private", "error", "async_query")
SPAN_COUNT = 8  # seven queries and the run the app named


@pytest.fixture(scope="module")
def recorded():
    with FakePinecone() as pinecone:
        return record(
            "pinecone_app", SCENARIOS, SPAN_COUNT, PINECONE_API_KEY="pc-test-key", PINECONE_INDEX_HOST=pinecone.host
        )


def by_top_k(spans: list, top_k: int) -> list:
    return [s for s in retrievals(spans) if s["attributes"].get("gen_ai.request.top_k") == top_k]


def test_a_vector_query_is_a_retrieval_trace_with_ids_scores_and_metadata(recorded):
    stdout, spans = recorded
    assert "query_vector [('doc-paris', 0.9, 'France', [1.0, 0.0, 0.0])" in stdout
    (span,) = by_top_k(spans, 2)
    attrs = span["attributes"]
    assert span["name"] == "retrieval"  # a loopback host names no index
    assert event_type(span) == "$ai_trace"
    assert attrs["gen_ai.provider.name"] == "pinecone"
    assert attrs["server.address"] == "127.0.0.1" and isinstance(attrs["server.port"], int)
    assert state(span, "$ai_input_state") == {"query_vector": {"dimensions": 3}}
    assert state(span, "$ai_output_state") == [
        {"id": "doc-paris", "score": 0.9, "metadata": {"text": "Paris is the capital of France.", "country": "France"}},
        {
            "id": "doc-berlin",
            "score": 0.1,
            "metadata": {"text": "Berlin is the capital of Germany.", "country": "Germany"},
        },
    ]


def test_namespace_filter_and_a_query_by_id(recorded):
    _, spans = recorded
    filtered = next(s for s in by_query(spans)["vector"] if "filter" in state(s, "$ai_input_state"))
    assert state(filtered, "$ai_input_state") == {
        "query_vector": {"dimensions": 3},
        "namespace": "europe",
        "filter": {"country": {"$eq": "Germany"}},
    }
    assert state(filtered, "$ai_output_state") == [{"id": "doc-berlin", "score": 0.1}]
    (by_id,) = by_query(spans)["other"]
    assert state(by_id, "$ai_input_state") == {"query_id": "doc-madrid"}


def test_a_query_inside_a_run_nests_under_it(recorded):
    _, spans = recorded
    (root,) = [s for s in spans if s["name"] == "answer-question"]
    children = [s for s in spans if s["parent_span_id"] == root["span_id"]]
    assert [c["attributes"]["gen_ai.operation.name"] for c in children] == ["retrieval"]
    assert event_type(children[0]) == "$ai_span"


def test_the_async_client(recorded):
    stdout, spans = recorded
    assert "async_query ['doc-berlin', 'doc-paris', 'doc-madrid']" in stdout
    (span,) = by_top_k(spans, 3)
    assert [r["id"] for r in state(span, "$ai_output_state")] == ["doc-berlin", "doc-paris", "doc-madrid"]


def test_privacy_mode_keeps_no_query_and_no_results(recorded):
    _, spans = recorded
    (span,) = by_query(spans)["private"]
    assert "$ai_input_state" not in span["attributes"] and "$ai_output_state" not in span["attributes"]
    assert "Madrid" not in json.dumps(span)


def test_an_api_error_is_an_error_step(recorded):
    stdout, spans = recorded
    assert "error RateLimitError 429" in stdout
    (failed,) = [s for s in spans if s["status_code"] == "ERROR"]
    assert failed["attributes"]["error.type"].endswith("RateLimitError")
    assert state(failed, "$ai_input_state")["namespace"] == "error-429"


def test_no_vector_leaves_the_process(recorded):
    _, spans = recorded
    assert_no_vectors(spans, [0.9, 0.1, 0.0], [1.0, 0.0, 0.0], [0.1, 0.0, 0.95], [0.2, 0.7, 0.1])
