"""End to end: an unmodified Anthropic app under ``posthog-instrument``, against loopback
Anthropic (also as Bedrock and Vertex AI) and PostHog stand-ins.

Where the installed SDK traces itself (1.14+), which path records a call depends on who else
consumes spans. With PostHog the only one (no OpenTelemetry export of the app's own), the SDK's
tracing is switched off and our adapter records each call; the same app run with an OTLP export
of its own keeps the SDK's spans (its collector receives them) and PostHog receives those,
completed. Both runs must send PostHog the same events. On an older SDK (CI runs this file
again against the newest release without tracing) both runs are ours. Each run covers every
surface once; spans are told apart by the app function that made them.
"""

from __future__ import annotations

import sys
from importlib.metadata import version

import pytest

from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.e2e.providers import WEATHER_TOOL
from tests.e2e.traces import tools, posthog_tool, posthog_input, posthog_output
from tests.servers import FakePostHog
from tests.servers.otlp_collector import FakeCollector
from tests.servers.anthropic_server import (
    CACHE_CREATION,
    CACHE_READ,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    THINKING_TOKENS,
    FakeAnthropic,
)

MODEL = "claude-fake-1"
SERVED = "claude-fake-1-20250101"
BEDROCK_MODEL = "anthropic.claude-fake-1-v1:0"
ALL_INPUT = INPUT_TOKENS + CACHE_READ + CACHE_CREATION  # the conventions count cache tokens as input

SDK_VERSION = tuple(int(p) for p in version("anthropic").split(".")[:2])
NATIVE = SDK_VERSION >= (1, 14)  # the SDK traces itself

# Allowed to differ between two runs of the same call: ids, timings and error texts (the
# SDK's span carries no exception event; the PostHog copy of it names the error instead).
VOLATILE = {"gen_ai.response.id", "gen_ai.response.time_to_first_chunk", "$ai_time_to_first_token", "$ai_error"}


@pytest.fixture(scope="module")
def fake_anthropic():
    with FakeAnthropic() as server:
        yield server


def run_app(fake, *args: str, instrumented: bool = True, **overrides: str):
    """Run the app (under posthog-instrument, or plainly) and return (run, spans PostHog got)."""
    with FakePostHog() as posthog:
        env = clean_env(
            ANTHROPIC_BASE_URL=fake.base_url,
            ANTHROPIC_API_KEY="sk-ant-test-key",
            ANTHROPIC_BEDROCK_BASE_URL=fake.base_url,
            AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="AKIAFAKEACCESSKEY",
            AWS_SECRET_ACCESS_KEY="fake-secret-key",
            ANTHROPIC_VERTEX_BASE_URL=fake.vertex_base_url,
            CLOUD_ML_REGION="us-east5",
            ANTHROPIC_VERTEX_PROJECT_ID="fake-project",
            POSTHOG_API_KEY="phc_test_project_token",
            POSTHOG_HOST=posthog.host,
            POSTHOG_EXPORT_INTERVAL="0.05",
        )
        for key in [k for k in env if k.startswith("ANTHROPIC_OPEN_TELEMETRY")]:
            del env[key]
        env.update(overrides)
        script = [str(APPS / "anthropic_app.py"), *args]
        result = run([LAUNCHER, "python", *script] if instrumented else [sys.executable, *script], env)
        assert result.returncode == 0, result.stderr
        assert posthog.rejections == []
        return result, posthog.spans


def by_call(spans: list) -> dict:
    """Spans keyed by (app function, streamed); each call must have exactly one."""
    keyed: dict = {}
    for span in spans:
        attrs = span["attributes"]
        key = (attrs.get("code.function.name"), bool(attrs.get("gen_ai.request.stream")))
        assert key not in keyed, f"two spans for one call: {key}"
        keyed[key] = span
    return keyed


def new_requests(fake, since: int) -> list:
    return fake.requests[since:]


@pytest.fixture(scope="module")
def default_run(fake_anthropic):
    """PostHog the only consumer of spans: (run, PostHog's spans, the requests the app made)."""
    before = len(fake_anthropic.requests)
    result, spans = run_app(fake_anthropic, "all")
    return result, spans, new_requests(fake_anthropic, before)


@pytest.fixture(scope="module")
def own_telemetry_run(fake_anthropic):
    """The app exports its own spans over OTLP: (run, PostHog's spans, its collector's spans)."""
    with FakeCollector() as collector:
        result, spans = run_app(
            fake_anthropic,
            "all",
            "content_mode_env",
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_BSP_SCHEDULE_DELAY="50",
        )
        return result, spans, collector.spans


@pytest.fixture(scope="module", params=["posthog_only", "own_telemetry"])
def calls(request):
    return by_call(
        request.getfixturevalue("default_run" if request.param == "posthog_only" else "own_telemetry_run")[1]
    )


def test_app_output_is_unchanged(fake_anthropic, default_run, own_telemetry_run):
    plain, spans = run_app(fake_anthropic, "all", "content_mode_env", instrumented=False)
    assert spans == []
    assert default_run[0].stdout == plain.stdout == own_telemetry_run[0].stdout
    assert "create_stream: Hello from fake Claude Stream" in plain.stdout
    assert "error_rate_limit: RateLimitError 429" in plain.stdout


def test_every_call_is_exactly_one_span_from_the_expected_recorder(default_run, own_telemetry_run):
    expected_calls = {
        ("create_text", False),
        ("create_tool_call", False),
        ("create_tool_result", False),
        ("create_thinking", False),
        ("create_stream", True),
        ("stream_text", True),
        ("stream_tool_until_done", True),
        ("stream_thinking", True),
        ("parse", False),
        ("beta_create", False),
        ("raw_response", False),
        ("error_rate_limit", False),
        ("stream_error_event", True),
        ("_async_calls", False),
        ("_async_stream_text", True),
        ("bedrock", False),
        ("bedrock", True),
        ("vertex", False),
        ("vertex", True),
    }
    native, ours = by_call(own_telemetry_run[1]), by_call(default_run[1])
    assert set(native) == set(ours) == expected_calls
    for key, span in native.items():
        if NATIVE:
            assert span["scope_name"].startswith("com.anthropic.sdk.python"), key
            # PostHog receives the name our adapter gives (the SDK calls it anthropic.messages.create).
            assert span["name"] == f"chat {span['attributes']['gen_ai.request.model']}"
        else:
            assert span["scope_name"] == "posthog_autoinstrument", key
    for key, span in ours.items():
        assert span["scope_name"] == "posthog_autoinstrument", key
        assert span["name"] == f"chat {span['attributes']['gen_ai.request.model']}"
    assert native[("bedrock", False)]["scope_name"].endswith(".bedrock" if NATIVE else "autoinstrument")


def test_the_sdk_spans_and_our_spans_give_posthog_the_same_events(default_run, own_telemetry_run):
    native, ours = by_call(own_telemetry_run[1]), by_call(default_run[1])
    for key in native:
        a, b = native[key]["attributes"], ours[key]["attributes"]
        differing = {k for k in set(a) | set(b) if a.get(k) != b.get(k)} - VOLATILE
        assert not differing, (key, {k: (a.get(k), b.get(k)) for k in differing})
        assert native[key]["kind_name"] == ours[key]["kind_name"] == "CLIENT"
        assert (native[key]["status_code"] == "ERROR") == (ours[key]["status_code"] == "ERROR")


def test_text_call_is_a_complete_generation(calls):
    span = calls[("create_text", False)]
    attrs = span["attributes"]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.request.model"] == MODEL
    assert attrs["gen_ai.response.model"] == SERVED
    assert attrs["gen_ai.response.id"].startswith("msg_")
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.request.max_tokens"] == 64
    assert attrs["gen_ai.request.stop_sequences"] == ["END"]
    assert attrs["$ai_base_url"].startswith("http://127.0.0.1:") and "server.address" not in attrs
    # Tokens: input includes both cache reads and cache writes, and PostHog is told so.
    assert attrs["gen_ai.usage.input_tokens"] == ALL_INPUT == 19
    assert attrs["gen_ai.usage.output_tokens"] == OUTPUT_TOKENS
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == CACHE_READ
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == CACHE_CREATION
    assert "gen_ai.usage.cache_write.input_tokens" not in attrs
    assert attrs["$ai_cache_reporting_exclusive"] is False
    assert attrs["anthropic.usage.cache_creation.ephemeral_5m_input_tokens"] == CACHE_CREATION
    assert attrs["anthropic.response.service_tier"] == "standard"
    assert attrs["$ai_stream"] is False
    assert attrs["$ai_max_tokens"] == 64
    assert attrs["$ai_stop_reason"] == "stop"
    assert posthog_input(span) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello"},
    ]
    assert posthog_output(span) == [
        {"role": "assistant", "content": [{"type": "text", "text": "Hello from fake Claude"}]}
    ]
    # metadata.user_id names the PostHog person.
    assert attrs["posthog.distinct_id"] == "user-42"
    assert "posthog_autoinstrument.end_user_id" not in attrs
    assert attrs["code.file.path"].endswith("anthropic_app.py")
    # Transport details of the SDK's span are not part of the event.
    assert not [k for k in attrs if k.startswith(("url.", "http.request.", "anthropic.request.id"))]
    assert "http.response.status_code" not in attrs
    assert span["end_ns"] > span["start_ns"]


def test_tool_definitions_tool_calls_and_tool_results(calls):
    call = calls[("create_tool_call", False)]
    assert tools(call) == [posthog_tool(WEATHER_TOOL)]
    assert posthog_output(call) == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "function",
                    "id": "toolu_01",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                }
            ],
        }
    ]
    assert call["attributes"]["$ai_stop_reason"] == "tool_call"
    result = calls[("create_tool_result", False)]
    assert posthog_input(result) == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {
                    "type": "function",
                    "id": "toolu_01",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                },
            ],
        },
        {"role": "tool", "content": "21C and sunny", "tool_call_id": "toolu_01"},
    ]


@pytest.mark.parametrize("key", [("create_thinking", False), ("stream_thinking", True)])
def test_thinking_is_reasoning(calls, key):
    span = calls[key]
    assert posthog_output(span) == [
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "The user wants a greeting."},
                {"type": "text", "text": "Hello from fake Claude"},
            ],
        }
    ]
    assert span["attributes"]["gen_ai.usage.reasoning.output_tokens"] == THINKING_TOKENS
    assert span["attributes"]["$ai_reasoning_tokens"] == THINKING_TOKENS
    assert span["attributes"]["anthropic.thinking.type"] == "enabled"
    assert span["attributes"]["anthropic.thinking.budget_tokens"] == 1024


@pytest.mark.parametrize(
    "key",
    [("create_stream", True), ("stream_text", True), ("_async_stream_text", True), ("bedrock", True), ("vertex", True)],
)
def test_streams_are_assembled_with_their_usage(calls, key):
    attrs = calls[key]["attributes"]
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["$ai_stream"] is True
    assert attrs["gen_ai.usage.input_tokens"] == ALL_INPUT
    assert attrs["gen_ai.usage.output_tokens"] == OUTPUT_TOKENS
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == CACHE_CREATION
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert posthog_output(calls[key]) == [
        {"role": "assistant", "content": [{"type": "text", "text": "Hello from fake Claude"}]}
    ]


def test_stream_helper_with_tool_input_json(calls):
    span = calls[("stream_tool_until_done", True)]
    assert posthog_output(span) == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "function",
                    "id": "toolu_01",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                }
            ],
        }
    ]
    assert span["attributes"]["gen_ai.response.finish_reasons"] == ["tool_call"]


def test_parse_beta_and_raw_response(calls):
    assert calls[("parse", False)]["attributes"]["gen_ai.output.type"] == "json"
    (output,) = posthog_output(calls[("parse", False)])
    assert output["content"] == [{"type": "text", "text": '{"city": "Paris", "celsius": 21}'}]
    for key in (("beta_create", False), ("raw_response", False), ("_async_calls", False)):
        attrs = calls[key]["attributes"]
        assert attrs["gen_ai.usage.input_tokens"] == ALL_INPUT, key
        assert attrs["gen_ai.usage.output_tokens"] == OUTPUT_TOKENS, key


def test_errors(calls):
    span = calls[("error_rate_limit", False)]
    attrs = span["attributes"]
    assert span["status_code"] == "ERROR"
    assert attrs["error.type"] == "anthropic.RateLimitError"
    assert attrs["http.response.status_code"] == 429
    assert attrs["$ai_http_status"] == 429
    assert "gen_ai.usage.input_tokens" not in attrs
    failed = calls[("stream_error_event", True)]
    assert failed["status_code"] == "ERROR"
    assert failed["attributes"]["error.type"] == "anthropic.APIStatusError"
    (output,) = posthog_output(failed)
    assert output["content"] == [{"type": "text", "text": "Hello fr"}]  # what arrived before the error event


def test_bedrock_and_vertex(calls, fake_anthropic):
    for streamed in (False, True):
        bedrock = calls[("bedrock", streamed)]["attributes"]
        assert bedrock["gen_ai.provider.name"] == "amazon-bedrock"  # PostHog's cost-table name
        assert bedrock["gen_ai.request.model"] == BEDROCK_MODEL
        assert bedrock["gen_ai.usage.input_tokens"] == ALL_INPUT
        vertex = calls[("vertex", streamed)]["attributes"]
        assert vertex["gen_ai.provider.name"] == "google-vertex"  # PostHog's cost-table name
        assert vertex["gen_ai.request.model"] == MODEL
        assert vertex["gen_ai.usage.output_tokens"] == OUTPUT_TOKENS
    bedrock_requests = [r for r in fake_anthropic.requests if r["path"].startswith("/model/")]
    assert {r["path"].rsplit("/", 1)[1] for r in bedrock_requests} == {"invoke", "invoke-with-response-stream"}
    assert all(
        r["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAFAKEACCESSKEY/")
        for r in bedrock_requests
    )  # SigV4-signed with the fake credentials
    vertex_requests = [r for r in fake_anthropic.requests if r["path"].startswith("/v1/projects/")]
    assert vertex_requests and all(r["headers"]["authorization"] == "Bearer vertex-test-token" for r in vertex_requests)


@pytest.mark.parametrize("sdk_tracing", ["posthog_only", "app_switch_on"])
def test_privacy_mode_sends_no_content_and_leaves_the_sdk_metadata_only(fake_anthropic, sdk_tracing):
    overrides = {"ANTHROPIC_OPEN_TELEMETRY": "true"} if sdk_tracing == "app_switch_on" else {}
    result, spans = run_app(
        fake_anthropic, "content_mode_env", "create_text", "stream_text", POSTHOG_PRIVACY_MODE="true", **overrides
    )
    assert "content_mode_env: None" in result.stderr  # the SDK was not told to record content
    assert len(spans) == 2
    for span in spans:
        attrs = span["attributes"]
        assert not [
            k
            for k in attrs
            if k
            in (
                "gen_ai.input.messages",
                "gen_ai.output.messages",
                "gen_ai.system_instructions",
                "$ai_input",
                "$ai_output_choices",
            )
        ]
        assert attrs["gen_ai.usage.input_tokens"] == ALL_INPUT
        assert attrs["gen_ai.usage.output_tokens"] == OUTPUT_TOKENS


def test_with_posthog_the_only_consumer_the_sdk_does_not_trace(default_run):
    # No SDK span: none reaches PostHog, and the SDK puts no trace context on its requests.
    assert {span["scope_name"] for span in default_run[1]} == {"posthog_autoinstrument"}
    assert default_run[2] and not [r for r in default_run[2] if "traceparent" in r["headers"]]


@pytest.mark.skipif(not NATIVE, reason="the SDK does not trace itself")
def test_the_apps_own_telemetry_keeps_the_sdks_spans(own_telemetry_run):
    result, posthog_spans, collected = own_telemetry_run
    sdk_spans = [s for s in collected if s["scope_name"].startswith("com.anthropic.sdk.python")]
    # The same spans PostHog received (completed there), as the SDK made them.
    assert sorted(s["span_id"] for s in sdk_spans) == sorted(s["span_id"] for s in posthog_spans)
    assert {s["name"] for s in sdk_spans} == {"anthropic.messages.create"}
    assert not [s for s in collected if s["scope_name"] == "posthog_autoinstrument"]
    assert not [k for s in sdk_spans for k in s["attributes"] if k.startswith("$")]  # no PostHog dialect there
    assert "content_mode_env: content" in result.stderr


@pytest.mark.skipif(not NATIVE, reason="the SDK does not trace itself")
def test_the_apps_switch_decides_and_content_mode_is_the_apps(fake_anthropic):
    result, spans = run_app(
        fake_anthropic,
        "content_mode_env",
        "create_text",
        ANTHROPIC_OPEN_TELEMETRY="true",
        ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE="metadata_only",
    )
    assert "content_mode_env: metadata_only" in result.stderr
    (span,) = spans
    assert span["scope_name"] == "com.anthropic.sdk.python"
    assert "$ai_input" not in span["attributes"] and "gen_ai.input.messages" not in span["attributes"]
    assert span["attributes"]["gen_ai.usage.input_tokens"] == ALL_INPUT


@pytest.mark.parametrize("sdk_tracing", ["posthog_only", "app_switch_on"])
def test_history_edited_after_the_call_is_recorded_as_sent(fake_anthropic, sdk_tracing):
    overrides = {"ANTHROPIC_OPEN_TELEMETRY": "true"} if sdk_tracing == "app_switch_on" else {}
    _, spans = run_app(fake_anthropic, "history_edited", **overrides)
    (span,) = [s for s in spans if s["attributes"]["gen_ai.request.max_tokens"] == 64]
    assert posthog_input(span) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello"},
    ]
    assert [t["function"]["description"] for t in tools(span)] == ["Weather for a city"]


@pytest.mark.parametrize("sdk_tracing", ["posthog_only", "app_switch_on"])
def test_a_relayed_stream_is_a_complete_generation(fake_anthropic, sdk_tracing):
    overrides = {"ANTHROPIC_OPEN_TELEMETRY": "true"} if sdk_tracing == "app_switch_on" else {}
    result, spans = run_app(fake_anthropic, "relayed_stream", **overrides)
    plain, _ = run_app(fake_anthropic, "relayed_stream", instrumented=False)
    assert result.stdout == plain.stdout == "relayed_stream: event: message_stop\n"
    (span,) = spans
    attrs = span["attributes"]
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.model"] == SERVED
    assert attrs["gen_ai.usage.output_tokens"] == OUTPUT_TOKENS
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["$ai_time_to_first_token"] > 0
    assert posthog_output(span)[0]["content"]
