"""End to end: an unmodified xAI app (``xai-sdk``, gRPC) under ``posthog-instrument``, against a
loopback gRPC server built from the SDK's own protobuf definitions, and the PostHog stand-in.

All scenarios run in one app process, once instrumented and once plainly (the output must not
change); spans are told apart by their prompt. The SDK traces itself into the global tracer
provider: every call must still be exactly one generation, ours."""

from __future__ import annotations

import pytest

pytest.importorskip("xai_sdk")

from tests.e2e.providers import (
    CHAT_SETTINGS,
    SAY_HELLO,
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
from tests.servers import xai_server as wire  # noqa: E402
from tests.servers.xai_server import FakeXAI  # noqa: E402

MODEL = "grok-4-fast"
SCENARIOS = (
    "chat",
    "tools",
    "reasoning",
    "picture",
    "parse",
    "stream",
    "stream_break",
    "stream_error",
    "error_429",
    "async_all",
)
SPAN_COUNT = 12
USAGE = {
    "gen_ai.usage.input_tokens": wire.PROMPT_TOKENS,
    "gen_ai.usage.output_tokens": wire.COMPLETION_TOKENS,
    "gen_ai.usage.cache_read.input_tokens": wire.CACHED_TOKENS,
}
TOOL_CALL = {
    "type": "function",
    "id": wire.TOOL_CALL_ID,
    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
}


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    with FakeXAI() as xai, FakePostHog() as posthog:
        env = app_env(posthog, "XAI_", XAI_API_KEY="xai-test-key", XAI_API_HOST=xai.api_host)
        return record("xai_app", SCENARIOS, env, posthog, xai, SPAN_COUNT)


def test_one_generation_per_call_though_the_sdk_traces_itself(recorded):
    # The SDK's own "chat.sample" spans are beneath ours: the same requests, not sent again.
    assert {s["scope_name"] for s in recorded.spans} == {"posthog_autoinstrument"}
    assert len(recorded.requests) == 2 * SPAN_COUNT  # both runs reached the server


def test_a_sampled_chat_is_a_complete_generation(recorded):
    (span,) = by_prompt(recorded.spans)["Say hello"]
    attrs = span["attributes"]
    assert span["name"] == f"chat {MODEL}"
    assert span["kind_name"] == "CLIENT"
    assert attrs["gen_ai.provider.name"] == "xai"  # PostHog's cost-table name
    assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == MODEL
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert len(attrs["gen_ai.response.id"]) == 36
    assert_has(attrs, USAGE)
    assert "gen_ai.usage.reasoning.output_tokens" not in attrs
    # Protobuf floats are 32-bit: compare as sent.
    settings = {k: pytest.approx(v) if isinstance(v, float) else v for k, v in CHAT_SETTINGS.items()}
    assert_has(attrs, settings)
    assert "gen_ai.request.choice.count" not in attrs  # the SDK's n=1 is no choice of the app's
    assert posthog_input(span) == SAY_HELLO
    assert posthog_output(span) == text_output(wire.DEFAULT_REPLY)
    assert attrs["$ai_http_status"] == 200
    assert attrs["$ai_stream"] is False


def test_tool_calls_and_results(recorded):
    call, answer = by_prompt(recorded.spans)["Weather in Paris?"]
    assert tools(call) == [posthog_tool(WEATHER_TOOL)]
    assert posthog_output(call) == [{"role": "assistant", "content": [TOOL_CALL]}]
    assert call["attributes"]["$ai_stop_reason"] == "tool_call"
    assert posthog_input(answer)[-2:] == [
        {"role": "assistant", "content": [TOOL_CALL]},
        {"role": "tool", "tool_call_id": wire.TOOL_CALL_ID, "content": '{"temp": 21}'},
    ]


def test_reasoning_is_recorded_with_its_tokens(recorded):
    (span,) = by_prompt(recorded.spans)["Think, then greet"]
    assert span["attributes"]["gen_ai.usage.reasoning.output_tokens"] == wire.REASONING_TOKENS
    assert posthog_output(span) == text_output(wire.DEFAULT_REPLY, reasoning=wire.REASONING_TEXT)


def test_an_image_in_the_prompt(recorded):
    (span,) = by_prompt(recorded.spans)["Describe this"]
    content = posthog_input(span)[0]["content"]
    assert content[0] == {"type": "text", "text": "Describe this"}
    assert content[1]["type"] == "image"


def test_parse_records_the_schema_it_sent(recorded):
    (span,) = by_prompt(recorded.spans)["Parse the city"]
    assert span["attributes"]["gen_ai.output.type"] == "json"
    assert posthog_output(span) == text_output('{"city": "Paris"}')


def test_streams(recorded):
    spans = by_prompt(recorded.spans)
    (whole,) = spans["Stream please"]
    attrs = whole["attributes"]
    assert attrs["$ai_stream"] is True
    assert attrs["$ai_time_to_first_token"] > 0
    assert_has(attrs, USAGE)
    assert posthog_output(whole) == text_output(wire.DEFAULT_REPLY)
    (left,) = spans["Break early chunks=6"]
    assert left["status_code"] != "ERROR"
    assert "gen_ai.usage.output_tokens" not in left["attributes"]  # the last chunk never came


def test_errors_carry_the_status_that_means_the_same(recorded):
    spans = by_prompt(recorded.spans)
    (limited,) = spans["Rate limit me"]
    assert limited["status_code"] == "ERROR"
    assert limited["attributes"]["$ai_http_status"] == 429
    (broken,) = spans["Fail midway"]
    assert broken["status_code"] == "ERROR"
    assert broken["attributes"]["$ai_http_status"] == 503
    assert [e["name"] for e in broken["events"]] == ["exception"]


def test_async_client(recorded):
    spans = by_prompt(recorded.spans)
    (sampled,) = spans["Async hello"]
    assert posthog_output(sampled) == text_output(wire.DEFAULT_REPLY)
    (streamed,) = spans["Async stream"]
    assert streamed["attributes"]["$ai_stream"] is True
    assert_has(streamed["attributes"], USAGE)
    assert posthog_output(streamed) == text_output(wire.DEFAULT_REPLY)


def test_privacy_mode_sends_no_content():
    with FakeXAI() as xai, FakePostHog() as posthog:
        env = app_env(
            posthog, "XAI_", XAI_API_KEY="xai-test-key", XAI_API_HOST=xai.api_host, POSTHOG_PRIVACY_MODE="true"
        )
        result = run_scenarios("xai_app", ["chat", "tools"], env)
        assert result.returncode == 0, result.stderr
        spans = posthog.wait_for_spans(3)
    for span in spans:
        assert not {"$ai_input", "$ai_output_choices"} & set(span["attributes"]), span["attributes"].keys()
        assert span["attributes"]["gen_ai.usage.input_tokens"] == wire.PROMPT_TOKENS
    assert any("$ai_tools" in span["attributes"] for span in spans)  # tool definitions are metadata
