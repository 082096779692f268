"""End to end: an unmodified Pydantic AI app under ``posthog-instrument``, against the loopback
OpenAI and PostHog stand-ins.

Pydantic AI traces itself once switched on; we switch it on at import and complete its spans in
the export pipeline. Its OpenAI models call the openai SDK, which our openai adapter records, so
each model call meets two model-call spans: Pydantic AI's ``chat`` span and ours inside it. Ours
is the one generation, Pydantic AI's becomes a step without tokens. With ``TestModel`` (no SDK
below) Pydantic AI's own span is the generation.

Event types are computed as PostHog's capture computes them (``posthog_event``), including its
rule that any ``pydantic_ai.*`` attribute makes a span an ``$ai_span``.

Importing Pydantic AI takes a while, so the app runs once per scenario group, all runs at once
in a module-scoped fixture, and the tests assert on what those runs produced.
"""

from __future__ import annotations

import contextlib
import json
import re

import pytest

from tests.e2e.app_runs import AppProcess, Outcome
from tests.servers.openai_wire import COMPLETION_TOKENS, DEFAULT_REPLY, PROMPT_TOKENS

pytest.importorskip("pydantic_ai")

SERVED_MODEL = "gpt-4o-mini-2024-08-06"
RUNS_WITH_OPENAI = ("sync", "stream", "responses", "first", "second")


@pytest.fixture(scope="module")
def outcomes() -> dict:
    plans = {
        "main": ("main", True, {}),
        "main-plain": ("main", False, {}),
        "private": ("main", True, {"POSTHOG_PRIVACY_MODE": "true"}),
        "app-choice": ("app_choice", True, {}),
        "app-choice-plain": ("app_choice", False, {}),
    }
    with contextlib.ExitStack() as stack:
        started = {
            name: AppProcess(stack, "pydantic_ai_app.py", instrumented, group, **env)
            for name, (group, instrumented, env) in plans.items()
        }
        return {name: process.outcome() for name, process in started.items()}


@pytest.fixture(scope="module")
def main(outcomes) -> Outcome:
    return outcomes["main"]


# -- helpers ---------------------------------------------------------------------------------------


def posthog_event(span: dict) -> str:
    """The event PostHog makes of a span (capture's provider rules, then root promotion)."""
    attrs = span["attributes"]
    root = span["parent_span_id"] is None
    if any(key.startswith("pydantic_ai.") for key in attrs):
        return "$ai_trace" if root else "$ai_span"
    event = {"chat": "$ai_generation", "embeddings": "$ai_embedding"}.get(
        attrs.get("gen_ai.operation.name"), "$ai_span"
    )
    return "$ai_trace" if event == "$ai_span" and root else event


def trace_of(outcome: Outcome, label: str) -> list:
    """All spans of the trace whose agent run had the prompt labelled ``[label]``."""
    roots = [
        s
        for s in outcome.spans
        if s["name"].startswith("invoke_agent") and f"[{label}]" in s["attributes"].get("$ai_input_state", "")
    ]
    assert len(roots) == 1, [s["name"] for s in roots]
    return [s for s in outcome.spans if s["trace_id"] == roots[0]["trace_id"]]


def children(spans: list, parent: dict) -> list:
    return [s for s in spans if s["parent_span_id"] == parent["span_id"]]


def tokens(span: dict) -> tuple:
    attrs = span["attributes"]
    return attrs.get("gen_ai.usage.input_tokens"), attrs.get("gen_ai.usage.output_tokens")


def printed_usage(outcome: Outcome, label: str) -> tuple:
    """What the app itself printed as the run's usage: requests, input and output tokens."""
    line = next(line for line in outcome.run.stdout.splitlines() if line.startswith(f"[{label}] '"))
    found = re.search(r"requests (\d+) in (\d+) out (\d+)$", line)
    return tuple(int(n) for n in found.groups())


def assert_openai_run(outcome: Outcome, label: str, stream: bool = False) -> dict:
    """The full tree of an agent run on an OpenAI model with one tool call; returns its parts."""
    spans = trace_of(outcome, label)
    assert len(spans) == 6, [s["name"] for s in spans]
    assert len({s["trace_id"] for s in spans}) == 1
    (root,) = [s for s in spans if s["parent_span_id"] is None]
    assert posthog_event(root) == "$ai_trace"
    assert root["name"] in ("invoke_agent weather_agent", "invoke_agent responses_agent")
    attrs = root["attributes"]
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["$ai_framework"] == "pydantic-ai"
    assert json.loads(attrs["$ai_input_state"]) == [
        {
            "role": "user",
            "parts": [
                {
                    "type": "text",
                    "content": f"[{label}] What is the weather in Paris?" + (" chunks=3" if stream else ""),
                }
            ],
        }
    ]
    assert attrs["$ai_output_state"] == DEFAULT_REPLY
    assert not [k for k in attrs if "usage" in k]

    steps = children(spans, root)
    model_steps = [s for s in steps if s["name"] == "chat gpt-4o-mini"]
    (tool,) = [s for s in steps if s["name"] == "execute_tool get_weather"]
    assert len(steps) == 3 and len(model_steps) == 2
    for step in model_steps:
        assert posthog_event(step) == "$ai_span"
        assert step["scope_name"] == "pydantic-ai"
        assert step["attributes"]["$ai_framework"] == "pydantic-ai"
        assert tokens(step) == (None, None)

    generations = []
    for step in sorted(model_steps, key=lambda s: s["start_ns"]):
        (generation,) = children(spans, step)
        assert generation["scope_name"] == "posthog_autoinstrument"
        assert posthog_event(generation) == "$ai_generation"
        gen = generation["attributes"]
        assert (gen["gen_ai.provider.name"], gen["gen_ai.response.model"]) == ("openai", SERVED_MODEL)
        assert tokens(generation) == (PROMPT_TOKENS, COMPLETION_TOKENS)
        assert gen["$ai_stream"] is stream
        assert gen["$ai_framework"] == "pydantic-ai"  # made by Pydantic AI's model request
        assert children(spans, generation) == []
        generations.append(generation)
    assert [s for s in spans if posthog_event(s) == "$ai_generation"] == [s for s in spans if s in generations] and len(
        generations
    ) == 2
    assert printed_usage(outcome, label) == (2, 2 * PROMPT_TOKENS, 2 * COMPLETION_TOKENS)

    # The first call asked for the tool, the tool ran with the model's arguments, the second call saw its result.
    first_output = generations[0]["attributes"]["$ai_output_choices"]
    assert first_output[0]["content"][0]["type"] == "function"
    assert first_output[0]["content"][0]["function"]["arguments"] == {"city": "Paris"}
    assert posthog_event(tool) == "$ai_span"
    assert tool["attributes"]["$ai_framework"] == "pydantic-ai"
    assert json.loads(tool["attributes"]["$ai_input_state"]) == {"city": "Paris"}
    assert tool["attributes"]["$ai_output_state"] == "Sunny in Paris"
    assert tool["attributes"]["gen_ai.tool.name"] == "get_weather"
    assert model_steps[0]["end_ns"] <= tool["start_ns"] or model_steps[1]["end_ns"] <= tool["start_ns"]
    second_input = generations[1]["attributes"]["$ai_input"]
    assert {"role": "tool", "content": "Sunny in Paris"} in [
        {k: m[k] for k in ("role", "content")} for m in second_input
    ]
    assert generations[1]["attributes"]["$ai_output_choices"][0]["content"] == [{"type": "text", "text": DEFAULT_REPLY}]
    return {"root": root, "tool": tool, "generations": generations, "steps": model_steps}


# -- the app ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["main", "app-choice"])
def test_the_app_is_unchanged(outcomes, name):
    traced, plain = outcomes[name], outcomes[f"{name}-plain"]
    assert traced.run.returncode == 0, traced.run.stderr
    assert plain.run.returncode == 0, plain.run.stderr
    assert traced.run.stdout == plain.run.stdout
    assert traced.rejections == []

    # What the app sent to the model is what it sends without us.
    def sent(outcome):
        return sorted(json.dumps([r["path"], r["json"]], sort_keys=True) for r in outcome.requests)

    assert sent(traced) == sent(plain)


def test_start_up_does_not_import_pydantic_ai(main):
    assert "pydantic_ai imported before the app: False" in main.run.stdout.splitlines()


def test_every_span_reaches_posthog(main):
    # Five OpenAI runs (agent, two model steps, two generations, a tool), a TestModel run (agent,
    # two generations, a tool), and the uninstrumented agent's two generations.
    assert len(main.spans) == 5 * 6 + 4 + 2


# -- runs on an OpenAI model: our generations under Pydantic AI's steps -----------------------------


def test_run_sync_is_one_trace_with_one_generation_per_model_call(main):
    parts = assert_openai_run(main, "sync")
    gen = parts["generations"][0]["attributes"]
    assert gen["$ai_input"][-1] == {"role": "user", "content": "[sync] What is the weather in Paris?"}
    assert gen["gen_ai.response.id"].startswith("chatcmpl-")


def test_run_stream_is_recorded_like_a_run(main):
    parts = assert_openai_run(main, "stream", stream=True)
    for step in parts["steps"]:
        assert step["attributes"]["gen_ai.request.stream"] is True


def test_the_responses_api_model(main):
    parts = assert_openai_run(main, "responses")
    assert all(g["attributes"]["gen_ai.response.id"].startswith("resp_") for g in parts["generations"])


def test_the_model_steps_keep_what_pydantic_ai_saw(main):
    step = assert_openai_run(main, "sync")["steps"][0]["attributes"]
    assert step["gen_ai.provider.name"] == "openai" and step["gen_ai.request.model"] == "gpt-4o-mini"
    assert step["$ai_input"][0] == {"role": "system", "content": "Answer in one sentence."}
    assert not [k for k in step if k.startswith(("pydantic_ai.", "logfire.")) or k == "model_request_parameters"]


def test_two_concurrent_runs_are_two_traces_that_do_not_mix(main):
    first, second = assert_openai_run(main, "first"), assert_openai_run(main, "second")
    assert first["root"]["trace_id"] != second["root"]["trace_id"]
    first_trace, second_trace = trace_of(main, "first"), trace_of(main, "second")
    assert "[second]" not in json.dumps(first_trace) and "[first]" not in json.dumps(second_trace)
    # They did run at the same time.
    assert first["root"]["start_ns"] < second["root"]["end_ns"] and second["root"]["start_ns"] < first["root"]["end_ns"]


# -- a model we do not instrument: Pydantic AI's span is the generation ----------------------------


def test_a_test_model_run_has_pydantic_ais_generations(main):
    spans = trace_of(main, "testmodel")
    assert len(spans) == 4
    (root,) = [s for s in spans if s["parent_span_id"] is None]
    generations = sorted((s for s in spans if posthog_event(s) == "$ai_generation"), key=lambda s: s["start_ns"])
    assert len(generations) == 2
    for generation in generations:
        attrs = generation["attributes"]
        assert generation["parent_span_id"] == root["span_id"]
        assert generation["scope_name"] == "pydantic-ai" and generation["name"] == "chat test"
        assert (attrs["gen_ai.provider.name"], attrs["gen_ai.response.model"]) == ("test", "test")
        assert attrs["$ai_framework"] == "pydantic-ai"
        assert attrs["$ai_stream"] is False
    requests, input_tokens, output_tokens = printed_usage(main, "testmodel")
    assert requests == 2
    assert sum(tokens(g)[0] for g in generations) == input_tokens
    assert sum(tokens(g)[1] for g in generations) == output_tokens
    assert generations[0]["attributes"]["$ai_input"] == [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "[testmodel] What is the weather?"},
    ]
    (tool,) = [s for s in spans if s["name"] == "execute_tool get_weather"]
    assert tool["attributes"]["$ai_output_state"] == "Sunny in a"
    assert json.loads(root["attributes"]["$ai_output_state"]) == {"get_weather": "Sunny in a"}


# -- the app's own choices ---------------------------------------------------------------------


def test_an_agent_the_app_left_uninstrumented_has_only_our_generations(main):
    quiet = [s for s in main.spans if "[quiet]" in json.dumps(s["attributes"].get("$ai_input", ""))]
    assert len(quiet) == 2
    for span in quiet:
        assert span["scope_name"] == "posthog_autoinstrument"
        assert posthog_event(span) == "$ai_generation" and span["parent_span_id"] is None
        assert "$ai_framework" not in span["attributes"]  # no span of Pydantic AI's around it
    assert not [s for s in main.spans if s["scope_name"] == "pydantic-ai" and "quiet_agent" in json.dumps(s)]


def test_the_apps_own_instrumentation_settings_stand(outcomes):
    spans = outcomes["app-choice"].spans
    assert len(spans) == 4
    assert {s["scope_name"] for s in spans} == {"pydantic-ai"}
    # The app asked for no content, and for Pydantic AI's default format (tool results as user messages).
    assert "[own-choice]" not in json.dumps(spans) and "Sunny" not in json.dumps(spans)
    (second,) = [s for s in spans if s["name"] == "chat test" and len(s["attributes"]["$ai_input"]) == 3]
    roles = [message["role"] for message in second["attributes"]["$ai_input"]]
    assert roles == ["user", "assistant", "tool"]  # the tool result, as PostHog renders one
    assert all(posthog_event(s) == "$ai_generation" for s in spans if s["name"] == "chat test")


# -- privacy -----------------------------------------------------------------------------------------


def test_privacy_mode_sends_no_content(outcomes, main):
    private = outcomes["private"]
    assert private.run.returncode == 0, private.run.stderr
    assert private.run.stdout == main.run.stdout
    assert len(private.spans) == len(main.spans)
    everything = json.dumps(private.spans)
    for text in ("Paris", "Sunny", DEFAULT_REPLY, "[sync]", "Answer in one sentence", "weather?"):
        assert text not in everything, text
    for span in private.spans:
        attrs = span["attributes"]
        assert not [
            k
            for k in attrs
            if k
            in (
                "gen_ai.input.messages",
                "gen_ai.output.messages",
                "$ai_input",
                "$ai_output_choices",
                "$ai_input_state",
                "$ai_output_state",
                "gen_ai.system_instructions",
            )
        ]
    generations = [s for s in private.spans if posthog_event(s) == "$ai_generation"]
    assert len(generations) == 2 * 5 + 2 + 2  # the same generations, tokens included
    assert all(tokens(g)[0] for g in generations)
