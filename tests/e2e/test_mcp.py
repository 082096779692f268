"""End to end: an unmodified MCP client app and an unmodified MCP server (``MCPServer``, formerly
``FastMCP``), each run under the real ``posthog-instrument`` launcher, over stdio and over
streamable HTTP on loopback, exporting to one PostHog stand-in.

Each MCP request is one step in the client's process and one in the server's, the server's
nested under the client's across the process boundary (the trace context travels in the
request's ``_meta``); a model call a tool makes lands under the server's step. Every scenario
runs at once in a module-scoped fixture: instrumented, plain (stdout compared), in privacy
mode, against a server that is not instrumented, and over HTTP.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import socket
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

import pytest

from tests.conftest import APPS, BIN, LAUNCHER, AppRun, BackgroundApp, clean_env
from tests.e2e.traces import CONTENT_KEYS, tree
from tests.servers import FakeOpenAI, FakePostHog

pytest.importorskip("mcp.server.mcpserver")

CLIENT = str(APPS / "mcp_client_app.py")
SERVER = str(APPS / "mcp_server_app.py")
TOKEN = "phc_test_project_token"
# The SDK starts a stdio server in a minimal environment of its own: the server command sets
# what the server's process needs (through ``env``), as a user's MCP configuration would.
QUIET_OTEL = ["OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none"]


@dataclass
class Outcome:
    run: AppRun
    spans: list


def _environment(posthog: FakePostHog, **env: str) -> dict:
    return clean_env(POSTHOG_API_KEY=TOKEN, POSTHOG_HOST=posthog.host, POSTHOG_EXPORT_INTERVAL="0.05", **env)


def _stdio_server(posthog: FakePostHog, openai: FakeOpenAI, instrumented: bool, *settings: str) -> list:
    if not instrumented:
        return [sys.executable, SERVER, "stdio", openai.base_url]
    return [
        "env",
        f"PATH={BIN}",
        *QUIET_OTEL,
        f"POSTHOG_API_KEY={TOKEN}",
        f"POSTHOG_HOST={posthog.host}",
        *settings,
        LAUNCHER,
        "python",
        SERVER,
        "stdio",
        openai.base_url,
    ]


class _StdioRun:
    def __init__(self, stack: contextlib.ExitStack, client: bool, server: bool, *settings: str):
        self.posthog = stack.enter_context(FakePostHog())
        openai = stack.enter_context(FakeOpenAI())
        client_settings = dict(setting.split("=", 1) for setting in settings)
        command = [CLIENT, "stdio", *_stdio_server(self.posthog, openai, server, *settings)]
        command = [LAUNCHER, "python", *command] if client else [sys.executable, *command]
        self.app = BackgroundApp(stack, command, _environment(self.posthog, **client_settings))

    def outcome(self) -> Outcome:
        return Outcome(self.app.result(), self.posthog.spans)


class _HTTPRun:
    """A streamable HTTP server under the launcher, and a client under it that calls it."""

    def __init__(self, stack: contextlib.ExitStack):
        self.posthog = stack.enter_context(FakePostHog())
        openai = stack.enter_context(FakeOpenAI())
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        environment = _environment(self.posthog)
        self.server = BackgroundApp(
            stack, [LAUNCHER, "python", SERVER, "http", str(port), openai.base_url], environment
        )
        self.stack, self.port, self.environment = stack, port, environment

    def outcome(self) -> Outcome:
        _wait_for_listener(self.server, self.port)
        client = BackgroundApp(
            self.stack, [LAUNCHER, "python", CLIENT, "http", f"http://127.0.0.1:{self.port}/mcp"], self.environment
        )
        run = client.result()
        self.server.process.terminate()  # uvicorn shuts down, and the process exits normally
        self.server.result()
        return Outcome(run, self.posthog.spans)


def _wait_for_listener(server: BackgroundApp, port: int) -> None:
    while server.process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the MCP server exited: {server.result()}")


class _AgentsRun:
    """An OpenAI Agents SDK agent using the server's tools (over stdio), both under the launcher."""

    def __init__(self, stack: contextlib.ExitStack):
        self.posthog = stack.enter_context(FakePostHog())
        openai = stack.enter_context(FakeOpenAI())
        command = [LAUNCHER, "python", str(APPS / "mcp_agents_app.py"), *_stdio_server(self.posthog, openai, True)]
        environment = _environment(self.posthog, OPENAI_BASE_URL=openai.base_url, OPENAI_API_KEY="sk-test-secret-key")
        self.app = BackgroundApp(stack, command, environment)

    def outcome(self) -> Outcome:
        return Outcome(self.app.result(), self.posthog.spans)


@pytest.fixture(scope="module")
def outcomes() -> dict:
    with contextlib.ExitStack() as stack:
        started = {
            "stdio": _StdioRun(stack, True, True),
            "plain": _StdioRun(stack, False, False),
            "private": _StdioRun(stack, True, True, "POSTHOG_PRIVACY_MODE=true"),
            "plain_server": _StdioRun(stack, True, False),
            "http": _HTTPRun(stack),
        }
        if importlib.util.find_spec("agents") is not None:
            started["agents"] = _AgentsRun(stack)
        return {name: process.outcome() for name, process in started.items()}


def _trees(spans: list) -> list:
    """Each trace's tree, in the order of their roots' names."""
    by_trace = defaultdict(list)
    for span in spans:
        by_trace[span["trace_id"]].append(span)
    return sorted(tree(trace) for trace in by_trace.values())


def _named(spans: list, name: str) -> list:
    """The spans of that name, the client's (the trace's root) first."""
    return sorted((s for s in spans if s["name"] == name), key=lambda s: s["parent_span_id"] is not None)


def _step_on_both_sides(name: str) -> list:
    return [(0, "$ai_trace", name), (1, "$ai_span", name)]


# One trace per request, the server's step under the client's (get_weather three times).
EXPECTED_TREES = sorted(
    [
        [(0, "$ai_trace", "tools/list")],
        *[_step_on_both_sides("execute_tool get_weather")] * 3,
        _step_on_both_sides("execute_tool broken_tool"),
        [*_step_on_both_sides("execute_tool ask_model"), (2, "$ai_generation", "chat gpt-4o-mini")],
        _step_on_both_sides("resources/read"),
        _step_on_both_sides("prompts/get review"),
    ]
)


def test_the_app_and_the_server_behave_as_without_us(outcomes):
    plain = outcomes["plain"].run
    assert plain.returncode == 0, plain.stderr
    assert "get_weather: False ['Sunny in Paris']" in plain.stdout
    assert "broken_tool: True" in plain.stdout
    for name in ("stdio", "private", "plain_server", "http"):
        run = outcomes[name].run
        assert run.returncode == 0, (name, run.stderr)
        assert run.stdout == plain.stdout, name
    assert outcomes["plain"].spans == []


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_each_request_is_a_step_on_both_sides_in_one_trace(outcomes, transport):
    spans = outcomes[transport].spans
    assert _trees(spans) == EXPECTED_TREES
    for span in spans:
        if span["name"] != "chat gpt-4o-mini":
            assert span["attributes"]["$ai_framework"] == "mcp"
    # Each server step has the arguments of the client step it nests under, calls made at once too.
    weather = _named(spans, "execute_tool get_weather")
    by_id = {step["span_id"]: step for step in weather}
    cities = []
    for served in (step for step in weather if step["parent_span_id"] in by_id):
        caller = by_id[served["parent_span_id"]]
        assert served["attributes"]["gen_ai.tool.call.arguments"] == caller["attributes"]["gen_ai.tool.call.arguments"]
        assert served["attributes"]["gen_ai.tool.call.result"] == caller["attributes"]["gen_ai.tool.call.result"]
        cities.append(json.loads(served["attributes"]["gen_ai.tool.call.arguments"])["city"])
    assert sorted(cities) == ["Oslo", "Paris", "Rome"]
    paris = [step for step in weather if "Paris" in step["attributes"]["gen_ai.tool.call.arguments"]]
    assert len(paris) == 2
    for step in paris:
        attrs = step["attributes"]
        assert attrs["gen_ai.operation.name"] == "execute_tool"
        assert attrs["gen_ai.tool.name"] == "get_weather"
        assert attrs["mcp.method.name"] == "tools/call"
        assert json.loads(attrs["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
        assert attrs["gen_ai.tool.call.result"] == "Sunny in Paris"
        assert step["status_code"] != "ERROR"
    # The model call a tool made, under the server's step, with the stand-in's tokens.
    (generation,) = _named(spans, "chat gpt-4o-mini")
    assert generation["attributes"]["gen_ai.usage.input_tokens"] == 11
    assert generation["attributes"]["gen_ai.usage.output_tokens"] == 7
    (reading, served) = _named(spans, "resources/read")
    assert reading["attributes"]["mcp.resource.uri"] == served["attributes"]["mcp.resource.uri"] == "greeting://ada"
    assert reading["attributes"]["$ai_output_state"] == served["attributes"]["$ai_output_state"] == "Hello, ada!"
    (prompt, served_prompt) = _named(spans, "prompts/get review")
    assert prompt["attributes"]["gen_ai.prompt.name"] == "review"
    # The person the caller named in its baggage, on both sides; nobody on the other requests.
    assert prompt["attributes"]["posthog.distinct_id"] == served_prompt["attributes"]["posthog.distinct_id"] == "ada"
    named = {s["span_id"] for s in spans if "posthog.distinct_id" in s["attributes"]}
    assert named == {prompt["span_id"], served_prompt["span_id"]}
    assert json.loads(prompt["attributes"]["$ai_input_state"]) == {"code": "x = 1"}
    assert json.loads(prompt["attributes"]["$ai_output_state"]) == [
        {"role": "user", "content": "Please review this code: x = 1"}
    ]
    (listing,) = _named(spans, "tools/list")
    assert json.loads(listing["attributes"]["$ai_output_state"]) == ["get_weather", "broken_tool", "ask_model"]


def test_a_tool_error_fails_both_steps(outcomes):
    for step in _named(outcomes["stdio"].spans, "execute_tool broken_tool"):
        assert step["status_code"] == "ERROR"
        assert step["attributes"]["error.type"] == "tool_error"
        assert "cannot do that: no network" in step["status_message"]
        assert "cannot do that" in step["attributes"]["gen_ai.tool.call.result"]


def test_privacy_mode_keeps_arguments_and_results_on_both_sides(outcomes):
    spans = outcomes["private"].spans
    assert _trees(spans) == EXPECTED_TREES
    for span in spans:
        attrs = span["attributes"]
        assert not CONTENT_KEYS & set(attrs), span["name"]
        text = json.dumps(span)
        assert "Paris" not in text and "cannot do that" not in text and "Hello, ada" not in text, span["name"]
    for step in _named(spans, "execute_tool broken_tool"):
        assert step["status_code"] == "ERROR" and step["attributes"]["error.type"] == "tool_error"


def test_a_server_not_instrumented_is_unaffected_and_the_client_records_alone(outcomes):
    spans = outcomes["plain_server"].spans
    # The client's steps only, each the root of its trace; the server answered as without us.
    assert _trees(spans) == [[(0, "$ai_trace", shape[0][2])] for shape in EXPECTED_TREES]
    results = sorted(
        call["attributes"]["gen_ai.tool.call.result"] for call in _named(spans, "execute_tool get_weather")
    )
    assert results == ["Sunny in Oslo", "Sunny in Paris", "Sunny in Rome"]


def test_a_framework_tool_step_is_the_one_tool_step(outcomes):
    """The OpenAI Agents SDK records the MCP tool call (its function span) and the listing: the
    client adds no step of its own, and the server's step nests under the SDK's tool step."""
    if "agents" not in outcomes:
        pytest.skip("openai-agents is not installed")
    outcome = outcomes["agents"]
    assert outcome.run.returncode == 0, outcome.run.stderr
    assert outcome.run.stdout == "final output: Hello from fake OpenAI\n"
    assert tree(outcome.spans) == [
        (0, "$ai_trace", "invoke_workflow mcp"),
        (1, "$ai_span", "invoke_agent Weather"),
        (2, "$ai_span", "mcp_list_tools weather"),
        (2, "$ai_span", "chat gpt-4o-mini-2024-08-06"),
        (3, "$ai_generation", "chat gpt-4o-mini"),
        (2, "$ai_span", "execute_tool get_weather"),
        (3, "$ai_span", "execute_tool get_weather"),
        (2, "$ai_span", "mcp_list_tools weather"),
        (2, "$ai_span", "chat gpt-4o-mini-2024-08-06"),
        (3, "$ai_generation", "chat gpt-4o-mini"),
    ]
    steps = {s["attributes"]["$ai_framework"]: s for s in _named(outcome.spans, "execute_tool get_weather")}
    framework_step, served = steps["openai_agents"], steps["mcp"]
    assert framework_step["attributes"]["mcp.method.name"] == "tools/call"  # added to the framework's step
    assert served["parent_span_id"] == framework_step["span_id"]
    assert served["attributes"]["gen_ai.tool.call.result"] == "Sunny in Paris"
