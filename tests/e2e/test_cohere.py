"""End to end: an unmodified Cohere (v2 API) app under ``posthog-instrument``, against a
loopback Cohere API (JSON and named server-sent events) and the PostHog stand-in.

All scenarios run in one app process, once instrumented and once plainly (the output must not
change); spans are told apart by their prompt."""

from __future__ import annotations

import json

import pytest

from tests.e2e.providers import (
    CHAT_SETTINGS,
    SAY_HELLO,
    WEATHER_TOOL,
    Recorded,
    app_env,
    assert_failed_midway,
    assert_embeddings,
    assert_has,
    assert_left_early,
    record,
    text_output,
)
from tests.e2e.traces import by_prompt, event_type, tools, posthog_tool, posthog_input, posthog_output
from tests.servers import FakePostHog
from tests.servers import cohere_server as wire
from tests.servers.cohere_server import FakeCohere

MODEL = "command-a-03-2025"
REPLY = wire.DEFAULT_REPLY
BILLED_USAGE = {
    "gen_ai.usage.input_tokens": wire.BILLED_INPUT_TOKENS,
    "gen_ai.usage.output_tokens": wire.BILLED_OUTPUT_TOKENS,
}
TOOL_OUTPUT = [  # with the model's plan: Anthropic's blocks, which PostHog renders with thinking
    {"type": "thinking", "thinking": wire.TOOL_PLAN},
    {"type": "tool_use", "id": wire.TOOL_CALL_ID, "name": "get_weather", "input": {"city": "Paris"}},
]
SCENARIOS = (
    "chat",
    "tools",
    "reasoning",
    "stream",
    "stream_tools",
    "stream_break",
    "stream_close",
    "stream_error",
    "error_429",
    "embed",
    "rerank",
    "v2_property",
    "async_all",
)
SPAN_COUNT = 20  # 17 model calls, 3 reranks


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    with FakeCohere() as co, FakePostHog() as posthog:
        env = app_env(posthog, "CO_", CO_API_KEY="cohere-test-key", CO_API_URL=co.base_url)
        recorded = record("cohere_app", SCENARIOS, env, posthog, co, SPAN_COUNT)
    reranks = [s for s in recorded.spans if s["attributes"].get("gen_ai.operation.name") == "rerank"]
    recorded.spans = [s for s in recorded.spans if s not in reranks]
    recorded.steps = reranks
    return recorded


def assert_usage(attrs: dict) -> None:
    assert_has(attrs, BILLED_USAGE)
    # Cohere's unbilled preamble tokens and its cache count are not reported as usage.
    assert "gen_ai.usage.cache_read.input_tokens" not in attrs


def test_chat_is_a_complete_generation(recorded):
    (span,) = by_prompt(recorded.spans)["Say hello"]
    attrs = span["attributes"]
    assert span["name"] == f"chat {MODEL}"
    assert span["kind_name"] == "CLIENT"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "cohere"
    assert attrs["gen_ai.request.model"] == MODEL
    assert "gen_ai.response.model" not in attrs  # Cohere's v2 chat does not report one
    assert len(attrs["gen_ai.response.id"]) == 36
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["server.address"] == "127.0.0.1"
    assert_usage(attrs)
    assert_has(attrs, CHAT_SETTINGS)
    assert attrs["gen_ai.request.top_k"] == 40
    assert attrs["gen_ai.output.type"] == "json"
    assert posthog_input(span) == SAY_HELLO
    assert posthog_output(span) == text_output(REPLY)
    assert attrs["$ai_stream"] is False
    assert attrs["$ai_stop_reason"] == "stop"


def test_tool_plan_calls_and_results(recorded):
    call, answer = by_prompt(recorded.spans)["Weather in Paris?"]
    assert tools(call) == [posthog_tool(WEATHER_TOOL)]
    assert posthog_output(call) == [{"role": "assistant", "content": TOOL_OUTPUT}]
    assert posthog_input(answer)[-2:] == [
        {"role": "assistant", "content": TOOL_OUTPUT},
        {"role": "tool", "tool_call_id": wire.TOOL_CALL_ID, "content": '{"temp":21}'},
    ]
    assert_usage(answer["attributes"])


def test_reasoning_content(recorded):
    (span,) = by_prompt(recorded.spans)["Think, then greet"]
    assert posthog_output(span) == text_output(REPLY, reasoning=wire.THINKING_TEXT)


def test_streams_are_assembled_with_the_message_end_usage(recorded):
    grouped = by_prompt(recorded.spans)
    (full,) = grouped["Stream please"]
    attrs = full["attributes"]
    assert attrs["gen_ai.request.stream"] is True and attrs["$ai_stream"] is True
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert_usage(attrs)
    assert posthog_output(full) == text_output(REPLY, reasoning=wire.THINKING_TEXT)
    (tools,) = grouped["Stream a tool call"]
    assert posthog_output(tools) == [{"role": "assistant", "content": TOOL_OUTPUT}]


def test_streams_end_exactly_once_on_every_exit(recorded):
    assert "stream_close generator" in recorded.stdout  # the proxy is transparent
    assert "stream_error RemoteProtocolError" in recorded.stdout
    grouped = by_prompt(recorded.spans)
    for prompt, received in (
        ("Break early chunks=6", "Hello f"),
        ("Close early chunks=6", None),
        ("Async break chunks=6", "Hel"),
        ("Async abandon chunks=6", "Hel"),
    ):
        (span,) = grouped[prompt]
        assert_left_early(span, received)  # message-end never came
    (failed,) = grouped["Fail midway"]
    assert_failed_midway(failed, "RemoteProtocolError")


def test_api_error(recorded):
    assert "error_429 TooManyRequestsError 429" in recorded.stdout
    (span,) = by_prompt(recorded.spans)["Rate limit me"]
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["error.type"] == "cohere.TooManyRequestsError"
    assert span["attributes"]["$ai_http_status"] == 429


def test_embeddings(recorded):
    grouped = by_prompt(recorded.spans)
    (span,) = grouped["first text"]
    assert_embeddings(span, "embed-v4.0", 2 * wire.EMBED_TOKENS_PER_TEXT, wire.EMBEDDING_DIMENSIONS)
    assert span["attributes"]["gen_ai.request.encoding_formats"] == ["float"]
    (async_span,) = grouped["async embed"]
    assert async_span["attributes"]["gen_ai.usage.input_tokens"] == wire.EMBED_TOKENS_PER_TEXT


def test_async_client_and_the_v2_property(recorded):
    grouped = by_prompt(recorded.spans)
    assert_usage(grouped["Async hello"][0]["attributes"])
    (streamed,) = grouped["Async stream"]
    assert_usage(streamed["attributes"])
    assert posthog_output(streamed) == text_output(REPLY)
    (through_v2,) = grouped["Through Client().v2"]
    assert_usage(through_v2["attributes"])


def test_rerank_is_a_step_with_the_ranking_and_the_search_units(recorded):
    assert "rerank [(1, 0.9), (0, 0.81)] 1.0" in recorded.stdout
    by_model = {}
    for span in sorted(recorded.steps, key=lambda s: s["start_ns"]):
        by_model.setdefault(span["attributes"]["gen_ai.request.model"], []).append(span)
    (v2,) = by_model["rerank-v3.5"][:1]
    attrs = v2["attributes"]
    assert v2["name"] == "rerank rerank-v3.5"
    assert event_type(v2) == "$ai_trace"  # made outside any run: its own trace
    assert attrs["gen_ai.provider.name"] == "cohere"
    assert attrs["gen_ai.request.top_k"] == 2
    assert attrs["cohere.billed_units.search_units"] == wire.RERANK_SEARCH_UNITS
    assert len(attrs["gen_ai.response.id"]) == 36
    assert "gen_ai.usage.input_tokens" not in attrs  # Cohere bills reranks by search unit, not token
    assert json.loads(attrs["$ai_input_state"]) == {"query": "capital of France", "document_count": 3}
    assert json.loads(attrs["$ai_output_state"]) == [
        {"index": 1, "score": 0.9, "text": "Paris is the capital of France."},
        {"index": 0, "score": 0.81, "text": "Berlin is the capital of Germany."},
    ]
    (v1,) = by_model["rerank-english-v3.0"]
    assert [r["index"] for r in json.loads(v1["attributes"]["$ai_output_state"])] == [2, 0, 1]
    assert json.loads(v1["attributes"]["$ai_output_state"])[0]["text"] == "Madrid is the capital of Spain."
    (async_rerank,) = by_model["rerank-v3.5"][1:]
    assert json.loads(async_rerank["attributes"]["$ai_input_state"])["query"] == "async Germany"
