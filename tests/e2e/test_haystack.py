"""End to end: an unmodified Haystack app under ``posthog-instrument``, against the loopback
OpenAI and PostHog stand-ins.

Pipeline runs (``run``, ``run_async``; two at once in threads and in asyncio) are
``invoke_workflow`` traces; their components are steps (retrievers as ``retrieval`` steps with
query, top-k and documents, never vectors); each model call is exactly one generation, the
openai SDK's, below its component step (``OpenAIChatGenerator``, streaming or not) or the agent
(3.x), and an embedder's call one embedding below its step. An ``Agent`` is an ``invoke_agent``
step with its tools as ``execute_tool`` steps (arguments, result, errors), also when it is a
pipeline component. Haystack's own tracing stays as the app has it without us.

One launcher run with content, one in privacy mode and one plain run, all at once. The main
environment has Haystack 3.x; .ci/run runs this file again with the newest 2.x.
"""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from tests.e2e.app_runs import Outcome, traced_plain_private
from tests.e2e.traces import assert_no_content, event_type, named, run_of, tree
from tests.servers.openai_wire import CACHED_TOKENS, COMPLETION_TOKENS, PROMPT_TOKENS

pytest.importorskip("haystack", reason="haystack-ai is not installed")

HAYSTACK_2 = importlib.metadata.version("haystack-ai").startswith("2.")
# ``Pipeline.stream`` (3.x) reads ``run_async``.
RAG_LABELS = ("rag", "own-tracer", "stream", "thread-a", "thread-b", "async-a", "async-b") + (
    () if HAYSTACK_2 else ("pipeline-stream",)
)
AGENT_LABELS = ("agent", "failing", "agent-pipe", "agent-async")
# Two per agent run (a tool call, then the answer), one per RAG run (and the wrapped one), one
# embedding, one failed call, and on 2.x one text generation.
MODEL_REQUESTS = 2 * len(AGENT_LABELS) + len(RAG_LABELS) + 3 + HAYSTACK_2


@pytest.fixture(scope="module")
def outcomes() -> dict:
    # HAYSTACK_TELEMETRY_ENABLED: Haystack's usage statistics, no network.
    return traced_plain_private("haystack_app.py", HAYSTACK_TELEMETRY_ENABLED="False")


@pytest.fixture(scope="module")
def traced(outcomes) -> Outcome:
    return outcomes["traced"]


def state(span: dict, key: str = "$ai_input_state"):
    return json.loads(span["attributes"][key])


RAG_TREE = [
    (0, "$ai_trace", "invoke_workflow rag"),
    (1, "$ai_span", "retrieval retriever"),
    (1, "$ai_span", "component prompt_builder"),
    (1, "$ai_span", "component llm"),
    (2, "$ai_generation", "chat gpt-4o-mini"),
]


def agent_tree(root: str, depth: int, tool: str = "get_weather") -> list:
    """An agent's run: model call, tool, model call. Haystack 2.x agents run their chat
    generator and tool invoker as components; 3.x agents call them directly."""
    agent_type = "$ai_trace" if depth == 0 else "$ai_span"
    if HAYSTACK_2:
        return [
            (depth, agent_type, root),
            (depth + 1, "$ai_span", "component chat_generator"),
            (depth + 2, "$ai_generation", "chat gpt-4o-mini"),
            (depth + 1, "$ai_span", "component tool_invoker"),
            (depth + 2, "$ai_span", f"execute_tool {tool}"),
            (depth + 1, "$ai_span", "component chat_generator"),
            (depth + 2, "$ai_generation", "chat gpt-4o-mini"),
        ]
    return [
        (depth, agent_type, root),
        (depth + 1, "$ai_generation", "chat gpt-4o-mini"),
        (depth + 1, "$ai_span", f"execute_tool {tool}"),
        (depth + 1, "$ai_generation", "chat gpt-4o-mini"),
    ]


def test_the_app_is_unchanged(outcomes):
    traced, plain, private = outcomes["traced"], outcomes["plain"], outcomes["private"]
    for outcome in outcomes.values():
        assert outcome.run.returncode == 0, outcome.run.stderr
    assert traced.run.stdout == plain.run.stdout == private.run.stdout
    assert traced.run.stdout.endswith("done\n")
    # Haystack's own tracing is off, as without us (2.x would turn it on for our tracer provider).
    assert traced.run.stdout.startswith("haystack tracing False None\n")
    assert "OpenTelemetryTracer" not in traced.run.stderr  # (2.x warns when it turns it on)
    # The app's own Haystack tracer saw what it sees without us.
    assert (
        "own-tracer Hello from fake OpenAI ['haystack.pipeline.run', 'haystack.component.run', "
        "'haystack.component.run', 'haystack.component.run']\n" in traced.run.stdout
    )
    assert traced.rejections == [] and private.rejections == []

    def sent(requests):
        # (the streamed call asks for its usage chunk under posthog-instrument, hidden from the app)
        bodies = [{k: v for k, v in r["json"].items() if k != "stream_options"} for r in requests]
        return sorted(json.dumps([r["path"], body], sort_keys=True) for r, body in zip(requests, bodies))

    assert sent(traced.requests) == sent(plain.requests)
    streamed = [r for r in traced.requests if r["json"].get("stream")]
    assert len(streamed) == (1 if HAYSTACK_2 else 2)
    assert all(r["json"]["stream_options"] == {"include_usage": True} for r in streamed)


def test_one_generation_per_model_call(traced):
    assert len(traced.requests) == MODEL_REQUESTS
    model_calls = [s for s in traced.spans if event_type(s) in ("$ai_generation", "$ai_embedding")]
    assert len(model_calls) == MODEL_REQUESTS
    by_id = {s["span_id"]: s for s in traced.spans}
    for call in model_calls:  # each under a Haystack step, with the stand-in's tokens
        assert by_id[call["parent_span_id"]]["attributes"]["$ai_framework"] == "haystack"
        attrs = call["attributes"]
        assert attrs["gen_ai.provider.name"] == "openai"
        if event_type(call) == "$ai_generation" and call["status_code"] != "ERROR":
            assert attrs["gen_ai.usage.input_tokens"] == PROMPT_TOKENS
            assert attrs["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
            assert attrs["gen_ai.usage.cache_read.input_tokens"] == CACHED_TOKENS
    for step in traced.spans:  # the steps hold no tokens
        if event_type(step) in ("$ai_span", "$ai_trace"):
            assert "gen_ai.usage.input_tokens" not in step["attributes"], step["name"]


@pytest.mark.parametrize("label", RAG_LABELS)
def test_a_rag_pipeline_run(traced, label):
    spans = run_of(traced.spans, label)
    assert tree(spans) == RAG_TREE
    (root,) = named(spans, "invoke_workflow rag")
    question = f"[{label}] Who lives in Paris?"
    assert root["attributes"]["$ai_framework"] == "haystack"
    assert root["attributes"]["gen_ai.workflow.name"] == "rag"
    data = {"retriever": {"query": question}, "prompt_builder": {"question": question}}
    if label == "pipeline-stream":  # (the handle's forwarder of chunks)
        data["llm"] = {"streaming_callback": "<function>"}
    assert state(root) == data
    assert state(root, "$ai_output_state") == {
        "llm": {"replies": [{"role": "assistant", "text": "Hello from fake OpenAI"}]}
    }

    (retriever,) = named(spans, "retrieval retriever")
    attrs = retriever["attributes"]
    assert attrs["gen_ai.operation.name"] == "retrieval"
    assert attrs["gen_ai.request.top_k"] == 2
    assert attrs["haystack.component.type"] == "InMemoryBM25Retriever"
    assert attrs["haystack.document_store.type"] == "InMemoryDocumentStore"
    assert state(retriever) == {"query": question}
    documents = state(retriever, "$ai_output_state")
    assert [d["id"] for d in documents] == ["doc-paris", "doc-berlin"]
    assert documents[0]["text"] == "Jean lives in Paris." and documents[0]["metadata"] == {"city": "Paris"}
    assert all(isinstance(d["score"], float) for d in documents)

    (builder,) = named(spans, "component prompt_builder")
    assert builder["attributes"]["haystack.component.type"] == "ChatPromptBuilder"
    assert state(builder)["question"] == question
    (prompt,) = state(builder, "$ai_output_state")["prompt"]
    assert prompt["role"] == "user" and prompt["text"].endswith(
        f"Jean lives in Paris.\nMark lives in Berlin.\nQuestion: {question}"
    )

    (llm,) = named(spans, "component llm")
    assert llm["attributes"]["haystack.component.type"] == "OpenAIChatGenerator"
    assert llm["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert state(llm)["messages"] == [prompt]
    (generation,) = named(spans, "chat gpt-4o-mini")
    assert generation["attributes"]["$ai_input"] == [{"role": "user", "content": prompt["text"]}]
    assert generation["attributes"]["$ai_stream"] is (label in ("stream", "pipeline-stream"))


def test_concurrent_runs_are_separate_traces(traced):
    trace_ids = {run_of(traced.spans, label)[0]["trace_id"] for label in RAG_LABELS}
    assert len(trace_ids) == len(RAG_LABELS)


@pytest.mark.skipif(not HAYSTACK_2, reason="Haystack 3 has chat generators only")
def test_a_text_generator(traced):
    spans = run_of(traced.spans, "generator")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow generator"),
        (1, "$ai_span", "component prompt_builder"),
        (1, "$ai_span", "component llm"),
        (2, "$ai_generation", "chat gpt-4o-mini"),
    ]
    (llm,) = named(spans, "component llm")
    assert llm["attributes"]["haystack.component.type"] == "OpenAIGenerator"
    assert state(llm) == {"prompt": "[generator] Hi"}
    assert state(llm, "$ai_output_state")["replies"] == ["Hello from fake OpenAI"]


def test_a_failed_model_call_fails_its_steps(traced):
    spans = run_of(traced.spans, "error")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow broken"),
        (1, "$ai_span", "component prompt_builder"),
        (1, "$ai_span", "component llm"),
        (2, "$ai_generation", "chat error-400"),
    ]
    (generation,) = named(spans, "chat error-400")
    assert generation["status_code"] == "ERROR"
    assert generation["attributes"]["error.type"] == "openai.BadRequestError"
    assert generation["attributes"]["$ai_http_status"] == 400
    for name in ("component llm", "invoke_workflow broken"):  # as Haystack raises it
        (step,) = named(spans, name)
        assert step["status_code"] == "ERROR"
        assert step["attributes"]["error.type"] == "haystack.PipelineRuntimeError"
    assert named(spans, "component prompt_builder")[0]["status_code"] != "ERROR"


def test_a_pipeline_in_a_super_component_nests_under_its_step(traced):
    spans = run_of(traced.spans, "super")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow outer"),
        (1, "$ai_span", "component wrapped_rag"),
        *[(depth + 2, "$ai_span" if depth == 0 else kind, name) for depth, kind, name in RAG_TREE],
    ]
    (wrapper,) = named(spans, "component wrapped_rag")
    assert wrapper["attributes"]["haystack.component.type"] == "SuperComponent"


def test_an_embedding_pipeline_never_sends_vectors(traced):
    spans = run_of(traced.spans, "embedding")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow Pipeline"),
        (1, "$ai_span", "component embedder"),
        (2, "$ai_embedding", "embeddings text-embedding-3-small"),
        (1, "$ai_span", "retrieval retriever"),
    ]
    (embedder,) = named(spans, "component embedder")
    assert state(embedder) == {"text": "[embedding] Who lives in Paris?"}
    assert state(embedder, "$ai_output_state")["embedding"] == {"dimensions": 8}
    (retriever,) = named(spans, "retrieval retriever")
    assert retriever["attributes"]["haystack.component.type"] == "InMemoryEmbeddingRetriever"
    assert state(retriever) == {"query_vector": {"dimensions": 8}}
    assert [d["id"] for d in state(retriever, "$ai_output_state")] == ["doc-rome", "doc-berlin"]
    # Neither the stand-in's vector (multiples of 1/64) nor the stored documents' embeddings.
    for span in spans:
        exported = json.dumps(span["attributes"])
        assert "0.015625" not in exported and '"embedding\\": [' not in exported, span["name"]


@pytest.mark.parametrize("label", ["agent", "agent-async"])
def test_an_agent_with_a_tool(traced, label):
    spans = run_of(traced.spans, label)
    assert tree(spans) == agent_tree("invoke_agent Agent", 0)
    (root,) = named(spans, "invoke_agent Agent")
    assert root["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert state(root) == [{"role": "user", "text": f"[{label}] What is the weather in Paris?"}]
    assert state(root, "$ai_output_state") == {"role": "assistant", "text": "Hello from fake OpenAI"}
    (tool,) = named(spans, "execute_tool get_weather")
    assert json.loads(tool["attributes"]["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert tool["attributes"]["gen_ai.tool.call.result"] == "Sunny in Paris"
    assert tool["attributes"]["gen_ai.tool.description"] == "The weather in a city."
    first, second = named(spans, "chat gpt-4o-mini")
    assert first["attributes"]["$ai_output_choices"][0]["content"][0]["type"] == "function"
    assert [m["role"] for m in second["attributes"]["$ai_input"]] == ["user", "assistant", "tool"]


def test_a_failing_tool_is_an_error_step_and_the_run_goes_on(traced):
    spans = run_of(traced.spans, "failing")
    assert tree(spans) == agent_tree("invoke_agent Agent", 0, tool="broken_lookup")
    (tool,) = named(spans, "execute_tool broken_lookup")
    assert tool["status_code"] == "ERROR"
    assert tool["attributes"]["error.type"] == "haystack.ToolInvocationError"
    assert json.loads(tool["attributes"]["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert named(spans, "invoke_agent Agent")[0]["status_code"] != "ERROR"


def test_an_agent_as_a_pipeline_component_is_one_agent_step(traced):
    spans = run_of(traced.spans, "agent-pipe")
    assert tree(spans) == [(0, "$ai_trace", "invoke_workflow agent pipeline")] + agent_tree(
        "invoke_agent weather_agent", 1
    )
    (agent,) = named(spans, "invoke_agent weather_agent")
    assert agent["attributes"]["haystack.component.type"] == "Agent"
    assert state(agent)["messages"] == [{"role": "user", "text": "[agent-pipe] Weather in Paris?"}]


def test_privacy_mode_keeps_the_tree_without_content(outcomes):
    private = outcomes["private"]
    model_calls = [s for s in private.spans if event_type(s) in ("$ai_generation", "$ai_embedding")]
    assert len(model_calls) == MODEL_REQUESTS
    roots = [s for s in private.spans if s["parent_span_id"] is None]
    assert sorted(r["name"] for r in roots) == sorted(
        ["invoke_workflow rag"] * len(RAG_LABELS)
        + [
            "invoke_workflow Pipeline",
            "invoke_workflow agent pipeline",
            "invoke_workflow outer",
            "invoke_workflow broken",
        ]
        + ["invoke_workflow generator"] * HAYSTACK_2
        + ["invoke_agent Agent"] * 3
    )
    assert_no_content(private.spans)
    (retriever, *_) = [s for s in private.spans if s["name"] == "retrieval retriever"]
    assert retriever["attributes"]["gen_ai.request.top_k"] == 2
