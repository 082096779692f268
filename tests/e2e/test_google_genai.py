"""End to end: an unmodified google-genai app under ``posthog-instrument``, against a loopback
Gemini API (JSON and SSE) and the PostHog stand-in.

Each app run executes several scenarios; spans are told apart by their prompt. Every run is
compared with an uninstrumented run of the same scenarios: the app's output must not change."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run
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
WEATHER_TOOL = {
    "type": "function", "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}

SCENARIOS = ("generate", "tools", "afc", "stream", "stream_break", "stream_close", "stream_error",
             "error_429", "embed", "chat", "async_all", "vertex")
SPAN_COUNT = 22  # one per model request or embedding call made by the scenarios above


@dataclass
class Recorded:
    stdout: str
    spans: list
    requests: list  # what the fake Gemini received, both runs


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    """Run every scenario once under posthog-instrument and once plainly (app runs are the slow part)."""
    with FakeGemini() as gemini, FakePostHog() as posthog:
        env = {k: v for k, v in clean_env().items() if not k.startswith(("GOOGLE_", "GEMINI_"))}
        env.update(
            GEMINI_API_KEY="gemini-test-key",
            GOOGLE_GEMINI_BASE_URL=gemini.base_url,
            VERTEX_URL=gemini.base_url,
            POSTHOG_API_KEY="phc_test_project_token",
            POSTHOG_HOST=posthog.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
        )
        script = [str(APPS / "google_genai_app.py"), *SCENARIOS]
        instrumented = run([LAUNCHER, "python", *script], env)
        assert instrumented.returncode == 0, instrumented.stderr
        spans = posthog.wait_for_spans(SPAN_COUNT)
        plain = run([sys.executable, *script], env)
        assert plain.returncode == 0, plain.stderr
        assert instrumented.stdout == plain.stdout  # the app cannot tell it is instrumented
        assert posthog.rejections == []
        assert len(posthog.spans) == SPAN_COUNT, [s["name"] for s in posthog.spans]
        return Recorded(instrumented.stdout, spans, gemini.requests)


def content(span: dict, key: str):
    return json.loads(span["attributes"][key])


def first_user_text(span: dict) -> str:
    return content(span, "gen_ai.input.messages")[0]["parts"][0]["content"]


def by_prompt(recorded: Recorded) -> dict:
    """Spans grouped by the first user text of their input (a chat's history starts the same)."""
    grouped: dict = {}
    for span in recorded.spans:
        grouped.setdefault(first_user_text(span), []).append(span)
    return grouped


def assert_usage(attrs: dict, expected: dict = FULL_USAGE) -> None:
    for key, value in expected.items():
        assert attrs[key] == value, key


def test_generate_content_is_a_complete_generation(recorded):
    (span,) = by_prompt(recorded)["Describe this picture"]
    attrs = span["attributes"]
    assert span["name"] == f"generate_content {MODEL}"
    assert span["kind_name"] == "CLIENT"
    assert attrs["gen_ai.operation.name"] == "chat"  # PostHog's name for a generation
    assert attrs["gen_ai.provider.name"] == "gcp.gemini"
    assert attrs["gen_ai.request.model"] == MODEL
    assert attrs["gen_ai.response.model"] == MODEL
    assert len(attrs["gen_ai.response.id"]) == 22
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["server.address"] == "127.0.0.1"
    assert_usage(attrs)
    assert attrs["gen_ai.request.temperature"] == 0.3
    assert attrs["gen_ai.request.top_p"] == 0.9
    assert attrs["gen_ai.request.top_k"] == 40
    assert attrs["gen_ai.request.max_tokens"] == 50
    assert attrs["gen_ai.request.stop_sequences"] == ["END"]
    assert attrs["gen_ai.request.seed"] == 7
    assert attrs["gen_ai.request.presence_penalty"] == 0.2
    assert attrs["gen_ai.request.frequency_penalty"] == 0.1
    assert attrs["gen_ai.request.reasoning.level"] == "low"
    assert "gen_ai.request.choice.count" not in attrs  # one candidate is the default
    assert content(span, "gen_ai.system_instructions") == [{"type": "text", "content": "You are terse."}]
    (message,) = content(span, "gen_ai.input.messages")
    assert message["role"] == "user"
    text, image = message["parts"]
    assert text == {"type": "text", "content": "Describe this picture"}
    assert image["type"] == "blob" and image["modality"] == "image" and image["mime_type"] == "image/png"
    assert image["content"].startswith("[image image/png")  # inline media is not exported by default
    assert content(span, "gen_ai.output.messages") == [{
        "role": "assistant", "finish_reason": "stop",
        "parts": [{"type": "reasoning", "content": wire.THOUGHT_TEXT}, {"type": "text", "content": REPLY}],
    }]
    assert attrs["$ai_reasoning_tokens"] == wire.THOUGHTS_TOKENS
    assert attrs["$ai_cache_reporting_exclusive"] is False
    assert attrs["$ai_stream"] is False
    assert attrs["$ai_stop_reason"] == "stop"


def test_function_calls_and_automatic_function_calling(recorded):
    grouped = by_prompt(recorded)
    call, answer = grouped["Weather in Paris?"]
    assert content(call, "gen_ai.tool.definitions") == [WEATHER_TOOL]
    assert content(call, "gen_ai.output.messages") == [{
        "role": "assistant", "finish_reason": "tool_call",
        "parts": [{"type": "tool_call", "name": "get_weather", "arguments": wire.TOOL_ARGS}],
    }]
    assert call["attributes"]["$ai_stop_reason"] == "tool_call"
    assert [m["role"] for m in content(answer, "gen_ai.input.messages")] == ["user", "assistant", "tool"]
    assert content(answer, "gen_ai.input.messages")[2]["parts"] == [{"type": "tool_call_response", "response": {"temp": 21}}]
    # Automatic function calling: two model requests, each its own generation with its own tokens.
    afc_call, afc_answer = grouped["What is the weather like in Paris? (afc)"]
    for span in (afc_call, afc_answer):
        assert_usage(span["attributes"])
        assert content(span, "gen_ai.tool.definitions") == [{
            "type": "function", "name": "get_weather", "description": "Weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }]
    assert afc_call["attributes"]["gen_ai.response.finish_reasons"] == ["tool_call"]
    tool_message = content(afc_answer, "gen_ai.input.messages")[2]
    assert tool_message == {"role": "tool", "parts": [
        {"type": "tool_call_response", "response": {"result": {"city": "Paris", "sky": "clear"}}}]}
    assert content(afc_answer, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": REPLY}]


def test_streams_end_exactly_once_on_every_exit(recorded):
    assert "stream_error RemoteProtocolError" in recorded.stdout
    grouped = by_prompt(recorded)
    (full,) = grouped["Stream please"]
    attrs = full["attributes"]
    assert attrs["gen_ai.request.stream"] is True and attrs["$ai_stream"] is True
    assert_usage(attrs)  # from the final chunk; earlier chunks carry only the prompt count
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert content(full, "gen_ai.system_instructions") == [{"type": "text", "content": "Be brief."}]
    assert content(full, "gen_ai.output.messages") == [{
        "role": "assistant", "finish_reason": "stop",
        "parts": [{"type": "reasoning", "content": wire.THOUGHT_TEXT}, {"type": "text", "content": REPLY}],
    }]
    for prompt, received in (("Break early chunks=6", "Hello f"), ("Close early chunks=6", "Hel")):
        (span,) = grouped[prompt]
        assert span["status_code"] != "ERROR"
        assert "gen_ai.usage.output_tokens" not in span["attributes"]  # the final chunk never came
        assert content(span, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": received}]
    (failed,) = grouped["Fail midway"]
    assert failed["status_code"] == "ERROR"
    assert failed["attributes"]["error.type"].endswith("RemoteProtocolError")
    assert [e["name"] for e in failed["events"]] == ["exception"]
    assert content(failed, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": "Hello from"}]


def test_api_error_and_embeddings(recorded):
    assert "error_429 ClientError 429 RESOURCE_EXHAUSTED" in recorded.stdout
    grouped = by_prompt(recorded)
    (error,) = grouped["Rate limit me"]
    assert error["status_code"] == "ERROR"
    assert error["attributes"]["error.type"] == "google.ClientError"
    assert "gen_ai.usage.input_tokens" not in error["attributes"]
    (embedding,) = grouped["first text"]
    attrs = embedding["attributes"]
    assert embedding["name"] == "embeddings text-embedding-004"
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.usage.input_tokens"] == 2 * wire.EMBED_TOKENS_PER_TEXT
    assert attrs["gen_ai.embeddings.dimension.count"] == wire.EMBEDDING_DIMENSIONS
    assert [m["parts"][0]["content"] for m in content(embedding, "gen_ai.input.messages")] == ["first text", "second text"]


def test_each_chat_message_is_one_generation(recorded):
    spans = by_prompt(recorded)["Hi there"]  # every turn's input starts with the chat's history
    assert len(spans) == 3
    chat_requests = [r for r in recorded.requests if "Hi there" in json.dumps(r["json"])]
    assert len(chat_requests) == 6  # three per run (instrumented and plain): one request per message
    first, second, streamed = spans
    assert [m["role"] for m in content(first, "gen_ai.input.messages")] == ["user"]
    assert [m["role"] for m in content(second, "gen_ai.input.messages")] == ["user", "assistant", "user"]
    assert content(second, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": "Again"}]
    assert content(streamed, "gen_ai.input.messages")[-1]["parts"] == [{"type": "text", "content": "Stream it"}]
    assert streamed["attributes"]["gen_ai.request.stream"] is True
    assert_usage(streamed["attributes"])
    for span in spans:
        assert content(span, "gen_ai.system_instructions") == [{"type": "text", "content": "Chatty."}]


def test_async_client(recorded):
    grouped = by_prompt(recorded)
    assert_usage(grouped["Async hello"][0]["attributes"])
    (streamed,) = grouped["Async stream"]
    assert_usage(streamed["attributes"])
    assert content(streamed, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": REPLY}]
    for prompt in ("Async break chunks=6", "Async abandon chunks=6"):
        (span,) = grouped[prompt]
        assert span["status_code"] != "ERROR"
        assert "gen_ai.usage.output_tokens" not in span["attributes"]
        assert content(span, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": "Hel"}]
    assert_usage(grouped["Async chat"][0]["attributes"])
    (embedding,) = grouped["async embed"]
    assert embedding["attributes"]["gen_ai.usage.input_tokens"] == wire.EMBED_TOKENS_PER_TEXT


def test_vertex_ai_client(recorded):
    grouped = by_prompt(recorded)
    (generation,), (embedding,) = grouped["Vertex hello"], grouped["a"]
    assert generation["attributes"]["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert_usage(generation["attributes"])
    assert embedding["attributes"]["gen_ai.provider.name"] == "gcp.vertex_ai"
    # Vertex's predict endpoint reports tokens per embedding; they are summed.
    assert embedding["attributes"]["gen_ai.usage.input_tokens"] == 2 * wire.EMBED_TOKENS_PER_TEXT
    vertex_paths = [r["path"] for r in recorded.requests if "Vertex hello" in json.dumps(r["json"])]
    assert vertex_paths and all(p.startswith("/v1beta1/publishers/google/models/") for p in vertex_paths)
