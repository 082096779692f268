"""End to end: an unmodified boto3 Bedrock app under ``posthog-instrument``, against a loopback
bedrock-runtime that speaks JSON and the binary AWS event-stream, and the PostHog stand-in.

Each app run executes several scenarios; spans are told apart by model id and stream flag."""

from __future__ import annotations

import os

import pytest

from tests.e2e.providers import (
    WEATHER_TOOL,
    app_env,
    assert_embeddings,
    assert_failed_midway,
    assert_left_early,
    run_both,
    run_scenarios,
    text_output,
)
from tests.e2e.traces import by_model, tools as tools_of, posthog_tool, posthog_input, posthog_output
from tests.servers.bedrock_server import FakeBedrock

CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
REPLY = "Hello from fake Bedrock"


@pytest.fixture
def fake_bedrock():
    with FakeBedrock() as server:
        yield server


@pytest.fixture
def bedrock_env(fake_bedrock, posthog):
    return app_env(
        posthog,
        "AWS_",
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME=fake_bedrock.endpoint_url,
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="fake-secret",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_MAX_ATTEMPTS="1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )


@pytest.fixture
def run_bedrock(bedrock_env):
    return lambda *scenarios: run_both("bedrock_app", scenarios, bedrock_env)


def test_converse_and_converse_stream(run_bedrock, posthog, fake_bedrock):
    result = run_bedrock(
        "converse",
        "converse_tools",
        "converse_tool_result",
        "converse_stream",
        "converse_stream_tools",
        "other_aws_calls",
    )
    assert "converse_stream EventStream" in result.stdout  # the app's stream still looks like botocore's
    spans = posthog.spans
    assert len(spans) == 5
    assert posthog.rejections == []

    converse = next(s for s in spans if s["attributes"].get("gen_ai.request.max_tokens") == 50)
    attrs = converse["attributes"]
    assert converse["name"] == f"chat {CLAUDE}"
    assert converse["scope_name"] == "posthog_autoinstrument"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "amazon-bedrock"  # PostHog's cost-table name
    assert attrs["gen_ai.request.model"] == CLAUDE
    assert attrs["gen_ai.request.temperature"] == 0.3
    assert attrs["gen_ai.request.top_p"] == 0.9
    assert attrs["gen_ai.request.top_k"] == 40
    assert attrs["gen_ai.request.stop_sequences"] == ["END"]
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == fake_bedrock.port
    # Bedrock's inputTokens exclude cache reads and writes; the conventions include them.
    assert attrs["gen_ai.usage.input_tokens"] == 11 + 3 + 2
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 2
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert len(attrs["aws.request_id"]) == 36
    assert attrs["$ai_cache_reporting_exclusive"] is False
    assert attrs["$ai_stream"] is False
    assert attrs["$ai_max_tokens"] == 50
    system, message = posthog_input(converse)
    assert system == {"role": "system", "content": "You are terse."}
    assert message["content"][0] == {"type": "text", "text": "Say hello"}
    image = message["content"][1]
    assert image["type"] == "image" and "image/png" in image["image"] and "omitted" in image["image"]
    assert posthog_output(converse) == text_output(REPLY)

    tools = next(
        s
        for s in spans
        if s["attributes"].get("gen_ai.response.finish_reasons") == ["tool_call"]
        and not s["attributes"].get("gen_ai.request.stream")
    )
    assert tools_of(tools) == [posthog_tool(WEATHER_TOOL)]
    assert posthog_output(tools) == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {
                    "type": "function",
                    "id": "tooluse_1",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                },
            ],
        }
    ]
    assert tools["attributes"]["$ai_stop_reason"] == "tool_call"

    tool_result = next(s for s in spans if [m["role"] for m in posthog_input(s)][-1] == "tool")
    history = posthog_input(tool_result)
    assert history[-2]["content"] == [
        {"type": "function", "id": "tooluse_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert history[-1] == {"role": "tool", "tool_call_id": "tooluse_1", "content": '{"temp_c":21}'}

    stream = by_model(spans, "us." + CLAUDE, stream=True)
    attrs = stream["attributes"]
    assert attrs["gen_ai.request.stream"] is True and attrs["$ai_stream"] is True
    assert attrs["gen_ai.request.max_tokens"] == 64
    assert attrs["gen_ai.usage.input_tokens"] == 16
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert posthog_output(stream) == text_output(REPLY)

    streamed_tool = by_model(spans, "amazon.nova-pro-v1:0", stream=True)
    (output,) = posthog_output(streamed_tool)
    assert streamed_tool["attributes"]["gen_ai.response.finish_reasons"] == ["tool_call"]
    assert output["content"] == [
        {"type": "text", "text": REPLY},
        {"type": "function", "id": "tooluse_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
    ]


FAMILIES = {
    # model id: (operation, max tokens, response model, usage(input, output, cache read, cache write))
    CLAUDE: ("chat", 40, "claude-3-5-haiku-20241022", (16, 7, 3, 2)),
    "us.amazon.nova-lite-v1:0": ("chat", 41, None, (11, 7, 0, 0)),
    "amazon.titan-text-express-v1": ("text_completion", 42, None, (11, 7, None, None)),
    "meta.llama3-8b-instruct-v1:0": ("text_completion", 43, None, (11, 7, None, None)),
    "mistral.mistral-7b-instruct-v0:2": ("text_completion", 44, None, (11, 7, None, None)),
    "mistral.mistral-large-2407-v1:0": ("chat", 45, "mistral-large-2407", (11, 7, None, None)),
    "cohere.command-text-v14": ("text_completion", 46, None, (11, 7, None, None)),
    "cohere.command-r-v1:0": ("chat", 47, None, (11, 7, None, None)),
}


def assert_usage(attrs: dict, expected: tuple) -> None:
    keys = (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
    )
    assert tuple(attrs.get(k) for k in keys) == expected


def test_invoke_model_every_family(run_bedrock, posthog):
    run_bedrock("invoke_families", "invoke_anthropic_tools")
    spans = posthog.spans
    assert len(spans) == len(FAMILIES) + 1
    for model, (operation, max_tokens, response_model, usage) in FAMILIES.items():
        span = next(
            s
            for s in spans
            if s["attributes"].get("gen_ai.request.model") == model
            and s["attributes"].get("gen_ai.request.max_tokens") == max_tokens
        )
        attrs = span["attributes"]
        assert attrs["gen_ai.provider.name"] == "amazon-bedrock"  # PostHog's cost-table name
        assert span["name"] == f"{operation} {model}"
        # The PostHog dialect maps text_completion to a generation.
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs.get("gen_ai.response.model") == response_model
        assert_usage(attrs, usage)
        assert attrs["gen_ai.response.finish_reasons"] == ["stop"], model
        assert posthog_output(span) == text_output(REPLY)
        last = posthog_input(span)[-1]["content"]
        last = last if isinstance(last, str) else last[-1]["text"]
        assert last.endswith("Say hello" if "mistral-7b" not in model else "[/INST]"), model
    assert posthog_input(by_model_tokens(spans, CLAUDE, 40))[0] == {"role": "system", "content": "Be brief."}
    assert by_model_tokens(spans, CLAUDE, 40)["attributes"]["gen_ai.response.id"] == "msg_bdrk_01"
    nova = by_model_tokens(spans, "us.amazon.nova-lite-v1:0", 41)["attributes"]
    assert (nova["gen_ai.request.temperature"], nova["gen_ai.request.top_p"]) == (0.4, 0.8)
    assert by_model_tokens(spans, "amazon.titan-text-express-v1", 42)["attributes"][
        "gen_ai.request.stop_sequences"
    ] == ["User:"]
    assert by_model_tokens(spans, "mistral.mistral-7b-instruct-v0:2", 44)["attributes"]["gen_ai.request.top_k"] == 50
    cohere = by_model_tokens(spans, "cohere.command-text-v14", 46)["attributes"]
    assert (cohere["gen_ai.request.top_p"], cohere["gen_ai.request.top_k"]) == (0.7, 10)
    command_r = by_model_tokens(spans, "cohere.command-r-v1:0", 47)
    assert [m["role"] for m in posthog_input(command_r)] == ["system", "user", "assistant", "user"]
    assert posthog_input(command_r)[0] == {"role": "system", "content": "Be brief."}
    large = by_model_tokens(spans, "mistral.mistral-large-2407-v1:0", 45)
    assert [m["role"] for m in posthog_input(large)] == ["system", "user"]

    tools = next(s for s in spans if s["attributes"].get("gen_ai.response.finish_reasons") == ["tool_call"])
    assert tools_of(tools)[0]["function"]["name"] == "get_weather"
    assert posthog_output(tools)[0]["content"] == [
        {"type": "function", "id": "toolu_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]


def by_model_tokens(spans: list, model: str, max_tokens: int) -> dict:
    return next(
        s
        for s in spans
        if s["attributes"].get("gen_ai.request.model") == model
        and s["attributes"].get("gen_ai.request.max_tokens") == max_tokens
    )


def test_invoke_model_with_response_stream_every_family(run_bedrock, posthog):
    run_bedrock("invoke_streams")
    spans = posthog.spans
    assert len(spans) == len(FAMILIES)
    for model, (operation, max_tokens, response_model, usage) in FAMILIES.items():
        span = by_model(spans, model, stream=True)
        attrs = span["attributes"]
        assert attrs["gen_ai.request.max_tokens"] == max_tokens
        assert attrs["gen_ai.response.finish_reasons"] == ["stop"], model
        assert posthog_output(span) == text_output(REPLY)
        # The last chunk's amazon-bedrock-invocationMetrics is Bedrock's own final count.
        expected = (
            usage[0],
            usage[1],
            usage[2] if usage[2] is not None else 0,
            usage[3] if usage[3] is not None else 0,
        )
        assert_usage(attrs, expected)
        assert attrs.get("gen_ai.response.model") == response_model
        assert attrs["$ai_stream"] is True


def test_stream_exits_errors_and_embeddings(run_bedrock, posthog):
    result = run_bedrock("stream_break", "stream_close", "stream_error", "error", "embeddings")
    assert (
        "stream_error ['messageStart', 'contentBlockDelta', 'contentBlockDelta'] EventStreamError modelStreamErrorException"
        in result.stdout
    )
    assert "error ValidationException ValidationException 400" in result.stdout
    spans = posthog.spans
    assert len(spans) == 6

    assert_left_early(by_model(spans, "us." + CLAUDE, stream=True), "Hello from")  # never reached the metadata event

    closed = by_model(spans, "meta.llama3-1-8b-instruct-v1:0", stream=True)
    assert closed["status_code"] != "ERROR"
    assert "gen_ai.usage.input_tokens" not in closed["attributes"]

    assert_failed_midway(by_model(spans, "stream-error", stream=True), "botocore.EventStreamError")

    error = by_model(spans, "error-400")
    assert error["status_code"] == "ERROR"
    assert error["attributes"]["error.type"] == "botocore.ValidationException"

    assert_embeddings(by_model(spans, "amazon.titan-embed-text-v2:0"), "amazon.titan-embed-text-v2:0", 5, 8, texts=None)
    cohere = by_model(spans, "cohere.embed-english-v3")
    assert cohere["attributes"]["gen_ai.operation.name"] == "embeddings"
    assert cohere["attributes"]["gen_ai.usage.input_tokens"] == 6  # from x-amzn-bedrock-input-token-count
    assert posthog_input(cohere) == ["first text", "second text"]


def test_privacy_mode_keeps_usage_and_drops_content(bedrock_env, posthog):
    result = run_scenarios(
        "bedrock_app", ("converse_stream", "invoke_streams"), dict(bedrock_env, POSTHOG_PRIVACY_MODE="true")
    )
    assert result.returncode == 0, result.stderr
    spans = posthog.spans
    assert len(spans) == 1 + len(FAMILIES)
    for span in spans:
        attrs = span["attributes"]
        assert not any(
            k in attrs
            for k in (
                "gen_ai.input.messages",
                "gen_ai.output.messages",
                "gen_ai.system_instructions",
                "$ai_input",
                "$ai_output_choices",
            )
        )
        assert attrs["gen_ai.usage.output_tokens"] == 7
        assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
