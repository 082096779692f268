"""End to end: an unmodified Mistral AI app under ``posthog-instrument``, against a loopback
Mistral API (JSON and SSE, plus its Azure and Vertex AI paths) and the PostHog stand-in.

All scenarios run in one app process, once instrumented and once plainly (the output must not
change); spans are told apart by their prompt. The runs set ``MISTRAL_SDK_TELEMETRY=global``,
which makes the SDK trace itself into the global tracer provider: every call must still be
exactly one generation, ours."""

from __future__ import annotations

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
from tests.e2e.traces import by_prompt, tools, posthog_tool, posthog_input, posthog_output
from tests.servers import FakePostHog
from tests.servers import mistral_server as wire
from tests.servers.mistral_server import FakeMistral

MODEL = "mistral-small-latest"
REPLY = wire.DEFAULT_REPLY
FULL_USAGE = {
    "gen_ai.usage.input_tokens": wire.PROMPT_TOKENS,
    "gen_ai.usage.output_tokens": wire.COMPLETION_TOKENS,
    "gen_ai.usage.cache_read.input_tokens": wire.CACHED_TOKENS,
}
TOOL_CALL = {
    "type": "function",
    "id": wire.TOOL_CALL_ID,
    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
}
SCENARIOS = (
    "chat",
    "tools",
    "magistral",
    "parse",
    "stream",
    "stream_tools",
    "stream_break",
    "stream_close",
    "stream_with",
    "stream_error",
    "error_429",
    "embed",
    "async_all",
    "clouds",
)
SPAN_COUNT = 19


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    with FakeMistral() as mistral, FakePostHog() as posthog:
        env = app_env(
            posthog,
            "MISTRAL_",
            MISTRAL_API_KEY="mistral-test-key",
            MISTRAL_SERVER_URL=mistral.server_url,
            MISTRAL_SDK_TELEMETRY="global",
        )
        return record("mistral_app", SCENARIOS, env, posthog, mistral, SPAN_COUNT)


def assert_usage(attrs: dict) -> None:
    assert_has(attrs, FULL_USAGE)


def test_the_sdk_does_not_trace_itself_next_to_us(recorded):
    assert {s["scope_name"] for s in recorded.spans} == {"posthog_autoinstrument"}
    # Its tracing would also have sent a traceparent to Mistral with every request.
    assert not any("traceparent" in r["headers"] for r in recorded.requests)


def test_chat_completion_is_a_complete_generation(recorded):
    (span,) = by_prompt(recorded.spans)["Say hello"]
    attrs = span["attributes"]
    assert span["name"] == f"chat {MODEL}"
    assert span["kind_name"] == "CLIENT"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "mistral"  # PostHog's cost-table name
    assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == MODEL
    assert len(attrs["gen_ai.response.id"]) == 32
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["server.address"] == "127.0.0.1"
    assert_usage(attrs)
    assert_has(attrs, CHAT_SETTINGS)
    assert attrs["gen_ai.output.type"] == "text"
    assert posthog_input(span) == SAY_HELLO
    assert posthog_output(span) == text_output(REPLY)
    assert attrs["$ai_cache_reporting_exclusive"] is False
    assert attrs["$ai_stream"] is False


def test_tool_calls_and_results(recorded):
    call, answer = by_prompt(recorded.spans)["Weather in Paris?"]
    assert tools(call) == [posthog_tool(WEATHER_TOOL)]
    assert posthog_output(call) == [{"role": "assistant", "content": [TOOL_CALL]}]
    assert call["attributes"]["$ai_stop_reason"] == "tool_call"
    assert posthog_input(answer)[-2:] == [
        {"role": "assistant", "content": [TOOL_CALL]},
        {"role": "tool", "name": "get_weather", "tool_call_id": wire.TOOL_CALL_ID, "content": '{"temp": 21}'},
    ]


def test_reasoning_and_structured_output(recorded):
    grouped = by_prompt(recorded.spans)
    (thinking,) = grouped["Think, then greet"]
    assert posthog_output(thinking) == text_output(REPLY, reasoning=wire.THINKING_TEXT)
    (parsed,) = grouped['Parse reply={"city":"Paris"}']  # chat.parse is complete() underneath: one span
    assert parsed["attributes"]["gen_ai.output.type"] == "json"
    assert posthog_output(parsed) == text_output('{"city":"Paris"}')


def test_streams_are_assembled_with_the_final_chunks_usage(recorded):
    grouped = by_prompt(recorded.spans)
    (full,) = grouped["Stream please"]
    attrs = full["attributes"]
    assert attrs["gen_ai.request.stream"] is True and attrs["$ai_stream"] is True
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert_usage(attrs)
    assert posthog_output(full) == text_output(REPLY, reasoning=wire.THINKING_TEXT)
    (tools,) = grouped["Stream a tool call"]
    assert posthog_output(tools) == [{"role": "assistant", "content": [TOOL_CALL]}]
    assert_usage(tools["attributes"])


def test_streams_end_exactly_once_on_every_exit(recorded):
    assert "stream_close EventStream True" in recorded.stdout  # the proxy is transparent
    assert "stream_error RemoteProtocolError" in recorded.stdout
    grouped = by_prompt(recorded.spans)
    for prompt, received in (
        ("Break early chunks=6", "Hello f"),
        ("Close early chunks=6", None),
        ("With block chunks=6", "Hel"),
        ("Async with chunks=6", None),
    ):
        (span,) = grouped[prompt]
        assert_left_early(span, received)  # the usage chunk never came
    (failed,) = grouped["Fail midway"]
    assert_failed_midway(failed, "RemoteProtocolError")


def test_api_error(recorded):
    assert "error_429 SDKError 429" in recorded.stdout
    (span,) = by_prompt(recorded.spans)["Rate limit me"]
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["error.type"] == "mistralai.SDKError"
    assert span["attributes"]["$ai_http_status"] == 429
    assert [e["name"] for e in span["events"]] == ["exception"]


def test_embeddings(recorded):
    grouped = by_prompt(recorded.spans)
    (span,) = grouped["first text"]
    assert_embeddings(span, "mistral-embed", 2 * wire.EMBED_TOKENS_PER_TEXT, wire.EMBEDDING_DIMENSIONS)
    (async_span,) = grouped["async embed"]
    assert async_span["attributes"]["gen_ai.usage.input_tokens"] == wire.EMBED_TOKENS_PER_TEXT


def test_async_client(recorded):
    grouped = by_prompt(recorded.spans)
    assert_usage(grouped["Async hello"][0]["attributes"])
    (streamed,) = grouped["Async stream"]
    assert_usage(streamed["attributes"])
    assert posthog_output(streamed) == text_output(REPLY)


def test_azure_and_vertex_hostings(recorded):
    grouped = by_prompt(recorded.spans)
    (azure,), (vertex,) = grouped["Azure hello"], grouped["Vertex hello"]
    assert azure["attributes"]["gen_ai.provider.name"] == "azure"  # PostHog's cost-table name
    assert vertex["attributes"]["gen_ai.provider.name"] == "google-vertex"  # PostHog's cost-table name
    for span in (azure, vertex):
        assert span["attributes"]["gen_ai.request.model"] == "mistral-small-2503"
        assert_usage(span["attributes"])
