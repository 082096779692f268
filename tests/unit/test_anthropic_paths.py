"""The two paths of an Anthropic call, in process: the SDK's own span (completed by
``formats/anthropic.py``) and our adapter's span must give PostHog the same attributes.

Same fake server, same call made from the same line, one client tracing itself into an
in-memory tracer provider and one with ``open_telemetry=False``; each span then goes
through the PostHog dialect and the two copies are compared key by key.
"""

from __future__ import annotations

import asyncio
import os
from importlib.metadata import version

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from posthog_autoinstrument import config
from posthog_autoinstrument.export import foreign
from posthog_autoinstrument.export.dialect import for_posthog
from posthog_autoinstrument.instrumentation.anthropic import CONTENT_MODE_ENV, AnthropicInstrumentor
from tests.servers.anthropic_server import FakeAnthropic

anthropic = pytest.importorskip("anthropic")
NATIVE = tuple(int(p) for p in version("anthropic").split(".")[:2]) >= (1, 14)

VOLATILE = {"gen_ai.response.id", "gen_ai.response.time_to_first_chunk", "$ai_time_to_first_token", "$ai_error"}
TOOLS = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}]
HISTORY = [
    {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    },
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "sunny"}]}],
    },
]


@pytest.fixture(scope="module")
def setup():
    saved = os.environ.get(CONTENT_MODE_ENV)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    with FakeAnthropic() as server:
        native = anthropic.Anthropic(
            api_key="k",
            base_url=server.base_url,
            max_retries=0,
            open_telemetry={"tracer_provider": provider, "traces": {"content_mode": "content"}},
        )
        ours = anthropic.Anthropic(api_key="k", base_url=server.base_url, max_retries=0, open_telemetry=False)
        async_native = anthropic.AsyncAnthropic(
            api_key="k",
            base_url=server.base_url,
            max_retries=0,
            open_telemetry={"tracer_provider": provider, "traces": {"content_mode": "content"}},
        )
        async_ours = anthropic.AsyncAnthropic(
            api_key="k", base_url=server.base_url, max_retries=0, open_telemetry=False
        )
        yield exporter, (native, ours), (async_native, async_ours)
    instrumentor.uninstrument()
    if saved is None:
        os.environ.pop(CONTENT_MODE_ENV, None)
    else:
        os.environ[CONTENT_MODE_ENV] = saved


def call(client, scenario: str):
    """The exception the app saw, if any."""
    try:
        if scenario == "create":
            client.messages.create(
                model="claude-fake-1",
                max_tokens=50,
                system=[{"type": "text", "text": "Be terse."}],
                metadata={"user_id": "u-1"},
                stop_sequences=["END"],
                tools=TOOLS,
                messages=HISTORY,
                thinking={"type": "enabled", "budget_tokens": 1024},
            )
        elif scenario == "image":
            image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
            client.messages.create(
                model="claude-fake-1",
                max_tokens=50,
                messages=[{"role": "user", "content": [{"type": "text", "text": "What?"}, image]}],
            )
        elif scenario == "stream":
            for _ in client.messages.create(
                model="claude-fake-1",
                max_tokens=50,
                stream=True,
                tools=TOOLS,
                messages=[{"role": "user", "content": "Weather?"}],
            ):
                pass
        elif scenario == "helper":
            with client.messages.stream(
                model="claude-fake-1", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
            ) as stream:
                stream.get_final_message()
        elif scenario == "break":
            stream = client.messages.create(
                model="claude-fake-1", max_tokens=50, stream=True, messages=[{"role": "user", "content": "hi"}]
            )
            for event in stream:
                if event.type == "content_block_delta":
                    break
            stream.close()
        elif scenario == "error":
            client.messages.create(model="error-529", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        elif scenario == "cut":
            for _ in client.messages.create(
                model="stream-cut", max_tokens=5, stream=True, messages=[{"role": "user", "content": "hi"}]
            ):
                pass
    except Exception as error:  # the app's own error handling; both runs fail alike
        return error
    return None


async def async_call(client):
    async with client.messages.stream(
        model="claude-fake-1", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        await stream.until_done()


def posthog_copy(exporter) -> tuple:
    (span,) = exporter.get_finished_spans()
    exporter.clear()
    return span, dict(for_posthog(span, config.load({"POSTHOG_API_KEY": "phc_x"})).attributes)


@pytest.mark.skipif(not NATIVE, reason="the SDK does not trace itself")
@pytest.mark.parametrize("scenario", ["create", "stream", "helper", "break", "error", "cut", "async"])
def test_native_and_adapter_spans_give_posthog_the_same_attributes(setup, scenario):
    exporter, (native, ours), (async_native, async_ours) = setup
    results, seen = [], None
    for client in (async_native, async_ours) if scenario == "async" else (native, ours):
        if scenario == "async":
            asyncio.run(async_call(client))
        else:
            seen = call(client, scenario)
        results.append(posthog_copy(exporter))
    (native_span, a), (our_span, b) = results
    assert native_span.instrumentation_scope.name == "com.anthropic.sdk.python"
    assert our_span.instrumentation_scope.name == "posthog_autoinstrument"
    differing = {k for k in set(a) | set(b) if a.get(k) != b.get(k)} - VOLATILE
    if scenario == "cut":
        # A transport error mid-stream: the SDK's span names a transport error of its own, ours
        # names the exception the app saw (httpx2's before anthropic 2.17, the SDK's own since).
        assert a["error.type"] == "httpx2.TransportError"
        assert b["error.type"] == f"{type(seen).__module__}.{type(seen).__qualname__}"
        differing -= {"error.type"}
    assert not differing, {k: (a.get(k), b.get(k)) for k in differing}
    if scenario == "create":
        assert a["gen_ai.usage.input_tokens"] == 19
        assert a["gen_ai.usage.cache_creation.input_tokens"] == 3
        assert a["$ai_cache_reporting_exclusive"] is False
        assert a["posthog.distinct_id"] == "u-1"
        assert a["$ai_input"][2:] == [  # in PostHog's shape: thinking among Anthropic blocks, the result a tool message
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm"},
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
                ],
            },
            {"role": "tool", "content": "sunny", "tool_call_id": "t1"},
        ]


@pytest.mark.skipif(not NATIVE, reason="the SDK does not trace itself")
def test_image_parts_are_where_the_paths_differ(setup):
    """The SDK's span keeps only an image's type; ours keeps the image (as a placeholder unless
    media capture is on). Stated here so that a change on either side is noticed."""
    exporter, (native, ours), _ = setup
    images = []
    for client in (native, ours):
        call(client, "image")
        span, attrs = posthog_copy(exporter)
        images.append(attrs["$ai_input"][0]["content"][1])
    assert images == [{"type": "anthropic_image"}, {"type": "image", "image": "https://example.com/a.png"}]


def test_complete_rewrites_an_anthropic_span():
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.usage.input_tokens": 19,
        "gen_ai.usage.cache_write.input_tokens": 3,
        "anthropic.message.stop_reason": "max_tokens",
        "anthropic.request.id": "req_1",
        "url.full": "http://x/v1/messages",
        "http.request.method": "POST",
        "http.response.status_code": 200,
        "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"tool_call","id":"t","name":"f","arguments":{}}]}]',
    }
    foreign.complete(attrs, "com.anthropic.sdk.python.bedrock")
    assert attrs == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.usage.input_tokens": 19,
        "gen_ai.usage.cache_creation.input_tokens": 3,
        "gen_ai.response.finish_reasons": ("length",),
        "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"tool_call","name":"f","arguments":{},"id":"t"}],'
        '"finish_reason":"length"}]',
    }


@pytest.mark.parametrize(
    "error, status, expected",
    [
        ("rate_limit_error", 429, "anthropic.RateLimitError"),
        ("overloaded_error", 529, "anthropic.OverloadedError"),
        ("api_error", 500, "anthropic.InternalServerError"),
        ("client_timeout_error", None, "anthropic.APITimeoutError"),
        ("connection_error", None, "anthropic.APIConnectionError"),
    ],
)
def test_complete_names_errors_as_our_adapter_does(error, status, expected):
    attrs = {"gen_ai.operation.name": "chat", "error.type": error}
    if status:
        attrs["http.response.status_code"] = status
    foreign.complete(attrs, "com.anthropic.sdk.python")
    assert attrs["error.type"] == expected
    assert attrs["$ai_error"] == f"{expected}: {error}"
    assert attrs.get("http.response.status_code") == status


def test_complete_leaves_other_spans_alone():
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.usage.cache_write.input_tokens": 3, "url.full": "x"}
    foreign.complete(attrs, "opentelemetry.instrumentation.openai_v2")
    foreign.complete(attrs, None)
    assert attrs == {"gen_ai.operation.name": "chat", "gen_ai.usage.cache_write.input_tokens": 3, "url.full": "x"}
    count_tokens = {"gen_ai.provider.name": "anthropic", "anthropic.request.id": "r"}
    foreign.complete(count_tokens, "com.anthropic.sdk.python")
    assert count_tokens == {"gen_ai.provider.name": "anthropic", "anthropic.request.id": "r"}
