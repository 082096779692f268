"""End to end: an unmodified CrewAI app under ``posthog-instrument``, against the loopback OpenAI
and PostHog stand-ins.

A crew run is one trace: the crew is the root (``invoke_workflow``), its task a step below it,
the agent working on the task an ``invoke_agent`` step below that, and inside the agent CrewAI's
model calls and its tool run. CrewAI 1.x reaches OpenAI through the openai SDK (native function
calling: the fake server answers the first call with a call to the tool, the second with text),
so each CrewAI model call is a token-less step around the openai adapter's span, which is the one
generation. Through CrewAI's LiteLLM-backed ``LLM`` the LiteLLM adapter's span is the generation
instead; with the application's own ``BaseLLM`` (a model nothing below CrewAI records) CrewAI's
span is.

CrewAI's own telemetry is left on in the ``sync`` group, as users have it by default: it sends to
its collector from a TracerProvider of its own. There it reaches a loopback proxy that records
the attempt and refuses it (this machine has no network), and the test checks that PostHog got
exactly our spans and none of CrewAI's. Every run has its own temporary HOME, and CrewAI's
trace-sharing prompt and version check are switched off, so nothing outside the test is read or
written.

Importing CrewAI takes seconds, so the app runs its two scenario groups once with and once without
instrumentation, all four processes at once, in a module-scoped fixture.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass

import pytest

from tests.conftest import AppRun, APPS, BackgroundApp, clean_env, LAUNCHER
from tests.e2e.traces import event_type, tree, tools
from tests.servers import FakeOpenAI, FakePostHog
from tests.servers.openai_wire import CACHED_TOKENS, COMPLETION_TOKENS, PROMPT_TOKENS, REASONING_TOKENS
from posthog_autoinstrument.export.posthog_messages import input_messages, output_messages

pytest.importorskip("crewai")

SERVED_MODEL = "gpt-4o-mini-2024-08-06"
ANSWER = "Hello from fake OpenAI"
TOOL_RESULT = "Sunny in Paris, 21 degrees"
TELEMETRY_TARGET = "telemetry.crewai.com:4319"


@dataclass
class Outcome:
    instrumented: AppRun
    plain: AppRun
    spans: list
    rejections: list
    requests_instrumented: list
    requests_plain: list
    proxied: list


class _RefusingProxy:
    """An HTTPS proxy that records which host each CONNECT asks for, then hangs up."""

    def __init__(self) -> None:
        self.targets: list = []
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                try:
                    line = connection.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                except OSError:
                    continue
                if line.startswith("CONNECT "):
                    self.targets.append(line.split()[1])

    def close(self) -> None:
        self._socket.close()


class _AppProcess:
    """One run of the app against its own stand-ins, with its own HOME."""

    def __init__(self, stack: contextlib.ExitStack, group: str, instrumented: bool):
        self.openai = stack.enter_context(FakeOpenAI())
        self.posthog = stack.enter_context(FakePostHog())
        self.proxy = _RefusingProxy()
        stack.callback(self.proxy.close)
        telemetry_on = group == "sync"  # as users have it by default
        env = clean_env(
            OPENAI_BASE_URL=self.openai.base_url,
            OPENAI_API_KEY="sk-test-secret-key",
            HOME=stack.enter_context(tempfile.TemporaryDirectory()),
            CREWAI_STORAGE_DIR="crewai-e2e",
            CREWAI_TRACING_ENABLED="false",  # no trace-sharing prompt, no upload
            CREWAI_DISABLE_VERSION_CHECK="true",
            CREWAI_DISABLE_TELEMETRY=None if telemetry_on else "true",
            HTTPS_PROXY=self.proxy.url,
            NO_PROXY="127.0.0.1,localhost",
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            POSTHOG_API_KEY="phc_test_project_token",
            POSTHOG_HOST=self.posthog.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
        )
        for key in ("CREWAI_DISABLE_TELEMETRY", "CREWAI_DISABLE_TRACKING", "OTEL_SDK_DISABLED"):
            if telemetry_on:
                env.pop(key, None)
        app = str(APPS / "crewai_app.py")
        command = [LAUNCHER, "python", app, group] if instrumented else [sys.executable, app, group]
        self.app = BackgroundApp(stack, command, env)

    def result(self) -> AppRun:
        return self.app.result()


@pytest.fixture(scope="module")
def outcomes() -> dict:
    groups = ("sync", "more")
    with contextlib.ExitStack() as stack:
        started = {
            (group, instrumented): _AppProcess(stack, group, instrumented)
            for group in groups
            for instrumented in (True, False)
        }
        results = {}
        for group in groups:
            traced, plain = started[(group, True)], started[(group, False)]
            traced_run, plain_run = traced.result(), plain.result()
            results[group] = Outcome(
                traced_run,
                plain_run,
                traced.posthog.spans,
                traced.posthog.rejections,
                traced.openai.requests,
                plain.openai.requests,
                list(traced.proxy.targets),
            )
    return results


@pytest.fixture(scope="module")
def sync_run(outcomes) -> Outcome:
    return outcomes["sync"]


@pytest.fixture(scope="module")
def more_run(outcomes) -> Outcome:
    return outcomes["more"]


# -- helpers ---------------------------------------------------------------------------------------


def run_of(outcome: Outcome, crew: str) -> list:
    """All spans of the one trace whose root is the crew named ``crew``."""
    roots = [s for s in outcome.spans if s["parent_span_id"] is None and s["name"] == f"invoke_workflow {crew}"]
    assert len(roots) == 1, [s["name"] for s in outcome.spans if s["parent_span_id"] is None]
    return [s for s in outcome.spans if s["trace_id"] == roots[0]["trace_id"]]


def crew_tree(label: str) -> list:
    """The trace of one weather crew: crew, task, agent, and inside the agent CrewAI's two model
    calls (each around the openai SDK's generation) with the tool run between them."""
    return [
        (0, "$ai_trace", f"invoke_workflow weather crew {label}"),
        (1, "$ai_span", f"task [{label}] What is the weather in Paris?"),
        (2, "$ai_span", f"invoke_agent Weather reporter {label}"),
        (3, "$ai_span", "chat gpt-4o-mini"),
        (4, "$ai_generation", "chat gpt-4o-mini"),
        (3, "$ai_span", "execute_tool get_weather"),
        (3, "$ai_span", "chat gpt-4o-mini"),
        (4, "$ai_generation", "chat gpt-4o-mini"),
    ]


def by_id(spans: list) -> dict:
    return {s["span_id"]: s for s in spans}


def ordered(spans: list, name: str, kind: str) -> list:
    return sorted((s for s in spans if s["name"] == name and event_type(s) == kind), key=lambda s: s["start_ns"])


def state(span: dict, key: str):
    return json.loads(span["attributes"][key])


def no_tokens(span: dict) -> bool:
    return not [k for k in span["attributes"] if k.startswith("gen_ai.usage.") or k == "$ai_reasoning_tokens"]


def assert_app_unchanged(outcome: Outcome) -> None:
    assert outcome.instrumented.returncode == 0, outcome.instrumented.stderr
    assert outcome.plain.returncode == 0, outcome.plain.stderr
    assert outcome.instrumented.stdout == outcome.plain.stdout
    assert outcome.rejections == []

    def sent(requests):
        return sorted(json.dumps([r["path"], r["json"]], sort_keys=True) for r in requests)

    assert sent(outcome.requests_instrumented) == sent(outcome.requests_plain)


def assert_weather_crew(spans: list, label: str) -> None:
    """The full trace of one weather crew run, every span checked."""
    assert tree(spans) == crew_tree(label)
    assert len({s["trace_id"] for s in spans}) == 1
    assert {s["scope_name"] for s in spans} == {"posthog_autoinstrument"}
    spans_by_id = by_id(spans)

    (crew,) = [s for s in spans if s["parent_span_id"] is None]
    attrs = crew["attributes"]
    assert attrs["gen_ai.operation.name"] == "invoke_workflow"
    assert attrs["gen_ai.workflow.name"] == f"weather crew {label}"
    assert attrs["$ai_framework"] == "crewai"
    assert state(crew, "$ai_input_state") == {"inputs": {"city": "Paris"}}
    assert attrs["$ai_output_state"] == ANSWER
    assert crew["status_code"] != "ERROR"

    (task,) = [s for s in spans if s["name"].startswith("task ")]
    assert task["parent_span_id"] == crew["span_id"]
    assert task["attributes"]["gen_ai.operation.name"] == "task"
    assert task["attributes"]["gen_ai.agent.name"] == f"Weather reporter {label}"
    assert task["attributes"]["$ai_framework"] == "crewai"
    assert state(task, "$ai_input_state") == {
        "description": f"[{label}] What is the weather in Paris?",
        "expected_output": "A short weather report",
    }
    assert task["attributes"]["$ai_output_state"] == ANSWER

    (agent,) = [s for s in spans if s["name"].startswith("invoke_agent ")]
    assert agent["parent_span_id"] == task["span_id"]
    attrs = agent["attributes"]
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == f"Weather reporter {label}"
    assert attrs["gen_ai.agent.id"]
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["$ai_framework"] == "crewai"
    assert state(agent, "$ai_input_state") == {"task": f"[{label}] What is the weather in Paris?"}
    assert attrs["$ai_output_state"] == ANSWER

    (tool,) = [s for s in spans if s["name"] == "execute_tool get_weather"]
    assert tool["parent_span_id"] == agent["span_id"]
    attrs = tool["attributes"]
    assert attrs["gen_ai.tool.name"] == "get_weather"
    assert attrs["gen_ai.tool.type"] == "function"
    assert attrs["gen_ai.tool.description"] == "Weather for a city."
    assert state(tool, "gen_ai.tool.call.arguments") == {"city": "Paris"}
    assert state(tool, "$ai_input_state") == {"city": "Paris"}
    assert attrs["gen_ai.tool.call.result"] == TOOL_RESULT
    assert attrs["$ai_output_state"] == TOOL_RESULT
    assert attrs["$ai_framework"] == "crewai"

    # CrewAI's model calls: token-less steps, each around exactly one generation.
    steps = ordered(spans, "chat gpt-4o-mini", "$ai_span")
    generations = ordered(spans, "chat gpt-4o-mini", "$ai_generation")
    assert len(steps) == len(generations) == 2
    for step, generation in zip(steps, generations):
        assert step["parent_span_id"] == agent["span_id"]
        assert generation["parent_span_id"] == step["span_id"]
        assert no_tokens(step)
        assert step["attributes"]["$ai_framework"] == "crewai"
        assert step["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
        assert step["attributes"]["gen_ai.request.temperature"] == 0.2
        assert step["attributes"]["gen_ai.response.id"] == generation["attributes"]["gen_ai.response.id"]
        assert tools(step)[0]["function"]["name"] == "get_weather"
        # The step shows what CrewAI asked and got, as state.
        # (in the conventions' shape; the generation's, PostHog's: the same messages)
        assert input_messages(state(step, "$ai_input_state")) == generation["attributes"]["$ai_input"]
        assert_generation(generation, label)
    assert steps[0]["start_ns"] < tool["start_ns"] < steps[1]["start_ns"]

    first, second = generations
    assert first["attributes"]["$ai_stop_reason"] == "tool_call"
    assert first["attributes"]["$ai_output_choices"][0]["content"] == [
        {"type": "function", "id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert output_messages(state(steps[0], "$ai_output_state")) == first["attributes"]["$ai_output_choices"]
    assert second["attributes"]["$ai_stop_reason"] == "stop"
    assert second["attributes"]["$ai_output_choices"][0]["content"] == [{"type": "text", "text": ANSWER}]
    # The tool's result went back to the model.
    assert second["attributes"]["$ai_input"][-1] == {"role": "tool", "tool_call_id": "call_1", "content": TOOL_RESULT}
    for span in spans:
        parent = span["parent_span_id"]
        assert parent is None or parent in spans_by_id


def assert_generation(span: dict, label: str) -> None:
    attrs = span["attributes"]
    assert span["kind_name"] == "CLIENT"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == SERVED_MODEL
    assert attrs["gen_ai.response.id"].startswith("chatcmpl-")
    assert attrs["gen_ai.usage.input_tokens"] == PROMPT_TOKENS
    assert attrs["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == CACHED_TOKENS
    assert attrs["$ai_reasoning_tokens"] == REASONING_TOKENS
    assert attrs["$ai_cache_reporting_exclusive"] is False
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert tools(span)[0]["function"]["name"] == "get_weather"
    messages = attrs["$ai_input"]
    assert [m["role"] for m in messages[:2]] == ["system", "user"]
    assert f"Weather reporter {label}" in messages[0]["content"]
    assert f"[{label}] What is the weather in Paris?" in messages[1]["content"]


# -- a crew run ----------------------------------------------------------------------------------


def test_the_app_is_unchanged(sync_run, more_run):
    for outcome in (sync_run, more_run):
        assert_app_unchanged(outcome)
    assert sync_run.instrumented.stdout == f"sync '{ANSWER}' CrewOutput 22 14 2\n"


def test_kickoff_is_one_complete_trace(sync_run):
    assert_weather_crew(run_of(sync_run, "weather crew sync"), "sync")
    assert len(sync_run.spans) == len(crew_tree("sync"))


def test_tokens_match_what_crewai_counted(sync_run):
    generations = [s for s in sync_run.spans if event_type(s) == "$ai_generation"]
    assert sum(s["attributes"]["gen_ai.usage.input_tokens"] for s in generations) == 22
    assert sum(s["attributes"]["gen_ai.usage.output_tokens"] for s in generations) == 14
    assert all(no_tokens(s) for s in sync_run.spans if event_type(s) != "$ai_generation")


def test_crewai_telemetry_coexists(sync_run):
    # CrewAI's telemetry was on and tried to reach its collector (through the refusing proxy) ...
    assert TELEMETRY_TARGET in sync_run.proxied
    # ... while PostHog received our spans only: none of CrewAI's telemetry spans ("Crew
    # Created", "Task Execution", ...), nothing from another scope.
    assert {s["scope_name"] for s in sync_run.spans} == {"posthog_autoinstrument"}
    assert all(
        s["name"].split(" ", 1)[0] in {"invoke_workflow", "task", "invoke_agent", "chat", "execute_tool"}
        for s in sync_run.spans
    )


# -- async and concurrent runs ---------------------------------------------------------------------


def test_kickoff_async_and_akickoff(more_run):
    for label in ("kickoff_async", "akickoff"):
        assert_weather_crew(run_of(more_run, f"weather crew {label}"), label)


def test_concurrent_crews_do_not_mix(more_run):
    first = run_of(more_run, "weather crew first")
    second = run_of(more_run, "weather crew second")
    assert_weather_crew(first, "first")
    assert_weather_crew(second, "second")
    assert first[0]["trace_id"] != second[0]["trace_id"]
    # They did run at the same time.
    (root_1,) = [s for s in first if s["parent_span_id"] is None]
    (root_2,) = [s for s in second if s["parent_span_id"] is None]
    assert root_1["start_ns"] < root_2["end_ns"] and root_2["start_ns"] < root_1["end_ns"]
    # Six crews in that run (two more below), six traces, nothing else.
    assert len({s["trace_id"] for s in more_run.spans}) == 6


# -- other models ----------------------------------------------------------------------------------


def test_through_litellm_one_generation_per_model_call(more_run):
    spans = run_of(more_run, "weather crew litellm")
    assert tree(spans) == crew_tree("litellm")
    steps = ordered(spans, "chat gpt-4o-mini", "$ai_span")
    generations = ordered(spans, "chat gpt-4o-mini", "$ai_generation")
    for step, generation in zip(steps, generations):
        assert generation["parent_span_id"] == step["span_id"]
        assert no_tokens(step)
        assert step["attributes"]["$ai_framework"] == "crewai"
        attrs = generation["attributes"]
        assert attrs["gen_ai.usage.input_tokens"] == PROMPT_TOKENS
        assert attrs["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
        assert attrs["gen_ai.response.model"] == SERVED_MODEL
    assert generations[0]["attributes"]["$ai_stop_reason"] == "tool_call"
    assert generations[1]["attributes"]["$ai_stop_reason"] == "stop"
    (tool,) = [s for s in spans if s["name"] == "execute_tool get_weather"]
    assert state(tool, "gen_ai.tool.call.arguments") == {"city": "Paris"}
    assert tool["attributes"]["gen_ai.tool.call.result"] == TOOL_RESULT


def test_a_model_nothing_below_records_is_crewais_generation(more_run):
    # The application's own BaseLLM, prompted ReAct style (no native function calling): CrewAI
    # parses the model's text into a tool call and runs the tool (CrewStructuredTool.invoke),
    # whose result is the answer.
    spans = run_of(more_run, "house crew")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow house crew"),
        (1, "$ai_span", "task house weather"),
        (2, "$ai_span", "invoke_agent House reporter"),
        (3, "$ai_generation", "chat house-model"),
        (3, "$ai_span", "execute_tool look_up_weather"),
    ]
    (generation,) = [s for s in spans if event_type(s) == "$ai_generation"]
    attrs = generation["attributes"]
    assert attrs["$ai_framework"] == "crewai"
    assert attrs["gen_ai.request.model"] == "house-model"
    assert attrs["gen_ai.usage.input_tokens"] == PROMPT_TOKENS
    assert attrs["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == CACHED_TOKENS
    assert generation["attributes"]["$ai_output_choices"][0]["content"] == [
        {"type": "text", "text": "Thought: I look it up\nAction: look_up_weather\nAction Input: {'city': 'Paris'}"}
    ]
    assert [m["role"] for m in generation["attributes"]["$ai_input"]] == ["system", "user"]
    (tool,) = [s for s in spans if s["name"] == "execute_tool look_up_weather"]
    assert state(tool, "gen_ai.tool.call.arguments") == {"city": "Paris"}
    assert tool["attributes"]["gen_ai.tool.call.result"] == "Sunny in Paris"
    assert generation["end_ns"] <= tool["start_ns"]
    (crew,) = [s for s in spans if s["parent_span_id"] is None]
    assert "$ai_input_state" not in crew["attributes"]  # kicked off without inputs
    assert crew["attributes"]["$ai_output_state"] == "Sunny in Paris"
    (task,) = [s for s in spans if s["name"] == "task house weather"]
    assert state(task, "$ai_input_state")["description"].startswith("[house] Say the weather in Paris.")
    assert len(more_run.spans) == 5 * len(crew_tree("litellm")) + 5
