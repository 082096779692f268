"""End to end: an unmodified Semantic Kernel app under ``posthog-instrument``, against the
loopback OpenAI and PostHog stand-ins.

The app (``apps/semantic_kernel_app.py``) runs, in one asyncio program: a kernel whose prompt
function's model calls a plugin function (auto function calling), a plugin function invoked
directly, a streamed prompt (``invoke_prompt_stream``), a ``ChatCompletionAgent`` with a plugin
(``get_response``), the same streamed (``invoke_stream``), two agents run concurrently
(``get_response`` and ``invoke``) and an agent whose model call fails. Each model call goes
through ``OpenAIChatCompletion`` into the openai SDK: the SDK's request is the one generation,
SK's model call a token-less step above it. SK records its own ``execute_tool`` spans into the
global tracer provider: none of them may reach PostHog.

Four processes run at once: instrumented, plain (stdout must be identical), instrumented in
privacy mode, and instrumented with SK's diagnostics switched on (its chat and agent spans too)
and the app's own tracer provider, whose spans must all still be there, with their parents.
Semantic Kernel 1.45 pins pydantic below our main environment's pin: these tests run in their
own environment (tests/requirements-semantic-kernel.txt, see .ci/run) and skip elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import AppRun
from tests.e2e.app_runs import AppProcess
from tests.e2e.traces import assert_no_content, event_type, traces_by_root, tree, successful_generations
from tests.servers.openai_wire import CACHED_TOKENS, COMPLETION_TOKENS, PROMPT_TOKENS, TOOL_CALL_ID

pytest.importorskip(
    "semantic_kernel", reason="semantic-kernel is not installed (tests/requirements-semantic-kernel.txt)"
)

GEN = "$ai_generation"
SPAN = "$ai_span"
TRACE = "$ai_trace"
CHAT = "chat gpt-4o-mini"


def _tool_run(tool: str) -> list:
    """A model call that asks for ``tool``, the tool, and the model's answer."""
    return [(1, SPAN, CHAT), (2, GEN, CHAT), (1, SPAN, f"execute_tool {tool}"), (1, SPAN, CHAT), (2, GEN, CHAT)]


# (depth, event type, name) for each run's trace, keyed by its root's name.
EXPECTED_TREES = {
    "invoke_workflow Assistant-Answer": [
        (0, TRACE, "invoke_workflow Assistant-Answer"),
        *_tool_run("Weather-get_weather"),
    ],
    "execute_tool Weather-get_weather": [(0, TRACE, "execute_tool Weather-get_weather")],
    # A native function whose body asks a model through the openai SDK: its generation nests under it.
    "execute_tool Forecast-forecast": [(0, TRACE, "execute_tool Forecast-forecast"), (1, GEN, CHAT)],
    "invoke_workflow Greet": [(0, TRACE, "invoke_workflow Greet"), (1, SPAN, CHAT), (2, GEN, CHAT)],
    # A ChatCompletionAgent's plugins are named after their class.
    "invoke_agent Weather": [(0, TRACE, "invoke_agent Weather"), *_tool_run("WeatherPlugin-get_weather")],
    "invoke_agent Streamer": [(0, TRACE, "invoke_agent Streamer"), *_tool_run("WeatherPlugin-get_weather")],
    "invoke_agent WeatherA": [(0, TRACE, "invoke_agent WeatherA"), *_tool_run("WeatherPlugin-get_weather")],
    "invoke_agent WeatherB": [(0, TRACE, "invoke_agent WeatherB"), *_tool_run("WeatherPlugin-get_weather")],
    "invoke_agent Fragile": [(0, TRACE, "invoke_agent Fragile"), *_tool_run("BrokenPlugin-fail")],
    "invoke_agent Broken": [(0, TRACE, "invoke_agent Broken"), (1, SPAN, "chat error-400"), (2, GEN, "chat error-400")],
}
MODEL_CALLS = 15

SK_DIAGNOSTICS = "SEMANTICKERNEL_EXPERIMENTAL_GENAI_ENABLE_OTEL_DIAGNOSTICS_SENSITIVE"


@dataclass
class Outcome:
    run: AppRun
    spans: list
    rejections: list
    requests: list
    telemetry: dict


def _start(stack: contextlib.ExitStack, instrumented: bool, **extra_env: str) -> AppProcess:
    return AppProcess(stack, "semantic_kernel_app.py", instrumented, base_url_variable="SK_APP_BASE_URL", **extra_env)


@pytest.fixture(scope="module")
def outcomes() -> dict:
    with contextlib.ExitStack() as stack:
        telemetry_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "telemetry.json"
        started = {
            "traced": _start(stack, True),
            "plain": _start(stack, False),
            "private": _start(stack, True, POSTHOG_PRIVACY_MODE="true"),
            "diagnostics": _start(
                stack, True, **{SK_DIAGNOSTICS: "true", "SK_APP_TELEMETRY_FILE": str(telemetry_file)}
            ),
        }
        found = {}
        for name, process in started.items():
            run = process.result()
            telemetry = json.loads(telemetry_file.read_text()) if name == "diagnostics" and run.returncode == 0 else {}
            posthog = process.posthog
            found[name] = Outcome(run, posthog.spans, posthog.rejections, process.openai.requests, telemetry)
        return found


def chat_requests(outcome: Outcome) -> list:
    return [r for r in outcome.requests if r["path"].endswith("/chat/completions")]


# -- the app is unchanged ------------------------------------------------------------------------


def test_output_is_unchanged(outcomes):
    plain = outcomes["plain"].run
    assert plain.returncode == 0, plain.stderr
    assert "error ServiceResponseException" in plain.stdout and "agent Hello from fake OpenAI" in plain.stdout
    for name in ("traced", "private", "diagnostics"):
        run = outcomes[name].run
        assert run.returncode == 0, run.stderr
        assert run.stdout == plain.stdout, name
        assert outcomes[name].rejections == []
        # The same model requests, with or without us.
        assert len(chat_requests(outcomes[name])) == len(chat_requests(outcomes["plain"])) == MODEL_CALLS


# -- the trees -----------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome_name", ["traced", "private", "diagnostics"])
def test_each_run_is_one_trace_with_its_steps(outcomes, outcome_name):
    spans = outcomes[outcome_name].spans
    found = traces_by_root(spans)
    assert set(found) == set(EXPECTED_TREES)
    for root, expected in EXPECTED_TREES.items():
        assert tree(found[root]) == expected, root
    # Nothing of SK's own spans (its execute_tool spans, and with diagnostics its chat and
    # invoke_agent spans): every span is ours and names the framework.
    # (the function's own SDK call is not SK's)
    (forecast,) = [s for s in found["execute_tool Forecast-forecast"] if s["parent_span_id"] is not None]
    for span in spans:
        assert span["scope_name"] == "posthog_autoinstrument", (span["name"], span["scope_name"])
        if span is not forecast:
            assert span["attributes"]["$ai_framework"] == "semantic_kernel", span["name"]


@pytest.mark.parametrize("outcome_name", ["traced", "diagnostics"])
def test_one_generation_per_model_call_with_the_servers_tokens(outcomes, outcome_name):
    outcome = outcomes[outcome_name]
    generations = [s for s in outcome.spans if event_type(s) == GEN]
    assert len(generations) == len(chat_requests(outcome)) == MODEL_CALLS
    by_id = {s["span_id"]: s for s in outcome.spans}
    for generation in generations:
        attrs = generation["attributes"]
        assert attrs["gen_ai.provider.name"] == "openai"
        step = by_id[generation["parent_span_id"]]
        if step["name"] == "execute_tool Forecast-forecast":
            continue  # the function's own call, straight through the SDK
        # SK's model call above it: a step without tokens.
        assert event_type(step) == SPAN and step["name"] == generation["name"]
        assert not any(key.startswith("gen_ai.usage.") for key in step["attributes"]), step["attributes"]
        if attrs["gen_ai.request.model"] == "error-400":
            assert generation["status_code"] == "ERROR" and attrs["error.type"] == "openai.BadRequestError"
            continue
        assert attrs["gen_ai.usage.input_tokens"] == PROMPT_TOKENS
        assert attrs["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == CACHED_TOKENS
    found = traces_by_root(outcome.spans)
    for root in ("invoke_agent Streamer", "invoke_workflow Greet"):
        streamed = [s for s in found[root] if event_type(s) == GEN]
        assert streamed and all(s["attributes"]["gen_ai.request.stream"] is True for s in streamed), root
    (greeting,) = [s for s in found["invoke_workflow Greet"] if event_type(s) == GEN]
    assert greeting["attributes"]["$ai_output_choices"][0]["content"][0]["text"] == "Hello from fake OpenAI"


def test_functions_agents_and_tools_carry_their_inputs_and_outputs(outcomes):
    found = traces_by_root(outcomes["traced"].spans)
    kernel = found["invoke_workflow Assistant-Answer"]
    root = next(s for s in kernel if s["parent_span_id"] is None)
    assert root["attributes"]["gen_ai.workflow.name"] == "Assistant-Answer"
    assert json.loads(root["attributes"]["$ai_input_state"]) == {"question": "[kernel] What is the weather in Paris?"}
    assert root["attributes"]["$ai_output_state"] == "Hello from fake OpenAI"
    for trace_root, tool_name in (
        ("invoke_workflow Assistant-Answer", "Weather-get_weather"),
        ("invoke_agent Weather", "WeatherPlugin-get_weather"),
        ("invoke_agent Streamer", "WeatherPlugin-get_weather"),
    ):
        spans = found[trace_root]
        (tool,) = [s for s in spans if s["name"] == f"execute_tool {tool_name}"]
        attrs = tool["attributes"]
        assert json.loads(attrs["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
        assert attrs["gen_ai.tool.call.result"] == "Sunny in Paris"
        assert attrs["gen_ai.tool.call.id"] == TOOL_CALL_ID
        assert attrs["gen_ai.tool.description"] == "Weather for a city."
        # The tool ran between the model's tool call and its answer.
        first, second = sorted((s for s in spans if event_type(s) == GEN), key=lambda s: s["start_ns"])
        assert first["attributes"]["$ai_output_choices"][0]["content"][0]["type"] == "function"
        assert first["end_ns"] <= tool["start_ns"] and tool["end_ns"] <= second["start_ns"]

    (direct,) = found["execute_tool Weather-get_weather"]
    assert json.loads(direct["attributes"]["gen_ai.tool.call.arguments"]) == {"city": "Rome"}
    assert direct["attributes"]["gen_ai.tool.call.result"] == "Sunny in Rome"
    assert "gen_ai.tool.call.id" not in direct["attributes"]
    forecast = next(s for s in found["execute_tool Forecast-forecast"] if s["parent_span_id"] is None)
    assert forecast["attributes"]["gen_ai.tool.call.result"] == "Rain"

    for trace_root, prompt in (
        ("invoke_agent Weather", "[agent] What is the weather in Paris?"),
        ("invoke_agent Streamer", "[stream] What is the weather in Paris?"),
        ("invoke_agent WeatherB", "[gather-b] Weather?"),
    ):
        root = next(s for s in found[trace_root] if s["parent_span_id"] is None)
        assert root["attributes"]["gen_ai.agent.name"] == trace_root.split()[-1]
        assert root["attributes"]["$ai_input_state"] == prompt
        assert root["attributes"]["$ai_output_state"] == "Hello from fake OpenAI"


def test_concurrent_runs_are_separate_traces(outcomes):
    found = traces_by_root(outcomes["traced"].spans)
    first, second = found["invoke_agent WeatherA"], found["invoke_agent WeatherB"]
    assert {s["trace_id"] for s in first}.isdisjoint({s["trace_id"] for s in second})
    for spans, label in ((first, "[gather-a]"), (second, "[gather-b]")):
        for generation in (s for s in spans if event_type(s) == GEN):
            assert any(label in str(m.get("content")) for m in generation["attributes"]["$ai_input"])


def test_a_failed_model_call_fails_its_agent(outcomes):
    failed = traces_by_root(outcomes["traced"].spans)["invoke_agent Broken"]
    assert all(s["status_code"] == "ERROR" for s in failed)
    root = next(s for s in failed if s["parent_span_id"] is None)
    assert root["attributes"]["error.type"] == "semantic_kernel.ServiceResponseException"


def test_a_failing_tool_fails_its_step_and_the_run_goes_on(outcomes):
    spans = traces_by_root(outcomes["traced"].spans)["invoke_agent Fragile"]
    (tool,) = [s for s in spans if s["name"] == "execute_tool BrokenPlugin-fail"]
    assert tool["status_code"] == "ERROR" and tool["attributes"]["error.type"] == "ValueError"
    assert all(s["status_code"] != "ERROR" for s in spans if s is not tool)
    # The model was told of the error, as SK tells it.
    _, second = sorted((s for s in spans if event_type(s) == GEN), key=lambda s: s["start_ns"])
    assert "no weather for Paris" in json.dumps(second["attributes"]["$ai_input"])


def test_privacy_mode_keeps_the_tree_and_tokens_but_no_content(outcomes):
    spans = outcomes["private"].spans
    assert_no_content(spans)
    generations = successful_generations(spans)
    assert len(generations) == MODEL_CALLS - 1
    assert all(g["attributes"]["gen_ai.usage.input_tokens"] == PROMPT_TOKENS for g in generations)


def test_the_apps_own_telemetry_keeps_sks_spans_with_their_parents(outcomes):
    """With SK's diagnostics on and the app's own tracer provider: its exporter gets SK's spans
    (the model calls, agents and functions) and ours, and every parent is among them."""
    telemetry = outcomes["diagnostics"].telemetry
    assert telemetry["parents_present"] is True
    assert {
        "AutoFunctionInvocationLoop",
        "chat gpt-4o-mini",
        "chat error-400",
        "execute_tool Assistant-Answer",
        "execute_tool WeatherPlugin-get_weather",
        "invoke_agent Weather",
        "invoke_agent Streamer",
    } <= set(telemetry["semantic_kernel_spans"])
