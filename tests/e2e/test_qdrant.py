"""End to end: an unmodified Qdrant app (the client's ``:memory:`` mode, sync and async) under
``posthog-instrument``, with the PostHog stand-in. Each ``query_points`` / ``query_batch_points``
must be one ``retrieval`` step: the query vector's dimensions (or the point id it names), top-k,
filter, result ids, scores and payloads, never a vector; nested in the trace the app named, its
own trace otherwise; content dropped in privacy mode; a failed query an error step.

All scenarios run in one app process, once instrumented and once plainly (stdout must not change).
qdrant-client runs in the vector-store environment (tests/requirements-vector-stores.txt).
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.retrieval import assert_no_vectors, by_query, record, retrievals, state
from tests.e2e.traces import event_type

pytest.importorskip("qdrant_client")

SCENARIOS = (
    "query_vector",
    "query_filter",
    "query_point_id",
    "query_batch",
    "in_a_run",
    "private",
    "error",
    "async_query",
)
SPAN_COUNT = 9  # eight queries and the run the app named


@pytest.fixture(scope="module")
def recorded():
    return record("qdrant_app", SCENARIOS, SPAN_COUNT)


def by_top_k(spans: list, top_k: int) -> list:
    return [s for s in by_query(spans)["vector"] if s["attributes"].get("gen_ai.request.top_k") == top_k]


def test_a_vector_query_is_a_retrieval_trace_with_ids_scores_and_payloads(recorded):
    stdout, spans = recorded
    assert "query_vector [(1, 0.994, 'Paris'), (2, 0.11, 'Berlin')]" in stdout
    (span,) = by_top_k(spans, 2)
    attrs = span["attributes"]
    assert span["name"] == "retrieval cities"
    assert event_type(span) == "$ai_trace"  # made outside any run: its own trace
    assert attrs["gen_ai.provider.name"] == "qdrant"
    assert attrs["gen_ai.data_source.id"] == "cities"
    assert state(span, "$ai_input_state") == {"query_vector": {"dimensions": 3}}
    results = state(span, "$ai_output_state")
    assert [r["id"] for r in results] == [1, 2]
    assert round(results[0]["score"], 3) == 0.994
    assert results[0]["metadata"] == {"city": "Paris", "text": "Paris is the capital of France."}
    assert "vector" not in results[0]  # the app asked for vectors: they stay in the app


def test_the_filter_and_a_query_by_point_id(recorded):
    _, spans = recorded
    filtered = next(s for s in by_query(spans)["vector"] if "query_filter" in state(s, "$ai_input_state"))
    condition = state(filtered, "$ai_input_state")["query_filter"]["must"][0]
    assert condition["key"] == "city" and condition["match"] == {"value": "Berlin"}
    assert [r["id"] for r in state(filtered, "$ai_output_state")] == [2]
    (by_id,) = by_query(spans)["other"]
    assert state(by_id, "$ai_input_state") == {"query_point_id": 3}
    assert [r["id"] for r in state(by_id, "$ai_output_state")] == [2]


def test_a_batch_is_one_step_with_results_per_query(recorded):
    _, spans = recorded
    (batch,) = [
        s for s in retrievals(spans) if (state(s, "$ai_input_state") or {}).get("query_vector", {}).get("count")
    ]
    assert state(batch, "$ai_input_state") == {"query_vector": {"dimensions": 3, "count": 2}}
    assert [[r["id"] for r in per_query] for per_query in state(batch, "$ai_output_state")] == [[2], [3]]


def test_a_query_inside_a_run_nests_under_it(recorded):
    _, spans = recorded
    (root,) = [s for s in spans if s["name"] == "answer-question"]
    children = [s for s in spans if s["parent_span_id"] == root["span_id"]]
    assert [c["name"] for c in children] == ["retrieval cities"]
    assert event_type(children[0]) == "$ai_span"


def test_the_async_client(recorded):
    stdout, spans = recorded
    assert "async_query [2, 1, 3]" in stdout
    (span,) = by_top_k(spans, 3)
    assert [r["id"] for r in state(span, "$ai_output_state")] == [2, 1, 3]


def test_privacy_mode_keeps_no_query_and_no_results(recorded):
    _, spans = recorded
    (span,) = by_query(spans)["private"]
    assert "$ai_input_state" not in span["attributes"] and "$ai_output_state" not in span["attributes"]
    assert span["attributes"]["gen_ai.data_source.id"] == "cities"
    assert "Madrid" not in json.dumps(span)


def test_a_failed_query_is_an_error_step(recorded):
    stdout, spans = recorded
    assert "error ValueError" in stdout
    (failed,) = [s for s in spans if s["status_code"] == "ERROR"]
    assert failed["name"] == "retrieval no-such-collection"
    assert failed["attributes"]["error.type"] == "ValueError"


def test_no_vector_leaves_the_process(recorded):
    _, spans = recorded
    assert_no_vectors(spans, [0.9, 0.1, 0.0], [1.0, 0.0, 0.0], [0.1, 0.0, 0.95], [0.2, 0.7, 0.1])
