"""End to end: an unmodified Groq app under ``posthog-instrument``, against loopback Groq and PostHog
stand-ins. Several scenarios run per app run; spans are told apart by model name."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.servers.groq_server import FakeGroq

MODEL = "llama-3.3-70b-versatile"
REPLY = "Hello from fake Groq"


@pytest.fixture
def fake_groq():
    with FakeGroq() as server:
        yield server


@pytest.fixture
def run_groq(fake_groq, posthog):
    def runner(*scenarios: str, instrumented: bool = True):
        env = {k: v for k, v in clean_env().items() if not k.startswith("GROQ_")}
        env.update(GROQ_BASE_URL=fake_groq.base_url, GROQ_API_KEY="gsk_test_key", POSTHOG_API_KEY="phc_test_project_token",
                   POSTHOG_HOST=posthog.host, POSTHOG_EXPORT_INTERVAL="0.05")
        script = [str(APPS / "groq_app.py"), *scenarios]
        return run([LAUNCHER, "python", *script] if instrumented else [sys.executable, *script], env)

    return runner


def run_both(runner, *scenarios: str):
    result = runner(*scenarios)
    plain = runner(*scenarios, instrumented=False)
    assert result.returncode == plain.returncode == 0, result.stderr
    assert result.stdout == plain.stdout
    return result


def content(span: dict, key: str):
    return json.loads(span["attributes"][key])


def by_model(spans: list, model: str, stream: bool = False) -> dict:
    found = [s for s in spans if s["attributes"].get("gen_ai.request.model") == model
             and bool(s["attributes"].get("gen_ai.request.stream")) == stream]
    assert len(found) == 1, [s["name"] for s in spans]
    return found[0]


def test_chat_streams_tools_and_reasoning(run_groq, posthog, fake_groq):
    result = run_both(run_groq, "chat", "chat_tools", "chat_stream", "stream_tools", "reasoning", "raw_response",
                      "iterator_messages")
    assert "chat_stream Stream True 'Hello from fake Groq' 6 7" in result.stdout
    assert all("stream_options" not in r["json"] for r in fake_groq.requests)  # the SDK takes none
    spans = posthog.spans
    assert len(spans) == 8
    assert posthog.rejections == []

    chat = next(s for s in spans if s["attributes"].get("gen_ai.request.max_tokens") == 50)
    attrs = chat["attributes"]
    assert chat["name"] == f"chat {MODEL}"
    assert attrs["gen_ai.provider.name"] == "groq"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.response.model"] == MODEL
    assert attrs["gen_ai.response.id"].startswith("chatcmpl-")
    assert (attrs["gen_ai.request.temperature"], attrs["gen_ai.request.top_p"], attrs["gen_ai.request.seed"]) == (0.3, 0.9, 7)
    assert attrs["gen_ai.request.stop_sequences"] == ["END"]
    assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == fake_groq.port
    # prompt_tokens already include Groq's cached tokens (OpenAI's convention, and ours).
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert not any(k.startswith("openai.") for k in attrs)
    assert content(chat, "gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]}]
    assert content(chat, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": REPLY}], "finish_reason": "stop"}]
    assert attrs["$ai_stream"] is False and attrs["$ai_max_tokens"] == 50

    tool_spans = [s for s in spans if s["attributes"].get("gen_ai.response.finish_reasons") == ["tool_call"]]
    assert len(tool_spans) == 2  # plain and streamed
    for span in tool_spans:
        assert content(span, "gen_ai.tool.definitions")[0]["name"] == "get_weather"
        assert content(span, "gen_ai.output.messages") == [{"role": "assistant", "finish_reason": "tool_call", "parts": [
            {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]}]

    stream = next(s for s in spans if s["attributes"].get("gen_ai.request.stream")
                  and s["attributes"].get("gen_ai.request.model") == MODEL
                  and s["attributes"]["gen_ai.response.finish_reasons"] == ["stop"])
    attrs = stream["attributes"]
    # Groq's stream usage arrives only in x_groq.usage on the last chunk.
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert content(stream, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": REPLY}], "finish_reason": "stop"}]

    reasoned = by_model(spans, "openai/gpt-oss-20b")
    assert reasoned["attributes"]["gen_ai.request.reasoning.level"] == "low"
    assert content(reasoned, "gen_ai.output.messages")[0]["parts"] == [
        {"type": "reasoning", "content": "The user wants a greeting."}, {"type": "text", "content": REPLY}]
    streamed_reasoning = by_model(spans, "openai/gpt-oss-120b", stream=True)
    assert content(streamed_reasoning, "gen_ai.output.messages")[0]["parts"][0] == {
        "type": "reasoning", "content": "The user wants a greeting."}

    assert by_model(spans, "raw-model")["attributes"]["gen_ai.usage.output_tokens"] == 7
    assert len(content(by_model(spans, "iter-model"), "gen_ai.input.messages")) == 2


def test_async_early_exits_errors_and_embeddings(run_groq, posthog):
    result = run_both(run_groq, "async_all", "stream_break", "stream_error", "error_429", "embeddings")
    assert "stream_error RemoteProtocolError" in result.stdout  # the SDK lets httpx's error through
    spans = posthog.spans
    assert len(spans) == 6

    assert by_model(spans, "async-model")["attributes"]["gen_ai.usage.output_tokens"] == 7
    async_stream = by_model(spans, "async-stream-model", stream=True)
    assert async_stream["attributes"]["gen_ai.usage.output_tokens"] == 7
    assert content(async_stream, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": REPLY}]

    broke = by_model(spans, "break-model", stream=True)
    assert broke["status_code"] != "ERROR"
    assert "gen_ai.usage.output_tokens" not in broke["attributes"]
    assert content(broke, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": "Hello from"}]

    failed = by_model(spans, "stream-error", stream=True)
    assert failed["status_code"] == "ERROR"
    assert failed["attributes"]["error.type"] == "httpx.RemoteProtocolError"
    assert content(failed, "gen_ai.output.messages")[0]["parts"][0]["content"]  # what arrived before the cut

    limited = by_model(spans, "error-429")
    assert limited["status_code"] == "ERROR"
    assert limited["attributes"]["error.type"] == "groq.RateLimitError"
    assert limited["attributes"]["$ai_http_status"] == 429

    embeddings = by_model(spans, "nomic-embed-text-v1_5")
    attrs = embeddings["attributes"]
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.provider.name"] == "groq"
    assert attrs["gen_ai.usage.input_tokens"] == 8
    assert attrs["gen_ai.embeddings.dimension.count"] == 8
