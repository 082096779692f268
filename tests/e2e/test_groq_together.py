"""End to end: unmodified Groq and Together AI apps under ``posthog-instrument``, against loopback
Groq / Together and PostHog stand-ins. Both SDKs have OpenAI's chat API under their own names and
share one adapter (``openai_compatible``), so every scenario runs for both; spans are told apart by
model name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pytest

from tests.e2e.providers import (
    SAY_HELLO,
    app_env,
    assert_embeddings,
    assert_failed_midway,
    assert_left_early,
    run_both,
    text_output,
)
from tests.e2e.traces import by_model, tools, posthog_input, posthog_output
from tests.servers.groq_server import FakeGroq
from tests.servers.together_server import FakeTogether


@dataclass(frozen=True)
class Library:
    name: str  # the SDK's module
    fake: type
    api_key: str
    model: str
    embedding_model: str
    embedding_tokens: Optional[int]  # Together reports none; never estimated
    cached_tokens: Optional[int]  # Groq reports cache reads (included in the prompt tokens)
    top_k: Optional[int]  # Groq's API has no top_k
    chat_line: str  # what the app prints for a plain chat: Groq's x_groq.id, or Together's own finish reason

    @property
    def reply(self) -> str:
        return f"Hello from fake {self.fake.flavor.name}"


GROQ = Library(
    "groq",
    FakeGroq,
    "gsk_test_key",
    "llama-3.3-70b-versatile",
    "nomic-embed-text-v1_5",
    embedding_tokens=8,
    cached_tokens=3,
    top_k=None,
    chat_line="chat ChatCompletion Hello from fake Groq 18 req_fake",
)
TOGETHER = Library(
    "together",
    FakeTogether,
    "tgp_test_key",
    "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "BAAI/bge-base-en-v1.5",
    embedding_tokens=None,
    cached_tokens=None,
    top_k=40,
    chat_line="chat ChatCompletion Hello from fake Together 18 eos",
)
TOOL_CALL = {"type": "function", "id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}


@pytest.fixture(params=[GROQ, TOGETHER], ids=lambda library: library.name)
def library(request) -> Library:
    return request.param


@pytest.fixture
def fake(library):
    with library.fake() as server:
        yield server


@pytest.fixture
def run_library(library, fake, posthog):
    prefix = library.name.upper() + "_"
    env = app_env(posthog, prefix, **{prefix + "BASE_URL": fake.base_url, prefix + "API_KEY": library.api_key})
    return lambda *scenarios: run_both("groq_together_app", (library.name, *scenarios), env)


def test_chat_streams_and_tools(library, run_library, posthog, fake):
    result = run_library("chat", "chat_tools", "chat_stream", "stream_tools", "raw_response", "iterator_messages")
    assert library.chat_line in result.stdout
    assert f"chat_stream Stream True '{library.reply}' 6 7" in result.stdout
    assert all("stream_options" not in r["json"] for r in fake.requests)  # the SDKs take none
    spans = posthog.spans
    assert len(spans) == 6
    assert posthog.rejections == []

    chat = next(s for s in spans if s["attributes"].get("gen_ai.request.max_tokens") == 50)
    attrs = chat["attributes"]
    assert chat["name"] == f"chat {library.model}"
    assert attrs["gen_ai.provider.name"] == library.name
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.response.model"] == library.model
    assert attrs["gen_ai.response.id"].startswith("chatcmpl-")
    assert (attrs["gen_ai.request.temperature"], attrs["gen_ai.request.top_p"], attrs["gen_ai.request.seed"]) == (
        0.3,
        0.9,
        7,
    )
    assert attrs.get("gen_ai.request.top_k") == library.top_k
    assert attrs["gen_ai.request.stop_sequences"] == ["END"]
    assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == fake.port
    # prompt_tokens already include Groq's cached tokens (OpenAI's convention, and ours).
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert attrs.get("gen_ai.usage.cache_read.input_tokens") == library.cached_tokens
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]  # Together's "eos" too
    assert attrs["$ai_stop_reason"] == "stop"
    assert not any(k.startswith("openai.") for k in attrs), [k for k in attrs if k.startswith("openai.")]
    assert posthog_input(chat) == SAY_HELLO
    assert posthog_output(chat) == text_output(library.reply)
    assert attrs["$ai_stream"] is False and attrs["$ai_max_tokens"] == 50

    tool_spans = [s for s in spans if s["attributes"].get("gen_ai.response.finish_reasons") == ["tool_call"]]
    assert len(tool_spans) == 2  # plain and streamed
    for span in tool_spans:
        assert tools(span)[0]["function"]["name"] == "get_weather"
        assert posthog_output(span) == [{"role": "assistant", "content": [TOOL_CALL]}]

    stream = next(
        s
        for s in spans
        if s["attributes"].get("gen_ai.request.stream")
        and s["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]
    )
    attrs = stream["attributes"]
    # From the last chunk; Groq's stream usage arrives only in its x_groq.usage.
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert attrs.get("gen_ai.usage.cache_read.input_tokens") == library.cached_tokens
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert attrs["$ai_stream"] is True
    assert posthog_output(stream) == text_output(library.reply)

    assert by_model(spans, "raw-model")["attributes"]["gen_ai.usage.output_tokens"] == 7
    assert len(posthog_input(by_model(spans, "iter-model"))) == 2


@pytest.mark.parametrize("library", [GROQ], ids=["groq"])
def test_groq_reasoning(run_library, posthog):
    run_library("reasoning")
    spans = posthog.spans
    assert len(spans) == 2
    reasoned = by_model(spans, "openai/gpt-oss-20b")
    assert reasoned["attributes"]["gen_ai.request.reasoning.level"] == "low"
    assert posthog_output(reasoned) == text_output(GROQ.reply, reasoning="The user wants a greeting.")
    streamed_reasoning = by_model(spans, "openai/gpt-oss-120b", stream=True)
    assert posthog_output(streamed_reasoning)[0]["content"][0] == {
        "type": "thinking",
        "thinking": "The user wants a greeting.",
    }


def test_async_early_exits_errors_and_embeddings(library, run_library, posthog):
    result = run_library("async_all", "stream_break", "stream_error", "error_429", "embeddings")
    assert "error_429 RateLimitError 429" in result.stdout
    assert "stream_error RemoteProtocolError" in result.stdout  # the SDK lets httpx's error through
    spans = posthog.spans
    assert len(spans) == 6

    assert by_model(spans, "async-model")["attributes"]["gen_ai.usage.output_tokens"] == 7
    async_stream = by_model(spans, "async-stream-model", stream=True)
    assert async_stream["attributes"]["gen_ai.usage.output_tokens"] == 7
    assert posthog_output(async_stream) == text_output(library.reply)

    assert_left_early(by_model(spans, "break-model", stream=True), "Hello from")
    assert_failed_midway(by_model(spans, "stream-error", stream=True), "httpx.RemoteProtocolError")

    limited = by_model(spans, "error-429")
    assert limited["status_code"] == "ERROR"
    assert limited["attributes"]["error.type"] == f"{library.name}.RateLimitError"
    assert limited["attributes"]["$ai_http_status"] == 429

    embeddings = by_model(spans, library.embedding_model)
    assert_embeddings(embeddings, library.embedding_model, library.embedding_tokens, 8)
    assert embeddings["attributes"]["gen_ai.provider.name"] == library.name


def test_a_relayed_stream_is_a_complete_generation(library, run_library, posthog):
    # The app reads the stream's lines itself (with_streaming_response, an LLM proxy).
    result = run_library("relayed_stream")
    assert "relayed_stream" in result.stdout
    attrs = by_model(posthog.spans, "relay-model", stream=True)["attributes"]
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 7)
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["$ai_time_to_first_token"] > 0
    assert posthog_output(by_model(posthog.spans, "relay-model", stream=True)) == text_output(library.reply)
