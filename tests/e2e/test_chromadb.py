"""End to end: an unmodified Chroma app (in-memory client) under ``posthog-instrument``, with the
PostHog stand-in. Each ``Collection.query`` must be one ``retrieval`` step: query text or the
query vector's dimensions, top-k, filters, result ids, distances and texts, never a vector;
nested in the trace the app named, its own trace otherwise; content dropped in privacy mode.

All scenarios run in one app process, once instrumented and once plainly (stdout must not change).
Chroma runs in its own environment (tests/requirements-vector-stores.txt); elsewhere this skips.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.retrieval import assert_no_vectors, by_query, record, state
from tests.e2e.traces import event_type

pytest.importorskip("chromadb")

SCENARIOS = (
    "query_vector",
    "query_text",
    "query_many",
    "in_a_run",
    "private",
    "error",
    "langchain_retriever",
    "get_is_not_a_retrieval",
)
SPAN_COUNT = 9  # seven queries, the run the app named, the LangChain retriever


@pytest.fixture(scope="module")
def recorded():
    return record("chromadb_app", SCENARIOS, SPAN_COUNT, ANONYMIZED_TELEMETRY="False")


def test_a_vector_query_is_a_retrieval_trace_without_the_vector(recorded):
    stdout, spans = recorded
    assert "query_vector [['doc-paris', 'doc-berlin']]" in stdout
    vector_queries = by_query(spans)["vector"]
    single = next(s for s in vector_queries if state(s, "$ai_input_state")["query_vector"] == {"dimensions": 3})
    attrs = single["attributes"]
    assert single["name"] == "retrieval cities"
    assert event_type(single) == "$ai_trace"  # made outside any run: its own trace
    assert attrs["gen_ai.provider.name"] == "chroma"
    assert attrs["gen_ai.data_source.id"] == "cities"
    assert attrs["gen_ai.request.top_k"] == 2
    results = state(single, "$ai_output_state")
    assert [r["id"] for r in results] == ["doc-paris", "doc-berlin"]
    assert results[0]["distance"] < results[1]["distance"]
    assert results[0]["text"] == "Paris is the capital of France."
    assert results[0]["metadata"] == {"country": "France"}


def test_a_text_query_records_the_text_and_the_filter(recorded):
    _, spans = recorded
    (span,) = by_query(spans)["What is the capital of France?"]
    assert state(span, "$ai_input_state") == {"query": "What is the capital of France?", "where": {"country": "France"}}
    assert span["attributes"]["gen_ai.request.top_k"] == 1
    assert [r["id"] for r in state(span, "$ai_output_state")] == ["doc-paris"]


def test_several_query_vectors_give_results_per_query(recorded):
    _, spans = recorded
    many = next(s for s in by_query(spans)["vector"] if state(s, "$ai_input_state")["query_vector"].get("count") == 2)
    results = state(many, "$ai_output_state")
    assert [[r["id"] for r in per_query] for per_query in results] == [["doc-berlin"], ["doc-madrid"]]
    assert "text" not in results[0][0]  # the app did not ask for documents


def test_a_query_inside_a_run_nests_under_it(recorded):
    _, spans = recorded
    (root,) = [s for s in spans if s["name"] == "answer-question"]
    (step,) = by_query(spans)["Tell me about Berlin"]
    assert step["parent_span_id"] == root["span_id"] and step["trace_id"] == root["trace_id"]
    assert event_type(step) == "$ai_span"


def test_a_query_made_by_a_langchain_retriever_nests_under_its_step(recorded):
    stdout, spans = recorded
    assert "langchain_retriever ['doc-madrid']" in stdout
    (framework,) = [s for s in spans if s["attributes"].get("$ai_framework") == "langchain"]
    assert framework["name"] == "retrieval CityRetriever" and event_type(framework) == "$ai_trace"
    (store,) = by_query(spans)["Where is Madrid?"]
    assert store["parent_span_id"] == framework["span_id"] and store["name"] == "retrieval cities"


def test_privacy_mode_keeps_no_query_and_no_documents(recorded):
    _, spans = recorded
    (span,) = by_query(spans)["private"]
    assert "$ai_input_state" not in span["attributes"] and "$ai_output_state" not in span["attributes"]
    assert span["attributes"]["gen_ai.data_source.id"] == "cities"
    assert "Madrid" not in json.dumps(span)


def test_a_failed_query_is_an_error_step(recorded):
    stdout, spans = recorded
    assert "error InvalidArgumentError" in stdout
    failed = [s for s in spans if s["status_code"] == "ERROR"]
    assert len(failed) == 1
    assert failed[0]["attributes"]["error.type"].endswith("InvalidArgumentError")


def test_no_vector_leaves_the_process(recorded):
    _, spans = recorded
    assert_no_vectors(spans, [0.9, 0.1, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
