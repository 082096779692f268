"""End to end: an unmodified Strands Agents app under ``posthog-instrument``, against the loopback
OpenAI, Bedrock, Anthropic and PostHog stand-ins.

Strands traces itself (agent run, event-loop cycles, model requests, tool calls) with its content
in span events; the export pipeline reads those events and completes the spans. Its
``OpenAIModel`` calls the openai SDK, which our openai adapter records, so each model call meets
two model-call spans: Strands' ``chat`` span and ours inside it. Ours is the one generation,
Strands' becomes a step without tokens. The same holds for Strands' other model providers
(``providers`` group): ``BedrockModel`` (boto3, our Bedrock adapter), ``AnthropicModel`` (the
anthropic SDK, which records its own span as well) and ``LiteLLMModel`` (our LiteLLM adapter).

The app runs once per scenario group, all at once in a module-scoped fixture, and the tests
assert on what those runs produced.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field

import pytest

from tests.conftest import AppRun
from tests.e2e.app_runs import AppProcess
from tests.e2e.traces import event_type, tree
from tests.servers import anthropic_server, bedrock_server
from tests.servers.anthropic_server import FakeAnthropic
from tests.servers.bedrock_server import FakeBedrock
from tests.servers.openai_wire import CACHED_TOKENS, COMPLETION_TOKENS, DEFAULT_REPLY, PROMPT_TOKENS, TOOL_CALL_ID
from tests.servers.otlp_collector import FakeCollector

pytest.importorskip("strands")

SERVED_MODEL = "gpt-4o-mini-2024-08-06"
LABELS = ("sync", "stream", "first", "second", "error")
# What Strands answers: str(AgentResult), its text blocks each followed by a newline.
ANSWER = DEFAULT_REPLY + "\n"


@dataclass
class Outcome:
    run: AppRun
    spans: list
    rejections: list
    requests: list
    collected: list = field(default_factory=list)


class _AppProcess:
    """The app against its own stand-ins: by group, an OTLP collector or Bedrock and Anthropic too."""

    def __init__(self, stack: contextlib.ExitStack, group: str, instrumented: bool, **env: str):
        self.collector = None
        other_model_servers = []
        if group == "own_telemetry":
            self.collector = stack.enter_context(FakeCollector())
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = self.collector.endpoint
        if group == "providers":
            bedrock = stack.enter_context(FakeBedrock())
            anthropic = stack.enter_context(FakeAnthropic())
            other_model_servers = [bedrock, anthropic]
            env.update(
                AWS_ENDPOINT_URL_BEDROCK_RUNTIME=bedrock.endpoint_url,
                AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
                AWS_SECRET_ACCESS_KEY="fake-secret",
                AWS_DEFAULT_REGION="us-east-1",
                AWS_MAX_ATTEMPTS="1",
                AWS_EC2_METADATA_DISABLED="true",
                AWS_CONFIG_FILE=os.devnull,
                AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                ANTHROPIC_BASE_URL=anthropic.base_url,
                ANTHROPIC_API_KEY="sk-ant-test-key",
                LITELLM_LOCAL_MODEL_COST_MAP="True",  # no network: never fetch the cost map
            )
        self.process = AppProcess(stack, "strands_app.py", instrumented, group, **env)
        self.model_servers = [self.process.openai, *other_model_servers]

    def outcome(self) -> Outcome:
        run = self.process.result()
        collected = self.collector.spans if self.collector is not None else []
        requests = [request for server in self.model_servers for request in server.requests]
        posthog = self.process.posthog
        return Outcome(run, posthog.spans, posthog.rejections, requests, collected)


@pytest.fixture(scope="module")
def outcomes() -> dict:
    plans = {
        "main": ("main", True, {}),
        "main-plain": ("main", False, {}),
        "private": ("main", True, {"POSTHOG_PRIVACY_MODE": "true"}),
        "latest": ("main", True, {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"}),
        "own-telemetry": ("own_telemetry", True, {}),
        "providers": ("providers", True, {}),
        "providers-plain": ("providers", False, {}),
    }
    with contextlib.ExitStack() as stack:
        started = {
            name: _AppProcess(stack, group, instrumented, **env) for name, (group, instrumented, env) in plans.items()
        }
        return {name: process.outcome() for name, process in started.items()}


@pytest.fixture(scope="module")
def main(outcomes) -> Outcome:
    return outcomes["main"]


# -- helpers ---------------------------------------------------------------------------------------

# The whole run as PostHog shows it: two event-loop cycles, the first calling the tool.
EXPECTED_TREE = [
    (0, "$ai_trace", "invoke_agent weather"),
    (1, "$ai_span", "execute_event_loop_cycle"),
    (2, "$ai_span", "chat"),
    (3, "$ai_generation", "chat gpt-4o-mini"),
    (2, "$ai_span", "execute_tool get_weather"),
    (1, "$ai_span", "execute_event_loop_cycle"),
    (2, "$ai_span", "chat"),
    (3, "$ai_generation", "chat gpt-4o-mini"),
]


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
    return sorted((s for s in spans if s["parent_span_id"] == parent["span_id"]), key=lambda s: s["start_ns"])


def sent(outcome: Outcome) -> list:
    """What the app sent its models: paths and bodies, in a stable order."""
    return sorted(json.dumps([r["path"], r["json"]], sort_keys=True) for r in outcome.requests)


def tokens(span: dict) -> tuple:
    attrs = span["attributes"]
    return attrs.get("gen_ai.usage.input_tokens"), attrs.get("gen_ai.usage.output_tokens")


def printed_usage(outcome: Outcome, label: str) -> tuple:
    """The input and output tokens the app printed for the run (Strands' own totals)."""
    line = next(line for line in outcome.run.stdout.splitlines() if line.startswith(f"[{label}] '"))
    return tuple(int(n) for n in re.search(r"in (\d+) out (\d+)$", line).groups())


def assert_run(outcome: Outcome, label: str, tool_name: str = "get_weather", stream: bool = True) -> dict:
    """The full tree of one agent run with one tool call; returns its parts."""
    spans = trace_of(outcome, label)
    expected = [(d, e, n.replace("get_weather", tool_name)) for d, e, n in EXPECTED_TREE]
    assert tree(spans) == expected
    (root,) = [s for s in spans if s["parent_span_id"] is None]
    attrs = root["attributes"]
    assert attrs["gen_ai.operation.name"] == "invoke_agent" and attrs["gen_ai.agent.name"] == "weather"
    assert attrs["$ai_framework"] == "strands"
    assert json.loads(attrs["$ai_input_state"]) == [
        {"role": "user", "parts": [{"type": "text", "content": f"[{label}] What is the weather in Paris?"}]}
        if label != "stream"
        else {"role": "user", "parts": [{"type": "text", "content": "[stream] What is the weather in Paris? chunks=3"}]}
    ]
    assert attrs["$ai_output_state"] == ANSWER
    assert not [k for k in attrs if "usage" in k or k in ("gen_ai.system", "gen_ai.provider.name")]

    cycles = children(spans, root)
    model_steps = [s for cycle in cycles for s in children(spans, cycle) if s["name"] == "chat"]
    (tool,) = [s for s in children(spans, cycles[0]) if s["name"].startswith("execute_tool")]
    for step in cycles + model_steps + [tool]:
        assert step["scope_name"] == "strands.telemetry.tracer"
        assert step["attributes"]["$ai_framework"] == "strands"
        assert tokens(step) == (None, None)
        assert not [e for e in step["events"] if e["name"] != "exception"]
    for step in model_steps:
        assert "gen_ai.operation.name" not in step["attributes"]  # a step: its generation is ours

    generations = [children(spans, step)[0] for step in model_steps]
    for generation in generations:
        gen = generation["attributes"]
        assert generation["scope_name"] == "posthog_autoinstrument"
        assert (gen["gen_ai.provider.name"], gen["gen_ai.response.model"]) == ("openai", SERVED_MODEL)
        assert tokens(generation) == (PROMPT_TOKENS, COMPLETION_TOKENS)
        assert gen["$ai_stream"] is stream
        assert gen["$ai_framework"] == "strands"  # a generation Strands' model made names the framework
    assert printed_usage(outcome, label) == (2 * PROMPT_TOKENS, 2 * COMPLETION_TOKENS)

    # The first call asked for the tool, the tool ran with the model's arguments, the second call saw its result.
    first_output = generations[0]["attributes"]["$ai_output_choices"]
    assert first_output[0]["content"][0]["function"] == {"name": tool_name, "arguments": {"city": "Paris"}}
    tool_attrs = tool["attributes"]
    assert tool_attrs["gen_ai.tool.name"] == tool_name and tool_attrs["gen_ai.tool.call.id"] == TOOL_CALL_ID
    assert json.loads(tool_attrs["$ai_input_state"]) == {"city": "Paris"}
    assert generations[1]["attributes"]["$ai_output_choices"][0]["content"] == [{"type": "text", "text": DEFAULT_REPLY}]
    return {"root": root, "tool": tool, "generations": generations, "steps": model_steps, "cycles": cycles}


# -- the app -----------------------------------------------------------------------------------------


def test_the_app_is_unchanged(outcomes):
    traced, plain = outcomes["main"], outcomes["main-plain"]
    assert traced.run.returncode == 0, traced.run.stderr
    assert plain.run.returncode == 0, plain.run.stderr
    assert traced.run.stdout == plain.run.stdout
    assert "Tool #1: get_weather" in traced.run.stdout  # Strands' own printing of the stream
    assert traced.rejections == []
    assert sent(traced) == sent(plain)


def test_start_up_does_not_import_strands(main):
    assert "strands imported before the app: False" in main.run.stdout.splitlines()


def test_every_span_reaches_posthog_once(main):
    assert len(main.spans) == len(LABELS) * len(EXPECTED_TREE)
    assert len({s["span_id"] for s in main.spans}) == len(main.spans)


# -- runs -----------------------------------------------------------------------------------------


def test_a_run_is_one_trace_with_one_generation_per_model_call(main):
    parts = assert_run(main, "sync")
    tool = parts["tool"]["attributes"]
    assert tool["$ai_output_state"] == "Sunny in Paris"
    gen = parts["generations"][0]["attributes"]
    assert gen["$ai_input"] == [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "[sync] What is the weather in Paris?"},
    ]
    assert [t["function"]["name"] for t in gen["$ai_tools"]] == ["get_weather"]
    second_input = parts["generations"][1]["attributes"]["$ai_input"]
    assert {"role": "tool", "content": "Sunny in Paris"} in [
        {k: m[k] for k in ("role", "content")} for m in second_input
    ]


def test_the_model_and_cycle_steps_keep_what_strands_saw(main):
    parts = assert_run(main, "sync")
    first_step, second_step = (s["attributes"] for s in parts["steps"])
    assert first_step["gen_ai.request.model"] == "gpt-4o-mini"
    assert json.loads(first_step["$ai_output_state"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}, "id": TOOL_CALL_ID}],
            "finish_reason": "tool_call",
        }
    ]
    assert json.loads(second_step["$ai_input_state"])[-1] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "response": "Sunny in Paris", "id": TOOL_CALL_ID}],
    }
    assert "$ai_input" not in first_step  # the instructions are the generation's
    cycle = parts["cycles"][0]["attributes"]
    assert "$ai_input_state" not in cycle  # the conversation so far: its model step has it
    assert json.loads(cycle["$ai_output_state"])[-1]["role"] == "tool"


def test_stream_async_is_recorded_like_a_run(main):
    assert "[stream] pieces: ['Hello', ' from', ' fake OpenAI']" in main.run.stdout.splitlines()
    assert_run(main, "stream")


def test_two_concurrent_runs_are_two_traces_that_do_not_mix(main):
    first, second = assert_run(main, "first"), assert_run(main, "second")
    assert first["root"]["trace_id"] != second["root"]["trace_id"]
    first_trace, second_trace = trace_of(main, "first"), trace_of(main, "second")
    assert "[second]" not in json.dumps(first_trace) and "[first]" not in json.dumps(second_trace)
    # They did run at the same time.
    assert first["root"]["start_ns"] < second["root"]["end_ns"] and second["root"]["start_ns"] < first["root"]["end_ns"]


def test_a_failing_tool_is_an_error_step(main):
    tool = assert_run(main, "error", tool_name="broken_tool")["tool"]
    assert tool["status_code"] == "ERROR"
    assert "no weather station in Paris" in tool["attributes"]["$ai_output_state"]


# -- the conventions' newer style, privacy, the app's own telemetry --------------------------------


def test_the_latest_conventions_give_the_same_trace(outcomes, main):
    latest = outcomes["latest"]
    assert latest.run.returncode == 0, latest.run.stderr
    assert latest.run.stdout == main.run.stdout
    for label in LABELS:
        tool_name = "broken_tool" if label == "error" else "get_weather"
        parts = assert_run(latest, label, tool_name=tool_name)
        if label != "error":
            assert parts["tool"]["attributes"]["$ai_output_state"] == "Sunny in Paris"
    assert len(latest.spans) == len(main.spans)


def test_privacy_mode_sends_no_content(outcomes, main):
    private = outcomes["private"]
    assert private.run.returncode == 0, private.run.stderr
    assert private.run.stdout == main.run.stdout
    assert len(private.spans) == len(main.spans)
    everything = json.dumps(private.spans)
    for text in ("Paris", "Sunny", DEFAULT_REPLY, "[sync]", "Answer in one sentence", "weather station"):
        assert text not in everything, text
    for span in private.spans:
        assert not [e for e in span["events"] if e["name"] != "exception"]
        assert not [k for k in span["attributes"] if k.startswith(("$ai_input", "$ai_output", "gen_ai.tool.call.a"))]
    generations = [s for s in private.spans if event_type(s) == "$ai_generation"]
    assert len(generations) == 2 * len(LABELS)
    assert all(tokens(g) == (PROMPT_TOKENS, COMPLETION_TOKENS) for g in generations)
    # The same trees, named as before.
    with_broken_tool = [(d, e, n.replace("get_weather", "broken_tool")) for d, e, n in EXPECTED_TREE]
    roots = [s for s in private.spans if s["parent_span_id"] is None]
    trees = [tree([s for s in private.spans if s["trace_id"] == root["trace_id"]]) for root in roots]
    assert sorted(map(str, trees)) == sorted(map(str, [EXPECTED_TREE] * (len(LABELS) - 1) + [with_broken_tool]))


def test_the_apps_own_telemetry_keeps_strands_spans_as_they_are(outcomes):
    own = outcomes["own-telemetry"]
    assert own.run.returncode == 0, own.run.stderr
    # PostHog gets the run once, completed as usual.
    assert len(own.spans) == len(EXPECTED_TREE)
    assert_run(own, "own")
    # The app's collector gets every span (ours too, as from any instrumentation), Strands' as
    # Strands made them: its events, its provider name, the run's token totals.
    collected = own.collected
    assert sorted(s["name"] for s in collected) == sorted(n for _, _, n in EXPECTED_TREE)
    (agent,) = [s for s in collected if s["name"] == "invoke_agent weather"]
    assert agent["scope_name"] == "strands.telemetry.tracer"
    assert agent["attributes"]["gen_ai.system"] == "strands-agents"
    assert agent["attributes"]["gen_ai.usage.input_tokens"] == 2 * PROMPT_TOKENS
    assert [e["name"] for e in agent["events"]] == ["gen_ai.system.message", "gen_ai.user.message", "gen_ai.choice"]
    assert "$ai_framework" not in json.dumps(collected)
    # The one mark the one-generation rule leaves on the app's span (see genai.one_generation).
    chats = [s for s in collected if s["name"] == "chat"]
    assert len(chats) == 2 and all(s["attributes"]["posthog_autoinstrument.delegated"] is True for s in chats)
    assert all(s["attributes"]["gen_ai.usage.input_tokens"] == PROMPT_TOKENS for s in chats)


# -- Strands' other model providers -----------------------------------------------------------------

BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
# Per run: (generation name, provider as PostHog names it, model the response named, input tokens
# (cache included, as the conventions count them), output tokens, cache read, cache written,
# streamed, the answer).
PROVIDER_RUNS = {
    "bedrock-stream": (
        f"chat {BEDROCK_MODEL}",
        "amazon-bedrock",
        None,
        bedrock_server.INPUT_TOKENS + bedrock_server.CACHE_READ + bedrock_server.CACHE_WRITE,
        bedrock_server.OUTPUT_TOKENS,
        bedrock_server.CACHE_READ,
        bedrock_server.CACHE_WRITE,
        True,
        bedrock_server.REPLY,
    ),
    "bedrock": (
        f"chat {BEDROCK_MODEL}",
        "amazon-bedrock",
        None,
        bedrock_server.INPUT_TOKENS + bedrock_server.CACHE_READ + bedrock_server.CACHE_WRITE,
        bedrock_server.OUTPUT_TOKENS,
        bedrock_server.CACHE_READ,
        bedrock_server.CACHE_WRITE,
        False,
        bedrock_server.REPLY,
    ),
    "anthropic": (
        "chat claude-haiku-4-5",
        "anthropic",
        "claude-haiku-4-5" + anthropic_server.SERVED_MODEL_SUFFIX,
        anthropic_server.INPUT_TOKENS + anthropic_server.CACHE_READ + anthropic_server.CACHE_CREATION,
        anthropic_server.OUTPUT_TOKENS,
        anthropic_server.CACHE_READ,
        anthropic_server.CACHE_CREATION,
        True,
        anthropic_server.REPLY,
    ),
    # The same, whichever records it: the SDK's own span or our Anthropic adapter.
    "anthropic-untraced": (
        "chat claude-haiku-4-5",
        "anthropic",
        "claude-haiku-4-5" + anthropic_server.SERVED_MODEL_SUFFIX,
        anthropic_server.INPUT_TOKENS + anthropic_server.CACHE_READ + anthropic_server.CACHE_CREATION,
        anthropic_server.OUTPUT_TOKENS,
        anthropic_server.CACHE_READ,
        anthropic_server.CACHE_CREATION,
        True,
        anthropic_server.REPLY,
    ),
    "litellm": (
        "chat gpt-4o-mini",
        "openai",
        "gpt-4o-mini",
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
        CACHED_TOKENS,
        None,
        True,
        DEFAULT_REPLY,
    ),
}
# What Strands counts itself (its input totals leave cache tokens out), as the app prints them.
STRANDS_USAGE = {
    "bedrock-stream": (bedrock_server.INPUT_TOKENS, bedrock_server.OUTPUT_TOKENS),
    "bedrock": (bedrock_server.INPUT_TOKENS, bedrock_server.OUTPUT_TOKENS),
    "anthropic": (anthropic_server.INPUT_TOKENS, anthropic_server.OUTPUT_TOKENS),
    "anthropic-untraced": (anthropic_server.INPUT_TOKENS, anthropic_server.OUTPUT_TOKENS),
    "litellm": (PROMPT_TOKENS, COMPLETION_TOKENS),
}


@pytest.fixture(scope="module")
def providers(outcomes) -> Outcome:
    traced, plain = outcomes["providers"], outcomes["providers-plain"]
    assert traced.run.returncode == 0, traced.run.stderr
    assert plain.run.returncode == 0, plain.run.stderr
    return traced


def test_other_providers_leave_the_app_unchanged(outcomes, providers):
    plain = outcomes["providers-plain"]
    assert providers.run.stdout == plain.run.stdout
    assert sent(providers) == sent(plain) and len(providers.requests) == 2 * len(PROVIDER_RUNS)
    assert providers.rejections == []
    for label in PROVIDER_RUNS:
        assert printed_usage(providers, label) == tuple(2 * n for n in STRANDS_USAGE[label])
    assert len(providers.spans) == len(PROVIDER_RUNS) * len(EXPECTED_TREE)
    assert len({s["span_id"] for s in providers.spans}) == len(providers.spans)


@pytest.mark.parametrize("label", list(PROVIDER_RUNS))
def test_other_providers_give_one_generation_per_model_call(providers, label):
    name, provider, response_model, input_tokens, output_tokens, cache_read, cache_written, stream, reply = (
        PROVIDER_RUNS[label]
    )
    spans = trace_of(providers, label)
    assert tree(spans) == [(d, e, name if e == "$ai_generation" else n) for d, e, n in EXPECTED_TREE]
    (root,) = [s for s in spans if s["parent_span_id"] is None]
    assert root["attributes"]["$ai_output_state"] == reply + "\n"
    cycles = children(spans, root)
    model_steps = [s for cycle in cycles for s in children(spans, cycle) if s["name"] == "chat"]
    (tool,) = [s for s in children(spans, cycles[0]) if s["name"].startswith("execute_tool")]
    for step in cycles + model_steps + [tool]:
        assert step["scope_name"] == "strands.telemetry.tracer"
        assert tokens(step) == (None, None)
    for step in model_steps:
        assert "gen_ai.operation.name" not in step["attributes"]  # a step: the generation is inside
    assert tool["attributes"]["$ai_output_state"] == "Sunny in Paris"
    assert json.loads(tool["attributes"]["$ai_input_state"]) == {"city": "Paris"}

    # Each model step holds exactly its one generation, with the served call's details.
    generations = []
    for step in model_steps:
        (generation,) = children(spans, step)
        generations.append(generation)
        gen = generation["attributes"]
        assert event_type(generation) == "$ai_generation"
        assert gen["gen_ai.provider.name"] == provider
        assert gen.get("gen_ai.response.model") == response_model
        assert tokens(generation) == (input_tokens, output_tokens)
        assert gen.get("gen_ai.usage.cache_read.input_tokens") == cache_read
        assert gen.get("gen_ai.usage.cache_creation.input_tokens") == cache_written
        assert gen["$ai_stream"] is stream
        assert gen["$ai_framework"] == "strands"
        assert [t["function"]["name"] for t in gen["$ai_tools"]] == ["get_weather"]
    first, second = (g["attributes"] for g in generations)
    assert first["$ai_input"] == [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": f"[{label}] What is the weather in Paris?"},
    ]
    calls = [part for part in first["$ai_output_choices"][0]["content"] if part["type"] == "function"]
    assert [c["function"] for c in calls] == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    assert tool["attributes"]["gen_ai.tool.call.id"] == calls[0]["id"]
    assert second["$ai_input"][-1] == {"role": "tool", "content": "Sunny in Paris", "tool_call_id": calls[0]["id"]}
    assert second["$ai_output_choices"] == [{"role": "assistant", "content": [{"type": "text", "text": reply}]}]
