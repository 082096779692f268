"""End to end: an unmodified DSPy app under ``posthog-instrument``, against the loopback OpenAI
and PostHog stand-ins.

DSPy (3.4) reaches the model two ways, and both must come out as exactly one generation per
model call:

* through its own HTTP engine (lm15, the default for ``openai/...`` with an ``api_base``): no
  adapter sees the request, so DSPy's model-call span is the generation;
* through LiteLLM (``engine="litellm"``): LiteLLM's span (it reaches OpenAI over the openai
  client's low-level ``post``, which no adapter sees) is the generation, and DSPy's model-call
  span above it a token-less step.

Modules and predictors are ``invoke_workflow`` steps, ReAct an ``invoke_agent`` step, its tool an
``execute_tool`` step. The fake server answers in the field format DSPy's ChatAdapter reads (the
app's ``reply="..."`` directives). The app runs two scenario groups, each with and without
instrumentation, all four processes at once (importing DSPy and LiteLLM dominates the time).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import tempfile
from dataclasses import dataclass

import pytest

from tests.conftest import AppRun
from tests.e2e.app_runs import AppProcess
from tests.e2e.traces import event_type, tree
from tests.servers.openai_wire import CACHED_TOKENS, COMPLETION_TOKENS, PROMPT_TOKENS, REASONING_TOKENS

# Found, not imported: importing them here would only slow the test process down.
if importlib.util.find_spec("dspy") is None or importlib.util.find_spec("litellm") is None:
    pytest.skip("dspy and litellm are not installed", allow_module_level=True)

SERVED_MODEL = "gpt-4o-mini-2024-08-06"


@dataclass
class Outcome:
    instrumented: AppRun
    plain: AppRun
    spans: list
    rejections: list
    requests_instrumented: list
    requests_plain: list


def _start(stack: contextlib.ExitStack, group: str, instrumented: bool, **extra_env: str) -> AppProcess:
    """One run of the app against its own stand-ins and its own DSPy cache directory."""
    return AppProcess(
        stack,
        "dspy_app.py",
        instrumented,
        group,
        base_url_variable="DSPY_APP_API_BASE",
        DSPY_CACHEDIR=stack.enter_context(tempfile.TemporaryDirectory()),  # a cold cache every run
        LITELLM_LOCAL_MODEL_COST_MAP="True",  # no network (DSPy's model metadata reads it too)
        **extra_env,
    )


@pytest.fixture(scope="module")
def outcomes() -> dict:
    groups = ("sync", "async")
    with contextlib.ExitStack() as stack:
        started = {
            (group, instrumented): _start(stack, group, instrumented)
            for group in groups
            for instrumented in (True, False)
        }
        private = _start(stack, "async", True, POSTHOG_PRIVACY_MODE="true")
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
            )
        results["private"] = Outcome(
            private.result(),
            results["async"].plain,
            private.posthog.spans,
            private.posthog.rejections,
            private.openai.requests,
            results["async"].requests_plain,
        )
    return results


@pytest.fixture(scope="module")
def sync_run(outcomes) -> Outcome:
    return outcomes["sync"]


@pytest.fixture(scope="module")
def async_run(outcomes) -> Outcome:
    return outcomes["async"]


# -- helpers ---------------------------------------------------------------------------------------


def run_of(outcome: Outcome, label: str) -> list:
    """All spans of the one trace whose root module was asked the question labelled ``label``."""
    roots = [
        s
        for s in outcome.spans
        if s["parent_span_id"] is None and f"[{label}]" in s["attributes"].get("$ai_input_state", "")
    ]
    assert len(roots) == 1, [r["name"] for r in roots]
    return [s for s in outcome.spans if s["trace_id"] == roots[0]["trace_id"]]


def named(spans: list, name: str) -> list:
    return [s for s in spans if s["name"] == name]


def state(span: dict, key: str):
    return json.loads(span["attributes"][key])


def assert_generation(span: dict, label: str, text: str) -> None:
    attrs = span["attributes"]
    assert event_type(span) == "$ai_generation"
    assert span["name"] == "chat gpt-4o-mini"
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
    assert attrs["$ai_stop_reason"] == "stop"
    assert attrs["server.address"] == "127.0.0.1"
    messages = attrs["$ai_input"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert f"[{label}]" in messages[1]["content"]
    (output,) = attrs["$ai_output_choices"]
    assert output["role"] == "assistant" and attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert text in output["content"][0]["text"]


def assert_no_tokens(span: dict) -> None:
    assert not [k for k in span["attributes"] if k.startswith("gen_ai.usage.") or k == "$ai_reasoning_tokens"]


def assert_app_unchanged(outcome: Outcome) -> None:
    assert outcome.instrumented.returncode == 0, outcome.instrumented.stderr
    assert outcome.plain.returncode == 0, outcome.plain.stderr
    assert outcome.instrumented.stdout == outcome.plain.stdout
    assert outcome.instrumented.stdout.endswith("done\n")
    assert outcome.rejections == []

    def sent(requests):  # what DSPy sent the model, in a comparable form
        return sorted(json.dumps([r["path"], r["json"]], sort_keys=True) for r in requests)

    assert sent(outcome.requests_instrumented) == sent(outcome.requests_plain)


# -- the app ---------------------------------------------------------------------------------------


def test_the_app_is_unchanged(sync_run, async_run):
    assert_app_unchanged(sync_run)
    assert_app_unchanged(async_run)
    assert "cot It is Paris. | Paris" in sync_run.instrumented.stdout


def test_one_generation_per_model_request(sync_run, async_run):
    """Every request the model server answered is exactly one generation, with its tokens."""
    for outcome in (sync_run, async_run):
        generations = [s for s in outcome.spans if event_type(s) == "$ai_generation"]
        assert len(generations) == len(outcome.requests_instrumented)
        assert all(g["attributes"]["gen_ai.usage.input_tokens"] == PROMPT_TOKENS for g in generations)
        by_id = {s["span_id"]: s for s in outcome.spans}
        for span in outcome.spans:
            if span["attributes"].get("$ai_framework") != "dspy":
                # Only LiteLLM's generations, each under DSPy's model-call step.
                parent = by_id[span["parent_span_id"]]
                assert event_type(span) == "$ai_generation"
                assert (parent["name"], event_type(parent)) == ("chat gpt-4o-mini", "$ai_span")


# -- ChainOfThought over DSPy's own HTTP engine -----------------------------------------------------


def test_chain_of_thought_is_a_trace_of_module_predictor_and_generation(sync_run):
    spans = run_of(sync_run, "cot")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow ChainOfThought"),
        (1, "$ai_span", "invoke_workflow Predict"),
        (2, "$ai_generation", "chat gpt-4o-mini"),
    ]
    (root,) = named(spans, "invoke_workflow ChainOfThought")
    (predict,) = named(spans, "invoke_workflow Predict")
    (generation,) = named(spans, "chat gpt-4o-mini")
    assert len({s["trace_id"] for s in spans}) == 1
    assert predict["parent_span_id"] == root["span_id"] and generation["parent_span_id"] == predict["span_id"]
    assert all(s["attributes"]["$ai_framework"] == "dspy" for s in spans)

    attrs = root["attributes"]
    assert attrs["gen_ai.operation.name"] == "invoke_workflow"
    assert attrs["gen_ai.workflow.name"] == "ChainOfThought"
    assert "[cot] What is the capital of France?" in state(root, "$ai_input_state")["question"]
    assert state(root, "$ai_output_state") == {"reasoning": "It is Paris.", "answer": "Paris"}
    assert_no_tokens(root)

    assert predict["attributes"]["dspy.signature"] == "question -> reasoning, answer"
    assert state(predict, "$ai_output_state") == {"reasoning": "It is Paris.", "answer": "Paris"}
    assert_no_tokens(predict)

    assert_generation(generation, "cot", "[[ ## answer ## ]]\nParis")
    assert generation["attributes"]["code.file.path"].endswith("dspy_app.py")


def test_over_litellm_the_litellm_span_is_the_generation(sync_run, async_run):
    for outcome, label in ((sync_run, "cot-litellm"), (async_run, "acot-litellm")):
        spans = run_of(outcome, label)
        assert tree(spans) == [
            (0, "$ai_trace", "invoke_workflow ChainOfThought"),
            (1, "$ai_span", "invoke_workflow Predict"),
            (2, "$ai_span", "chat gpt-4o-mini"),  # DSPy's model call: a step
            (3, "$ai_generation", "chat gpt-4o-mini"),  # LiteLLM's: the one generation
        ]
        dspy_call, litellm_call = sorted(named(spans, "chat gpt-4o-mini"), key=lambda s: s["start_ns"])
        assert litellm_call["parent_span_id"] == dspy_call["span_id"]
        assert_no_tokens(dspy_call)
        assert "gen_ai.operation.name" not in dspy_call["attributes"]
        assert dspy_call["attributes"]["$ai_framework"] == "dspy"
        # its messages once, as state: the generation under it carries them too
        assert f"[{label}]" in dspy_call["attributes"]["$ai_input_state"]
        assert "gen_ai.input.messages" not in dspy_call["attributes"] and "$ai_input" not in dspy_call["attributes"]
        assert_generation(litellm_call, label, "[[ ## answer ## ]]")


def test_a_user_module_with_forward(sync_run):
    spans = run_of(sync_run, "custom")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow Summarize"),
        (1, "$ai_span", "invoke_workflow ChainOfThought"),
        (2, "$ai_span", "invoke_workflow Predict"),
        (3, "$ai_generation", "chat gpt-4o-mini"),
        (1, "$ai_span", "invoke_workflow Predict"),
        (2, "$ai_generation", "chat gpt-4o-mini"),
    ]
    (root,) = named(spans, "invoke_workflow Summarize")
    assert state(root, "$ai_output_state") == {"answer": "Marseille", "summary": "short"}


# -- ReAct: an agent with a tool ----------------------------------------------------------------------


def _assert_react(spans: list, label: str) -> None:
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_agent ReAct"),
        (1, "$ai_span", "invoke_workflow Predict"),  # the step: which tool, with which arguments
        (2, "$ai_generation", "chat gpt-4o-mini"),
        (1, "$ai_span", "execute_tool get_weather"),
        (1, "$ai_span", "invoke_workflow ChainOfThought"),  # the final extraction
        (2, "$ai_span", "invoke_workflow Predict"),
        (3, "$ai_generation", "chat gpt-4o-mini"),
    ]
    (agent,) = named(spans, "invoke_agent ReAct")
    assert agent["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert agent["attributes"]["gen_ai.agent.name"] == "ReAct"
    assert f"[{label}] What is the weather in Paris?" in state(agent, "$ai_input_state")["question"]
    output = state(agent, "$ai_output_state")
    assert output["answer"] == "Sunny in Paris"
    assert output["trajectory"]["observation_0"] == "It is sunny in Paris."

    (tool,) = named(spans, "execute_tool get_weather")
    attrs = tool["attributes"]
    assert tool["parent_span_id"] == agent["span_id"]
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["gen_ai.tool.name"] == "get_weather"
    assert attrs["gen_ai.tool.type"] == "function"
    assert attrs["gen_ai.tool.description"] == "Weather for a city."
    assert json.loads(attrs["gen_ai.tool.call.arguments"]) == {"city": "Paris"}
    assert attrs["gen_ai.tool.call.result"] == "It is sunny in Paris."
    assert json.loads(attrs["$ai_input_state"]) == {"city": "Paris"}
    assert attrs["$ai_framework"] == "dspy"
    assert_no_tokens(tool)

    step, extract_predict = named(spans, "invoke_workflow Predict")
    assert "next_tool_name" in step["attributes"]["dspy.signature"]
    assert state(step, "$ai_output_state")["next_tool_args"] == {"city": "Paris"}
    # The tool ran after the model chose it, and before the answer was extracted.
    (first, second) = sorted(named(spans, "chat gpt-4o-mini"), key=lambda s: s["start_ns"])
    assert first["end_ns"] <= tool["start_ns"] and tool["end_ns"] <= second["start_ns"]
    for generation in (first, second):
        assert_generation(generation, label, "[[ ## next_tool_name ## ]]\nget_weather")


def test_react_is_an_agent_with_its_tool(sync_run):
    _assert_react(run_of(sync_run, "react"), "react")


def test_async_react_with_an_async_tool(async_run):
    _assert_react(run_of(async_run, "areact"), "areact")


# -- async, concurrency ------------------------------------------------------------------------------


def test_acall_builds_the_same_tree(async_run):
    spans = run_of(async_run, "acot")
    assert tree(spans) == [
        (0, "$ai_trace", "invoke_workflow ChainOfThought"),
        (1, "$ai_span", "invoke_workflow Predict"),
        (2, "$ai_generation", "chat gpt-4o-mini"),
    ]
    (generation,) = named(spans, "chat gpt-4o-mini")
    assert_generation(generation, "acot", "Bordeaux")


@pytest.mark.parametrize("group, labels", [("sync", ("thread-a", "thread-b")), ("async", ("gather-a", "gather-b"))])
def test_concurrent_runs_are_separate_traces(outcomes, group, labels):
    outcome = outcomes[group]
    runs = [run_of(outcome, label) for label in labels]
    assert runs[0][0]["trace_id"] != runs[1][0]["trace_id"]
    for spans, label, other in ((runs[0], labels[0], labels[1]), (runs[1], labels[1], labels[0])):
        assert [t[1:] for t in tree(spans)] == [
            ("$ai_trace", "invoke_workflow ChainOfThought"),
            ("$ai_span", "invoke_workflow Predict"),
            ("$ai_generation", "chat gpt-4o-mini"),
        ]
        text = json.dumps([s["attributes"] for s in spans])
        assert f"[{label}]" in text and f"[{other}]" not in text
        (generation,) = named(spans, "chat gpt-4o-mini")
        assert_generation(generation, label, label.upper())


# -- DSPy's response cache ------------------------------------------------------------------------------


def test_a_cached_answer_is_shown_but_is_no_generation(sync_run):
    roots = [
        s
        for s in sync_run.spans
        if s["parent_span_id"] is None and "[cache]" in s["attributes"].get("$ai_input_state", "")
    ]
    first, second = sorted(roots, key=lambda s: s["start_ns"])
    fresh = [s for s in sync_run.spans if s["trace_id"] == first["trace_id"]]
    cached = [s for s in sync_run.spans if s["trace_id"] == second["trace_id"]]
    assert [t[1] for t in tree(fresh)] == ["$ai_trace", "$ai_span", "$ai_generation"]
    assert tree(cached) == [
        (0, "$ai_trace", "invoke_workflow ChainOfThought"),
        (1, "$ai_span", "invoke_workflow Predict"),
        (2, "$ai_span", "chat gpt-4o-mini"),
    ]
    (hit,) = named(cached, "chat gpt-4o-mini")
    assert hit["attributes"]["dspy.cache_hit"] is True
    assert "gen_ai.operation.name" not in hit["attributes"]
    assert_no_tokens(hit)
    assert "Nice" in hit["attributes"]["$ai_output_state"]  # the cached answer is still shown
    (generation,) = named(fresh, "chat gpt-4o-mini")
    assert "dspy.cache_hit" not in generation["attributes"]
    assert_generation(generation, "cache", "Nice")
    # Only the first call reached the model.
    assert len([r for r in sync_run.requests_instrumented if "[cache]" in json.dumps(r["json"])]) == 1


# -- privacy -----------------------------------------------------------------------------------------


def test_privacy_mode_keeps_the_tree_and_tokens_but_no_content(outcomes):
    private, normal = outcomes["private"], outcomes["async"]
    assert_app_unchanged(private)
    shape = sorted((event_type(s), s["name"]) for s in private.spans)
    assert shape == sorted((event_type(s), s["name"]) for s in normal.spans)
    generations = [s for s in private.spans if event_type(s) == "$ai_generation"]
    assert generations and all(g["attributes"]["gen_ai.usage.input_tokens"] == PROMPT_TOKENS for g in generations)
    content_keys = (
        "$ai_input_state",
        "$ai_output_state",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "$ai_input",
        "$ai_output_choices",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    )
    for span in private.spans:
        assert not [k for k in content_keys if k in span["attributes"]], span["name"]
    everything = json.dumps([s["attributes"] for s in private.spans])
    assert "Paris" not in everything and "Bordeaux" not in everything and "sunny" not in everything
