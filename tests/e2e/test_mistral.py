"""End to end: an unmodified Mistral AI app under ``posthog-instrument``, against a loopback
Mistral API (JSON and SSE, plus its Azure and Vertex AI paths) and the PostHog stand-in.

All scenarios run in one app process, once instrumented and once plainly (the output must not
change); spans are told apart by their prompt. The runs set ``MISTRAL_SDK_TELEMETRY=global``,
which makes the SDK trace itself into the global tracer provider: every call must still be
exactly one generation, ours."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run
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
WEATHER_TOOL = {
    "type": "function", "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TOOL_CALL = {"type": "tool_call", "id": wire.TOOL_CALL_ID, "name": "get_weather", "arguments": {"city": "Paris"}}
SCENARIOS = ("chat", "tools", "magistral", "parse", "stream", "stream_tools", "stream_break", "stream_close",
             "stream_with", "stream_error", "error_429", "embed", "async_all", "clouds")
SPAN_COUNT = 19


@dataclass
class Recorded:
    stdout: str
    spans: list
    requests: list  # what the fake Mistral received, both runs


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    with FakeMistral() as mistral, FakePostHog() as posthog:
        env = {k: v for k, v in clean_env().items() if not k.startswith("MISTRAL_")}
        env.update(
            MISTRAL_API_KEY="mistral-test-key",
            MISTRAL_SERVER_URL=mistral.server_url,
            MISTRAL_SDK_TELEMETRY="global",
            POSTHOG_API_KEY="phc_test_project_token",
            POSTHOG_HOST=posthog.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
        )
        script = [str(APPS / "mistral_app.py"), *SCENARIOS]
        instrumented = run([LAUNCHER, "python", *script], env)
        assert instrumented.returncode == 0, instrumented.stderr
        spans = posthog.wait_for_spans(SPAN_COUNT)
        plain = run([sys.executable, *script], env)
        assert plain.returncode == 0, plain.stderr
        assert instrumented.stdout == plain.stdout  # the app cannot tell it is instrumented
        assert posthog.rejections == []
        assert len(posthog.spans) == SPAN_COUNT, [(s["scope_name"], s["name"]) for s in posthog.spans]
        return Recorded(instrumented.stdout, spans, mistral.requests)


def content(span: dict, key: str):
    return json.loads(span["attributes"][key])


def by_prompt(recorded: Recorded) -> dict:
    grouped: dict = {}
    for span in recorded.spans:
        messages = content(span, "gen_ai.input.messages")
        first_user = next(m for m in messages if m["role"] == "user")
        grouped.setdefault(first_user["parts"][0]["content"], []).append(span)
    return grouped


def assert_usage(attrs: dict) -> None:
    for key, value in FULL_USAGE.items():
        assert attrs[key] == value, key


def test_the_sdk_does_not_trace_itself_next_to_us(recorded):
    assert {s["scope_name"] for s in recorded.spans} == {"posthog_autoinstrument"}
    # Its tracing would also have sent a traceparent to Mistral with every request.
    assert not any("traceparent" in r["headers"] for r in recorded.requests)


def test_chat_completion_is_a_complete_generation(recorded):
    (span,) = by_prompt(recorded)["Say hello"]
    attrs = span["attributes"]
    assert span["name"] == f"chat {MODEL}"
    assert span["kind_name"] == "CLIENT"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "mistral_ai"
    assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == MODEL
    assert len(attrs["gen_ai.response.id"]) == 32
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["server.address"] == "127.0.0.1"
    assert_usage(attrs)
    assert attrs["gen_ai.request.temperature"] == 0.3
    assert attrs["gen_ai.request.top_p"] == 0.9
    assert attrs["gen_ai.request.max_tokens"] == 50
    assert attrs["gen_ai.request.seed"] == 7
    assert attrs["gen_ai.request.stop_sequences"] == ["END"]
    assert attrs["gen_ai.request.presence_penalty"] == 0.2
    assert attrs["gen_ai.request.frequency_penalty"] == 0.1
    assert attrs["gen_ai.output.type"] == "text"
    assert content(span, "gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]},
    ]
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": REPLY}], "finish_reason": "stop"}]
    assert attrs["$ai_cache_reporting_exclusive"] is False
    assert attrs["$ai_stream"] is False


def test_tool_calls_and_results(recorded):
    call, answer = by_prompt(recorded)["Weather in Paris?"]
    assert content(call, "gen_ai.tool.definitions") == [WEATHER_TOOL]
    assert content(call, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [TOOL_CALL], "finish_reason": "tool_call"}]
    assert call["attributes"]["$ai_stop_reason"] == "tool_call"
    assert content(answer, "gen_ai.input.messages")[1:] == [
        {"role": "assistant", "parts": [TOOL_CALL]},
        {"role": "tool", "name": "get_weather", "parts": [
            {"type": "tool_call_response", "id": wire.TOOL_CALL_ID, "response": '{"temp": 21}'}]},
    ]


def test_reasoning_and_structured_output(recorded):
    grouped = by_prompt(recorded)
    (thinking,) = grouped["Think, then greet"]
    assert content(thinking, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "reasoning", "content": wire.THINKING_TEXT}, {"type": "text", "content": REPLY}]
    (parsed,) = grouped['Parse reply={"city":"Paris"}']  # chat.parse is complete() underneath: one span
    assert parsed["attributes"]["gen_ai.output.type"] == "json"
    assert content(parsed, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": '{"city":"Paris"}'}]


def test_streams_are_assembled_with_the_final_chunks_usage(recorded):
    grouped = by_prompt(recorded)
    (full,) = grouped["Stream please"]
    attrs = full["attributes"]
    assert attrs["gen_ai.request.stream"] is True and attrs["$ai_stream"] is True
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert_usage(attrs)
    assert content(full, "gen_ai.output.messages") == [{
        "role": "assistant", "finish_reason": "stop",
        "parts": [{"type": "reasoning", "content": wire.THINKING_TEXT}, {"type": "text", "content": REPLY}],
    }]
    (tools,) = grouped["Stream a tool call"]
    assert content(tools, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [TOOL_CALL], "finish_reason": "tool_call"}]
    assert_usage(tools["attributes"])


def test_streams_end_exactly_once_on_every_exit(recorded):
    assert "stream_close EventStream True" in recorded.stdout  # the proxy is transparent
    assert "stream_error RemoteProtocolError" in recorded.stdout
    grouped = by_prompt(recorded)
    for prompt, received in (("Break early chunks=6", "Hello f"), ("Close early chunks=6", None),
                             ("With block chunks=6", "Hel"), ("Async with chunks=6", None)):
        (span,) = grouped[prompt]
        assert span["status_code"] != "ERROR"
        assert "gen_ai.usage.output_tokens" not in span["attributes"]  # the usage chunk never came
        parts = content(span, "gen_ai.output.messages")[0]["parts"]
        assert parts == ([{"type": "text", "content": received}] if received else [])
    (failed,) = grouped["Fail midway"]
    assert failed["status_code"] == "ERROR"
    assert failed["attributes"]["error.type"].endswith("RemoteProtocolError")
    assert content(failed, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": "Hello from"}]


def test_api_error(recorded):
    assert "error_429 SDKError 429" in recorded.stdout
    (span,) = by_prompt(recorded)["Rate limit me"]
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["error.type"] == "mistralai.SDKError"
    assert span["attributes"]["$ai_http_status"] == 429
    assert [e["name"] for e in span["events"]] == ["exception"]


def test_embeddings(recorded):
    grouped = by_prompt(recorded)
    (span,) = grouped["first text"]
    attrs = span["attributes"]
    assert span["name"] == "embeddings mistral-embed"
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.usage.input_tokens"] == 2 * wire.EMBED_TOKENS_PER_TEXT
    assert attrs["gen_ai.embeddings.dimension.count"] == wire.EMBEDDING_DIMENSIONS
    assert [m["parts"][0]["content"] for m in content(span, "gen_ai.input.messages")] == ["first text", "second text"]
    (async_span,) = grouped["async embed"]
    assert async_span["attributes"]["gen_ai.usage.input_tokens"] == wire.EMBED_TOKENS_PER_TEXT


def test_async_client(recorded):
    grouped = by_prompt(recorded)
    assert_usage(grouped["Async hello"][0]["attributes"])
    (streamed,) = grouped["Async stream"]
    assert_usage(streamed["attributes"])
    assert content(streamed, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": REPLY}]


def test_azure_and_vertex_hostings(recorded):
    grouped = by_prompt(recorded)
    (azure,), (vertex,) = grouped["Azure hello"], grouped["Vertex hello"]
    assert azure["attributes"]["gen_ai.provider.name"] == "azure.ai.inference"
    assert vertex["attributes"]["gen_ai.provider.name"] == "gcp.vertex_ai"
    for span in (azure, vertex):
        assert span["attributes"]["gen_ai.request.model"] == "mistral-small-2503"
        assert_usage(span["attributes"])
