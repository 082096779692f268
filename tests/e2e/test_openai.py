"""End to end: an unmodified OpenAI app under ``posthog-instrument``, against loopback OpenAI
and PostHog stand-ins. Each test asserts on the spans PostHog decoded, and that the app's own
output and exit code are exactly what they are without instrumentation."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from tests.e2e.providers import CHAT_SETTINGS, SAY_HELLO, WEATHER_TOOL, assert_has, text_output
from tests.e2e.traces import message_text, tools, posthog_tool, posthog_input, posthog_output

MODEL = "gpt-4o-mini"
SERVED_MODEL = "gpt-4o-mini-2024-08-06"  # what the stand-in reports, as OpenAI does

# The oldest releases the README claims run this file too (.ci/run); APIs they lack are skipped.
SDK_VERSION = tuple(int(p) for p in version("openai").split(".")[:2])
needs_responses = pytest.mark.skipif(SDK_VERSION < (1, 66), reason="the Responses API arrived in openai 1.66")
needs_chat_helpers = pytest.mark.skipif(
    SDK_VERSION < (1, 92), reason="chat.completions.parse/.stream arrived in openai 1.92 (before: beta.chat)"
)


def only_span(posthog) -> dict:
    spans = posthog.spans
    assert len(spans) == 1, [s["name"] for s in spans]
    assert posthog.rejections == []
    return spans[0]


def assert_same_as_uninstrumented(run_app, scenario: str, instrumented_run, **env):
    plain = run_app("openai_app", scenario, instrumented=False, **env)
    assert plain.returncode == instrumented_run.returncode == 0, instrumented_run.stderr
    assert instrumented_run.stdout == plain.stdout


def test_chat_completion_records_a_complete_generation(run_app, posthog):
    result = run_app("openai_app", "chat")
    assert_same_as_uninstrumented(run_app, "chat", result)
    span = only_span(posthog)
    attrs = span["attributes"]
    assert span["name"] == f"chat {MODEL}"
    assert span["kind_name"] == "CLIENT" if "kind_name" in span else span["kind"] in (3, "CLIENT")
    assert span["scope_name"] == "posthog_autoinstrument"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == MODEL
    assert attrs["gen_ai.response.model"] == SERVED_MODEL
    assert attrs["gen_ai.response.id"].startswith("chatcmpl-")
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 2
    assert_has(attrs, CHAT_SETTINGS)
    # The full base URL the client used; no server.address, whose host PostHog would write over it.
    assert attrs["$ai_base_url"].startswith("http://127.0.0.1:") and attrs["$ai_base_url"].endswith("/v1/")
    assert "server.address" not in attrs
    assert posthog_input(span) == SAY_HELLO
    assert posthog_output(span) == text_output("Hello from fake OpenAI")
    # The PostHog dialect: what ingestion needs beyond the conventions.
    assert attrs["$ai_cache_reporting_exclusive"] is False
    assert attrs["$ai_reasoning_tokens"] == 2
    assert attrs["$ai_temperature"] == 0.3
    assert attrs["$ai_max_tokens"] == 50
    assert attrs["$ai_stream"] is False
    assert attrs["$ai_stop_reason"] == "stop"
    # The app named its end user in the request (OpenAI `user`): that is the PostHog person.
    assert attrs["posthog.distinct_id"] == "user-123"
    assert "$process_person_profile" not in attrs
    assert "posthog_autoinstrument.end_user_id" not in attrs
    assert attrs["code.function.name"] == "chat"  # the app function that made the call
    assert attrs["code.file.path"].endswith("openai_app.py")
    assert span["end_ns"] > span["start_ns"]
    assert span["parent_span_id"] is None


def test_export_request_is_gzip_protobuf_with_bearer_token(run_app, posthog):
    run_app("openai_app", "chat")
    (request,) = posthog.requests
    assert request["headers"]["authorization"] == "Bearer phc_test_project_token"
    assert request["headers"]["content-type"] == "application/x-protobuf"
    assert request["headers"]["content-encoding"] == "gzip"
    assert request["path"] == "/i/v0/ai/otel"


def test_tool_definitions_and_tool_calls(run_app, posthog):
    result = run_app("openai_app", "chat_tools")
    assert_same_as_uninstrumented(run_app, "chat_tools", result)
    span = only_span(posthog)
    assert tools(span) == [posthog_tool(WEATHER_TOOL)]
    (output,) = posthog_output(span)
    assert output["content"] == [
        {"type": "function", "id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert span["attributes"]["gen_ai.response.finish_reasons"] == ["tool_call"]
    assert span["attributes"]["$ai_stop_reason"] == "tool_call"


def test_stream_gets_usage_without_the_app_seeing_the_extra_chunk(run_app, posthog, fake_openai):
    result = run_app("openai_app", "chat_stream")
    assert_same_as_uninstrumented(run_app, "chat_stream", result)
    assert "usage_chunks=0" in result.stdout
    assert "SyncStreamProxy" not in result.stdout  # __class__ is the SDK's Stream
    asked = [r["json"].get("stream_options") for r in fake_openai.requests]
    assert asked[0] == {"include_usage": True}  # instrumented run asked for usage
    assert asked[1] is None  # the uninstrumented run did not
    span = only_span(posthog)
    attrs = span["attributes"]
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["$ai_stream"] is True
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert posthog_output(span) == text_output("Hello from fake OpenAI")


def test_stream_where_app_asked_for_usage_keeps_its_usage_chunk(run_app, posthog):
    result = run_app("openai_app", "chat_stream_app_usage")
    assert_same_as_uninstrumented(run_app, "chat_stream_app_usage", result)
    assert "usage_chunks=1" in result.stdout
    assert only_span(posthog)["attributes"]["gen_ai.usage.output_tokens"] == 7


def test_stream_usage_injection_can_be_switched_off(run_app, posthog, fake_openai):
    run_app("openai_app", "chat_stream", POSTHOG_AI_STREAM_USAGE="false")
    assert fake_openai.requests[0]["json"].get("stream_options") is None
    attrs = only_span(posthog)["attributes"]
    assert "gen_ai.usage.input_tokens" not in attrs  # never estimated


def test_streamed_tool_call_is_assembled(run_app, posthog):
    result = run_app("openai_app", "chat_stream_tools")
    assert_same_as_uninstrumented(run_app, "chat_stream_tools", result)
    (output,) = posthog_output(only_span(posthog))
    assert output["content"] == [
        {"type": "function", "id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert only_span(posthog)["attributes"]["gen_ai.response.finish_reasons"] == ["tool_call"]


def test_streamed_choices_are_assembled_each_on_its_own(run_app, posthog):
    result = run_app("openai_app", "chat_stream_two_choices")
    assert_same_as_uninstrumented(run_app, "chat_stream_two_choices", result)
    assert "choices [(0, 'Hello from fake OpenAI'), (1, 'Hello from fake OpenAI')]" in result.stdout
    assert posthog_output(only_span(posthog)) == text_output("Hello from fake OpenAI") * 2
    assert only_span(posthog)["attributes"]["gen_ai.response.finish_reasons"] == ["stop", "stop"]


@pytest.mark.parametrize(
    "scenario, expected_text",
    [
        ("stream_break", "He"),  # 3 chunks: role, "He", "llo" pieces depend on chunks=20 split
        ("stream_close", None),
        ("stream_with", None),
    ],
)
def test_stream_ended_early_is_recorded_exactly_once(run_app, posthog, scenario, expected_text):
    result = run_app("openai_app", scenario)
    assert_same_as_uninstrumented(run_app, scenario, result)
    span = only_span(posthog)
    assert span["status_code"] != "ERROR"
    assert span["attributes"]["gen_ai.response.model"] == SERVED_MODEL
    assert "gen_ai.usage.output_tokens" not in span["attributes"]  # the stream never reached its usage


def test_stream_failing_midway_records_the_error_and_partial_output(run_app, posthog):
    result = run_app("openai_app", "stream_error")
    assert_same_as_uninstrumented(run_app, "stream_error", result)
    # openai 3.x raises APIConnectionError; 2.x lets httpx's RemoteProtocolError through
    raised = result.stdout.split("stream failed: ", 1)[1].split()[0]
    assert raised in ("APIConnectionError", "RemoteProtocolError")
    span = only_span(posthog)
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["error.type"].rsplit(".", 1)[-1] == raised
    assert [e["name"] for e in span["events"]] == ["exception"]
    (output,) = posthog_output(span)
    assert output["content"][0]["text"]  # what arrived before the failure


@needs_chat_helpers
def test_stream_helper_is_one_generation(run_app, posthog):
    result = run_app("openai_app", "stream_helper")
    assert_same_as_uninstrumented(run_app, "stream_helper", result)
    attrs = only_span(posthog)["attributes"]
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.request.stream"] is True


def test_messages_given_as_an_iterator_reach_both_the_sdk_and_the_span(run_app, posthog):
    result = run_app("openai_app", "iterator_messages")
    assert_same_as_uninstrumented(run_app, "iterator_messages", result)
    assert len(posthog_input(only_span(posthog))) == 2


@needs_chat_helpers
def test_parse_records_json_output_type(run_app, posthog):
    result = run_app("openai_app", "parse")
    assert_same_as_uninstrumented(run_app, "parse", result)
    attrs = only_span(posthog)["attributes"]
    assert attrs["gen_ai.output.type"] == "json"
    assert attrs["gen_ai.usage.input_tokens"] == 11


@needs_responses
def test_responses_api(run_app, posthog):
    result = run_app("openai_app", "responses")
    assert_same_as_uninstrumented(run_app, "responses", result)
    span = only_span(posthog)
    attrs = span["attributes"]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.response.id"].startswith("resp_")
    assert attrs["gen_ai.response.model"] == SERVED_MODEL
    assert attrs["gen_ai.request.max_tokens"] == 40
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 2
    assert posthog_input(span) == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Say hello"}]
    assert posthog_output(span) == text_output("Hello from fake OpenAI")


@needs_responses
@pytest.mark.parametrize("scenario", ["responses_stream", "responses_helper"])
def test_responses_streams(run_app, posthog, scenario):
    result = run_app("openai_app", scenario)
    assert_same_as_uninstrumented(run_app, scenario, result)
    span = only_span(posthog)
    assert span["attributes"]["gen_ai.request.stream"] is True
    assert span["attributes"]["gen_ai.usage.output_tokens"] == 7
    assert posthog_output(span) == text_output("Hello from fake OpenAI")


@needs_responses
def test_responses_tool_call(run_app, posthog):
    result = run_app("openai_app", "responses_tools")
    assert_same_as_uninstrumented(run_app, "responses_tools", result)
    span = only_span(posthog)
    (output,) = posthog_output(span)
    assert output["content"][0]["type"] == "function"
    assert output["content"][0]["function"]["name"] == "get_weather"
    assert tools(span)[0]["function"]["name"] == "get_weather"


def test_embeddings(run_app, posthog):
    result = run_app("openai_app", "embeddings")
    assert_same_as_uninstrumented(run_app, "embeddings", result)
    span = only_span(posthog)
    attrs = span["attributes"]
    assert span["name"] == "embeddings text-embedding-3-small"
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["gen_ai.embeddings.dimension.count"] == 8
    assert posthog_input(span) == ["first text", "second text"]


@pytest.mark.parametrize("scenario", ["raw_response", "raw_stream", "streaming_response"])
def test_raw_response_variants(run_app, posthog, scenario):
    result = run_app("openai_app", scenario)
    assert_same_as_uninstrumented(run_app, scenario, result)
    attrs = only_span(posthog)["attributes"]
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.response.model"] == SERVED_MODEL


def test_rate_limit_error_is_one_error_span_and_the_app_sees_its_exception(run_app, posthog):
    result = run_app("openai_app", "error_429")
    assert_same_as_uninstrumented(run_app, "error_429", result)
    span = only_span(posthog)
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["error.type"] == "openai.RateLimitError"
    assert span["attributes"]["$ai_http_status"] == 429
    (event,) = span["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"].endswith("RateLimitError")


def test_sdk_retries_are_one_span(run_app, posthog, fake_openai):
    result = run_app("openai_app", "error_500_retried")
    assert "InternalServerError 500" in result.stdout
    assert len(fake_openai.requests) == 3  # the SDK tried three times
    span = only_span(posthog)
    assert span["attributes"]["http.response.status_code"] == 500


@needs_responses
def test_async_client(run_app, posthog):
    result = run_app("openai_app", "async_all")
    assert_same_as_uninstrumented(run_app, "async_all", result)
    spans = posthog.spans
    assert len(spans) == 5
    operations = sorted(s["attributes"]["gen_ai.operation.name"] for s in spans)
    assert operations == ["chat", "chat", "chat", "chat", "embeddings"]
    streamed = [s for s in spans if s["attributes"].get("gen_ai.request.stream")]
    assert len(streamed) == 2
    assert sum(1 for s in streamed if s["attributes"].get("gen_ai.usage.output_tokens") == 7) == 1  # the full one


def test_azure_openai(run_app, posthog, fake_openai):
    result = run_app("openai_app", "azure", AZURE_ENDPOINT=fake_openai.azure_endpoint)
    assert_same_as_uninstrumented(run_app, "azure", result, AZURE_ENDPOINT=fake_openai.azure_endpoint)
    spans = posthog.spans
    assert len(spans) == 2
    for span in spans:
        assert span["attributes"]["gen_ai.provider.name"] == "azure"  # PostHog's cost-table name
        assert span["attributes"]["gen_ai.request.model"] == "my-deployment"
    streamed = next(s for s in spans if s["attributes"].get("gen_ai.request.stream"))
    assert streamed["attributes"]["gen_ai.usage.output_tokens"] == 7
    assert streamed["attributes"]["gen_ai.response.model"]  # Azure's first stream chunk has none


def test_app_without_llm_calls_sends_nothing(run_app, posthog):
    result = run_app("openai_app", "no_llm")
    assert result.returncode == 0
    assert result.stdout.strip() == '{"sum": 45}'
    assert posthog.requests == []


# -- the prompt as it was sent -------------------------------------------------------------


def chats(posthog) -> list:
    # (after the app's warm-up embedding: the export sends the first event at once)
    return [s for s in posthog.spans if s["attributes"]["gen_ai.operation.name"] == "chat"]


def _sent_messages(span: dict) -> list:
    return [(m["role"], message_text(m)) for m in posthog_input(span)]


@pytest.mark.parametrize("scenario", ["history_edited", "history_edited_async"])
def test_history_edited_after_the_call_is_recorded_as_sent(run_app, posthog, fake_openai, scenario):
    # An agent loop that trims its history in place after a call: each generation keeps the
    # messages, tools and parameters of the request that went out, which the stand-in saw.
    result = run_app("openai_app", scenario)
    assert_same_as_uninstrumented(run_app, scenario, result)
    spans = sorted(chats(posthog), key=lambda s: s["start_ns"])
    first = spans[0]
    assert _sent_messages(first) == [("system", "You are terse."), ("user", "Say hello")]
    assert [t["function"]["description"] for t in tools(first)] == ["Weather for a city"]
    assert first["attributes"]["gen_ai.request.stop_sequences"] == ["END"]
    sent = next(r["json"] for r in fake_openai.requests if "messages" in r["json"])
    assert sent["messages"][1]["content"][0]["text"] == "Say hello"
    if scenario == "history_edited":
        # Streamed: edited after its first chunk arrived, recorded as the second request went out.
        assert _sent_messages(spans[1]) == [("system", "EDITED system"), ("user", "TRIMMED")]


def test_responses_input_edited_after_the_call_is_recorded_as_sent(run_app, posthog):
    if SDK_VERSION < (1, 66):
        pytest.skip("the Responses API arrived in openai 1.66")
    result = run_app("openai_app", "responses_input_edited")
    assert_same_as_uninstrumented(run_app, "responses_input_edited", result)
    (span,) = chats(posthog)
    assert _sent_messages(span) == [("system", "You are terse."), ("user", "Say hello")]


# -- relayed streams: the app reads the body itself ----------------------------------------


@pytest.mark.parametrize("scenario", ["relayed_stream_bytes", "relayed_stream_lines", "relayed_stream_text"])
def test_a_relayed_stream_is_a_complete_generation(run_app, posthog, fake_openai, scenario):
    # An LLM proxy relays the provider's SSE bytes as they come: the app gets exactly the
    # provider's bytes (no usage chunk of ours), and the generation is as complete as a parsed one.
    result = run_app("openai_app", scenario)
    assert_same_as_uninstrumented(run_app, scenario, result)
    attrs = only_span(posthog)["attributes"]
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.model"] == SERVED_MODEL
    assert attrs["gen_ai.response.id"].startswith("chatcmpl-")
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.usage.input_tokens"] == 11 and attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["$ai_time_to_first_token"] > 0
    assert posthog_output(only_span(posthog)) == text_output("Hello from fake OpenAI")
    assert fake_openai.requests[-1]["json"]["stream_options"] == {"include_usage": True}


def test_relayed_streams_async_and_a_relayed_body(run_app, posthog, fake_openai):
    for scenario, count in (("relayed_stream_async", 2), ("relayed_body", 1)):
        result = run_app("openai_app", scenario)
        assert_same_as_uninstrumented(run_app, scenario, result)
    spans = posthog.spans
    assert len(spans) == 3
    for span in spans:
        attrs = span["attributes"]
        assert attrs["gen_ai.usage.output_tokens"] == 7 and attrs["gen_ai.response.finish_reasons"] == ["stop"]
        assert message_text(posthog_output(span)[0]).startswith("Hello from")


@needs_responses
def test_a_relayed_responses_stream_is_a_complete_generation(run_app, posthog):
    result = run_app("openai_app", "relayed_responses_stream")
    assert_same_as_uninstrumented(run_app, "relayed_responses_stream", result)
    attrs = only_span(posthog)["attributes"]
    assert attrs["gen_ai.usage.output_tokens"] > 0 and attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert posthog_output(only_span(posthog))[0]["content"]
