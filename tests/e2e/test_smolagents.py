"""End to end: an unmodified smolagents app under ``posthog-instrument``, against the loopback
OpenAI and PostHog stand-ins.

``ToolCallingAgent`` and ``CodeAgent`` runs are ``invoke_agent`` traces, their action steps
``step N`` spans and planning steps ``planning N`` (also when the app reads a run as a stream of steps), tools (``final_answer`` included) ``execute_tool`` spans with arguments,
results and errors; each model call is exactly one generation, the provider SDK's: the openai
SDK's for ``OpenAIServerModel``, LiteLLM's for ``LiteLLMModel``. A ``CodeAgent``'s code runs in
the local executor's worker thread, and its tool calls still nest under their step.

One launcher run with content, one in privacy mode and one plain run, all at once.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.e2e.app_runs import Outcome, traced_plain_private
from tests.e2e.traces import assert_no_content, event_type, named, run_of, tree
from tests.servers.openai_wire import CACHED_TOKENS, COMPLETION_TOKENS, PROMPT_TOKENS

if importlib.util.find_spec("smolagents") is None or importlib.util.find_spec("litellm") is None:
    pytest.skip("smolagents and litellm are not installed", allow_module_level=True)

MODEL_REQUESTS = 15


@pytest.fixture(scope="module")
def outcomes() -> dict:
    return traced_plain_private("smolagents_app.py", LITELLM_LOCAL_MODEL_COST_MAP="True")  # no network


@pytest.fixture(scope="module")
def traced(outcomes) -> Outcome:
    return outcomes["traced"]


def assert_generation(span: dict, via_litellm: bool) -> None:
    attrs = span["attributes"]
    assert event_type(span) == "$ai_generation"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.usage.input_tokens"] == PROMPT_TOKENS
    assert attrs["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == CACHED_TOKENS
    # Which SDK recorded it: LiteLLM's adapter, or the openai SDK's (which knows the base URL).
    assert ("$ai_base_url" in attrs) is not via_litellm


TOOL_CALLING_TREE = [
    (0, "$ai_trace", "invoke_agent ToolCallingAgent"),
    (1, "$ai_span", "step 1"),
    (2, "$ai_generation", "chat gpt-4o-mini"),
    (2, "$ai_span", "execute_tool get_weather"),
    (1, "$ai_span", "step 2"),
    (2, "$ai_generation", "chat gpt-4o-mini"),
    (2, "$ai_span", "execute_tool final_answer"),
]

CODE_TREE = [
    (0, "$ai_trace", "invoke_agent CodeAgent"),
    (1, "$ai_span", "step 1"),
    (2, "$ai_generation", "chat gpt-4o-mini"),
    (2, "$ai_span", "execute_tool get_weather"),
    (2, "$ai_span", "execute_tool final_answer"),
]


def test_the_app_is_unchanged(outcomes):
    traced, plain, private = outcomes["traced"], outcomes["plain"], outcomes["private"]
    for outcome in outcomes.values():
        assert outcome.run.returncode == 0, outcome.run.stderr
    assert traced.run.stdout == plain.run.stdout == private.run.stdout
    assert traced.run.stdout.endswith("done\n")
    assert "code Sunny in Paris call=final_answer\n" in traced.run.stdout
    assert traced.rejections == [] and private.rejections == []

    def sent(requests):
        return sorted(json.dumps([r["path"], r["json"]], sort_keys=True) for r in requests)

    assert sent(traced.requests) == sent(plain.requests)


def test_one_generation_per_model_call(traced):
    generations = [s for s in traced.spans if event_type(s) == "$ai_generation"]
    assert len(traced.requests) == MODEL_REQUESTS
    assert len(generations) == MODEL_REQUESTS
    by_id = {s["span_id"]: s for s in traced.spans}
    for generation in generations:  # each under its step (or, for the last-chance answer, the run)
        assert by_id[generation["parent_span_id"]]["attributes"]["$ai_framework"] == "smolagents"


@pytest.mark.parametrize("label, via_litellm", [("tools", False), ("litellm", True), ("stream", False)])
def test_a_tool_calling_run(traced, label, via_litellm):
    spans = run_of(traced.spans, label)
    assert tree(spans) == TOOL_CALLING_TREE
    root = named(spans, "invoke_agent ToolCallingAgent")[0]
    assert root["attributes"]["$ai_framework"] == "smolagents"
    assert root["attributes"]["gen_ai.agent.name"] == "ToolCallingAgent"
    assert root["attributes"]["$ai_input_state"] == f"[{label}] What is the weather in Paris?"
    assert root["attributes"]["$ai_output_state"] == "sample"  # the stand-in's final_answer argument
    for generation in named(spans, "chat gpt-4o-mini"):
        assert_generation(generation, via_litellm)
    (weather,) = named(spans, "execute_tool get_weather")
    assert json.loads(weather["attributes"]["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert weather["attributes"]["gen_ai.tool.call.result"] == "Sunny in Paris call=final_answer"
    assert weather["attributes"]["gen_ai.tool.description"] == "The weather in a city."
    (answer,) = named(spans, "execute_tool final_answer")
    assert json.loads(answer["attributes"]["gen_ai.tool.call.arguments"]) == {"answer": "sample"}


@pytest.mark.parametrize("label, via_litellm", [("code", False), ("code-litellm", True)])
def test_a_code_agent_run_with_the_local_executor(traced, label, via_litellm):
    spans = run_of(traced.spans, label)
    assert tree(spans) == CODE_TREE
    (root,) = named(spans, "invoke_agent CodeAgent")
    assert root["attributes"]["$ai_output_state"] == "Sunny in Paris call=final_answer"
    assert_generation(named(spans, "chat gpt-4o-mini")[0], via_litellm)
    (weather,) = named(spans, "execute_tool get_weather")
    assert json.loads(weather["attributes"]["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert weather["attributes"]["gen_ai.tool.call.result"] == "Sunny in Paris call=final_answer"


def test_a_failing_tool_is_an_error_span_and_the_run_goes_on(traced):
    spans = run_of(traced.spans, "failing")
    assert [entry for entry in tree(spans) if entry[0] <= 1] == [
        (0, "$ai_trace", "invoke_agent ToolCallingAgent"),
        (1, "$ai_span", "step 1"),
        (1, "$ai_generation", "chat gpt-4o-mini"),  # the answer smolagents asks for at max steps
    ]
    failures = named(spans, "execute_tool broken_lookup")
    assert len(failures) == 1
    for failure in failures:
        assert failure["status_code"] == "ERROR"
        assert failure["attributes"]["error.type"] == "RuntimeError"
        assert json.loads(failure["attributes"]["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert named(spans, "invoke_agent ToolCallingAgent")[0]["status_code"] != "ERROR"


def test_a_planning_step(traced):
    spans = run_of(traced.spans, "planning")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_agent CodeAgent"),
        (1, "$ai_span", "planning 1"),
        (2, "$ai_generation", "chat gpt-4o-mini"),
        (1, "$ai_span", "step 1"),
        (2, "$ai_generation", "chat gpt-4o-mini"),
        (1, "$ai_generation", "chat gpt-4o-mini"),  # the answer smolagents asks for at max steps
    ]
    for generation in named(spans, "chat gpt-4o-mini"):
        assert_generation(generation, via_litellm=False)


def test_concurrent_runs_are_separate_traces(traced):
    runs = [run_of(traced.spans, label) for label in ("concurrent-a", "concurrent-b")]
    assert runs[0][0]["trace_id"] != runs[1][0]["trace_id"]
    for spans in runs:
        assert tree(spans) == CODE_TREE


def test_privacy_mode_keeps_the_tree_without_content(outcomes):
    private = outcomes["private"]
    assert len([s for s in private.spans if event_type(s) == "$ai_generation"]) == MODEL_REQUESTS
    roots = [s for s in private.spans if s["parent_span_id"] is None]
    assert sorted(r["name"] for r in roots) == ["invoke_agent CodeAgent"] * 5 + ["invoke_agent ToolCallingAgent"] * 4
    assert_no_content(private.spans)
