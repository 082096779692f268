"""End to end: an unmodified async Bedrock app on aiobotocore under ``posthog-instrument``, against
the loopback bedrock-runtime of the boto3 tests (JSON and the binary AWS event-stream) and the
PostHog stand-in.

aiobotocore pins botocore to a narrow range older than the main environment's: these tests run
in the environment of tests/requirements-vertex-watsonx.txt (a block of .ci/run) and skip in the
main one. Every scenario runs in one app process, once instrumented and once plainly (the output
must not change); spans are told apart by model id and stream flag."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("aiobotocore")

from tests.e2e.providers import (  # noqa: E402
    SAY_HELLO,
    Recorded,
    app_env,
    assert_failed_midway,
    assert_left_early,
    record,
    run_scenarios,
    text_output,
)
from tests.e2e.traces import by_model, posthog_input  # noqa: E402
from tests.posthog_ingest import event_from_span  # noqa: E402
from tests.servers import FakePostHog  # noqa: E402
from tests.servers import bedrock_server as wire  # noqa: E402
from tests.servers.bedrock_server import FakeBedrock  # noqa: E402

CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "us.amazon.nova-lite-v1:0"
SCENARIOS = (
    "converse",
    "converse_stream",
    "invoke_claude",
    "invoke_llama",
    "invoke_stream",
    "stream_break",
    "stream_close",
    "stream_error",
    "error",
    "other_aws_calls",
)
SPAN_COUNT = 10  # one per call: invoke_stream makes two


def _env(bedrock, posthog, **extra) -> dict:
    return app_env(
        posthog,
        "AWS_",
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME=bedrock.endpoint_url,
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="fake-secret",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_MAX_ATTEMPTS="1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        **extra,
    )


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    with FakeBedrock() as bedrock, FakePostHog() as posthog:
        return record("aiobotocore_app", SCENARIOS, _env(bedrock, posthog), posthog, bedrock, SPAN_COUNT)


def _generation(span: dict) -> dict:
    """The properties of the event PostHog stores for ``span``, which must be a generation."""
    event = event_from_span(span)
    assert event is not None and event["event"] == "$ai_generation", span["name"]
    return event["properties"]


def _claude(spans: list, max_tokens: int) -> dict:
    """The one call that is not streamed to Claude (Converse asks 50 tokens, InvokeModel 40)."""
    (span,) = [
        s
        for s in spans
        if s["attributes"].get("gen_ai.request.model") == CLAUDE
        and s["attributes"].get("gen_ai.request.max_tokens") == max_tokens
        and not s["attributes"].get("gen_ai.request.stream")
    ]
    return span


def test_every_call_is_one_generation_and_the_app_sees_botocores_objects(recorded):
    assert len(recorded.spans) == SPAN_COUNT
    assert {s["scope_name"] for s in recorded.spans} == {"posthog_autoinstrument"}
    for span in recorded.spans:
        properties = _generation(span)
        assert properties["$ai_provider"] == "amazon-bedrock"  # PostHog's cost-table name
        assert properties["$ai_base_url"] == "127.0.0.1"
    # The app's objects still look like aiobotocore's (the same class names as in the plain run),
    # and a body read whole is read again as empty.
    assert "converse_stream AioEventStream" in recorded.stdout
    assert f"application/json {wire.REPLY} b''" in recorded.stdout
    assert f"invoke_llama {wire.REPLY}" in recorded.stdout


def test_converse(recorded):
    span = _claude(recorded.spans, max_tokens=50)
    assert span["name"] == f"chat {CLAUDE}"
    assert span["attributes"]["gen_ai.request.temperature"] == 0.3
    properties = _generation(span)
    assert properties["$ai_model"] == CLAUDE  # Converse does not name the model that served it
    # Bedrock's inputTokens exclude cache reads and writes; PostHog's input tokens include them.
    assert properties["$ai_input_tokens"] == wire.INPUT_TOKENS + wire.CACHE_READ + wire.CACHE_WRITE
    assert properties["$ai_output_tokens"] == wire.OUTPUT_TOKENS
    assert properties["$ai_cache_read_input_tokens"] == wire.CACHE_READ
    assert properties["$ai_max_tokens"] == 50
    assert properties["$ai_stream"] is False
    assert properties["$ai_input"] == SAY_HELLO
    assert properties["$ai_output_choices"] == text_output(wire.REPLY)
    assert properties["$ai_stop_reason"] == "stop"


def test_converse_stream(recorded):
    span = by_model(recorded.spans, "us." + CLAUDE, stream=True)
    properties = _generation(span)
    assert properties["$ai_stream"] is True
    assert properties["$ai_input_tokens"] == wire.INPUT_TOKENS + wire.CACHE_READ + wire.CACHE_WRITE
    assert properties["$ai_output_tokens"] == wire.OUTPUT_TOKENS
    assert properties["$ai_output_choices"] == text_output(wire.REPLY)
    assert span["attributes"]["gen_ai.response.time_to_first_chunk"] > 0


def test_invoke_model_claude_and_llama_bodies(recorded):
    claude = _claude(recorded.spans, max_tokens=40)
    properties = _generation(claude)
    assert properties["$ai_model"] == "claude-3-5-haiku-20241022"  # as the body names it
    assert properties["$ai_input_tokens"] == wire.INPUT_TOKENS + wire.CACHE_READ + wire.CACHE_WRITE
    assert properties["$ai_output_tokens"] == wire.OUTPUT_TOKENS
    assert properties["$ai_input"][0] == {"role": "system", "content": "Be brief."}
    assert properties["$ai_output_choices"] == text_output(wire.REPLY)
    assert claude["attributes"]["gen_ai.response.id"] == "msg_bdrk_01"

    llama = by_model(recorded.spans, "meta.llama3-8b-instruct-v1:0")
    assert llama["name"] == "text_completion meta.llama3-8b-instruct-v1:0"
    properties = _generation(llama)
    assert (properties["$ai_input_tokens"], properties["$ai_output_tokens"]) == (wire.INPUT_TOKENS, wire.OUTPUT_TOKENS)
    assert properties["$ai_max_tokens"] == 43
    assert properties["$ai_output_choices"] == text_output(wire.REPLY)
    assert posthog_input(llama)[-1]["content"] == "Say hello"


def test_invoke_model_with_response_stream(recorded):
    for model in (CLAUDE, NOVA):
        span = by_model(recorded.spans, model, stream=True)
        properties = _generation(span)
        assert properties["$ai_stream"] is True
        assert properties["$ai_output_tokens"] == wire.OUTPUT_TOKENS, model
        assert properties["$ai_output_choices"] == text_output(wire.REPLY), model
        assert properties["$ai_stop_reason"] == "stop", model
    assert _generation(by_model(recorded.spans, CLAUDE, stream=True))["$ai_input_tokens"] == (
        wire.INPUT_TOKENS + wire.CACHE_READ + wire.CACHE_WRITE
    )
    assert _generation(by_model(recorded.spans, NOVA, stream=True))["$ai_input_tokens"] == wire.INPUT_TOKENS


def test_streams_end_when_left_closed_or_failed(recorded):
    assert "stream_break 3" in recorded.stdout
    # messageStart, then two of the text deltas: never reached the metadata event
    assert_left_early(by_model(recorded.spans, "us.amazon.nova-pro-v1:0", stream=True), "Hello from")

    closed = by_model(recorded.spans, "meta.llama3-1-8b-instruct-v1:0", stream=True)
    assert closed["status_code"] != "ERROR"
    assert "gen_ai.usage.input_tokens" not in closed["attributes"]

    assert (
        "stream_error ['messageStart', 'contentBlockDelta', 'contentBlockDelta'] EventStreamError "
        "modelStreamErrorException" in recorded.stdout
    )
    failed = by_model(recorded.spans, "stream-error", stream=True)
    assert_failed_midway(failed, "botocore.EventStreamError")
    assert _generation(failed)["$ai_is_error"] is True


def test_an_error_with_its_http_status(recorded):
    assert "error ThrottlingException 429" in recorded.stdout
    span = by_model(recorded.spans, "error-429")
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["error.type"] == "botocore.ThrottlingException"
    properties = _generation(span)
    assert properties["$ai_is_error"] is True
    assert properties["$ai_http_status"] == 429


def test_privacy_mode_keeps_usage_and_drops_content():
    with FakeBedrock() as bedrock, FakePostHog() as posthog:
        env = _env(bedrock, posthog, POSTHOG_PRIVACY_MODE="true")
        result = run_scenarios("aiobotocore_app", ("converse_stream", "invoke_claude", "invoke_stream"), env)
        assert result.returncode == 0, result.stderr
        spans = posthog.wait_for_spans(4)
    assert len(spans) == 4
    for span in spans:
        properties = _generation(span)
        assert not {"$ai_input", "$ai_output_choices", "gen_ai.system_instructions"} & set(properties)
        assert properties["$ai_output_tokens"] == wire.OUTPUT_TOKENS
        assert properties["$ai_stop_reason"] == "stop"
