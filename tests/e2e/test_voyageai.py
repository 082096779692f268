"""End to end: an unmodified Voyage AI app under ``posthog-instrument``, against a loopback
Voyage API (tests/servers/voyage_server.py) and the PostHog stand-in. ``embed`` must be an
``$ai_embedding`` with Voyage's token count and no vector; ``rerank`` a ``rerank`` step with the
query, top-k, the ranking (index, score, text) and the tokens Voyage bills; both nested in the
trace the app named, content dropped in privacy mode, API errors with their status.

All scenarios run in one app process, once instrumented and once plainly (stdout must not change).
voyageai runs in the vector-store environment (tests/requirements-vector-stores.txt: it brings
numpy, pillow and langchain-text-splitters).
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.retrieval import record, state
from tests.e2e.traces import event_type
from tests.servers.voyage_server import TOKENS_PER_TEXT, FakeVoyage

pytest.importorskip("voyageai")

SCENARIOS = ("embed", "rerank", "rag", "private", "error", "async_all")
SPAN_COUNT = 10  # four embeddings, five reranks, the run the app named


@pytest.fixture(scope="module")
def recorded():
    with FakeVoyage() as voyage:
        return record(
            "voyageai_app", SCENARIOS, SPAN_COUNT, VOYAGE_API_KEY="pa-test-key", VOYAGE_BASE_URL=voyage.base_url
        )


def of(spans: list, operation: str) -> list:
    return sorted(
        (s for s in spans if s["attributes"].get("gen_ai.operation.name") == operation), key=lambda s: s["start_ns"]
    )


def test_embed_is_an_embedding_with_the_tokens_voyage_reports(recorded):
    stdout, spans = recorded
    assert "embed 2 [0.7, 0.4, 0.1, 0.8] 6" in stdout
    first = of(spans, "embeddings")[0]
    attrs = first["attributes"]
    assert first["name"] == "embeddings voyage-3.5" and event_type(first) == "$ai_embedding"
    assert attrs["gen_ai.provider.name"] == "voyage"
    assert attrs["gen_ai.usage.input_tokens"] == 2 * TOKENS_PER_TEXT
    assert attrs["gen_ai.embeddings.dimension.count"] == 4
    assert attrs["server.address"] == "127.0.0.1"
    assert "0.7, 0.4" not in json.dumps(attrs) and "0.7,0.4" not in json.dumps(attrs)


def test_rerank_is_a_step_with_the_ranking_and_the_tokens(recorded):
    stdout, spans = recorded
    assert (
        "rerank [(1, 0.8, 'Paris is the capital of France.'), (0, 0.64, 'Berlin is the capital of Germany.')] 21"
        in stdout
    )
    step = of(spans, "rerank")[0]
    attrs = step["attributes"]
    assert step["name"] == "rerank rerank-2.5" and event_type(step) == "$ai_trace"
    assert attrs["gen_ai.request.model"] == "rerank-2.5" and attrs["gen_ai.provider.name"] == "voyage"
    assert attrs["gen_ai.request.top_k"] == 2
    assert attrs["gen_ai.usage.input_tokens"] == 21
    assert state(step, "$ai_input_state") == {"query": "capital of France", "document_count": 3}
    assert state(step, "$ai_output_state") == [
        {"index": 1, "score": 0.8, "text": "Paris is the capital of France."},
        {"index": 0, "score": 0.64, "text": "Berlin is the capital of Germany."},
    ]


def test_inside_a_run_both_nest_under_it(recorded):
    _, spans = recorded
    (root,) = [s for s in spans if s["name"] == "answer-question"]
    children = sorted((s for s in spans if s["parent_span_id"] == root["span_id"]), key=lambda s: s["start_ns"])
    assert [c["name"] for c in children] == ["embeddings voyage-3.5", "rerank rerank-2.5-lite"]
    assert [r["index"] for r in state(children[1], "$ai_output_state")] == [2, 0, 1]


def test_privacy_mode_keeps_no_query_and_no_documents(recorded):
    _, spans = recorded
    (private,) = [s for s in of(spans, "rerank") if "$ai_input_state" not in s["attributes"]]
    assert "$ai_output_state" not in private["attributes"]
    assert private["attributes"]["gen_ai.usage.input_tokens"] > 0
    assert "Madrid" not in json.dumps(private) and "secret" not in json.dumps(private)


def test_api_errors_keep_their_status(recorded):
    stdout, spans = recorded
    assert "error RateLimitError 429" in stdout and "error embed RateLimitError 429" in stdout
    failed = [s for s in spans if s["status_code"] == "ERROR"]
    assert sorted(s["attributes"]["gen_ai.operation.name"] for s in failed) == ["embeddings", "rerank"]
    assert [s["attributes"]["$ai_http_status"] for s in failed] == [429, 429]
    assert all(s["attributes"]["error.type"].endswith("RateLimitError") for s in failed)


def test_the_async_client(recorded):
    stdout, spans = recorded
    assert "async 1 [0]" in stdout
    assert of(spans, "embeddings")[-1]["attributes"]["gen_ai.usage.input_tokens"] == TOKENS_PER_TEXT
    assert state(of(spans, "rerank")[-1], "$ai_input_state")["query"] == "async Germany"
