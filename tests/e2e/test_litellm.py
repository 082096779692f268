"""End to end: an unmodified LiteLLM app under ``posthog-instrument``, against loopback OpenAI
(and Azure OpenAI), Ollama, Anthropic and PostHog stand-ins.

LiteLLM reaches models two ways, and both must come out as exactly one generation per call:

* over HTTP itself (its httpx handlers for Ollama and Anthropic, not the anthropic SDK; OpenAI
  chat through the openai client's low-level ``post``, which no adapter sees): LiteLLM's span is
  the generation, with usage;
* through an SDK with its own adapter (Azure chat and OpenAI embeddings with an
  ``encoding_format`` go through the openai SDK's resource methods): the openai adapter's span
  is the generation and LiteLLM's span its parent step, without tokens.

Importing LiteLLM takes seconds, so the app runs once per scenario group with and once without
instrumentation, all four runs at once in a module-scoped fixture, and the tests below assert on
what those runs produced.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass

import pytest

from tests.conftest import AppRun, APPS, BackgroundApp, clean_env, LAUNCHER
from tests.e2e.providers import CHAT_SETTINGS, WEATHER_TOOL, assert_has
from tests.e2e.traces import message_text, posthog_input, posthog_output, posthog_tool, tools
from tests.servers import FakeOpenAI, FakePostHog
from tests.servers import anthropic_server
from tests.servers.anthropic_server import FakeAnthropic
from tests.servers.litellm_ollama_server import EVAL_COUNT, PROMPT_EVAL_COUNT, FakeOllama
from tests.e2e.providers import text_output

pytest.importorskip("litellm")

SERVED_MODEL = "gpt-4o-mini-2024-08-06"
OPENAI_TEXT = "Hello from fake OpenAI"
OLLAMA_TEXT = "Hello from fake Ollama"


@dataclass
class Outcome:
    instrumented: AppRun
    plain: AppRun
    spans: list
    rejections: list
    requests_instrumented: list
    requests_plain: list


def _request_summary(requests: list) -> list:
    """What LiteLLM sent, in a comparable form (its model-details lookups left out)."""
    return sorted(json.dumps([r["path"], r["json"]], sort_keys=True) for r in requests if r["path"] != "/api/show")


class _AppProcess:
    """One run of the app against its own set of stand-ins, started without waiting for it."""

    def __init__(self, stack: contextlib.ExitStack, group: str, instrumented: bool):
        self.openai = stack.enter_context(FakeOpenAI())
        self.ollama = stack.enter_context(FakeOllama())
        self.anthropic = stack.enter_context(FakeAnthropic())
        self.posthog = stack.enter_context(FakePostHog())
        env = clean_env(
            OPENAI_BASE_URL=self.openai.base_url,
            OPENAI_API_KEY="sk-test-secret-key",
            AZURE_API_BASE=self.openai.azure_endpoint,
            AZURE_API_KEY="azure-test-key",
            AZURE_API_VERSION="2024-10-21",
            OLLAMA_API_BASE=self.ollama.base_url,
            ANTHROPIC_API_BASE=self.anthropic.base_url,
            ANTHROPIC_API_KEY="sk-ant-test-key",
            LITELLM_LOCAL_MODEL_COST_MAP="True",  # no network: never fetch the cost map
            POSTHOG_API_KEY="phc_test_project_token",
            POSTHOG_HOST=self.posthog.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
        )
        app = str(APPS / "litellm_app.py")
        command = [LAUNCHER, "python", app, group] if instrumented else [sys.executable, app, group]
        self.app = BackgroundApp(stack, command, env)

    def result(self) -> AppRun:
        return self.app.result()


@pytest.fixture(scope="module")
def outcomes() -> dict:
    """Both scenario groups, each with and without instrumentation: four apps at once, since
    importing LiteLLM dominates their run time."""
    groups = ("direct", "layers_and_router")
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
                traced.openai.requests + traced.ollama.requests + traced.anthropic.requests,
                plain.openai.requests + plain.ollama.requests + plain.anthropic.requests,
            )
    return results


@pytest.fixture(scope="module")
def direct(outcomes) -> Outcome:
    return outcomes["direct"]


@pytest.fixture(scope="module")
def layered(outcomes) -> Outcome:
    return outcomes["layers_and_router"]


# -- helpers ---------------------------------------------------------------------------------------


def _input_text(span: dict) -> str:
    attrs = span["attributes"]
    if "$ai_input" in attrs:
        return json.dumps(attrs["$ai_input"])
    return attrs.get("$ai_input_state") or ""


def labelled(outcome: Outcome, label: str) -> list:
    return [s for s in outcome.spans if f"[{label}]" in _input_text(s)]


def one(outcome: Outcome, label: str) -> dict:
    spans = labelled(outcome, label)
    assert len(spans) == 1, [s["name"] for s in spans]
    return spans[0]


def generations(spans: list) -> list:
    return [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]


def steps(spans: list) -> list:
    return [s for s in spans if "gen_ai.operation.name" not in s["attributes"]]


def by_input(outcome: Outcome, text: str) -> list:
    """The spans whose input holds the message ``text``: PostHog's $ai_input, or a step's state."""

    def holds(span: dict) -> bool:
        messages = span["attributes"].get("$ai_input")
        if messages is not None:
            return text in [m if isinstance(m, str) else message_text(m) for m in messages]
        return f'"content":"{text}"' in span["attributes"].get("$ai_input_state", "")

    return [s for s in outcome.spans if holds(s)]


def assert_no_tokens(span: dict) -> None:
    assert not [k for k in span["attributes"] if k.startswith("gen_ai.usage.")], span["attributes"]


def assert_app_unchanged(outcome: Outcome) -> None:
    assert outcome.instrumented.returncode == 0, outcome.instrumented.stderr
    assert outcome.plain.returncode == 0, outcome.plain.stderr
    assert outcome.instrumented.stdout == outcome.plain.stdout
    assert outcome.rejections == []

    # The adapter changes nothing LiteLLM sends. (The openai adapter below LiteLLM asks Azure
    # streams for their usage, as it does for any app; that request is set aside here.)
    def comparable(requests):
        kept = []
        for r in requests:
            body = dict(r["json"] or {})
            if "/deployments/" in r["path"]:
                body.pop("stream_options", None)
            kept.append(dict(r, json=body))
        return _request_summary(kept)

    assert comparable(outcome.requests_instrumented) == comparable(outcome.requests_plain)


# -- LiteLLM's own HTTP: its span is the generation ------------------------------------------------


DIRECT_CALLS = [
    "chat",
    "tools",
    "stream-usage",
    "stream-plain",
    "stream-tools",
    "break",
    "close",
    "with",
    "stream-error",
    "429",
    "async",
    "async-stream",
    "ollama",
    "ollama-tools",
    "ollama-stream",
    "ollama-404",
    "ollama-astream",
    "anthropic",
    "anthropic-stream",
]


def test_direct_calls_leave_the_app_unchanged(direct):
    assert_app_unchanged(direct)
    assert "CustomStreamWrapper True" in direct.instrumented.stdout  # __class__ and isinstance hold


def test_every_direct_call_is_exactly_one_generation(direct):
    for label in DIRECT_CALLS:
        (span,) = labelled(direct, label)
        assert span["attributes"]["gen_ai.operation.name"] == "chat", label
        assert span["parent_span_id"] is None, label
    embeddings = [s for s in direct.spans if s["attributes"].get("gen_ai.operation.name") == "embeddings"]
    assert len(embeddings) == 2
    assert len(direct.spans) == len(DIRECT_CALLS) + 2
    assert steps(direct.spans) == []


def test_openai_chat_is_a_complete_generation(direct):
    span = one(direct, "chat")
    attrs = span["attributes"]
    assert span["name"] == "chat gpt-4o-mini"
    assert span["kind_name"] == "CLIENT"
    assert span["scope_name"] == "posthog_autoinstrument"
    assert span["status_code"] != "ERROR"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == SERVED_MODEL
    assert attrs["gen_ai.response.id"].startswith("chatcmpl-")
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 2
    assert_has(attrs, CHAT_SETTINGS)
    assert "server.address" not in attrs  # the app named no endpoint; LiteLLM's own report of it is unreliable
    assert posthog_input(span) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "[chat] Say hello"},
    ]
    assert posthog_output(span) == text_output(OPENAI_TEXT)
    assert attrs["posthog.distinct_id"] == "user-123"  # LiteLLM's `user` names the person
    assert attrs["$ai_stream"] is False
    assert attrs["$ai_cache_reporting_exclusive"] is False
    assert attrs["code.file.path"].endswith("litellm_app.py")


def test_tool_definitions_and_tool_calls(direct):
    span = one(direct, "tools")
    assert tools(span) == [posthog_tool(WEATHER_TOOL)]
    (output,) = posthog_output(span)
    assert span["attributes"]["gen_ai.response.finish_reasons"] == ["tool_call"]
    assert output["content"] == [
        {"type": "function", "id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]


def test_stream_records_the_providers_usage_and_the_assembled_output(direct):
    attrs = one(direct, "stream-usage")["attributes"]
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["$ai_stream"] is True
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["$ai_output_choices"] == text_output(OPENAI_TEXT)


def test_stream_without_reported_usage_records_no_estimate(direct):
    # LiteLLM asks only api.openai.com for stream usage; this OpenAI-compatible endpoint reports
    # none, and LiteLLM's own token estimate is not the provider's count.
    span = one(direct, "stream-plain")
    assert_no_tokens(span)
    assert posthog_output(span) == text_output(OPENAI_TEXT)


def test_streamed_tool_call_is_assembled(direct):
    (output,) = posthog_output(one(direct, "stream-tools"))
    assert output["content"] == [
        {"type": "function", "id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert one(direct, "stream-tools")["attributes"]["gen_ai.response.finish_reasons"] == ["tool_call"]


@pytest.mark.parametrize("label", ["break", "close", "with"])
def test_stream_left_early_ends_once_without_error(direct, label):
    span = one(direct, label)
    assert span["status_code"] != "ERROR"
    assert span["end_ns"] > span["start_ns"]
    assert_no_tokens(span)


def test_stream_failing_midway_records_the_error_and_partial_output(direct):
    span = one(direct, "stream-error")
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["error.type"] == "litellm.MidStreamFallbackError"
    assert "failed: MidStreamFallbackError" in direct.instrumented.stdout
    (output,) = posthog_output(span)
    assert output["content"][0]["text"]  # what arrived before the connection dropped
    assert [e["name"] for e in span["events"]] == ["exception"]


def test_provider_error_is_one_error_generation(direct):
    span = one(direct, "429")
    attrs = span["attributes"]
    assert span["status_code"] == "ERROR"
    assert attrs["error.type"] == "litellm.RateLimitError"  # what the app caught
    assert attrs["$ai_http_status"] == 429
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "error-429"


def test_async_calls(direct):
    attrs = one(direct, "async")["attributes"]
    assert attrs["gen_ai.usage.input_tokens"] == 11 and attrs["gen_ai.usage.output_tokens"] == 7
    attrs = one(direct, "async-stream")["attributes"]
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["$ai_output_choices"] == text_output(OPENAI_TEXT)


def test_openai_embedding_over_litellms_own_http(direct):
    (span,) = by_input(direct, "first text")
    attrs = span["attributes"]
    assert span["name"] == "embeddings text-embedding-3-small"
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["gen_ai.embeddings.dimension.count"] == 8
    assert posthog_input(span) == ["first text", "second text"]


def test_ollama_chat_is_a_generation_with_the_provider_and_bare_model(direct):
    span = one(direct, "ollama")
    attrs = span["attributes"]
    assert span["name"] == "chat llama3.2"
    assert attrs["gen_ai.provider.name"] == "ollama"
    assert attrs["gen_ai.request.model"] == "llama3.2"  # not "ollama_chat/llama3.2"
    assert attrs["gen_ai.response.model"] == "llama3.2"
    assert attrs["gen_ai.usage.input_tokens"] == PROMPT_EVAL_COUNT
    assert attrs["gen_ai.usage.output_tokens"] == EVAL_COUNT
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.request.max_tokens"] == 30
    assert posthog_output(span) == text_output(OLLAMA_TEXT)


def test_ollama_tool_call_and_the_endpoint_the_app_named(direct):
    span = one(direct, "ollama-tools")
    assert span["attributes"]["server.address"] == "127.0.0.1"
    assert isinstance(span["attributes"]["server.port"], int)
    (output,) = posthog_output(span)
    assert span["attributes"]["gen_ai.response.finish_reasons"] == ["tool_call"]
    (item,) = output["content"]
    assert item["type"] == "function" and item["function"] == {"name": "get_weather", "arguments": {"city": "Paris"}}


@pytest.mark.parametrize("label", ["ollama-stream", "ollama-astream"])
def test_ollama_streams_record_the_done_lines_usage(direct, label):
    span = one(direct, label)
    attrs = span["attributes"]
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.usage.input_tokens"] == PROMPT_EVAL_COUNT
    assert attrs["gen_ai.usage.output_tokens"] == EVAL_COUNT
    assert posthog_output(span) == text_output(OLLAMA_TEXT)


def test_ollama_embedding(direct):
    (span,) = by_input(direct, "a")
    attrs = span["attributes"]
    assert span["name"] == "embeddings nomic-embed-text"
    assert attrs["gen_ai.provider.name"] == "ollama"
    assert attrs["gen_ai.response.model"] == "nomic-embed-text"
    assert attrs["gen_ai.usage.input_tokens"] == 5
    assert attrs["gen_ai.embeddings.dimension.count"] == 4


def test_ollama_error(direct):
    span = one(direct, "ollama-404")
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["error.type"] == "litellm.NotFoundError"
    assert span["attributes"]["gen_ai.provider.name"] == "ollama"


# -- through the openai SDK's adapter, and the Router: one generation under LiteLLM's step ----------


def test_layered_calls_leave_the_app_unchanged(layered):
    assert_app_unchanged(layered)


@pytest.mark.parametrize("label, streamed", [("azure", False), ("azure-stream", True)])
def test_litellm_over_an_instrumented_sdk_is_one_generation_under_a_step(layered, label, streamed):
    spans = labelled(layered, label)
    assert len(spans) == 2
    (generation,) = generations(spans)
    (step,) = steps(spans)
    # The generation is the openai adapter's: it saw the SDK call LiteLLM made.
    assert generation["attributes"]["gen_ai.provider.name"] == "azure"  # PostHog's cost-table name
    assert generation["attributes"]["gen_ai.request.model"] == "my-deployment"
    assert generation["attributes"]["gen_ai.usage.input_tokens"] == 11
    assert generation["attributes"]["gen_ai.usage.output_tokens"] == 7
    assert generation["attributes"].get("gen_ai.request.stream", False) is streamed
    # LiteLLM's span is its parent, a step without tokens, so tokens and cost count once.
    assert generation["parent_span_id"] == step["span_id"]
    assert generation["trace_id"] == step["trace_id"]
    assert step["parent_span_id"] is None
    assert_no_tokens(step)
    assert step["attributes"]["gen_ai.provider.name"] == "azure"  # PostHog's cost-table name
    assert step["name"] == "chat my-deployment"


def test_embedding_over_an_instrumented_sdk_is_one_embedding_under_a_step(layered):
    spans = by_input(layered, "embed me")
    assert len(spans) == 2
    (embedding,) = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "embeddings"]
    (step,) = steps(spans)
    assert embedding["parent_span_id"] == step["span_id"]
    assert embedding["attributes"]["gen_ai.usage.input_tokens"] > 0
    assert embedding["attributes"]["gen_ai.request.encoding_formats"] == ["float"]
    assert_no_tokens(step)


@pytest.mark.parametrize(
    "label, provider, tokens",
    [
        ("router", "openai", (11, 7)),
        ("router-stream", "ollama", (PROMPT_EVAL_COUNT, EVAL_COUNT)),
        ("router-async", "ollama", (PROMPT_EVAL_COUNT, EVAL_COUNT)),
        ("router-astream", "ollama", (PROMPT_EVAL_COUNT, EVAL_COUNT)),
    ],
)
def test_a_router_call_is_a_step_over_one_generation(layered, label, provider, tokens):
    spans = labelled(layered, label)
    assert len(spans) == 2
    (generation,) = generations(spans)
    (step,) = steps(spans)
    assert step["parent_span_id"] is None
    assert generation["parent_span_id"] == step["span_id"]
    assert step["attributes"]["gen_ai.request.model"] in ("fast", "local")  # the model group
    assert generation["attributes"]["gen_ai.provider.name"] == provider
    assert (
        generation["attributes"]["gen_ai.usage.input_tokens"],
        generation["attributes"]["gen_ai.usage.output_tokens"],
    ) == tokens
    assert_no_tokens(step)


def test_router_fallback_attempts_share_the_routers_trace(layered):
    spans = labelled(layered, "router-fallback")
    (step,) = steps(spans)
    attempts = generations(spans)
    assert len(spans) == 3 and len(attempts) == 2
    failed, answered = sorted(attempts, key=lambda s: s["status_code"] != "ERROR")
    assert failed["status_code"] == "ERROR"
    assert failed["attributes"]["gen_ai.request.model"] == "error-500"
    assert failed["attributes"]["error.type"] == "litellm.InternalServerError"
    assert answered["attributes"]["gen_ai.provider.name"] == "ollama"
    assert answered["attributes"]["gen_ai.usage.output_tokens"] == EVAL_COUNT
    assert {s["parent_span_id"] for s in attempts} == {step["span_id"]}
    assert step["status_code"] != "ERROR"
    assert step["attributes"]["gen_ai.request.model"] == "flaky"
    assert_no_tokens(step)


def test_router_embedding(layered):
    spans = by_input(layered, "x")
    assert len(spans) == 2
    (step,) = steps(spans)
    (embedding,) = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "embeddings"]
    assert embedding["parent_span_id"] == step["span_id"]
    assert embedding["attributes"]["gen_ai.usage.input_tokens"] == 5
    assert step["attributes"]["gen_ai.request.model"] == "vectors"


def test_tokens_are_counted_once_across_layers(layered):
    # Every input token PostHog sees is on a generation or an embedding, never on a step.
    counted = sum(s["attributes"].get("gen_ai.usage.input_tokens", 0) for s in layered.spans)
    per_call = sum(
        s["attributes"].get("gen_ai.usage.input_tokens", 0)
        for s in layered.spans
        if s["attributes"].get("gen_ai.operation.name")
    )
    assert counted == per_call
    assert len(generations(layered.spans)) == 8  # azure x2, router x4, fallback attempts x2


@pytest.mark.parametrize("label, streamed", [("anthropic", False), ("anthropic-stream", True)])
def test_anthropic_over_litellms_own_http_counts_cache_tokens_inside_input(direct, label, streamed):
    span = one(direct, label)
    attrs = span["attributes"]
    assert span["name"] == "chat claude-sonnet-4-5"
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.request.max_tokens"] == 2000
    # Input includes cache reads and writes (the conventions); each is reported on its own too.
    assert attrs["gen_ai.usage.input_tokens"] == (
        anthropic_server.INPUT_TOKENS + anthropic_server.CACHE_READ + anthropic_server.CACHE_CREATION
    )
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == anthropic_server.CACHE_READ
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == anthropic_server.CACHE_CREATION
    assert attrs["gen_ai.usage.output_tokens"] == anthropic_server.OUTPUT_TOKENS
    assert attrs["$ai_cache_reporting_exclusive"] is False
    (output,) = posthog_output(span)
    if streamed:  # usage merged from message_start (input) and message_delta (output)
        assert output["content"] == [{"type": "text", "text": anthropic_server.REPLY}]
    else:
        assert attrs["gen_ai.response.model"] == "claude-sonnet-4-5" + anthropic_server.SERVED_MODEL_SUFFIX
        assert attrs["gen_ai.usage.reasoning.output_tokens"] == anthropic_server.THINKING_TOKENS
        assert output["content"] == [
            {"type": "thinking", "thinking": anthropic_server.THINKING},
            {"type": "text", "text": anthropic_server.REPLY},
        ]
