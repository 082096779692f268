"""End to end: an unmodified google-genai app under ``posthog-instrument``, against a loopback
Gemini API (JSON and SSE) and the PostHog stand-in.

Each app run executes several scenarios; spans are told apart by their prompt. Every run is
compared with an uninstrumented run of the same scenarios: the app's output must not change."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run
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


@pytest.fixture
def fake_gemini():
    with FakeGemini() as server:
        yield server


@pytest.fixture
def run_gemini(fake_gemini, posthog):
    def runner(*scenarios: str, instrumented: bool = True):
        env = {k: v for k, v in clean_env().items() if not k.startswith(("GOOGLE_", "GEMINI_"))}
        env.update(
            GEMINI_API_KEY="gemini-test-key",
            GOOGLE_GEMINI_BASE_URL=fake_gemini.base_url,
            VERTEX_URL=fake_gemini.base_url,
            POSTHOG_API_KEY="phc_test_project_token",
            POSTHOG_HOST=posthog.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
        )
        script = [str(APPS / "google_genai_app.py"), *scenarios]
        return run([LAUNCHER, "python", *script] if instrumented else [sys.executable, *script], env)

    return runner


def run_both(run_gemini, *scenarios: str):
    """Run instrumented, then plainly; the app must print exactly the same."""
    result = run_gemini(*scenarios)
    plain = run_gemini(*scenarios, instrumented=False)
    assert result.returncode == plain.returncode == 0, result.stderr
    assert result.stdout == plain.stdout
    return result


def content(span: dict, key: str):
    return json.loads(span["attributes"][key])


def first_user_text(span: dict) -> str:
    return content(span, "gen_ai.input.messages")[0]["parts"][0]["content"]


def spans_by_prompt(posthog, count: int) -> dict:
    spans = posthog.wait_for_spans(count)
    assert len(spans) == count, [s["name"] for s in spans]
    assert posthog.rejections == []
    grouped: dict = {}
    for span in spans:
        grouped.setdefault(first_user_text(span), []).append(span)
    return grouped


def assert_usage(attrs: dict, expected: dict = FULL_USAGE) -> None:
    for key, value in expected.items():
        assert attrs[key] == value, key


def test_generate_content_is_a_complete_generation(run_gemini, posthog):
    run_both(run_gemini, "generate")
    (span,) = spans_by_prompt(posthog, 1)["Describe this picture"]
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


def test_function_calls_and_automatic_function_calling(run_gemini, posthog):
    run_both(run_gemini, "tools", "afc")
    grouped = spans_by_prompt(posthog, 4)
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


def test_streams_end_exactly_once_on_every_exit(run_gemini, posthog):
    result = run_both(run_gemini, "stream", "stream_break", "stream_close", "stream_error")
    assert "stream_error RemoteProtocolError" in result.stdout
    grouped = spans_by_prompt(posthog, 4)
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


def test_api_error_and_embeddings(run_gemini, posthog):
    result = run_both(run_gemini, "error_429", "embed")
    assert "error_429 ClientError 429 RESOURCE_EXHAUSTED" in result.stdout
    grouped = spans_by_prompt(posthog, 2)
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


def test_each_chat_message_is_one_generation(run_gemini, posthog, fake_gemini):
    run_both(run_gemini, "chat")
    spans = posthog.wait_for_spans(3)
    assert len(spans) == 3
    assert len(fake_gemini.requests) == 6  # three per run: one model request per message
    first, second, streamed = spans
    assert [m["role"] for m in content(first, "gen_ai.input.messages")] == ["user"]
    assert [m["role"] for m in content(second, "gen_ai.input.messages")] == ["user", "assistant", "user"]
    assert content(second, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": "Again"}]
    assert content(streamed, "gen_ai.input.messages")[-1]["parts"] == [{"type": "text", "content": "Stream it"}]
    assert streamed["attributes"]["gen_ai.request.stream"] is True
    assert_usage(streamed["attributes"])
    for span in spans:
        assert content(span, "gen_ai.system_instructions") == [{"type": "text", "content": "Chatty."}]


def test_async_client(run_gemini, posthog):
    run_both(run_gemini, "async_all")
    grouped = spans_by_prompt(posthog, 6)
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


def test_vertex_ai_client(run_gemini, posthog, fake_gemini):
    run_both(run_gemini, "vertex")
    grouped = spans_by_prompt(posthog, 2)
    generation, embedding = grouped["Vertex hello"][0], grouped["a"][0]
    assert generation["attributes"]["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert_usage(generation["attributes"])
    assert embedding["attributes"]["gen_ai.provider.name"] == "gcp.vertex_ai"
    # Vertex's predict endpoint reports tokens per embedding; they are summed.
    assert embedding["attributes"]["gen_ai.usage.input_tokens"] == 2 * wire.EMBED_TOKENS_PER_TEXT
    assert fake_gemini.requests[0]["path"].startswith("/v1beta1/publishers/google/models/")
