"""End to end: an unmodified Google ADK app under ``posthog-instrument``, against the loopback
Gemini and PostHog stand-ins.

The app (``apps/google_adk_app.py``) runs, in one program: an ``LlmAgent`` with a
``FunctionTool`` through ``Runner.run`` (sync) and ``run_async``, a ``SequentialAgent`` and a
``ParallelAgent`` of two sub-agents each, a ``LoopAgent`` of two rounds, a streamed run (SSE), a
tool whose body asks the model itself, a ``Workflow`` whose node is a ``FunctionTool``, an
``AgentTool`` (an agent as a tool), an ``McpToolset``
whose MCP server (``apps/google_adk_mcp_server.py``, over stdio) runs under the launcher too
when the app does, two runs at once (``asyncio.gather``) and an agent whose model call fails.
ADK's Gemini model calls the google-genai SDK, whose adapter records the one generation per
model call. ADK records its own spans into the global tracer provider (ours, under the
launcher): none of them may reach PostHog.

Three processes run at once: instrumented, plain (stdout must be identical) and instrumented in
privacy mode, the last with an OpenTelemetry set-up of the user's own (OTLP to a loopback
collector), which must receive ADK's own spans, whole. google-adk requires google-genai < 3 and websockets < 16, below the main
environment's pins: these tests run in their own environment (tests/requirements-adk.txt, see
.ci/run) and skip elsewhere.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
from dataclasses import dataclass

import pytest

from tests.conftest import APPS, BIN, AppRun, BackgroundApp, LAUNCHER, clean_env
from tests.e2e.traces import assert_no_content, event_type, tree, successful_generations
from tests.servers import FakePostHog
from tests.servers import gemini_server as wire
from tests.servers.gemini_server import FakeGemini
from tests.servers.otlp_collector import FakeCollector


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # (its parent package is missing)
        return False


if not _installed("google.adk") or not _installed("mcp"):
    pytest.skip("google-adk or mcp is not installed (tests/requirements-adk.txt)", allow_module_level=True)

GEN = "$ai_generation"
SPAN = "$ai_span"
TRACE = "$ai_trace"
MODEL_CALL = "generate_content gemini-2.5-flash"

# (depth, event type, name) for each run's trace, keyed by its root's name.
TOOL_RUN = [(2, GEN, MODEL_CALL), (2, SPAN, "execute_tool get_weather"), (2, GEN, MODEL_CALL)]


def _tool_run(agent: str) -> list:
    return [(0, TRACE, f"invoke_workflow {agent}"), (1, SPAN, f"invoke_agent {agent}"), *TOOL_RUN]


def _two_agents(root: str, first: str, second: str) -> list:
    return [
        (0, TRACE, f"invoke_workflow {root}"),
        (1, SPAN, f"invoke_agent {root}"),
        (2, SPAN, f"invoke_agent {first}"),
        (3, GEN, MODEL_CALL),
        (2, SPAN, f"invoke_agent {second}"),
        (3, GEN, MODEL_CALL),
    ]


EXPECTED_TREES = {
    "invoke_workflow SyncWeather": _tool_run("SyncWeather"),
    "invoke_workflow Weather": _tool_run("Weather"),
    "invoke_workflow WeatherA": _tool_run("WeatherA"),
    "invoke_workflow WeatherB": _tool_run("WeatherB"),
    "invoke_workflow Pipeline": _two_agents("Pipeline", "Writer", "Reviewer"),
    # The parallel agents start in either order: their subtrees are compared sorted.
    "invoke_workflow FanOut": _two_agents("FanOut", "Critic", "Poet"),
    "invoke_workflow Loop": [
        (0, TRACE, "invoke_workflow Loop"),
        (1, SPAN, "invoke_agent Loop"),
        (2, SPAN, "invoke_agent Drafter"),
        (3, GEN, MODEL_CALL),
        (2, SPAN, "invoke_agent Drafter"),
        (3, GEN, MODEL_CALL),
    ],
    "invoke_workflow Streamer": [
        (0, TRACE, "invoke_workflow Streamer"),
        (1, SPAN, "invoke_agent Streamer"),
        (2, GEN, MODEL_CALL),
    ],
    # The tool's own google-genai call nests under the tool.
    "invoke_workflow Forecaster": [
        (0, TRACE, "invoke_workflow Forecaster"),
        (1, SPAN, "invoke_agent Forecaster"),
        (2, GEN, MODEL_CALL),
        (2, SPAN, "execute_tool forecast"),
        (3, GEN, MODEL_CALL),
        (2, GEN, MODEL_CALL),
    ],
    # An agent as a tool: its run nests under the calling agent's tool step, without a run step
    # of its own.
    "invoke_workflow Delegator": [
        (0, TRACE, "invoke_workflow Delegator"),
        (1, SPAN, "invoke_agent Delegator"),
        (2, GEN, MODEL_CALL),
        (2, SPAN, "execute_tool Helper"),
        (3, SPAN, "invoke_agent Helper"),
        (4, GEN, MODEL_CALL),
        (2, GEN, MODEL_CALL),
    ],
    # An MCP toolset over stdio: the listing (the MCP adapter's step) under the agent, the call
    # as ADK's tool step, and under it the MCP server's own step, in the server's process.
    "invoke_workflow Clock": [
        (0, TRACE, "invoke_workflow Clock"),
        (1, SPAN, "invoke_agent Clock"),
        (2, SPAN, "tools/list"),
        (2, GEN, MODEL_CALL),
        (2, SPAN, "execute_tool city_time"),
        (3, SPAN, "execute_tool city_time"),
        (2, GEN, MODEL_CALL),
    ],
    # A workflow's tool node: the tool runs outside an agent's flow.
    "invoke_workflow Flow": [(0, TRACE, "invoke_workflow Flow"), (1, SPAN, "execute_tool get_weather")],
    "invoke_workflow Broken": [
        (0, TRACE, "invoke_workflow Broken"),
        (1, SPAN, "invoke_agent Broken"),
        (2, GEN, "generate_content error-400"),
    ],
}
UNORDERED = {"invoke_workflow FanOut"}
MODEL_REQUESTS = 24  # one per model call the scenarios make (the tests check the server saw them)


@dataclass
class Outcome:
    run: AppRun
    spans: list
    rejections: list
    requests: list
    collected: list  # what the user's own collector received


def _mcp_server(instrumented: bool, env: dict) -> list:
    """The command that starts the app's MCP server: the MCP SDK starts it in a minimal
    environment of its own, so the command sets what the server needs (as a user's MCP
    configuration would), under the launcher too when the app is."""
    server = str(APPS / "google_adk_mcp_server.py")
    if not instrumented:
        return [sys.executable, server]
    settings = [f"{k}={v}" for k, v in env.items() if k.startswith(("POSTHOG_", "OTEL_"))]
    return ["env", f"PATH={BIN}", *settings, LAUNCHER, "python", server]


def _start(stack: contextlib.ExitStack, instrumented: bool, **extra_env: str):
    gemini = stack.enter_context(FakeGemini())
    posthog = stack.enter_context(FakePostHog())
    env = {k: v for k, v in clean_env().items() if not k.startswith(("GOOGLE_", "GEMINI_", "ADK_"))}
    env.update(
        GEMINI_API_KEY="gemini-test-key",
        GOOGLE_GEMINI_BASE_URL=gemini.base_url,
        POSTHOG_API_KEY="phc_test_project_token",
        POSTHOG_HOST=posthog.host,
        POSTHOG_EXPORT_INTERVAL="0.05",
        **extra_env,
    )
    app = [str(APPS / "google_adk_app.py"), *_mcp_server(instrumented, env)]
    command = [LAUNCHER, "python", *app] if instrumented else [sys.executable, *app]
    return BackgroundApp(stack, command, env), gemini, posthog


@pytest.fixture(scope="module")
def outcomes() -> dict:
    with contextlib.ExitStack() as stack:
        collector = stack.enter_context(FakeCollector())
        users_own_telemetry = dict(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_BSP_SCHEDULE_DELAY="50",
        )
        started = {
            "traced": _start(stack, True),
            "plain": _start(stack, False),
            "private": _start(stack, True, POSTHOG_PRIVACY_MODE="true", **users_own_telemetry),
        }
        results = {name: (app.result(), gemini, posthog) for name, (app, gemini, posthog) in started.items()}
        return {
            name: Outcome(
                run, posthog.spans, posthog.rejections, gemini.requests, collector.spans if name == "private" else []
            )
            for name, (run, gemini, posthog) in results.items()
        }


def traces_by_root(spans: list) -> dict:
    """Each trace's spans, keyed by its root's name (unique per scenario in the app)."""
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_span_id"] not in ids]
    names = [r["name"] for r in roots]
    assert len(names) == len(set(names)), names
    return {r["name"]: [s for s in spans if s["trace_id"] == r["trace_id"]] for r in roots}


def unordered_tree(spans: list) -> list:
    """``tree`` with the children of each span in name order (for steps that run at once)."""
    children: dict = {}
    for s in spans:
        children.setdefault(s["parent_span_id"], []).append(s)
    ids = {s["span_id"] for s in spans}
    (root,) = [s for s in spans if s["parent_span_id"] not in ids]
    out = []

    def walk(span, depth):
        out.append((depth, event_type(span), span["name"]))
        for child in sorted(children.get(span["span_id"], []), key=lambda c: c["name"]):
            walk(child, depth + 1)

    walk(root, 0)
    return out


def model_requests(outcome: Outcome) -> list:
    return [r for r in outcome.requests if r["path"].endswith((":generateContent", ":streamGenerateContent"))]


def root_of(spans: list) -> dict:
    return next(s for s in spans if s["parent_span_id"] is None)


# -- the app is unchanged ------------------------------------------------------------------------


def test_output_is_unchanged(outcomes):
    plain = outcomes["plain"].run
    assert plain.returncode == 0, plain.stderr
    assert "error ClientError" in plain.stdout and "Sunny in Paris" in plain.stdout
    for name in ("traced", "private"):
        run = outcomes[name].run
        assert run.returncode == 0, run.stderr
        assert run.stdout == plain.stdout
        assert outcomes[name].rejections == []
    # The same model requests, with or without us.
    assert len(model_requests(outcomes["traced"])) == len(model_requests(outcomes["plain"])) == MODEL_REQUESTS


# -- the trees -----------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome_name", ["traced", "private"])
def test_each_run_is_one_trace_with_its_steps(outcomes, outcome_name):
    spans = outcomes[outcome_name].spans
    found = traces_by_root(spans)
    assert set(found) == set(EXPECTED_TREES)
    for root, expected in EXPECTED_TREES.items():
        shape = unordered_tree if root in UNORDERED else tree
        assert shape(found[root]) == expected, root
    # Nothing of ADK's own spans (its invoke_workflow / invoke_agent / generate_content /
    # execute_tool twins); every step names the framework (the MCP adapter's, its own).
    mcp_steps = {s["span_id"] for s in found["invoke_workflow Clock"] if s["attributes"].get("$ai_framework") == "mcp"}
    assert len(mcp_steps) == 2
    for span in spans:
        assert span["scope_name"] != "gcp.vertex.agent", span["name"]
        if event_type(span) != GEN and span["span_id"] not in mcp_steps:
            assert span["attributes"]["$ai_framework"] == "google_adk", span["name"]


def test_one_generation_per_model_call_with_the_servers_tokens(outcomes):
    outcome = outcomes["traced"]
    generations = [s for s in outcome.spans if event_type(s) == GEN]
    assert len(generations) == len(model_requests(outcome)) == MODEL_REQUESTS
    by_id = {s["span_id"]: s for s in outcome.spans}
    for generation in generations:
        attrs = generation["attributes"]
        assert attrs["gen_ai.provider.name"] == "gemini"
        parent = by_id[generation["parent_span_id"]]
        if attrs["gen_ai.request.model"] == "error-400":
            assert generation["status_code"] == "ERROR" and attrs["error.type"] == "google.ClientError"
            assert attrs["$ai_http_status"] == 400
            continue
        assert attrs["gen_ai.usage.input_tokens"] == wire.PROMPT_TOKENS
        assert attrs["gen_ai.usage.output_tokens"] == wire.CANDIDATES_TOKENS
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == wire.CACHED_TOKENS
        assert attrs["gen_ai.usage.reasoning.output_tokens"] == wire.THOUGHTS_TOKENS
        if parent["name"] == "execute_tool forecast":
            assert "[tool-body]" in attrs["$ai_input"][-1]["content"]  # the tool's own call
            continue
        # Under the agent that made it: ADK puts the agent's instruction in the system prompt.
        assert parent["attributes"]["gen_ai.operation.name"] == "invoke_agent"
        agent = parent["attributes"]["gen_ai.agent.name"]
        assert agent in attrs["$ai_input"][0]["content"], (agent, attrs["$ai_input"][0])
    found = traces_by_root(outcome.spans)
    writer, reviewer = (
        next(s for s in found["invoke_workflow Pipeline"] if s["name"] == f"invoke_agent {name}")
        for name in ("Writer", "Reviewer")
    )
    for agent, instruction in ((writer, "You write."), (reviewer, "You review.")):
        (generation,) = [s for s in outcome.spans if s["parent_span_id"] == agent["span_id"]]
        assert instruction in generation["attributes"]["$ai_input"][0]["content"]


def test_runs_agents_and_tools_carry_their_inputs_and_outputs(outcomes):
    found = traces_by_root(outcomes["traced"].spans)
    run = found["invoke_workflow Weather"]
    root = root_of(run)
    attrs = root["attributes"]
    assert attrs["$ai_input_state"] == "[tool] What is the weather in Paris?"
    assert attrs["$ai_output_state"] == "Hello from fake Gemini"
    assert attrs["gen_ai.workflow.name"] == "Weather"
    agent = next(s for s in run if s["name"] == "invoke_agent Weather")
    assert agent["attributes"]["gen_ai.agent.name"] == "Weather"
    assert agent["attributes"]["gen_ai.agent.description"] == "Reports the weather."
    assert agent["attributes"]["gen_ai.request.model"] == "gemini-2.5-flash"
    assert agent["attributes"]["google_adk.agent.type"] == "LlmAgent"
    assert agent["attributes"]["$ai_output_state"] == "Hello from fake Gemini"
    # The ADK session is the conversation.
    session = attrs["gen_ai.conversation.id"]
    assert session and agent["attributes"]["gen_ai.conversation.id"] == session
    assert attrs["$ai_session_id"] == session

    (tool,) = [s for s in run if s["name"] == "execute_tool get_weather"]
    tool_attrs = tool["attributes"]
    assert tool_attrs["gen_ai.tool.call.arguments"] == '{"city":"Paris"}'
    assert tool_attrs["gen_ai.tool.call.result"] == "Sunny in Paris"
    assert tool_attrs["gen_ai.tool.call.id"].startswith("adk-")  # the id ADK gave the model's call
    assert tool_attrs["gen_ai.tool.description"] == "Weather for a city."
    # The tool ran between the model's function call and its answer.
    first, second = sorted((s for s in run if event_type(s) == GEN), key=lambda s: s["start_ns"])
    (call,) = first["attributes"]["$ai_output_choices"][0]["content"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert first["end_ns"] <= tool["start_ns"] and tool["end_ns"] <= second["start_ns"]

    pipeline = found["invoke_workflow Pipeline"]
    assert root_of(pipeline)["attributes"]["$ai_input_state"].startswith("[sequential] Write a haiku.")
    writer = next(s for s in pipeline if s["name"] == "invoke_agent Writer")
    assert writer["attributes"]["$ai_output_state"] == "A haiku about Paris"
    sequence = next(s for s in pipeline if s["name"] == "invoke_agent Pipeline")
    assert sequence["attributes"]["google_adk.agent.type"] == "SequentialAgent"
    assert sequence["attributes"]["$ai_output_state"] == "Hello from fake Gemini"  # the last agent's answer

    # A streamed run: the agent's answer is the whole response, not ADK's partial events.
    streamed = found["invoke_workflow Streamer"]
    (generation,) = [s for s in streamed if event_type(s) == GEN]
    assert generation["attributes"]["gen_ai.request.stream"] is True
    assert generation["attributes"]["$ai_output_choices"][0]["content"][0]["text"] == "Hello there"
    assert all(s["attributes"]["$ai_output_state"] == "Hello there" for s in streamed if s is not generation)

    forecast = next(s for s in found["invoke_workflow Forecaster"] if s["name"] == "execute_tool forecast")
    assert forecast["attributes"]["gen_ai.tool.call.result"] == "Rain"

    (node,) = [s for s in found["invoke_workflow Flow"] if s["name"] == "execute_tool get_weather"]
    assert node["attributes"]["gen_ai.tool.call.arguments"] == '{"city":"Oslo"}'
    assert node["attributes"]["gen_ai.tool.call.result"] == "Sunny in Oslo"


def test_an_agent_tool_runs_its_agent_under_the_tool_step(outcomes):
    run = traces_by_root(outcomes["traced"].spans)["invoke_workflow Delegator"]
    (tool,) = [s for s in run if s["name"] == "execute_tool Helper"]
    attrs = tool["attributes"]
    assert attrs["$ai_framework"] == "google_adk"
    assert attrs["gen_ai.tool.call.arguments"] == '{"city":"Paris"}'
    assert attrs["gen_ai.tool.call.result"] == "Hello from fake Gemini"  # the helper's answer
    assert attrs["gen_ai.tool.description"] == "Answers questions."
    assert attrs["gen_ai.tool.call.id"].startswith("adk-")
    (helper,) = [s for s in run if s["name"] == "invoke_agent Helper"]
    assert helper["parent_span_id"] == tool["span_id"]
    assert helper["attributes"]["$ai_output_state"] == "Hello from fake Gemini"
    # The helper runs in a session of its own, for the call: its conversation is the run's.
    session = root_of(run)["attributes"]["$ai_session_id"]
    assert helper["attributes"]["$ai_session_id"] == helper["attributes"]["gen_ai.conversation.id"] == session
    # The helper's model call: its own instruction, and the calling model's arguments as the
    # user's message.
    (generation,) = [s for s in run if s["parent_span_id"] == helper["span_id"]]
    assert "You help." in generation["attributes"]["$ai_input"][0]["content"]
    assert "Paris" in generation["attributes"]["$ai_input"][-1]["content"]


def test_an_mcp_tool_is_one_tool_step_with_the_servers_step_under_it(outcomes):
    run = traces_by_root(outcomes["traced"].spans)["invoke_workflow Clock"]
    (agent,) = [s for s in run if s["name"] == "invoke_agent Clock"]
    (listing,) = [s for s in run if s["name"] == "tools/list"]
    assert listing["parent_span_id"] == agent["span_id"]
    assert listing["attributes"]["$ai_output_state"] == '["city_time"]'
    client, server = sorted((s for s in run if s["name"] == "execute_tool city_time"), key=lambda s: s["start_ns"])
    assert client["parent_span_id"] == agent["span_id"] and server["parent_span_id"] == client["span_id"]
    # ADK's step, with the MCP request's attributes (no second client step of the MCP adapter).
    attrs = client["attributes"]
    assert attrs["$ai_framework"] == "google_adk"
    assert attrs["mcp.method.name"] == "tools/call" and attrs["mcp.protocol.version"]
    assert attrs["gen_ai.tool.call.arguments"] == '{"city":"Paris"}'
    assert json.loads(attrs["gen_ai.tool.call.result"])["content"] == [{"type": "text", "text": "Noon in Paris"}]
    assert attrs["gen_ai.tool.description"] == "The local time in a city."
    assert attrs["gen_ai.tool.call.id"].startswith("adk-")
    # The server's step, recorded in its own process.
    assert server["attributes"]["$ai_framework"] == "mcp"
    assert server["attributes"]["gen_ai.tool.call.result"] == "Noon in Paris"
    assert client["start_ns"] <= server["start_ns"] and server["end_ns"] <= client["end_ns"]


def test_concurrent_runs_are_separate_traces(outcomes):
    found = traces_by_root(outcomes["traced"].spans)
    first, second = found["invoke_workflow WeatherA"], found["invoke_workflow WeatherB"]
    assert {s["trace_id"] for s in first}.isdisjoint({s["trace_id"] for s in second})
    for spans, label in ((first, "[gather-a]"), (second, "[gather-b]")):
        assert root_of(spans)["attributes"]["$ai_input_state"].startswith(label)
        for generation in (s for s in spans if event_type(s) == GEN):
            assert label in generation["attributes"]["$ai_input"][1]["content"]


def test_a_failed_model_call_fails_its_agent_and_run(outcomes):
    failed = traces_by_root(outcomes["traced"].spans)["invoke_workflow Broken"]
    assert all(s["status_code"] == "ERROR" for s in failed)
    assert all(s["attributes"]["error.type"] == "google.ClientError" for s in failed)


def test_privacy_mode_keeps_the_tree_and_tokens_but_no_content(outcomes):
    spans = outcomes["private"].spans
    assert_no_content(spans)
    generations = successful_generations(spans)
    assert len(generations) == MODEL_REQUESTS - 1
    assert all(g["attributes"]["gen_ai.usage.input_tokens"] == wire.PROMPT_TOKENS for g in generations)


def test_the_users_own_telemetry_keeps_adks_spans_whole(outcomes):
    collected = outcomes["private"].collected
    adk = [s for s in collected if s["scope_name"] == "gcp.vertex.agent"]
    names = {s["name"] for s in adk}
    assert {"invoke_workflow Weather", "invoke_agent Weather", "execute_tool get_weather"} <= names
    # One generate_content span per model request ADK made (the tool's own call is not ADK's).
    model_calls = [s for s in adk if s["name"].startswith("generate_content")]
    assert len(model_calls) == MODEL_REQUESTS - 1
    # ADK's spans keep their own parents (ours may stand between them), so its trees are whole.
    by_id = {s["span_id"]: s for s in collected}
    for span in adk:
        if span["name"].startswith(("generate_content", "execute_tool")):
            parent = by_id[span["parent_span_id"]]
            while parent["scope_name"] != "gcp.vertex.agent":
                parent = by_id[parent["parent_span_id"]]
            assert parent["name"].startswith(("invoke_agent", "call_llm", "execute_tool")), (
                span["name"],
                parent["name"],
            )
    # And ours beside them, once each.
    ours = [s for s in collected if s["scope_name"] == "posthog_autoinstrument"]
    assert len(ours) == len(outcomes["private"].spans)
