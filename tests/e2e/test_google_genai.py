"""End to end: an unmodified google-genai app under ``posthog-instrument``, against a loopback
Gemini API (JSON and SSE) and the PostHog stand-in.

Each app run executes several scenarios; spans are told apart by their prompt. Every run is
compared with an uninstrumented run of the same scenarios: the app's output must not change."""

from __future__ import annotations

import json

import pytest

from tests.e2e.providers import (
    CHAT_SETTINGS,
    WEATHER_TOOL,
    Recorded,
    app_env,
    assert_embeddings,
    assert_failed_midway,
    assert_has,
    assert_left_early,
    record,
    text_output,
)
from tests.e2e.traces import by_prompt, tools, posthog_tool, posthog_input, posthog_output
from tests.servers import FakePostHog
from tests.servers import gemini_server as wire
from tests.servers.gemini_server import FakeGemini

MODEL = "gemini-2.5-flash"
REPLY = wire.DEFAULT_REPLY
FULL_USAGE = {
    "gen_ai.usage.input_tokens": wire.PROMPT_TOKENS,
    "gen_ai.usage.output_tokens": wire.CANDIDATES_TOKENS,
    "gen_ai.usage.cache_read.input_tokens": wire.CACHED_TOKENS,
    "gen_ai.usage.reasoning.output_tokens": wire.THOUGHTS_TOKENS,
}

SCENARIOS = (
    "generate",
    "tools",
    "afc",
    "stream",
    "stream_break",
    "stream_close",
    "stream_error",
    "error_429",
    "embed",
    "chat",
    "async_all",
    "vertex",
)
SPAN_COUNT = 22  # one per model request or embedding call made by the scenarios above


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    """Run every scenario once under posthog-instrument and once plainly (app runs are the slow part)."""
    with FakeGemini() as gemini, FakePostHog() as posthog:
        env = app_env(
            posthog,
            ("GOOGLE_", "GEMINI_"),
            GEMINI_API_KEY="gemini-test-key",
            GOOGLE_GEMINI_BASE_URL=gemini.base_url,
            VERTEX_URL=gemini.base_url,
        )
        return record("google_genai_app", SCENARIOS, env, posthog, gemini, SPAN_COUNT)


def assert_usage(attrs: dict) -> None:
    assert_has(attrs, FULL_USAGE)


def test_generate_content_is_a_complete_generation(recorded):
    (span,) = by_prompt(recorded.spans)["Describe this picture"]
    attrs = span["attributes"]
    assert span["name"] == f"generate_content {MODEL}"
    assert span["kind_name"] == "CLIENT"
    assert attrs["gen_ai.operation.name"] == "chat"  # PostHog's name for a generation
    assert attrs["gen_ai.provider.name"] == "gemini"  # PostHog's cost-table name
    assert attrs["gen_ai.request.model"] == MODEL
    assert attrs["gen_ai.response.model"] == MODEL
    assert len(attrs["gen_ai.response.id"]) == 22
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["$ai_base_url"].startswith("http://127.0.0.1:") and "server.address" not in attrs
    assert_usage(attrs)
    assert_has(attrs, CHAT_SETTINGS)
    assert attrs["gen_ai.request.top_k"] == 40
    assert attrs["gen_ai.request.reasoning.level"] == "low"
    assert "gen_ai.request.choice.count" not in attrs  # one candidate is the default
    system, message = posthog_input(span)
    assert system == {"role": "system", "content": "You are terse."}
    assert message["role"] == "user"
    text, image = message["content"]
    assert text == {"type": "text", "text": "Describe this picture"}
    assert image["type"] == "image"
    assert image["image"].startswith("[image image/png")  # inline media is not exported by default
    assert posthog_output(span) == text_output(REPLY, reasoning=wire.THOUGHT_TEXT)
    assert attrs["$ai_reasoning_tokens"] == wire.THOUGHTS_TOKENS
    assert attrs["$ai_cache_reporting_exclusive"] is False
    assert attrs["$ai_stream"] is False
    assert attrs["$ai_stop_reason"] == "stop"


def test_function_calls_and_automatic_function_calling(recorded):
    grouped = by_prompt(recorded.spans)
    call, answer = grouped["Weather in Paris?"]
    assert tools(call) == [posthog_tool(WEATHER_TOOL)]
    assert posthog_output(call) == [
        {
            "role": "assistant",
            "content": [{"type": "function", "function": {"name": "get_weather", "arguments": wire.TOOL_ARGS}}],
        }
    ]
    assert call["attributes"]["$ai_stop_reason"] == "tool_call"
    assert [m["role"] for m in posthog_input(answer)] == ["user", "assistant", "tool"]
    assert posthog_input(answer)[2] == {"role": "tool", "content": '{"temp":21}'}
    # Automatic function calling: two model requests, each its own generation with its own tokens.
    afc_call, afc_answer = grouped["What is the weather like in Paris? (afc)"]
    for span in (afc_call, afc_answer):
        assert_usage(span["attributes"])
        assert tools(span) == [
            posthog_tool(
                {
                    "type": "function",
                    "name": "get_weather",
                    "description": "Weather for a city.",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                }
            )
        ]
    assert afc_call["attributes"]["gen_ai.response.finish_reasons"] == ["tool_call"]
    tool_message = posthog_input(afc_answer)[2]
    assert tool_message == {"role": "tool", "content": '{"result":{"city":"Paris","sky":"clear"}}'}
    assert posthog_output(afc_answer) == text_output(REPLY)


def test_streams_end_exactly_once_on_every_exit(recorded):
    assert "stream_error RemoteProtocolError" in recorded.stdout
    grouped = by_prompt(recorded.spans)
    (full,) = grouped["Stream please"]
    attrs = full["attributes"]
    assert attrs["gen_ai.request.stream"] is True and attrs["$ai_stream"] is True
    assert_usage(attrs)  # from the final chunk; earlier chunks carry only the prompt count
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert posthog_input(full)[0] == {"role": "system", "content": "Be brief."}
    assert posthog_output(full) == text_output(REPLY, reasoning=wire.THOUGHT_TEXT)
    for prompt, received in (("Break early chunks=6", "Hello f"), ("Close early chunks=6", "Hel")):
        (span,) = grouped[prompt]
        assert_left_early(span, received)  # the final chunk never came
    (failed,) = grouped["Fail midway"]
    assert_failed_midway(failed, "RemoteProtocolError")


def test_api_error_and_embeddings(recorded):
    assert "error_429 ClientError 429 RESOURCE_EXHAUSTED" in recorded.stdout
    grouped = by_prompt(recorded.spans)
    (error,) = grouped["Rate limit me"]
    assert error["status_code"] == "ERROR"
    assert error["attributes"]["error.type"] == "google.ClientError"
    assert "gen_ai.usage.input_tokens" not in error["attributes"]
    (embedding,) = grouped["first text"]
    assert_embeddings(embedding, "text-embedding-004", 2 * wire.EMBED_TOKENS_PER_TEXT, wire.EMBEDDING_DIMENSIONS)


def test_each_chat_message_is_one_generation(recorded):
    spans = by_prompt(recorded.spans)["Hi there"]  # every turn's input starts with the chat's history
    assert len(spans) == 3
    chat_requests = [r for r in recorded.requests if "Hi there" in json.dumps(r["json"])]
    assert len(chat_requests) == 6  # three per run (instrumented and plain): one request per message
    first, second, streamed = spans
    assert [m["role"] for m in posthog_input(first)] == ["system", "user"]
    assert [m["role"] for m in posthog_input(second)] == ["system", "user", "assistant", "user"]
    assert posthog_output(second) == text_output("Again")
    assert posthog_input(streamed)[-1] == {"role": "user", "content": "Stream it"}
    assert streamed["attributes"]["gen_ai.request.stream"] is True
    assert_usage(streamed["attributes"])
    for span in spans:
        assert posthog_input(span)[0] == {"role": "system", "content": "Chatty."}


def test_async_client(recorded):
    grouped = by_prompt(recorded.spans)
    assert_usage(grouped["Async hello"][0]["attributes"])
    (streamed,) = grouped["Async stream"]
    assert_usage(streamed["attributes"])
    assert posthog_output(streamed) == text_output(REPLY)
    for prompt in ("Async break chunks=6", "Async abandon chunks=6"):
        (span,) = grouped[prompt]
        assert_left_early(span, "Hel")
    assert_usage(grouped["Async chat"][0]["attributes"])
    (embedding,) = grouped["async embed"]
    assert embedding["attributes"]["gen_ai.usage.input_tokens"] == wire.EMBED_TOKENS_PER_TEXT


def test_vertex_ai_client(recorded):
    grouped = by_prompt(recorded.spans)
    (generation,), (embedding,) = grouped["Vertex hello"], grouped["a"]
    assert generation["attributes"]["gen_ai.provider.name"] == "google-vertex"  # PostHog's cost-table name
    assert_usage(generation["attributes"])
    assert embedding["attributes"]["gen_ai.provider.name"] == "google-vertex"  # PostHog's cost-table name
    # Vertex's predict endpoint reports tokens per embedding; they are summed.
    assert embedding["attributes"]["gen_ai.usage.input_tokens"] == 2 * wire.EMBED_TOKENS_PER_TEXT
    vertex_paths = [r["path"] for r in recorded.requests if "Vertex hello" in json.dumps(r["json"])]
    assert vertex_paths and all(p.startswith("/v1beta1/publishers/google/models/") for p in vertex_paths)
