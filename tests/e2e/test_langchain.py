"""End to end: an unmodified LangChain / LangGraph app under ``posthog-instrument``, reaching the
loopback OpenAI through ``langchain-openai`` and the real ``openai`` SDK.

Every run must arrive as one readable trace: a root (the chain or graph), ``$ai_span`` steps for
graph nodes, tools and retrievers with their inputs and outputs, and exactly one
``$ai_generation`` per model call, nested where it happened. A ``ChatOpenAI`` call is recorded by
the openai adapter (the generation, with tokens) under LangChain's model step (a step without
tokens); a model nothing below LangChain records (LangChain's fake chat model) makes LangChain's
step the generation.

Importing LangGraph takes seconds, so the app runs all its scenarios in one process, with and
without instrumentation (and once more in privacy mode), all at once in a module-scoped fixture.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass

import pytest

from tests.conftest import AppRun
from tests.e2e.app_runs import AppProcess
from tests.e2e.traces import event_type as event, tools
from tests.servers.openai_wire import COMPLETION_TOKENS, PROMPT_TOKENS, TOOL_ARGUMENTS, TOOL_CALL_ID

pytest.importorskip("langgraph")
pytest.importorskip("langchain_openai")

SERVED_MODEL = "gpt-4o-mini-2024-08-06"
TEXT = "Hello from fake OpenAI"
# LangChain's plumbing that must never reach PostHog as a span of its own.
PLUMBING = (
    "RunnableSequence",
    "RunnableParallel",
    "RunnableLambda",
    "RunnablePassthrough",
    "ChatPromptTemplate",
    "StrOutputParser",
    "Prompt",
    "call_model",
    "should_continue",
    "join",
    "ChannelWrite",
    "__start__",
)


@dataclass
class Outcome:
    instrumented: AppRun
    plain: AppRun
    spans: list
    rejections: list
    requests_instrumented: list
    requests_plain: list


@pytest.fixture(scope="module")
def runs() -> dict:
    app = "langchain_app.py"
    with contextlib.ExitStack() as stack:
        traced = AppProcess(stack, app, True)
        plain = AppProcess(stack, app, False)
        private = AppProcess(stack, app, True, "agent", "fake", POSTHOG_PRIVACY_MODE="1")
        traced_run, plain_run, private_run = traced.result(), plain.result(), private.result()
        return {
            "main": Outcome(
                traced_run,
                plain_run,
                traced.posthog.spans,
                traced.posthog.rejections,
                traced.openai.requests,
                plain.openai.requests,
            ),
            "private": (private_run, private.posthog.spans),
        }


@pytest.fixture(scope="module")
def outcome(runs) -> Outcome:
    return runs["main"]


# -- reading the export as PostHog does -------------------------------------------------------


def trace_of(outcome: Outcome, label: str, needle: str = "[{}]") -> list:
    """All spans of the one trace in which ``[label]`` was said."""
    traces = {s["trace_id"] for s in outcome.spans if needle.format(label) in _input(s)}
    assert len(traces) == 1, traces
    spans = [s for s in outcome.spans if s["trace_id"] in traces]
    return sorted(spans, key=lambda s: s["start_ns"])


def _input(span: dict) -> str:
    attrs = span["attributes"]
    return str(attrs.get("$ai_input_state") or attrs.get("$ai_input") or "")


def root_of(spans: list) -> dict:
    roots = [s for s in spans if not s["parent_span_id"]]
    assert len(roots) == 1, [s["name"] for s in roots]
    return roots[0]


def children(spans: list, parent: dict) -> list:
    return [s for s in spans if s["parent_span_id"] == parent["span_id"]]


def shape(spans: list, node: dict | None = None, depth: int = 0) -> list:
    """The tree as indented "event name" lines, children in start order."""
    node = node or root_of(spans)
    lines = ["  " * depth + f"{event(node)} {node['name']}"]
    for child in children(spans, node):
        lines.extend(shape(spans, child, depth + 1))
    return lines


def state(span: dict, key: str):
    value = span["attributes"][key]
    try:
        return json.loads(value)
    except ValueError:
        return value


def assert_provider_generation(span: dict, by_model_step: bool = True) -> None:
    """``by_model_step``: made by LangChain's chat model (not by the app's code in a graph node)."""
    attrs = span["attributes"]
    assert event(span) == "$ai_generation"
    assert span["scope_name"] == "posthog_autoinstrument"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.response.model"] == SERVED_MODEL
    assert attrs["gen_ai.usage.input_tokens"] == PROMPT_TOKENS
    assert attrs["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
    # The openai SDK's own call: it names LangChain when LangChain's chat model made it.
    assert attrs.get("$ai_framework") == ("langchain" if by_model_step else None)


def assert_langchain_model_step(span: dict, generation: dict) -> None:
    """LangChain's model step over an instrumented SDK: a step, no tokens, the generation under it."""
    attrs = span["attributes"]
    assert event(span) == ("$ai_span" if span["parent_span_id"] else "$ai_trace")  # never a generation
    assert attrs["$ai_framework"] == "langchain"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert not [k for k in attrs if k.startswith("gen_ai.usage.")], attrs
    assert "gen_ai.operation.name" not in attrs
    assert generation["parent_span_id"] == span["span_id"]


# -- the application is unchanged -------------------------------------------------------------


def _comparable(requests: list) -> list:
    kept = []
    for request in requests:
        body = dict(request["json"] or {})
        body.pop("stream_options", None)  # the openai adapter asks streams for their usage
        kept.append(json.dumps([request["path"], body], sort_keys=True))
    return sorted(kept)


def test_the_app_runs_unchanged(outcome):
    assert outcome.plain.returncode == 0, outcome.plain.stderr
    assert outcome.instrumented.returncode == 0, outcome.instrumented.stderr
    assert outcome.instrumented.stdout == outcome.plain.stdout
    assert "chain-error ValueError no such order" in outcome.instrumented.stdout
    assert "Traceback" not in outcome.instrumented.stderr
    assert "PostHogCallbackHandler" not in outcome.instrumented.stderr  # LangChain logs handler errors
    assert outcome.rejections == []
    assert _comparable(outcome.requests_instrumented) == _comparable(outcome.requests_plain)


def test_one_generation_per_model_call(outcome):
    chat_requests = [r for r in outcome.requests_instrumented if r["path"].endswith("/chat/completions")]
    openai_generations = [
        s for s in outcome.spans if event(s) == "$ai_generation" and s["attributes"]["gen_ai.provider.name"] == "openai"
    ]
    assert len(openai_generations) == len(chat_requests) == 26
    # Every LangChain model step over ChatOpenAI is a step with exactly one generation under it.
    steps = [
        s
        for s in outcome.spans
        if s["attributes"].get("$ai_framework") == "langchain"
        and s["attributes"].get("gen_ai.request.model") == "gpt-4o-mini"
        and event(s) != "$ai_generation"
    ]
    assert len(steps) == 24  # the other two: the OpenAI SDK called directly in graph nodes
    for step in steps:
        below = children(outcome.spans, step)
        assert len(below) == 1
        assert_langchain_model_step(step, below[0])
        assert_provider_generation(below[0])


def test_every_span_belongs_to_a_tree_with_a_root(outcome):
    by_id = {s["span_id"]: s for s in outcome.spans}
    for span in outcome.spans:
        if span["parent_span_id"]:
            parent = by_id[span["parent_span_id"]]  # nothing dangles
            assert parent["trace_id"] == span["trace_id"]
    for trace_id in {s["trace_id"] for s in outcome.spans}:
        root_of([s for s in outcome.spans if s["trace_id"] == trace_id])


def test_langchain_plumbing_is_not_exported(outcome):
    # (A root keeps its name, whatever it is: it is the app's own chain.)
    names = {s["name"].split(" ", 1)[-1] for s in outcome.spans if s["parent_span_id"]}
    assert not names & set(PLUMBING), names & set(PLUMBING)


# -- a LangGraph ReAct agent with one tool ------------------------------------------------------


def test_react_agent_is_one_trace(outcome):
    spans = trace_of(outcome, "agent")
    assert shape(spans) == [
        "$ai_trace invoke_agent LangGraph",
        "  $ai_span chain agent",
        "    $ai_span chat gpt-4o-mini",
        "      $ai_generation chat gpt-4o-mini",
        "  $ai_span chain tools",
        "    $ai_span execute_tool get_weather",
        "  $ai_span chain agent",
        "    $ai_span chat gpt-4o-mini",
        "      $ai_generation chat gpt-4o-mini",
    ]
    assert len({s["trace_id"] for s in spans}) == 1
    root = root_of(spans)
    attrs = root["attributes"]
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == "LangGraph"
    assert attrs["$ai_framework"] == "langchain"
    assert state(root, "$ai_input_state") == {"messages": [["user", "[agent] What is the weather in Paris?"]]}
    final = state(root, "$ai_output_state")["messages"]
    assert [m["role"] for m in final] == ["user", "assistant", "tool", "assistant"]
    assert final[-1]["content"] == TEXT
    assert final[1]["tool_calls"][0]["name"] == "get_weather"


def test_react_agent_generations_and_tool(outcome):
    spans = trace_of(outcome, "agent")
    first_step, second_step = [s for s in spans if s["name"] == "chat gpt-4o-mini" and event(s) == "$ai_span"]
    first_generation, second_generation = children(spans, first_step)[0], children(spans, second_step)[0]
    for step, generation in ((first_step, first_generation), (second_step, second_generation)):
        assert_langchain_model_step(step, generation)
        assert_provider_generation(generation)
    # The first call offered the tool and was answered with a call to it.
    offered = tools(first_generation)
    assert [t["function"]["name"] for t in offered] == ["get_weather"]
    assert tools(first_step) == offered
    first_output = state(first_step, "$ai_output_state")
    assert first_output[0]["parts"] == [
        {"type": "tool_call", "name": "get_weather", "arguments": json.loads(TOOL_ARGUMENTS), "id": TOOL_CALL_ID}
    ]
    assert first_output[0]["finish_reason"] == "tool_call"
    # The second saw the tool's result and answered with text.
    second_input = state(second_step, "$ai_input_state")
    assert second_input[-1] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "response": "Sunny in Paris", "id": TOOL_CALL_ID}],
    }
    assert second_generation["attributes"]["$ai_output_choices"][0]["content"] == [{"type": "text", "text": TEXT}]

    (tool,) = [s for s in spans if s["name"] == "execute_tool get_weather"]
    attrs = tool["attributes"]
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["gen_ai.tool.name"] == "get_weather"
    assert attrs["gen_ai.tool.call.id"] == TOOL_CALL_ID
    assert attrs["gen_ai.tool.description"] == "The current weather in a city."
    assert attrs["$ai_framework"] == "langchain"
    assert state(tool, "$ai_input_state") == json.loads(TOOL_ARGUMENTS)
    assert attrs["$ai_output_state"] == "Sunny in Paris"
    assert tool["status_code"] == "UNSET"
    # Steps start in order and end inside their parents.
    by_id = {s["span_id"]: s for s in spans}
    for span in spans:
        if span["parent_span_id"]:
            parent = by_id[span["parent_span_id"]]
            assert parent["start_ns"] <= span["start_ns"] and span["end_ns"] <= parent["end_ns"]


def test_sub_agent_called_from_a_tool_is_an_agent_inside_the_tool(outcome):
    spans = trace_of(outcome, "nested-agent")
    assert shape(spans) == [
        "$ai_trace invoke_agent planner",
        "  $ai_span chain agent",
        "    $ai_span chat gpt-4o-mini",
        "      $ai_generation chat gpt-4o-mini",
        "  $ai_span chain tools",
        "    $ai_span execute_tool ask_weather_expert",
        "      $ai_span invoke_agent weather_expert",
        "        $ai_span chain agent",
        "          $ai_span chat gpt-4o-mini",
        "            $ai_generation chat gpt-4o-mini",
        "        $ai_span chain tools",
        "          $ai_span execute_tool get_weather",
        "        $ai_span chain agent",
        "          $ai_span chat gpt-4o-mini",
        "            $ai_generation chat gpt-4o-mini",
        "  $ai_span chain agent",
        "    $ai_span chat gpt-4o-mini",
        "      $ai_generation chat gpt-4o-mini",
    ]
    (outer_tool,) = [s for s in spans if s["name"] == "execute_tool ask_weather_expert"]
    assert outer_tool["attributes"]["$ai_output_state"] == TEXT  # the sub-agent's answer
    (inner,) = [s for s in spans if s["name"] == "invoke_agent weather_expert"]
    assert inner["attributes"]["gen_ai.agent.name"] == "weather_expert"


def test_failing_tool_is_an_error_step_and_the_agent_goes_on(outcome):
    spans = trace_of(outcome, "tool-error")
    (tool,) = [s for s in spans if s["name"] == "execute_tool flaky_lookup"]
    assert tool["status_code"] == "ERROR"
    assert tool["attributes"]["error.type"] == "RuntimeError"
    assert "lookup service down for Paris" in tool["status_message"]
    root = root_of(spans)
    assert root["name"] == "invoke_agent LangGraph" and root["status_code"] == "UNSET"
    assert len([s for s in spans if event(s) == "$ai_generation"]) == 2


def test_failing_chain_is_an_error_trace(outcome):
    spans = trace_of(outcome, "chain-error", '"label":"{}"')
    assert shape(spans) == ["$ai_trace invoke_workflow RunnableSequence"]
    root = spans[0]
    assert root["status_code"] == "ERROR"
    assert root["attributes"]["error.type"] == "ValueError"
    assert [e["name"] for e in root["events"]] == ["exception"]


# -- LCEL chains, streaming, async, retrievers ------------------------------------------------------


def test_streamed_lcel_chain(outcome):
    spans = trace_of(outcome, "lcel-stream")
    assert shape(spans) == [
        "$ai_trace invoke_workflow RunnableSequence",
        "  $ai_span chat gpt-4o-mini",
        "    $ai_generation chat gpt-4o-mini",
    ]
    root, step, generation = spans
    # A streamed run reports its input at the end; the trace shows it, not LangChain's placeholder.
    assert state(root, "$ai_input_state") == {"label": "lcel-stream", "question": "Say hello chunks=3"}
    assert root["attributes"]["$ai_output_state"] == TEXT
    assert root["attributes"]["gen_ai.operation.name"] == "invoke_workflow"
    assert_langchain_model_step(step, generation)
    assert_provider_generation(generation)
    assert generation["attributes"]["$ai_stream"] is True
    assert step["attributes"]["gen_ai.request.stream"] is True
    assert state(step, "$ai_input_state") == [
        {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
        {"role": "user", "parts": [{"type": "text", "content": "[lcel-stream] Say hello chunks=3"}]},
    ]


@pytest.mark.parametrize("label, output", [("async", "async-hello"), ("astream", TEXT)])
def test_async_chain_runs(outcome, label, output):
    spans = trace_of(outcome, label)
    assert shape(spans) == [
        "$ai_trace invoke_workflow RunnableSequence",
        "  $ai_span chat gpt-4o-mini",
        "    $ai_generation chat gpt-4o-mini",
    ]
    root, step, generation = spans
    assert root["attributes"]["$ai_output_state"] == output
    assert_langchain_model_step(step, generation)
    assert_provider_generation(generation)


@pytest.mark.parametrize("label", ["model-stream", "model-astream"])
def test_model_streamed_on_its_own(outcome, label):
    spans = trace_of(outcome, label)
    assert shape(spans) == ["$ai_trace chat gpt-4o-mini", "  $ai_generation chat gpt-4o-mini"]
    step, generation = spans
    assert step["attributes"]["$ai_framework"] == "langchain"
    assert not [k for k in step["attributes"] if k.startswith("gen_ai.usage.")]
    assert_provider_generation(generation)
    assert generation["attributes"]["$ai_stream"] is True


def test_retriever_in_a_chain(outcome):
    spans = trace_of(outcome, "retrieval")
    assert shape(spans) == [
        "$ai_trace invoke_workflow RunnableSequence",
        "  $ai_span retrieval ShelfRetriever",
        "  $ai_span chat gpt-4o-mini",
        "    $ai_generation chat gpt-4o-mini",
    ]
    root, retriever, step, generation = spans
    assert root["attributes"]["$ai_input_state"] == "paris facts"
    attrs = retriever["attributes"]
    assert attrs["gen_ai.operation.name"] == "retrieval"
    assert attrs["gen_ai.data_source.id"] == "ShelfRetriever"
    assert attrs["$ai_input_state"] == "paris facts"
    assert state(retriever, "$ai_output_state") == [
        {"content": "Paris is the capital of France", "metadata": {"source": "atlas"}}
    ]
    prompt = state(step, "$ai_input_state")[0]["parts"][0]["content"]
    assert prompt.startswith("Context: Paris is the capital of France")
    assert_provider_generation(generation)


# -- a model nothing below LangChain records ---------------------------------------------------


def test_fake_model_step_is_the_generation(outcome):
    spans = trace_of(outcome, "fake")
    assert shape(spans) == ["$ai_trace invoke_workflow RunnableSequence", "  $ai_generation chat"]
    generation = spans[1]
    attrs = generation["attributes"]
    assert attrs["$ai_framework"] == "langchain"
    assert attrs["gen_ai.provider.name"] == "genericfakechatmodel"
    assert attrs["gen_ai.usage.input_tokens"] == 5
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["$ai_input"] == [{"role": "user", "content": "[fake] hi"}]
    assert attrs["$ai_output_choices"][0]["content"] == [{"type": "text", "text": "Fake hello"}]


# -- context: code LangChain runs for a step sees that step's span --------------------------------


@pytest.mark.parametrize("label", ["direct-node", "direct-node-async"])
def test_openai_called_directly_in_a_graph_node_nests_under_the_node(outcome, label):
    spans = trace_of(outcome, label)
    assert shape(spans) == [
        "$ai_trace invoke_workflow LangGraph",
        "  $ai_span chain answer",
        "    $ai_generation chat gpt-4o-mini",
    ]
    assert_provider_generation(spans[2], by_model_step=False)


def test_run_inside_the_apps_own_span_still_has_a_root(outcome):
    spans = trace_of(outcome, "app-span")
    root = root_of(spans)
    assert root["name"] == "invoke_agent LangGraph"
    match = re.search(r"app span ([0-9a-f]{32}) ([0-9a-f]{16})", outcome.instrumented.stderr)
    assert match, outcome.instrumented.stderr[-2000:]
    # The trace is the app's own (same trace id), re-rooted since its span is no AI span.
    assert root["trace_id"] == match.group(1)
    assert root["parent_span_id"] is None
    assert all(s["span_id"] != match.group(2) for s in outcome.spans)
    assert len(spans) == 9


# -- concurrency ---------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [("concurrent-a", "concurrent-b"), ("thread-a", "thread-b")])
def test_concurrent_runs_do_not_mix(outcome, labels):
    first, second = (trace_of(outcome, label) for label in labels)
    assert first[0]["trace_id"] != second[0]["trace_id"]
    for spans, label, other in ((first, labels[0], labels[1]), (second, labels[1], labels[0])):
        assert shape(spans) == shape(trace_of(outcome, "agent"))
        for span in spans:
            assert f"[{other}]" not in json.dumps(span["attributes"])
        model_inputs = [_input(s) for s in spans if s["name"] == "chat gpt-4o-mini"]
        assert len(model_inputs) == 4 and all(f"[{label}]" in text for text in model_inputs)


# -- privacy ---------------------------------------------------------------------------------


def test_privacy_mode_keeps_the_tree_and_drops_the_content(runs):
    app, spans = runs["private"]
    assert app.returncode == 0, app.stderr
    assert len(spans) == 11  # the agent's 9 and the fake chain's 2: the same trees as with content
    generations = [s for s in spans if event(s) == "$ai_generation"]
    assert len(generations) == 3
    for span in spans:
        attrs = span["attributes"]
        for key in (
            "$ai_input_state",
            "$ai_output_state",
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "$ai_input",
            "$ai_output_choices",
            "gen_ai.tool.call.arguments",
            "gen_ai.tool.call.result",
        ):
            assert key not in attrs, (span["name"], key)
        assert "Paris" not in json.dumps({k: v for k, v in attrs.items() if k != "$ai_tools"})
