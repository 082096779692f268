"""End to end: an unmodified AutoGen AgentChat app under ``posthog-instrument``, against the
loopback OpenAI and PostHog stand-ins.

The app (``apps/autogen_agentchat_app.py``) runs, in one asyncio program: an ``AssistantAgent``
with a ``FunctionTool`` (``run``), a streaming agent (``run_stream`` over ``create_stream``), a
``RoundRobinGroupChat`` and a ``SelectorGroupChat`` (``run``), two agents run concurrently
(``asyncio.gather``) and an agent whose model call fails. Each model call goes through
``OpenAIChatCompletionClient`` into the openai SDK: the SDK's request is the one generation,
AutoGen's model call a token-less step above it. autogen-core records its own spans into the
global tracer provider (ours, under the launcher): none of them may reach PostHog.

Three processes run at once: instrumented, plain (stdout must be identical) and instrumented in
privacy mode. AutoGen AgentChat pins protobuf below our main environment's pin: these tests run
in their own environment (tests/requirements-agents.txt, see .ci/run) and skip elsewhere.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests.e2e.app_runs import Outcome, traced_plain_private
from tests.e2e.traces import assert_no_content, event_type, traces_by_root, tree, successful_generations
from tests.servers.openai_wire import CACHED_TOKENS, COMPLETION_TOKENS, PROMPT_TOKENS, TOOL_CALL_ID

if importlib.util.find_spec("autogen_agentchat") is None or importlib.util.find_spec("autogen_ext") is None:
    pytest.skip("autogen-agentchat is not installed (tests/requirements-agents.txt)", allow_module_level=True)

GEN = "$ai_generation"
SPAN = "$ai_span"
TRACE = "$ai_trace"
CHAT = "chat gpt-4o-mini"

# (depth, event type, name) for each agent run's trace, keyed by its root's name.
TOOL_RUN = [
    (1, SPAN, CHAT),
    (2, GEN, CHAT),
    (1, SPAN, "execute_tool get_weather"),
    (1, SPAN, CHAT),
    (2, GEN, CHAT),
]
EXPECTED_TREES = {
    "invoke_agent Weather": [(0, TRACE, "invoke_agent Weather"), *TOOL_RUN],
    "invoke_agent WeatherA": [(0, TRACE, "invoke_agent WeatherA"), *TOOL_RUN],
    "invoke_agent WeatherB": [(0, TRACE, "invoke_agent WeatherB"), *TOOL_RUN],
    # Without reflect_on_tool_use the tool's result is the answer; the tool's own model call
    # (through the openai SDK directly) nests under the tool.
    "invoke_agent Forecaster": [
        (0, TRACE, "invoke_agent Forecaster"),
        (1, SPAN, CHAT),
        (2, GEN, CHAT),
        (1, SPAN, "execute_tool forecast"),
        (2, GEN, CHAT),
    ],
    "invoke_agent Streamer": [(0, TRACE, "invoke_agent Streamer"), (1, SPAN, CHAT), (2, GEN, CHAT)],
    "invoke_workflow RoundRobinGroupChat": [
        (0, TRACE, "invoke_workflow RoundRobinGroupChat"),
        (1, SPAN, "invoke_agent Writer"),
        (2, SPAN, CHAT),
        (3, GEN, CHAT),
        (1, SPAN, "invoke_agent Reviewer"),
        (2, SPAN, CHAT),
        (3, GEN, CHAT),
    ],
    # The stand-in never names a participant: AutoGen asks its selector three times, then falls
    # back to the first participant.
    "invoke_workflow SelectorGroupChat": [
        (0, TRACE, "invoke_workflow SelectorGroupChat"),
        (1, SPAN, CHAT),
        (2, GEN, CHAT),
        (1, SPAN, CHAT),
        (2, GEN, CHAT),
        (1, SPAN, CHAT),
        (2, GEN, CHAT),
        (1, SPAN, "invoke_agent Writer"),
        (2, SPAN, CHAT),
        (3, GEN, CHAT),
    ],
    "invoke_agent Broken": [(0, TRACE, "invoke_agent Broken"), (1, SPAN, "chat error-400"), (2, GEN, "chat error-400")],
}


@pytest.fixture(scope="module")
def outcomes() -> dict:
    return traced_plain_private("autogen_agentchat_app.py", base_url_variable="AUTOGEN_APP_BASE_URL")


def chat_requests(outcome: Outcome) -> list:
    return [r for r in outcome.requests if r["path"].endswith("/chat/completions")]


# -- the app is unchanged ------------------------------------------------------------------------


def test_output_is_unchanged(outcomes):
    plain = outcomes["plain"].run
    assert plain.returncode == 0, plain.stderr
    assert "error BadRequestError" in plain.stdout and "solo" in plain.stdout
    for name in ("traced", "private"):
        run = outcomes[name].run
        assert run.returncode == 0, run.stderr
        assert run.stdout == plain.stdout
        assert outcomes[name].rejections == []
    # The same model requests, with or without us.
    assert len(chat_requests(outcomes["traced"])) == len(chat_requests(outcomes["plain"]))


# -- the trees -----------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome_name", ["traced", "private"])
def test_each_run_is_one_trace_with_its_steps(outcomes, outcome_name):
    found = traces_by_root(outcomes[outcome_name].spans)
    assert set(found) == set(EXPECTED_TREES)
    for root, expected in EXPECTED_TREES.items():
        assert tree(found[root]) == expected, root
    # Nothing of autogen-core's own spans (create_agent, its invoke_agent/execute_tool twins).
    forecaster = found["invoke_agent Forecaster"]
    (tool,) = [s for s in forecaster if s["name"] == "execute_tool forecast"]
    (tool_body_call,) = [s for s in forecaster if s["parent_span_id"] == tool["span_id"]]
    for span in outcomes[outcome_name].spans:
        assert span["scope_name"] != "autogen-core", span["name"]
        assert not span["name"].startswith("create_agent"), span["name"]
        if span is not tool_body_call:  # (the app's own SDK call in a tool is not AutoGen's)
            assert span["attributes"]["$ai_framework"] == "autogen_agentchat", span["name"]


def test_one_generation_per_model_call_with_the_servers_tokens(outcomes):
    outcome = outcomes["traced"]
    generations = [s for s in outcome.spans if event_type(s) == GEN]
    assert len(generations) == len(chat_requests(outcome)) == 16
    by_id = {s["span_id"]: s for s in outcome.spans}
    for generation in generations:
        attrs = generation["attributes"]
        assert attrs["gen_ai.provider.name"] == "openai"
        if attrs["gen_ai.request.model"] == "error-400":
            assert generation["status_code"] == "ERROR" and attrs["error.type"] == "openai.BadRequestError"
            continue
        assert attrs["gen_ai.usage.input_tokens"] == PROMPT_TOKENS
        assert attrs["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == CACHED_TOKENS
        step = by_id[generation["parent_span_id"]]
        if step["name"] == "execute_tool forecast":
            continue  # the tool's own call, straight through the SDK
        # AutoGen's model call above it: a step without tokens.
        assert event_type(step) == SPAN and step["name"] == generation["name"]
        assert not any(key.startswith("gen_ai.usage.") for key in step["attributes"]), step["attributes"]
    streamed = traces_by_root(outcome.spans)["invoke_agent Streamer"]
    (generation,) = [s for s in streamed if event_type(s) == GEN]
    assert generation["attributes"]["gen_ai.request.stream"] is True
    assert generation["attributes"]["$ai_output_choices"][0]["content"][0]["text"] == "Hello in three words"


def test_agents_teams_and_tools_carry_their_inputs_and_outputs(outcomes):
    found = traces_by_root(outcomes["traced"].spans)
    solo = found["invoke_agent Weather"]
    root = next(s for s in solo if s["parent_span_id"] is None)
    assert root["attributes"]["$ai_input_state"] == "[solo] What is the weather in Paris?"
    assert root["attributes"]["$ai_output_state"] == "Hello from fake OpenAI"
    assert root["attributes"]["gen_ai.agent.name"] == "Weather"
    (tool,) = [s for s in solo if s["name"] == "execute_tool get_weather"]
    attrs = tool["attributes"]
    assert attrs["gen_ai.tool.call.arguments"] == '{"city":"Paris"}'
    assert attrs["gen_ai.tool.call.result"] == "Sunny in Paris"
    assert attrs["gen_ai.tool.call.id"] == TOOL_CALL_ID
    assert attrs["gen_ai.tool.description"] == "Weather for a city."
    # The tool ran between the model's tool call and its answer.
    first, second = sorted((s for s in solo if event_type(s) == GEN), key=lambda s: s["start_ns"])
    assert first["attributes"]["$ai_output_choices"][0]["content"][0]["type"] == "function"
    assert first["end_ns"] <= tool["start_ns"] and tool["end_ns"] <= second["start_ns"]

    team = found["invoke_workflow RoundRobinGroupChat"]
    root = next(s for s in team if s["parent_span_id"] is None)
    assert root["attributes"]["gen_ai.workflow.name"] == "RoundRobinGroupChat"
    assert root["attributes"]["$ai_input_state"] == '[round] Write a haiku. reply="A haiku about Paris"'
    assert root["attributes"]["$ai_output_state"] == "Hello from fake OpenAI"
    writer = next(s for s in team if s["name"] == "invoke_agent Writer")
    assert writer["attributes"]["$ai_output_state"] == "A haiku about Paris"


def test_concurrent_runs_are_separate_traces(outcomes):
    found = traces_by_root(outcomes["traced"].spans)
    first, second = found["invoke_agent WeatherA"], found["invoke_agent WeatherB"]
    assert {s["trace_id"] for s in first}.isdisjoint({s["trace_id"] for s in second})
    for spans, label in ((first, "[gather-a]"), (second, "[gather-b]")):
        for generation in (s for s in spans if event_type(s) == GEN):
            assert label in generation["attributes"]["$ai_input"][1]["content"]


def test_a_failed_model_call_fails_its_agent(outcomes):
    failed = traces_by_root(outcomes["traced"].spans)["invoke_agent Broken"]
    assert all(s["status_code"] == "ERROR" for s in failed)
    root = next(s for s in failed if s["parent_span_id"] is None)
    assert root["attributes"]["error.type"] == "openai.BadRequestError"


def test_privacy_mode_keeps_the_tree_and_tokens_but_no_content(outcomes):
    spans = outcomes["private"].spans
    assert_no_content(spans)
    generations = successful_generations(spans)
    assert generations and all(g["attributes"]["gen_ai.usage.input_tokens"] == PROMPT_TOKENS for g in generations)
