"""End to end: an unmodified LlamaIndex app under ``posthog-instrument``, against loopback OpenAI
and PostHog stand-ins.

A vector index over three tiny documents (``OpenAIEmbedding``), queried through
``index.as_query_engine()`` with the ``OpenAI`` LLM (``llama-index-llms-openai`` over the real
openai SDK). Each query must come out as one trace:

    $ai_trace   invoke_workflow RetrieverQueryEngine        (query -> answer as state)
      $ai_span    retrieval VectorIndexRetriever            (query -> nodes: id, score, text)
        $ai_span    embeddings text-embedding-3-small       (LlamaIndex's embedding call, delegated)
          $ai_embedding  embeddings text-embedding-3-small  (the openai adapter's span, tokens)
      $ai_span    chat gpt-4o-mini                          (LlamaIndex's LLM call, delegated)
        $ai_generation  chat gpt-4o-mini                    (the openai adapter's span, tokens)

and with LlamaIndex's MockLLM (no instrumented SDK below it) the LlamaIndex LLM call is itself
the generation. Importing LlamaIndex takes seconds, so the app runs once per scenario group with
and once without instrumentation, all four runs at once in a module-scoped fixture.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass

import pytest

from tests.conftest import AppRun, APPS, BackgroundApp, clean_env, LAUNCHER
from tests.e2e.traces import event_type
from tests.servers import FakeOpenAI, FakePostHog
from tests.servers.openai_wire import CACHED_TOKENS, COMPLETION_TOKENS, DEFAULT_REPLY, PROMPT_TOKENS

pytest.importorskip("llama_index.core")
pytest.importorskip("llama_index.llms.openai")
pytest.importorskip("llama_index.embeddings.openai")

SERVED_MODEL = "gpt-4o-mini-2024-08-06"
DOCUMENT_TEXTS = {
    "Paris is the capital of France.",
    "Berlin is the capital of Germany.",
    "Madrid is the capital of Spain.",
}


@dataclass
class Outcome:
    instrumented: AppRun
    plain: AppRun
    spans: list
    rejections: list


class _AppProcess:
    def __init__(self, stack: contextlib.ExitStack, group: str, instrumented: bool, **env_overrides: str):
        self.openai = stack.enter_context(FakeOpenAI())
        self.posthog = stack.enter_context(FakePostHog())
        env = clean_env(
            OPENAI_BASE_URL=self.openai.base_url,  # read by the openai SDK (the LLM)
            OPENAI_API_BASE=self.openai.base_url,  # read by LlamaIndex's OpenAIEmbedding
            OPENAI_API_KEY="sk-test-secret-key",
            POSTHOG_API_KEY="phc_test_project_token",
            POSTHOG_HOST=self.posthog.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
            **env_overrides,
        )
        app = str(APPS / "llama_index_app.py")
        command = [LAUNCHER, "python", app, group] if instrumented else [sys.executable, app, group]
        self.app = BackgroundApp(stack, command, env)

    def result(self) -> AppRun:
        return self.app.result()


@pytest.fixture(scope="module")
def outcomes() -> dict:
    """Every scenario with and without instrumentation, and one query in privacy mode: three
    processes at once, since importing LlamaIndex dominates their run time."""
    with contextlib.ExitStack() as stack:
        traced = _AppProcess(stack, "all", True)
        plain = _AppProcess(stack, "all", False)
        private = _AppProcess(stack, "sync", True, POSTHOG_PRIVACY_MODE="true")
        traced_run, plain_run, private_run = traced.result(), plain.result(), private.result()
        return {
            "all": Outcome(traced_run, plain_run, traced.posthog.spans, traced.posthog.rejections),
            "private": Outcome(private_run, private_run, private.posthog.spans, private.posthog.rejections),
        }


@pytest.fixture(scope="module")
def queries(outcomes) -> Outcome:
    return outcomes["all"]


@pytest.fixture(scope="module")
def mixed(outcomes) -> Outcome:
    return outcomes["all"]


@pytest.fixture(scope="module")
def private(outcomes) -> Outcome:
    return outcomes["private"]


# -- helpers ---------------------------------------------------------------------------------------


def root_for(outcome: Outcome, label: str) -> dict:
    roots = [
        s
        for s in outcome.spans
        if s["parent_span_id"] is None and f"[{label}]" in (s["attributes"].get("$ai_input_state") or "")
    ]
    assert len(roots) == 1, [s["name"] for s in roots]
    return roots[0]


def trace_of(outcome: Outcome, root: dict) -> list:
    spans = [s for s in outcome.spans if s["trace_id"] == root["trace_id"]]
    ids = {s["span_id"] for s in spans}
    for span in spans:  # no span of the trace dangles
        assert span is root or span["parent_span_id"] in ids, span["name"]
    return spans


def children(spans: list, parent: dict) -> list:
    return [s for s in spans if s["parent_span_id"] == parent["span_id"]]


def only(spans: list, name: str) -> dict:
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, [s["name"] for s in spans]
    return found[0]


def no_tokens(span: dict) -> bool:
    return not [k for k in span["attributes"] if k.startswith("gen_ai.usage.")]


def assert_app_unchanged(outcome: Outcome) -> None:
    assert outcome.instrumented.returncode == 0, outcome.instrumented.stderr
    assert outcome.plain.returncode == 0, outcome.plain.stderr
    assert outcome.instrumented.stdout == outcome.plain.stdout
    assert outcome.rejections == []


def assert_query_tree(
    outcome: Outcome, label: str, *, nodes: int = 2, answer: str = DEFAULT_REPLY, stream: bool = False
) -> list:
    """The full tree of one query through the OpenAI LLM; returns the trace's spans."""
    root = root_for(outcome, label)
    spans = trace_of(outcome, root)
    attrs = root["attributes"]
    assert event_type(root) == "$ai_trace"
    assert root["name"] == "invoke_workflow RetrieverQueryEngine"
    assert attrs["$ai_framework"] == "llama_index"
    assert attrs["gen_ai.workflow.name"] == "RetrieverQueryEngine"
    assert attrs["$ai_input_state"].startswith(f"[{label}] ")
    assert attrs["$ai_output_state"] == answer
    assert no_tokens(root)

    top = children(spans, root)
    assert sorted(s["name"] for s in top) == ["chat gpt-4o-mini", "retrieval VectorIndexRetriever"]

    retrieval = only(top, "retrieval VectorIndexRetriever")
    assert event_type(retrieval) == "$ai_span"
    assert retrieval["attributes"]["gen_ai.operation.name"] == "retrieval"
    assert retrieval["attributes"]["$ai_framework"] == "llama_index"
    assert retrieval["attributes"]["$ai_input_state"] == attrs["$ai_input_state"]
    retrieved = json.loads(retrieval["attributes"]["$ai_output_state"])
    assert len(retrieved) == nodes
    for node in retrieved:
        assert node["text"] in DOCUMENT_TEXTS
        assert isinstance(node["id"], str) and node["id"]
        assert node["score"] == pytest.approx(1.0)  # the fake's vectors are all parallel

    embedding_step = only(children(spans, retrieval), "embeddings text-embedding-3-small")
    assert event_type(embedding_step) == "$ai_span"  # LlamaIndex's view of the request: a step
    assert embedding_step["attributes"]["$ai_framework"] == "llama_index"
    assert no_tokens(embedding_step)
    (embedding,) = children(spans, embedding_step)
    assert event_type(embedding) == "$ai_embedding"
    assert embedding["attributes"]["gen_ai.usage.input_tokens"] == len(attrs["$ai_input_state"].split())
    assert embedding["attributes"]["$ai_framework"] == "llama_index"  # the SDK's request, made by LlamaIndex

    llm_step = only(top, "chat gpt-4o-mini")
    assert event_type(llm_step) == "$ai_span"
    assert llm_step["attributes"]["$ai_framework"] == "llama_index"
    assert no_tokens(llm_step)
    assert bool(llm_step["attributes"].get("gen_ai.request.stream")) is stream
    assert f"[{label}]" in llm_step["attributes"]["$ai_input_state"]  # the prompt, with the query
    (generation,) = children(spans, llm_step)
    gen = generation["attributes"]
    assert event_type(generation) == "$ai_generation"
    assert gen["$ai_framework"] == "llama_index"
    assert generation["name"] == "chat gpt-4o-mini"
    assert gen["gen_ai.response.model"] == SERVED_MODEL
    assert (gen["gen_ai.usage.input_tokens"], gen["gen_ai.usage.output_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert gen["gen_ai.usage.cache_read.input_tokens"] == CACHED_TOKENS
    assert gen["$ai_stream"] is stream
    assert f"[{label}]" in json.dumps(gen["$ai_input"])
    assert answer in json.dumps(gen["$ai_output_choices"])

    # One model call, one generation: the only tokens in the trace are the provider spans'.
    assert [s["name"] for s in spans if event_type(s) == "$ai_generation"] == ["chat gpt-4o-mini"]
    assert len(spans) == 6
    return spans


# -- tests -----------------------------------------------------------------------------------------


def test_the_app_is_unchanged(queries):
    assert_app_unchanged(queries)
    assert "stream: Hello from fake OpenAI 2" in queries.instrumented.stdout


def test_indexing_embeds_the_documents_once(queries):
    roots = [s for s in queries.spans if s["parent_span_id"] is None and s["name"].startswith("embeddings")]
    assert len(roots) == 1  # the app builds one index
    (step,) = roots
    assert event_type(step) == "$ai_trace" and no_tokens(step)
    (embedding,) = [s for s in queries.spans if s["parent_span_id"] == step["span_id"]]
    assert event_type(embedding) == "$ai_embedding"
    assert embedding["attributes"]["gen_ai.usage.input_tokens"] == sum(len(t.split()) for t in DOCUMENT_TEXTS)


def test_sync_query_is_one_full_trace(queries):
    assert_query_tree(queries, "sync")


def test_streaming_query_nests_its_lazily_made_llm_call(queries):
    # The LLM is called only when the app iterates response_gen, after query() returned; the
    # query step lives until the stream ends and records what the app received.
    assert_query_tree(queries, "stream", stream=True)


def test_async_query_is_one_full_trace(queries):
    assert_query_tree(queries, "async")


@pytest.mark.parametrize("label,stream", [("direct", False), ("astream", True)])
def test_a_direct_llm_call_is_a_step_over_one_generation(queries, label, stream):
    # llm.chat(...), and await llm.astream_chat(...) iterated with async for: the openai
    # request is made while the app iterates, in the LlamaIndex call's context.
    roots = [
        s
        for s in queries.spans
        if s["parent_span_id"] is None and f"[{label}]" in (s["attributes"].get("$ai_input_state") or "")
    ]
    assert len(roots) == 1
    (step,) = roots
    assert step["name"] == "chat gpt-4o-mini" and event_type(step) == "$ai_trace" and no_tokens(step)
    assert bool(step["attributes"].get("gen_ai.request.stream")) is stream
    assert DEFAULT_REPLY in step["attributes"]["$ai_output_state"]
    (generation,) = [s for s in queries.spans if s["parent_span_id"] == step["span_id"]]
    assert event_type(generation) == "$ai_generation"
    assert generation["trace_id"] == step["trace_id"]
    assert generation["attributes"]["$ai_stream"] is stream
    assert generation["attributes"]["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS


def test_every_model_request_is_counted_once(queries):
    # Chat requests: sync, stream, async, direct, astream, gather x2, threads x2. Embedding requests: the
    # index build, and each query's (those nine but the two direct ones, plus the MockLLM query's).
    openai = [s for s in queries.spans if s["attributes"].get("gen_ai.provider.name") == "openai"]
    assert len([s for s in openai if event_type(s) == "$ai_generation"]) == 9
    assert len([s for s in openai if event_type(s) == "$ai_embedding"]) == 9
    for span in openai:  # LlamaIndex's views of the SDK's requests: steps, never billed
        if event_type(span) in ("$ai_span", "$ai_trace"):
            assert span["attributes"]["$ai_framework"] == "llama_index" and no_tokens(span)
    # and the MockLLM call, the one generation without an SDK below it
    assert [
        s["attributes"]["gen_ai.provider.name"]
        for s in queries.spans
        if event_type(s) == "$ai_generation" and s not in openai
    ] == ["llama_index"]


def test_privacy_mode_keeps_the_tree_and_drops_every_text(private):
    assert private.instrumented.returncode == 0, private.instrumented.stderr
    assert private.rejections == []
    roots = [s for s in private.spans if s["name"] == "invoke_workflow RetrieverQueryEngine"]
    assert len(roots) == 1 and roots[0]["parent_span_id"] is None
    spans = trace_of(private, roots[0])
    assert sorted(s["name"] for s in spans) == [
        "chat gpt-4o-mini",
        "chat gpt-4o-mini",
        "embeddings text-embedding-3-small",
        "embeddings text-embedding-3-small",
        "invoke_workflow RetrieverQueryEngine",
        "retrieval VectorIndexRetriever",
    ]
    assert [event_type(s) for s in spans].count("$ai_generation") == 1
    exported = json.dumps(private.spans)
    for text in ("capital", "[sync]", DEFAULT_REPLY, "Context information"):
        assert text not in exported


def test_mock_llm_call_is_the_generation(mixed):
    root = root_for(mixed, "mock")
    spans = trace_of(mixed, root)
    assert root["attributes"]["$ai_output_state"] == "text text text text text"
    top = children(spans, root)
    assert sorted(s["name"] for s in top) == ["chat", "retrieval VectorIndexRetriever"]
    retrieved = json.loads(only(top, "retrieval VectorIndexRetriever")["attributes"]["$ai_output_state"])
    assert len(retrieved) == 1
    generation = only(top, "chat")
    attrs = generation["attributes"]
    assert event_type(generation) == "$ai_generation"
    assert attrs["gen_ai.provider.name"] == "llama_index"
    assert attrs["$ai_framework"] == "llama_index"
    assert attrs["gen_ai.request.max_tokens"] == 5
    assert "[mock]" in json.dumps(attrs["$ai_input"])
    assert attrs["$ai_output_choices"][0]["content"] == [{"type": "text", "text": "text text text text text"}]
    assert children(spans, generation) == []
    assert [s for s in spans if event_type(s) == "$ai_generation"] == [generation]


@pytest.mark.parametrize("first,second", [("gather-1", "gather-2"), ("thread-1", "thread-2")])
def test_concurrent_queries_do_not_mix(mixed, first, second):
    answers = {"1": "Paris", "2": "Madrid"}
    traces = {}
    for label in (first, second):
        spans = assert_query_tree(mixed, label, nodes=1, answer=answers[label[-1]])
        traces[label] = spans
        # Everything in the trace that carries content is about this query only.
        for span in spans:
            text = json.dumps(span["attributes"])
            other = second if label == first else first
            assert f"[{other}]" not in text, span["name"]
    assert {s["trace_id"] for s in traces[first]}.isdisjoint({s["trace_id"] for s in traces[second]})
