"""End to end: an unmodified Together AI app under ``posthog-instrument``, against loopback Together
and PostHog stand-ins. Several scenarios run per app run; spans are told apart by model name."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.servers.together_server import FakeTogether

MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
REPLY = "Hello from fake Together"


@pytest.fixture
def fake_together():
    with FakeTogether() as server:
        yield server


@pytest.fixture
def run_together(fake_together, posthog):
    def runner(*scenarios: str, instrumented: bool = True):
        env = {k: v for k, v in clean_env().items() if not k.startswith("TOGETHER_")}
        env.update(TOGETHER_BASE_URL=fake_together.base_url, TOGETHER_API_KEY="tgp_test_key",
                   POSTHOG_API_KEY="phc_test_project_token", POSTHOG_HOST=posthog.host, POSTHOG_EXPORT_INTERVAL="0.05")
        script = [str(APPS / "together_app.py"), *scenarios]
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


def test_chat_streams_and_tools(run_together, posthog, fake_together):
    result = run_both(run_together, "chat", "chat_tools", "chat_stream", "stream_tools", "raw_response", "iterator_messages")
    assert "chat_stream Stream True 'Hello from fake Together' 6 7" in result.stdout
    assert "chat ChatCompletion Hello from fake Together 18 eos" in result.stdout
    spans = posthog.spans
    assert len(spans) == 6
    assert posthog.rejections == []

    chat = next(s for s in spans if s["attributes"].get("gen_ai.request.max_tokens") == 50)
    attrs = chat["attributes"]
    assert chat["name"] == f"chat {MODEL}"
    assert attrs["gen_ai.provider.name"] == "together"
    assert attrs["gen_ai.response.model"] == MODEL
    assert (attrs["gen_ai.request.temperature"], attrs["gen_ai.request.top_p"], attrs["gen_ai.request.top_k"]) == (0.3, 0.9, 40)
    assert attrs["gen_ai.request.seed"] == 7
    assert attrs["gen_ai.request.stop_sequences"] == ["END"]
    assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == fake_together.port
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]  # Together's "eos"
    assert attrs["$ai_stop_reason"] == "stop"
    assert content(chat, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": REPLY}], "finish_reason": "stop"}]
    assert len(content(chat, "gen_ai.input.messages")) == 2

    tool_spans = [s for s in spans if s["attributes"].get("gen_ai.response.finish_reasons") == ["tool_call"]]
    assert len(tool_spans) == 2
    for span in tool_spans:
        assert content(span, "gen_ai.tool.definitions")[0]["name"] == "get_weather"
        assert content(span, "gen_ai.output.messages")[0]["parts"] == [
            {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]

    stream = next(s for s in spans if s["attributes"].get("gen_ai.request.stream")
                  and s["attributes"]["gen_ai.response.finish_reasons"] == ["stop"])
    attrs = stream["attributes"]
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)  # from the last chunk
    assert attrs["$ai_stream"] is True
    assert content(stream, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": REPLY}], "finish_reason": "stop"}]

    assert by_model(spans, "raw-model")["attributes"]["gen_ai.usage.output_tokens"] == 7
    assert len(content(by_model(spans, "iter-model"), "gen_ai.input.messages")) == 2


def test_async_early_exits_errors_and_embeddings(run_together, posthog):
    result = run_both(run_together, "async_all", "stream_break", "stream_error", "error_429", "embeddings")
    assert "error_429 RateLimitError 429" in result.stdout
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
    assert [e["name"] for e in failed["events"]] == ["exception"]

    limited = by_model(spans, "error-429")
    assert limited["attributes"]["error.type"] == "together.RateLimitError"
    assert limited["attributes"]["$ai_http_status"] == 429

    embeddings = by_model(spans, "BAAI/bge-base-en-v1.5")
    attrs = embeddings["attributes"]
    assert embeddings["name"] == "embeddings BAAI/bge-base-en-v1.5"
    assert attrs["gen_ai.provider.name"] == "together"
    assert attrs["gen_ai.embeddings.dimension.count"] == 8
    assert "gen_ai.usage.input_tokens" not in attrs  # Together reports none; never estimated
    assert [m["parts"][0]["content"] for m in content(embeddings, "gen_ai.input.messages")] == ["first text", "second text"]
