"""End to end: an unmodified OpenAI Agents SDK app under ``posthog-instrument``, driving the real
openai SDK against the loopback OpenAI stand-in, with PostHog's intake stand-in decoding what
it receives.

Every run is one PostHog trace: the SDK's trace is the root ``$ai_trace``, its agents, tools,
handoffs and guardrails are ``$ai_span`` steps, and each model call is exactly one
``$ai_generation`` (the openai adapter's span) under the SDK's model-call step. With the openai
adapter switched off, the SDK's own model-call step is the generation instead.

Importing the SDK takes seconds, so the app runs three times at once in a module-scoped fixture
(every scenario instrumented and plain; one scenario with the openai adapter disabled, and
again in privacy mode), and
the tests below assert on what those runs produced.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

import pytest

from tests.conftest import AppRun
from tests.e2e.app_runs import AppProcess
from tests.e2e.traces import event_type as event
from tests.servers import openai_wire as wire
from tests.servers.openai_server import TRACES_INGEST_PATH

pytest.importorskip("agents")

SERVED_MODEL = "gpt-4o-mini" + wire.SERVED_MODEL_SUFFIX


@dataclass
class Outcome:
    run: AppRun
    spans: list
    rejections: list
    ingested: list  # what the SDK's own exporter sent to its traces endpoint


def outcome_of(process: AppProcess) -> Outcome:
    run = process.result()  # the app has exited: everything it sent has arrived
    ingested = [
        item
        for r in process.openai.requests
        if r["path"] == TRACES_INGEST_PATH
        for item in (r["json"] or {}).get("data", [])
    ]
    return Outcome(run, process.posthog.spans, process.posthog.rejections, ingested)


@pytest.fixture(scope="module")
def outcomes() -> dict:
    app = "openai_agents_app.py"
    with contextlib.ExitStack() as stack:
        started = {
            "traced": AppProcess(stack, app, True, "everything"),
            "plain": AppProcess(stack, app, False, "everything"),
            # Without the openai adapter, the SDK's model-call step is the generation.
            "sdk_only": AppProcess(stack, app, True, "tool", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="posthog_openai"),
            "private": AppProcess(stack, app, True, "tool", POSTHOG_PRIVACY_MODE="1"),
        }
        return {name: outcome_of(process) for name, process in started.items()}


@pytest.fixture(scope="module")
def traced(outcomes) -> Outcome:
    outcome = outcomes["traced"]
    assert outcome.run.returncode == 0, outcome.run.stderr
    return outcome


# -- helpers ---------------------------------------------------------------------------------------


def workflow(outcome: Outcome, name: str) -> list:
    """Every span of the trace whose root is the workflow ``name``."""
    (root,) = [s for s in outcome.spans if s["name"] == f"invoke_workflow {name}"]
    return [s for s in outcome.spans if s["trace_id"] == root["trace_id"]]


def children(spans: list, parent: dict) -> list:
    return sorted((s for s in spans if s["parent_span_id"] == parent["span_id"]), key=lambda s: s["start_ns"])


def tree(spans: list) -> list:
    """(depth, event, name) in start order, depth first: the trace as PostHog draws it."""
    (root,) = [s for s in spans if s["parent_span_id"] is None]
    rows = []

    def walk(span, depth):
        rows.append((depth, event(span), span["name"]))
        for child in children(spans, span):
            walk(child, depth + 1)

    walk(root, 0)
    assert len(rows) == len(spans), "every span of the trace hangs under its root"
    return rows


def usage_keys(span: dict) -> list:
    return [k for k in span["attributes"] if k.startswith("gen_ai.usage.")]


def messages(span: dict, key: str) -> list:
    """``$ai_input`` / ``$ai_output_choices``, in PostHog's shape."""
    return span["attributes"][key]


def assert_generation(span: dict, streamed: bool = False) -> None:
    attrs = span["attributes"]
    assert event(span) == "$ai_generation"
    assert span["name"] == "chat gpt-4o-mini"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.response.model"] == SERVED_MODEL
    assert attrs["gen_ai.usage.input_tokens"] == wire.PROMPT_TOKENS
    assert attrs["gen_ai.usage.output_tokens"] == wire.COMPLETION_TOKENS
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == wire.CACHED_TOKENS
    assert attrs["$ai_stream"] is streamed
    assert attrs["$ai_framework"] == "openai_agents"  # the provider's call, made by the Agents SDK's model


def assert_model_step(step: dict, spans: list, streamed: bool = False, name: str = f"chat {SERVED_MODEL}") -> dict:
    """The SDK's model-call step: no tokens, one generation inside it. Returns the generation."""
    assert event(step) == "$ai_span"
    assert step["name"] == name
    assert step["attributes"]["$ai_framework"] == "openai_agents"
    assert usage_keys(step) == []
    (generation,) = children(spans, step)
    assert_generation(generation, streamed)
    return generation


WEATHER_TREE = [
    (1, "$ai_span", "invoke_agent {agent}"),
    (2, "$ai_span", "{model_step}"),
    (3, "$ai_generation", "chat gpt-4o-mini"),
    (2, "$ai_span", "execute_tool get_weather"),
    (2, "$ai_span", "{model_step}"),
    (3, "$ai_generation", "chat gpt-4o-mini"),
]


def assert_weather_run(
    outcome: Outcome, name: str, agent: str, streamed: bool = False, model_step: str = f"chat {SERVED_MODEL}"
) -> list:
    """Root, agent step, two model calls with one generation each, and the tool between them."""
    spans = workflow(outcome, name)
    expected = [(0, "$ai_trace", f"invoke_workflow {name}")] + [
        (depth, kind, label.format(agent=agent, model_step=model_step)) for depth, kind, label in WEATHER_TREE
    ]
    assert tree(spans) == expected
    (root,) = [s for s in spans if s["parent_span_id"] is None]
    assert root["attributes"]["gen_ai.workflow.name"] == name
    assert root["attributes"]["$ai_framework"] == "openai_agents"
    assert root["attributes"]["openai_agents.trace_id"].startswith("trace_")
    # The run's input and final output, as PostHog lists the trace.
    (question,) = json.loads(root["attributes"]["$ai_input_state"])
    assert question["role"] == "user"
    assert json.loads(root["attributes"]["$ai_output_state"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": wire.DEFAULT_REPLY}], "finish_reason": "stop"}
    ]
    (agent_step,) = children(spans, root)
    assert agent_step["attributes"]["gen_ai.agent.name"] == agent
    assert agent_step["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert agent_step["attributes"]["openai_agents.agent.tools"] == ["get_weather"]
    assert agent_step["attributes"]["$ai_framework"] == "openai_agents"
    first_call, tool, second_call = children(spans, agent_step)
    first = assert_model_step(first_call, spans, streamed, model_step)
    second = assert_model_step(second_call, spans, streamed, model_step)

    # The first call asks for the tool; the tool runs with those arguments; the second call sees
    # its result.
    (output,) = messages(first, "$ai_output_choices")
    assert output["content"] == [
        {
            "type": "function",
            "id": wire.TOOL_CALL_ID,
            "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
        }
    ]
    tool_attrs = tool["attributes"]
    assert tool_attrs["gen_ai.operation.name"] == "execute_tool"
    assert tool_attrs["gen_ai.tool.name"] == "get_weather"
    assert tool_attrs["gen_ai.tool.type"] == "function"
    assert json.loads(tool_attrs["$ai_input_state"]) == {"city": "Paris"}
    assert tool_attrs["$ai_output_state"] == "Sunny in Paris"
    assert tool["status_code"] != "ERROR"
    assert {"role": "tool", "tool_call_id": wire.TOOL_CALL_ID, "content": "Sunny in Paris"} in messages(
        second, "$ai_input"
    )
    (final,) = messages(second, "$ai_output_choices")
    assert final["content"] == [{"type": "text", "text": wire.DEFAULT_REPLY}]
    assert len({s["trace_id"] for s in spans}) == 1
    return spans


# -- the app is unchanged, and so are its own trace processors -------------------------------------


def test_app_output_and_the_sdks_own_exporter_are_unchanged(outcomes):
    traced, plain = outcomes["traced"], outcomes["plain"]
    assert traced.run.returncode == 0, traced.run.stderr
    assert plain.run.returncode == 0, plain.run.stderr
    assert traced.run.stdout == plain.run.stdout
    assert "fatal-error failed: UserError" in traced.run.stdout
    assert traced.rejections == []
    # PostHog's processor is added beside the app's (which replaced the SDK's default list with
    # set_trace_processors): the app's exporter still receives every trace and span.
    assert len(plain.ingested) > 40
    summary = sorted(
        json.dumps([i.get("object"), i.get("workflow_name") or (i.get("span_data") or {}).get("type")])
        for i in traced.ingested
    )
    assert summary == sorted(
        json.dumps([i.get("object"), i.get("workflow_name") or (i.get("span_data") or {}).get("type")])
        for i in plain.ingested
    )


def test_every_span_has_its_parent_and_tokens_are_counted_once(traced):
    ids = {s["span_id"] for s in traced.spans}
    assert all(s["parent_span_id"] in ids for s in traced.spans if s["parent_span_id"])
    generations = [s for s in traced.spans if event(s) == "$ai_generation"]
    # sync, tool, streamed, handoff, chat: 2 each (guardrails 1); gather 2 x 2; tool-error 2,
    # fatal-error 1, model-error 1 (failed).
    assert len(generations) == 2 * 5 + 1 + 4 + 2 + 1 + 1
    counted = sum(s["attributes"].get("gen_ai.usage.input_tokens", 0) for s in traced.spans)
    assert counted == wire.PROMPT_TOKENS * (len(generations) - 1)
    assert all(usage_keys(s) == [] for s in traced.spans if event(s) != "$ai_generation")


# -- runs ------------------------------------------------------------------------------------------


def test_run_is_one_trace_with_agent_tool_and_one_generation_per_model_call(traced):
    spans = assert_weather_run(traced, "tool", "Weather")
    assert len(spans) == 7


def test_streamed_run(traced):
    assert_weather_run(traced, "streamed", "Weather", streamed=True)


def test_run_sync(traced):
    assert_weather_run(traced, "sync", "Weather")


def test_chat_completions_model(traced):
    spans = assert_weather_run(traced, "chat", "ChatWeather", model_step="chat gpt-4o-mini")
    steps = [s for s in spans if s["name"] == "chat gpt-4o-mini" and event(s) == "$ai_span"]
    assert len(steps) == 2
    for step in steps:
        assert step["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
        (generation,) = children(spans, step)
        assert generation["attributes"]["gen_ai.response.id"].startswith("chatcmpl-")


def test_handoff_between_two_agents(traced):
    spans = workflow(traced, "handoff")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow handoff"),
        (1, "$ai_span", "invoke_agent Triage"),
        (2, "$ai_span", f"chat {SERVED_MODEL}"),
        (3, "$ai_generation", "chat gpt-4o-mini"),
        (2, "$ai_span", "handoff Triage -> Spanish"),
        (1, "$ai_span", "invoke_agent Spanish"),
        (2, "$ai_span", f"chat {SERVED_MODEL}"),
        (3, "$ai_generation", "chat gpt-4o-mini"),
    ]
    (handoff,) = [s for s in spans if s["name"].startswith("handoff")]
    assert handoff["attributes"]["openai_agents.handoff.from_agent"] == "Triage"
    assert handoff["attributes"]["openai_agents.handoff.to_agent"] == "Spanish"
    (triage,) = [s for s in spans if s["name"] == "invoke_agent Triage"]
    assert triage["attributes"]["openai_agents.agent.handoffs"] == ["Spanish"]
    first_call = children(spans, triage)[0]
    (generation,) = children(spans, first_call)
    (output,) = messages(generation, "$ai_output_choices")
    assert output["content"][0]["function"]["name"] == "transfer_to_spanish"


def test_guardrails_are_steps_of_the_agent(traced):
    spans = workflow(traced, "guardrails")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow guardrails"),
        (1, "$ai_span", "invoke_agent Guarded"),
        (2, "$ai_span", "guardrail polite_check"),
        (2, "$ai_span", f"chat {SERVED_MODEL}"),
        (3, "$ai_generation", "chat gpt-4o-mini"),
        (2, "$ai_span", "guardrail length_check"),
    ]
    for span in spans:
        if span["name"].startswith("guardrail"):
            assert span["attributes"]["openai_agents.guardrail.triggered"] is False
            assert span["attributes"]["gen_ai.operation.name"] == "guardrail"


def test_concurrent_runs_do_not_mix(traced):
    first = assert_weather_run(traced, "gather-1", "First")
    second = assert_weather_run(traced, "gather-2", "Second")
    assert first[0]["trace_id"] != second[0]["trace_id"]
    # Each run's root and model calls carry that run's own question.
    for spans, question in ((first, "Weather for the first?"), (second, "Weather for the second?")):
        (root,) = [s for s in spans if s["parent_span_id"] is None]
        assert json.loads(root["attributes"]["$ai_input_state"])[0]["parts"][0]["content"] == question
        for generation in (s for s in spans if event(s) == "$ai_generation"):
            assert [m for m in messages(generation, "$ai_input") if m["role"] == "user"][0]["content"] == question
    # The two runs overlapped in time, so their separation is not an accident of ordering.
    start = lambda spans: min(s["start_ns"] for s in spans)  # noqa: E731
    end = lambda spans: max(s["end_ns"] for s in spans)  # noqa: E731
    assert start(first) < end(second) and start(second) < end(first)


# -- errors ----------------------------------------------------------------------------------------


def test_tool_error_given_back_to_the_model(traced):
    spans = workflow(traced, "tool-error")
    assert [row[2] for row in tree(spans)] == [
        "invoke_workflow tool-error",
        "invoke_agent Flaky",
        f"chat {SERVED_MODEL}",
        "chat gpt-4o-mini",
        "execute_tool flaky_lookup",
        f"chat {SERVED_MODEL}",
        "chat gpt-4o-mini",
    ]
    (tool,) = [s for s in spans if s["name"] == "execute_tool flaky_lookup"]
    assert tool["status_code"] == "ERROR"
    assert tool["status_message"].startswith("Error running tool (non-fatal)")
    assert tool["attributes"]["error.type"] == "Error running tool (non-fatal)"
    assert json.loads(tool["attributes"]["$ai_input_state"]) == {"city": "Paris"}
    assert "error occurred while running the tool" in tool["attributes"]["$ai_output_state"]
    assert all(s["status_code"] != "ERROR" for s in spans if s is not tool)


def test_tool_error_that_ends_the_run(traced):
    spans = workflow(traced, "fatal-error")
    assert [row[2] for row in tree(spans)] == [
        "invoke_workflow fatal-error",
        "invoke_agent Fatal",
        f"chat {SERVED_MODEL}",
        "chat gpt-4o-mini",
        "execute_tool fatal_lookup",
    ]
    (tool,) = [s for s in spans if s["name"] == "execute_tool fatal_lookup"]
    (agent,) = [s for s in spans if s["name"] == "invoke_agent Fatal"]
    assert tool["status_code"] == "ERROR" and agent["status_code"] == "ERROR"
    assert json.loads(tool["attributes"]["$ai_input_state"]) == {"city": "Paris"}
    assert "$ai_output_state" not in tool["attributes"]


def test_guardrail_tripwire(traced):
    spans = workflow(traced, "tripwire")
    (guardrail,) = [s for s in spans if s["name"] == "guardrail block_everything"]
    assert guardrail["attributes"]["openai_agents.guardrail.triggered"] is True
    (agent,) = [s for s in spans if s["name"] == "invoke_agent Blocked"]
    assert guardrail["parent_span_id"] == agent["span_id"]


def test_model_error_is_one_failed_generation(traced):
    spans = workflow(traced, "model-error")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow model-error"),
        (1, "$ai_span", "invoke_agent Broken"),
        (2, "$ai_span", "chat"),
        (3, "$ai_generation", "chat error-400"),
    ]
    (step,) = [s for s in spans if s["name"] == "chat"]
    (generation,) = children(spans, step)
    assert step["status_code"] == "ERROR" and generation["status_code"] == "ERROR"
    assert generation["attributes"]["error.type"] == "openai.BadRequestError"
    assert generation["attributes"]["$ai_http_status"] == 400
    assert usage_keys(step) == []


# -- a model call no instrumented SDK records: the SDK's own step is the generation -----------------


def test_without_the_openai_adapter_the_sdks_model_call_is_the_generation(outcomes):
    outcome = outcomes["sdk_only"]
    assert outcome.run.returncode == 0, outcome.run.stderr
    assert outcome.run.stdout == outcomes["plain"].run.stdout.splitlines(keepends=True)[1]
    spans = workflow(outcome, "tool")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow tool"),
        (1, "$ai_span", "invoke_agent Weather"),
        (2, "$ai_generation", f"chat {SERVED_MODEL}"),
        (2, "$ai_span", "execute_tool get_weather"),
        (2, "$ai_generation", f"chat {SERVED_MODEL}"),
    ]
    first, second = [s for s in spans if event(s) == "$ai_generation"]
    for generation in (first, second):
        attrs = generation["attributes"]
        assert attrs["$ai_framework"] == "openai_agents"
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.response.model"] == SERVED_MODEL
        assert attrs["gen_ai.usage.input_tokens"] == wire.PROMPT_TOKENS
        assert attrs["gen_ai.usage.output_tokens"] == wire.COMPLETION_TOKENS
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == wire.CACHED_TOKENS
        assert attrs["$ai_reasoning_tokens"] == wire.REASONING_TOKENS
    assert messages(first, "$ai_input") == [{"role": "user", "content": "What is the weather?"}]
    assert messages(first, "$ai_output_choices")[0]["content"][0]["function"]["name"] == "get_weather"
    assert first["attributes"]["$ai_stop_reason"] == "tool_call"
    assert messages(second, "$ai_output_choices")[0]["content"] == [{"type": "text", "text": wire.DEFAULT_REPLY}]


def test_privacy_mode_keeps_the_tree_and_drops_every_content(outcomes):
    outcome = outcomes["private"]
    assert outcome.run.returncode == 0, outcome.run.stderr
    spans = workflow(outcome, "tool")
    assert [row[2] for row in tree(spans)] == [
        "invoke_workflow tool",
        "invoke_agent Weather",
        f"chat {SERVED_MODEL}",
        "chat gpt-4o-mini",
        "execute_tool get_weather",
        f"chat {SERVED_MODEL}",
        "chat gpt-4o-mini",
    ]
    content = (
        "$ai_input_state",
        "$ai_output_state",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "$ai_input",
        "$ai_output_choices",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.system_instructions",
    )
    for span in spans:
        assert not [k for k in content if k in span["attributes"]], span["name"]
        assert "Paris" not in json.dumps(span["attributes"])
    generations = [s for s in spans if event(s) == "$ai_generation"]
    assert [g["attributes"]["gen_ai.usage.input_tokens"] for g in generations] == [wire.PROMPT_TOKENS] * 2
