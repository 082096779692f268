"""End to end: an unmodified Cohere (v2 API) app under ``posthog-instrument``, against a
loopback Cohere API (JSON and named server-sent events) and the PostHog stand-in.

All scenarios run in one app process, once instrumented and once plainly (the output must not
change); spans are told apart by their prompt."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.servers import FakePostHog
from tests.servers import cohere_server as wire
from tests.servers.cohere_server import FakeCohere

MODEL = "command-a-03-2025"
REPLY = wire.DEFAULT_REPLY
BILLED_USAGE = {"gen_ai.usage.input_tokens": wire.BILLED_INPUT_TOKENS,
                "gen_ai.usage.output_tokens": wire.BILLED_OUTPUT_TOKENS}
WEATHER_TOOL = {
    "type": "function", "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TOOL_OUTPUT = [
    {"type": "reasoning", "content": wire.TOOL_PLAN},
    {"type": "tool_call", "id": wire.TOOL_CALL_ID, "name": "get_weather", "arguments": {"city": "Paris"}},
]
SCENARIOS = ("chat", "tools", "reasoning", "stream", "stream_tools", "stream_break", "stream_close", "stream_error",
             "error_429", "embed", "v2_property", "async_all")
SPAN_COUNT = 17


@dataclass
class Recorded:
    stdout: str
    spans: list


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    with FakeCohere() as co, FakePostHog() as posthog:
        env = {k: v for k, v in clean_env().items() if not k.startswith("CO_")}
        env.update(
            CO_API_KEY="cohere-test-key",
            CO_API_URL=co.base_url,
            POSTHOG_API_KEY="phc_test_project_token",
            POSTHOG_HOST=posthog.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
        )
        script = [str(APPS / "cohere_app.py"), *SCENARIOS]
        instrumented = run([LAUNCHER, "python", *script], env)
        assert instrumented.returncode == 0, instrumented.stderr
        spans = posthog.wait_for_spans(SPAN_COUNT)
        plain = run([sys.executable, *script], env)
        assert plain.returncode == 0, plain.stderr
        assert instrumented.stdout == plain.stdout  # the app cannot tell it is instrumented
        assert posthog.rejections == []
        assert len(posthog.spans) == SPAN_COUNT, [s["name"] for s in posthog.spans]
        return Recorded(instrumented.stdout, spans)


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
    for key, value in BILLED_USAGE.items():
        assert attrs[key] == value, key
    # Cohere's unbilled preamble tokens and its cache count are not reported as usage.
    assert "gen_ai.usage.cache_read.input_tokens" not in attrs


def test_chat_is_a_complete_generation(recorded):
    (span,) = by_prompt(recorded)["Say hello"]
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
    assert attrs["gen_ai.request.temperature"] == 0.3
    assert attrs["gen_ai.request.top_p"] == 0.9
    assert attrs["gen_ai.request.top_k"] == 40
    assert attrs["gen_ai.request.max_tokens"] == 50
    assert attrs["gen_ai.request.seed"] == 7
    assert attrs["gen_ai.request.stop_sequences"] == ["END"]
    assert attrs["gen_ai.request.frequency_penalty"] == 0.1
    assert attrs["gen_ai.request.presence_penalty"] == 0.2
    assert attrs["gen_ai.output.type"] == "json"
    assert content(span, "gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]},
    ]
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": REPLY}], "finish_reason": "stop"}]
    assert attrs["$ai_stream"] is False
    assert attrs["$ai_stop_reason"] == "stop"


def test_tool_plan_calls_and_results(recorded):
    call, answer = by_prompt(recorded)["Weather in Paris?"]
    assert content(call, "gen_ai.tool.definitions") == [WEATHER_TOOL]
    assert content(call, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": TOOL_OUTPUT, "finish_reason": "tool_call"}]
    assert content(answer, "gen_ai.input.messages")[1:] == [
        {"role": "assistant", "parts": TOOL_OUTPUT},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": wire.TOOL_CALL_ID, "response": {"temp": 21}}]},
    ]
    assert_usage(answer["attributes"])


def test_reasoning_content(recorded):
    (span,) = by_prompt(recorded)["Think, then greet"]
    assert content(span, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "reasoning", "content": wire.THINKING_TEXT}, {"type": "text", "content": REPLY}]


def test_streams_are_assembled_with_the_message_end_usage(recorded):
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
        {"role": "assistant", "parts": TOOL_OUTPUT, "finish_reason": "tool_call"}]


def test_streams_end_exactly_once_on_every_exit(recorded):
    assert "stream_close generator" in recorded.stdout  # the proxy is transparent
    assert "stream_error RemoteProtocolError" in recorded.stdout
    grouped = by_prompt(recorded)
    for prompt, received in (("Break early chunks=6", "Hello f"), ("Close early chunks=6", None),
                             ("Async break chunks=6", "Hel"), ("Async abandon chunks=6", "Hel")):
        (span,) = grouped[prompt]
        assert span["status_code"] != "ERROR"
        assert "gen_ai.usage.output_tokens" not in span["attributes"]  # message-end never came
        parts = content(span, "gen_ai.output.messages")[0]["parts"]
        assert parts == ([{"type": "text", "content": received}] if received else [])
    (failed,) = grouped["Fail midway"]
    assert failed["status_code"] == "ERROR"
    assert failed["attributes"]["error.type"].endswith("RemoteProtocolError")
    assert content(failed, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": "Hello from"}]


def test_api_error(recorded):
    assert "error_429 TooManyRequestsError 429" in recorded.stdout
    (span,) = by_prompt(recorded)["Rate limit me"]
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["error.type"] == "cohere.TooManyRequestsError"
    assert span["attributes"]["$ai_http_status"] == 429


def test_embeddings(recorded):
    grouped = by_prompt(recorded)
    (span,) = grouped["first text"]
    attrs = span["attributes"]
    assert span["name"] == "embeddings embed-v4.0"
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.request.encoding_formats"] == ["float"]
    assert attrs["gen_ai.usage.input_tokens"] == 2 * wire.EMBED_TOKENS_PER_TEXT
    assert attrs["gen_ai.embeddings.dimension.count"] == wire.EMBEDDING_DIMENSIONS
    assert [m["parts"][0]["content"] for m in content(span, "gen_ai.input.messages")] == ["first text", "second text"]
    (async_span,) = grouped["async embed"]
    assert async_span["attributes"]["gen_ai.usage.input_tokens"] == wire.EMBED_TOKENS_PER_TEXT


def test_async_client_and_the_v2_property(recorded):
    grouped = by_prompt(recorded)
    assert_usage(grouped["Async hello"][0]["attributes"])
    (streamed,) = grouped["Async stream"]
    assert_usage(streamed["attributes"])
    assert content(streamed, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": REPLY}]
    (through_v2,) = grouped["Through Client().v2"]
    assert_usage(through_v2["attributes"])
