"""End to end: LlamaIndex agents and workflows (``llama-index-core`` over ``llama-index-workflows``)
in an unmodified app under ``posthog-instrument``, against loopback OpenAI and PostHog stand-ins.

Each run is one trace. A ``FunctionAgent`` (or ``ReActAgent``) with a tool:

    $ai_trace   invoke_agent Weather                  (user message -> answer as state)
      $ai_span    chat gpt-4o-mini                    (LlamaIndex's streamed LLM call)
        $ai_generation  chat gpt-4o-mini              (the openai adapter's, tokens; -> tool call)
      $ai_span    execute_tool get_weather            (arguments, result, call id)
      $ai_span    chat gpt-4o-mini
        $ai_generation  chat gpt-4o-mini

an ``AgentWorkflow`` one ``invoke_agent`` step per agent's turn under its ``invoke_workflow``
root (the hand-off tool under the agent that handed off), and a custom ``Workflow`` its
``@step`` methods as ``step <name>``, with the model calls made in them below them (through
LlamaIndex's LLM, or the openai SDK called directly). The app runs once with and once without
instrumentation and once in privacy mode, all at once.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from dataclasses import dataclass

import pytest

from tests.conftest import APPS, LAUNCHER, AppRun, BackgroundApp, clean_env
from tests.e2e.traces import event_type, tree
from tests.servers import FakeOpenAI, FakePostHog
from tests.servers.openai_wire import CACHED_TOKENS, COMPLETION_TOKENS, DEFAULT_REPLY, PROMPT_TOKENS

pytest.importorskip("llama_index.core.agent.workflow")
pytest.importorskip("llama_index.llms.openai")

SERVED_MODEL = "gpt-4o-mini-2024-08-06"
HANDOFF_RESULT = "Agent Writer is now handling the request due to the following reason: to_write."


@dataclass
class Outcome:
    run: AppRun
    spans: list
    rejections: list
    chat_requests: int


class _AppProcess:
    def __init__(self, stack: contextlib.ExitStack, instrumented: bool, **env_overrides: str):
        self.openai = stack.enter_context(FakeOpenAI())
        self.posthog = stack.enter_context(FakePostHog())
        env = clean_env(
            OPENAI_BASE_URL=self.openai.base_url,  # read by the openai SDK
            OPENAI_API_BASE=self.openai.base_url,  # read by LlamaIndex's OpenAI LLM
            OPENAI_API_KEY="sk-test-secret-key",
            POSTHOG_API_KEY="phc_test_project_token",
            POSTHOG_HOST=self.posthog.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
            **env_overrides,
        )
        app = str(APPS / "llama_index_agents_app.py")
        command = [LAUNCHER, "python", app, "all"] if instrumented else [sys.executable, app, "all"]
        self.app = BackgroundApp(stack, command, env)

    def outcome(self) -> Outcome:
        run = self.app.result()
        chats = [r for r in self.openai.requests if r["path"].endswith("/chat/completions")]
        return Outcome(run, self.posthog.spans, self.posthog.rejections, len(chats))


@pytest.fixture(scope="module")
def outcomes() -> dict:
    with contextlib.ExitStack() as stack:
        processes = {
            "traced": _AppProcess(stack, True),
            "plain": _AppProcess(stack, False),
            "private": _AppProcess(stack, True, POSTHOG_PRIVACY_MODE="true"),
        }
        return {name: process.outcome() for name, process in processes.items()}


@pytest.fixture(scope="module")
def traced(outcomes) -> Outcome:
    return outcomes["traced"]


# -- helpers ---------------------------------------------------------------------------------------


def traces(spans: list) -> dict:
    """The spans of each trace, by the label of its root's input ("[agent] ..." -> "agent")."""
    by_trace: dict = {}
    for span in spans:
        by_trace.setdefault(span["trace_id"], []).append(span)
    labelled = {}
    for members in by_trace.values():
        (root,) = [s for s in members if s["parent_span_id"] is None]
        label = re.search(r"\[([\w-]+)\]", root["attributes"].get("$ai_input_state") or "")
        label = label.group(1) if label else root["name"]
        assert label not in labelled, label
        labelled[label] = members
    return labelled


def children(spans: list, parent: dict) -> list:
    return sorted((s for s in spans if s["parent_span_id"] == parent["span_id"]), key=lambda s: s["start_ns"])


def root_of(spans: list) -> dict:
    (root,) = [s for s in spans if s["parent_span_id"] is None]
    return root


def no_tokens(span: dict) -> bool:
    return not [k for k in span["attributes"] if k.startswith("gen_ai.usage.")]


def assert_model_call(spans: list, step: dict, *, tool_call: str | None, label: str, stream: bool = True) -> None:
    """LlamaIndex's LLM call: a step without tokens over the openai SDK's one generation."""
    assert step["name"] == "chat gpt-4o-mini" and event_type(step) == "$ai_span", step["name"]
    assert step["attributes"]["$ai_framework"] == "llama_index" and no_tokens(step)
    assert bool(step["attributes"].get("gen_ai.request.stream")) is stream
    (generation,) = children(spans, step)
    attrs = generation["attributes"]
    assert event_type(generation) == "$ai_generation"
    assert attrs["$ai_framework"] == "llama_index"  # the SDK's request, made by LlamaIndex
    assert attrs["gen_ai.response.model"] == SERVED_MODEL
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
    )
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == CACHED_TOKENS
    assert attrs["$ai_stream"] is stream
    assert f"[{label}]" in json.dumps(attrs["$ai_input"])
    output = json.dumps(attrs["$ai_output_choices"])
    if tool_call:
        assert tool_call in output and attrs["gen_ai.response.finish_reasons"] == ["tool_call"]
    else:
        assert DEFAULT_REPLY in output
    assert children(spans, generation) == []


def assert_tool(span: dict, name: str, arguments: dict, result: str, call_id: str | None = "call_1") -> None:
    attrs = span["attributes"]
    assert span["name"] == f"execute_tool {name}" and event_type(span) == "$ai_span"
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["gen_ai.tool.name"] == name
    assert attrs["$ai_framework"] == "llama_index"
    assert json.loads(attrs["gen_ai.tool.call.arguments"]) == arguments
    assert attrs["gen_ai.tool.call.result"] == result
    if call_id is not None:
        assert attrs["gen_ai.tool.call.id"] == call_id
    assert no_tokens(span)


WEATHER_AGENT_TREE = [
    (0, "$ai_trace", "invoke_agent Weather"),
    (1, "$ai_span", "chat gpt-4o-mini"),
    (2, "$ai_generation", "chat gpt-4o-mini"),
    (1, "$ai_span", "execute_tool get_weather"),
    (1, "$ai_span", "chat gpt-4o-mini"),
    (2, "$ai_generation", "chat gpt-4o-mini"),
]


def assert_weather_agent(spans: list, label: str, question: str) -> None:
    """The full trace of one FunctionAgent run with one tool call, every span checked."""
    assert tree(spans) == WEATHER_AGENT_TREE
    root = root_of(spans)
    attrs = root["attributes"]
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == "Weather"
    assert attrs["$ai_framework"] == "llama_index"
    assert attrs["$ai_input_state"] == f"[{label}] {question}"
    assert attrs["$ai_output_state"] == DEFAULT_REPLY
    assert no_tokens(root)
    first, tool, second = children(spans, root)
    assert_model_call(spans, first, tool_call="get_weather", label=label)
    assert_tool(tool, "get_weather", {"city": "Paris"}, "Sunny in Paris")
    assert_model_call(spans, second, tool_call=None, label=label)
    assert "Sunny in Paris" in json.dumps(children(spans, second)[0]["attributes"]["$ai_input"])


# -- tests -----------------------------------------------------------------------------------------


def test_the_app_is_unchanged(outcomes):
    traced, plain = outcomes["traced"], outcomes["plain"]
    assert traced.run.returncode == 0, traced.run.stderr
    assert plain.run.returncode == 0, plain.run.stderr
    assert traced.run.stdout == plain.run.stdout
    assert traced.run.stderr == plain.run.stderr == ""
    assert "handoff: Hello from fake OpenAI Writer" in traced.run.stdout
    assert "concurrent: Hello from fake OpenAI Hello from fake OpenAI True" in traced.run.stdout
    assert traced.rejections == [] and outcomes["private"].rejections == []


def test_function_agent_run_is_one_trace(traced):
    assert_weather_agent(traces(traced.spans)["agent"], "agent", "What is the weather in Paris?")


def test_a_failing_tool_is_a_failed_step_and_the_agent_goes_on(traced):
    # LlamaIndex catches the tool's exception and gives its text to the model, which answers.
    spans = traces(traced.spans)["broken"]
    assert tree(spans) == [
        (d, t, n.replace("Weather", "Forecaster").replace("get_weather", "broken_forecast"))
        for d, t, n in WEATHER_AGENT_TREE
    ]
    root = root_of(spans)
    assert root["status_code"] != "ERROR" and root["attributes"]["$ai_output_state"] == DEFAULT_REPLY
    first, tool, second = children(spans, root)
    assert tool["status_code"] == "ERROR"
    assert tool["attributes"]["error.type"] == "ValueError"  # the tool's own exception
    assert json.loads(tool["attributes"]["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert "gen_ai.tool.call.result" not in tool["attributes"]
    assert_model_call(spans, first, tool_call="broken_forecast", label="broken")
    assert_model_call(spans, second, tool_call=None, label="broken")
    assert "no forecast for Paris" in json.dumps(children(spans, second)[0]["attributes"]["$ai_input"])


def test_agent_workflow_has_a_step_per_agent_and_the_hand_off_under_the_first(traced):
    spans = traces(traced.spans)["handoff"]
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow AgentWorkflow"),
        (1, "$ai_span", "invoke_agent Researcher"),
        (2, "$ai_span", "chat gpt-4o-mini"),
        (3, "$ai_generation", "chat gpt-4o-mini"),
        (2, "$ai_span", "execute_tool handoff"),
        (1, "$ai_span", "invoke_agent Writer"),
        (2, "$ai_span", "chat gpt-4o-mini"),
        (3, "$ai_generation", "chat gpt-4o-mini"),
    ]
    root = root_of(spans)
    assert root["attributes"]["gen_ai.workflow.name"] == "AgentWorkflow"
    assert root["attributes"]["$ai_input_state"].startswith("[handoff] Write about Paris.")
    assert root["attributes"]["$ai_output_state"] == DEFAULT_REPLY
    researcher, writer = children(spans, root)
    assert researcher["attributes"]["gen_ai.agent.name"] == "Researcher"
    assert "$ai_output_state" not in researcher["attributes"]  # it only handed off
    assert writer["attributes"]["gen_ai.agent.name"] == "Writer"
    assert writer["attributes"]["$ai_output_state"] == DEFAULT_REPLY
    assert researcher["end_ns"] <= writer["start_ns"]  # one turn after the other
    model_call, handoff = children(spans, researcher)
    assert_model_call(spans, model_call, tool_call="handoff", label="handoff")
    assert_tool(
        handoff,
        "handoff",
        {"to_agent": "Writer", "reason": "to_write"},
        HANDOFF_RESULT + "\nPlease continue with the current request.",
    )
    (answer,) = children(spans, writer)
    assert_model_call(spans, answer, tool_call=None, label="handoff")


def test_react_agent_tool_from_the_models_text(traced):
    spans = traces(traced.spans)["react"]
    assert tree(spans) == [(d, t, n.replace("Weather", "Reasoner")) for d, t, n in WEATHER_AGENT_TREE]
    root = root_of(spans)
    assert root["attributes"]["gen_ai.agent.name"] == "Reasoner"
    assert root["attributes"]["$ai_output_state"] == DEFAULT_REPLY
    first, tool, second = children(spans, root)
    (generation,) = children(spans, first)
    assert "Action: get_weather" in json.dumps(generation["attributes"]["$ai_output_choices"])
    assert_model_call(spans, second, tool_call=None, label="react")
    # ReAct's tool call has no id from the model: LlamaIndex makes one up.
    assert_tool(tool, "get_weather", {"city": "Paris"}, "Sunny in Paris", call_id=None)
    assert tool["attributes"]["gen_ai.tool.call.id"]


def test_custom_workflow_steps_nest_their_model_calls(traced):
    spans = traces(traced.spans)["workflow"]
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow WriteUp"),
        (1, "$ai_span", "step brainstorm"),
        (2, "$ai_span", "chat gpt-4o-mini"),
        (3, "$ai_generation", "chat gpt-4o-mini"),
        (1, "$ai_span", "step write"),
        (2, "$ai_generation", "chat gpt-4o-mini"),
    ]
    root = root_of(spans)
    assert root["attributes"]["gen_ai.workflow.name"] == "WriteUp"
    assert json.loads(root["attributes"]["$ai_input_state"]) == {"topic": "[workflow] Paris"}
    assert root["attributes"]["$ai_output_state"] == DEFAULT_REPLY
    brainstorm, write = children(spans, root)
    for step in (brainstorm, write):
        assert step["attributes"]["gen_ai.operation.name"] == "step"
        assert step["attributes"]["$ai_framework"] == "llama_index" and no_tokens(step)
    assert json.loads(brainstorm["attributes"]["$ai_input_state"]) == {"topic": "[workflow] Paris"}
    topic = {"topic": "[workflow] Paris", "idea": DEFAULT_REPLY}
    assert json.loads(brainstorm["attributes"]["$ai_output_state"]) == topic
    assert json.loads(write["attributes"]["$ai_input_state"]) == topic
    assert write["attributes"]["$ai_output_state"] == DEFAULT_REPLY
    assert_model_call(spans, children(spans, brainstorm)[0], tool_call=None, label="workflow", stream=False)
    # The openai SDK called directly in the step: its generation, in the step's task, under it.
    (direct,) = children(spans, write)
    assert direct["attributes"]["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
    assert "$ai_framework" not in direct["attributes"]
    assert "Write about" in json.dumps(direct["attributes"]["$ai_input"])


def test_a_failing_workflow_fails_its_step_and_its_run(traced):
    spans = traces(traced.spans)["failing"]
    assert tree(spans) == [(0, "$ai_trace", "invoke_workflow Explode"), (1, "$ai_span", "step explode")]
    for span in spans:
        assert span["status_code"] == "ERROR"
        assert span["attributes"]["error.type"] == "RuntimeError"
        assert "$ai_output_state" not in span["attributes"]
    assert "failing: RuntimeError [failing] Paris went wrong" in traced.run.stdout


def test_concurrent_runs_stay_apart(traced):
    by_label = traces(traced.spans)
    for label, other in (("concurrent-1", "concurrent-2"), ("concurrent-2", "concurrent-1")):
        spans = by_label[label]
        assert_weather_agent(spans, label, "Weather in Paris?")
        for span in spans:
            assert f"[{other}]" not in json.dumps(span["attributes"]), span["name"]
    assert root_of(by_label["concurrent-1"])["trace_id"] != root_of(by_label["concurrent-2"])["trace_id"]


def test_every_model_call_is_one_generation(traced):
    generations = [s for s in traced.spans if event_type(s) == "$ai_generation"]
    # FunctionAgents 2 x 2, AgentWorkflow 2, ReActAgent 2, the custom workflow 2, concurrent 2 x 2
    assert len(generations) == traced.chat_requests == 14
    assert sum(s["attributes"]["gen_ai.usage.input_tokens"] for s in generations) == 14 * PROMPT_TOKENS
    labels = ["agent", "broken", "concurrent-1", "concurrent-2", "failing", "handoff", "react", "workflow"]
    assert sorted(traces(traced.spans)) == labels


def test_privacy_mode_keeps_every_tree_and_drops_every_text(outcomes):
    private, traced = outcomes["private"], outcomes["traced"]
    assert private.run.returncode == 0, private.run.stderr

    def shapes(spans):
        by_trace: dict = {}
        for span in spans:
            by_trace.setdefault(span["trace_id"], []).append(span)
        return sorted(tree(members) for members in by_trace.values())

    assert shapes(private.spans) == shapes(traced.spans)
    exported = json.dumps(private.spans)
    for text in ("Paris", "[agent]", DEFAULT_REPLY, "Sunny", "to_write", "Writer is now handling", "no forecast"):
        assert text not in exported
