"""End to end: an unmodified Vertex AI SDK app (``vertexai`` in google-cloud-aiplatform) under
``posthog-instrument``, over the SDK's REST transport (sync and async) against the loopback
Gemini stand-in's Vertex AI paths, and the PostHog stand-in.

google-cloud-aiplatform needs google-genai < 3, so these tests run in their own environment
(tests/requirements-vertex-watsonx.txt, a block of .ci/run) and skip in the main one. All scenarios run
in one app process, once instrumented and once plainly (the output must not change); spans are
told apart by their prompt."""

from __future__ import annotations

import pytest

pytest.importorskip("vertexai")

from tests.e2e.providers import (
    CHAT_SETTINGS,
    WEATHER_TOOL,
    Recorded,
    app_env,
    assert_has,
    record,
    run_scenarios,
    text_output,
)  # noqa: E402
from tests.e2e.traces import by_prompt, posthog_input, posthog_output, posthog_tool, tools  # noqa: E402
from tests.servers import FakePostHog  # noqa: E402
from tests.servers import gemini_server as wire  # noqa: E402
from tests.servers.gemini_server import FakeGemini  # noqa: E402

MODEL = "gemini-2.5-flash"
SCENARIOS = ("generate", "tools", "stream", "stream_break", "error_429", "embed", "async_all")
SPAN_COUNT = 9
USAGE = {
    "gen_ai.usage.input_tokens": wire.PROMPT_TOKENS,
    "gen_ai.usage.output_tokens": wire.CANDIDATES_TOKENS,
    "gen_ai.usage.cache_read.input_tokens": wire.CACHED_TOKENS,
    "gen_ai.usage.reasoning.output_tokens": wire.THOUGHTS_TOKENS,
}


def _env(gemini, posthog, **extra) -> dict:
    return app_env(posthog, ("GOOGLE_", "VERTEX"), VERTEX_API_ENDPOINT=gemini.root_url, **extra)


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    with FakeGemini() as gemini, FakePostHog() as posthog:
        return record("vertexai_app", SCENARIOS, _env(gemini, posthog), posthog, gemini, SPAN_COUNT)


def test_generate_content_is_a_complete_generation(recorded):
    (span,) = by_prompt(recorded.spans)["Say hello"]
    attrs = span["attributes"]
    assert span["name"] == f"generate_content {MODEL}"
    assert attrs["gen_ai.operation.name"] == "chat"  # PostHog's name for a generation
    assert attrs["gen_ai.provider.name"] == "google-vertex"  # PostHog's cost-table name
    assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == MODEL
    assert attrs["$ai_base_url"] == recorded_base_url(recorded)
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert_has(attrs, USAGE)
    assert_has(attrs, dict(CHAT_SETTINGS, **{"gen_ai.request.top_k": 20}))
    # The system instruction and the prompt, from the request the SDK built.
    assert posthog_input(span) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello"},
    ]
    assert posthog_output(span) == text_output(wire.DEFAULT_REPLY)
    assert attrs["$ai_http_status"] == 200


def recorded_base_url(recorded) -> str:
    host = recorded.requests[0]["headers"]["host"]
    return f"http://{host}"


def test_a_chat_session_records_each_message_with_the_history_sent(recorded):
    call, answer = by_prompt(recorded.spans)["Weather in Paris?"]
    assert tools(call) == [posthog_tool(WEATHER_TOOL)]  # the schema as the app wrote it
    function_call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    assert posthog_output(call) == [{"role": "assistant", "content": [function_call]}]
    assert call["attributes"]["$ai_stop_reason"] == "tool_call"
    assert posthog_input(answer)[1]["content"] == [function_call]
    assert posthog_input(answer)[2]["role"] == "tool"


def test_streams(recorded):
    spans = by_prompt(recorded.spans)
    (whole,) = spans["Stream please"]
    assert whole["attributes"]["$ai_stream"] is True
    assert whole["attributes"]["$ai_time_to_first_token"] > 0
    assert_has(whole["attributes"], USAGE)
    assert posthog_output(whole) == text_output(wire.DEFAULT_REPLY)
    (left,) = spans["Break early chunks=6"]
    assert left["status_code"] != "ERROR"
    assert "gen_ai.usage.output_tokens" not in left["attributes"]


def test_an_error_with_its_status(recorded):
    (span,) = by_prompt(recorded.spans)["Rate limit me"]
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["$ai_http_status"] == 429
    assert span["attributes"]["error.type"].endswith("TooManyRequests")


def test_text_embeddings(recorded):
    (span,) = [s for s in recorded.spans if s["attributes"]["gen_ai.operation.name"] == "embeddings"]
    attrs = span["attributes"]
    assert attrs["gen_ai.request.model"] == "text-embedding-005"
    assert attrs["gen_ai.usage.input_tokens"] == 2 * wire.EMBED_TOKENS_PER_TEXT
    assert attrs["gen_ai.embeddings.dimension.count"] == wire.EMBEDDING_DIMENSIONS
    assert posthog_input(span) == ["first text", "second text"]


def test_async(recorded):
    spans = by_prompt(recorded.spans)
    (generated,) = spans["Async hello"]
    assert posthog_output(generated) == text_output(wire.DEFAULT_REPLY)
    (streamed,) = spans["Async stream"]
    assert streamed["attributes"]["$ai_stream"] is True
    assert_has(streamed["attributes"], USAGE)
    assert posthog_output(streamed) == text_output(wire.DEFAULT_REPLY)


def test_privacy_mode_sends_no_content():
    with FakeGemini() as gemini, FakePostHog() as posthog:
        result = run_scenarios(
            "vertexai_app", ["generate", "tools"], _env(gemini, posthog, POSTHOG_PRIVACY_MODE="true")
        )
        assert result.returncode == 0, result.stderr
        spans = posthog.wait_for_spans(3)
    for span in spans:
        assert not {"$ai_input", "$ai_output_choices"} & set(span["attributes"]), span["attributes"].keys()
        assert span["attributes"]["gen_ai.usage.input_tokens"] == wire.PROMPT_TOKENS
    assert any("$ai_tools" in span["attributes"] for span in spans)  # tool definitions are metadata
