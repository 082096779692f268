"""Self-check of the loopback fakes against the real clients.

The fakes are the ground truth for every end-to-end test, so here they are
driven by the real ``openai`` SDK and by real OTLP payloads from the
OpenTelemetry SDK: if the SDK cannot parse what FakeOpenAI sends, or if
FakePostHog decodes something other than what the exporter encoded, these
tests fail before any instrumentation test can mislead us.
"""

from __future__ import annotations

import gzip
import json
import time
from enum import Enum
from typing import Optional

import httpx
import openai
import pytest
from pydantic import BaseModel
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import FakeOpenAI, FakePostHog
from .openai_wire import DEFAULT_REPLY, TOOL_ARGUMENTS, embedding_vector

USER_HI = [{"role": "user", "content": "Say hi"}]
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
RESPONSES_TOOLS = [{"type": "function", "name": "get_weather", "parameters": CHAT_TOOLS[0]["function"]["parameters"]}]


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def client(fake_openai):
    return openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0)


@pytest.fixture
def fake_posthog():
    with FakePostHog() as server:
        yield server


def sse_payloads(fake_openai: FakeOpenAI, body: dict) -> list:
    """POST a streaming chat request with plain httpx and return each ``data:`` payload."""
    response = httpx.post(
        fake_openai.base_url + "/chat/completions",
        json=body,
        headers={"Authorization": "Bearer sk-test"},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.split("\n\n") if line]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[len("data: ") :]) for line in lines[:-1]]


# ---------------------------------------------------------------------------
# FakeOpenAI: chat completions
# ---------------------------------------------------------------------------


def test_chat_completion_matches_wire_format(client, fake_openai):
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=USER_HI)

    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini-2024-08-06"
    assert completion.system_fingerprint
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 7, 18)
    assert usage.prompt_tokens_details.cached_tokens == 3
    assert usage.completion_tokens_details.reasoning_tokens == 2

    [request] = fake_openai.requests
    assert (request["method"], request["path"]) == ("POST", "/v1/chat/completions")
    assert request["headers"]["authorization"] == "Bearer sk-test"
    assert request["json"]["model"] == "gpt-4o-mini"


def test_chat_n_choices_and_reply_directive(client):
    messages = [{"role": "user", "content": 'please reply="Bonjour tout le monde"'}]
    completion = client.chat.completions.create(model="gpt-4o", messages=messages, n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert {c.message.content for c in completion.choices} == {"Bonjour tout le monde"}


def test_chat_stream_usage_chunk_only_when_requested(fake_openai):
    body = {"model": "gpt-4o-mini", "messages": USER_HI, "stream": True}

    without = sse_payloads(fake_openai, body)
    assert all("usage" not in chunk and chunk["choices"] for chunk in without)

    with_usage = sse_payloads(fake_openai, {**body, "stream_options": {"include_usage": True}})
    *content, last = with_usage
    assert all(chunk["usage"] is None and chunk["choices"] for chunk in content)
    assert last["choices"] == [] and last["usage"]["total_tokens"] == 18


def test_chat_stream_through_sdk(client):
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "count chunks=5"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert chunks[0].choices[0].delta.role == "assistant"
    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) == 5 and "".join(content) == DEFAULT_REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 11
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_tool_call_stream_assembles(client):
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=USER_HI, tools=CHAT_TOOLS, stream=True)
    calls: dict[int, dict] = {}
    finish_reasons = []
    for chunk in stream:
        choice = chunk.choices[0]
        finish_reasons.append(choice.finish_reason)
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
            call["id"] = delta.id or call["id"]
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""

    assert calls == {0: {"id": "call_1", "name": "get_weather", "arguments": TOOL_ARGUMENTS}}
    assert json.loads(TOOL_ARGUMENTS) == {"city": "Paris"}
    assert finish_reasons[-1] == "tool_calls"


def test_chat_tool_call_then_text_after_tool_result(client):
    first = client.chat.completions.create(model="gpt-4o-mini", messages=USER_HI, tools=CHAT_TOOLS)
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls
    assert (call.id, call.function.name, call.function.arguments) == ("call_1", "get_weather", TOOL_ARGUMENTS)

    follow_up = USER_HI + [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    second = client.chat.completions.create(model="gpt-4o-mini", messages=follow_up, tools=CHAT_TOOLS)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == DEFAULT_REPLY


def test_chat_call_directive_with_given_arguments(client):
    handoff = {
        "type": "function",
        "function": {
            "name": "handoff",
            "parameters": {
                "type": "object",
                "properties": {
                    "to_agent": {"type": "string"},
                    "reason": {"type": "string"},
                    "urgent": {"type": "boolean"},
                },
            },
        },
    }
    message = 'Hand over. call=handoff args={"to_agent":"Writer","reason":"to_write"}'
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": message}], tools=[*CHAT_TOOLS, handoff]
    )
    [call] = reply.choices[0].message.tool_calls
    assert call.function.name == "handoff"
    assert json.loads(call.function.arguments) == {"to_agent": "Writer", "reason": "to_write", "urgent": True}


# ---------------------------------------------------------------------------
# FakeOpenAI: Responses API and embeddings
# ---------------------------------------------------------------------------


def test_responses_create(client):
    response = client.responses.create(model="gpt-4o-mini", input="Say hi")
    assert response.id.startswith("resp_")
    assert (response.object, response.status, response.model) == ("response", "completed", "gpt-4o-mini-2024-08-06")
    assert response.output_text == DEFAULT_REPLY
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (11, 7, 18)
    assert usage.input_tokens_details.cached_tokens == 3
    assert usage.output_tokens_details.reasoning_tokens == 2


def test_responses_tool_call(client):
    response = client.responses.create(model="gpt-4o-mini", input="weather?", tools=RESPONSES_TOOLS)
    [item] = response.output
    assert (item.type, item.call_id, item.name) == ("function_call", "call_1", "get_weather")
    assert item.arguments == TOOL_ARGUMENTS


def test_responses_stream_event_sequence(client):
    stream = client.responses.create(model="gpt-4o-mini", input="hi chunks=3", stream=True)
    events = list(stream)

    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 3,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == DEFAULT_REPLY
    assert events[0].response.usage is None
    assert events[-1].response.usage.total_tokens == 18
    assert events[-1].response.output_text == DEFAULT_REPLY


def test_embeddings_default_base64_and_float(client, fake_openai):
    default = client.embeddings.create(model="text-embedding-3-small", input=["hello world", "bye"])
    assert fake_openai.requests[-1]["json"]["encoding_format"] == "base64"
    assert [d.embedding for d in default.data] == [embedding_vector(0, 8), embedding_vector(1, 8)]
    assert (default.model, default.usage.prompt_tokens, default.usage.total_tokens) == ("text-embedding-3-small", 3, 3)

    floats = client.embeddings.create(model="text-embedding-3-small", input="hi", encoding_format="float", dimensions=4)
    assert floats.data[0].embedding == embedding_vector(0, 4)


class Unit(str, Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Reading(BaseModel):
    value: float
    unit: Unit


class Forecast(BaseModel):
    city: str
    days: int
    readings: list[Reading]
    note: Optional[str]


def test_structured_outputs_parse_in_both_apis(client):
    chat = client.chat.completions.parse(model="gpt-4o-mini", messages=USER_HI, response_format=Forecast)
    parsed = chat.choices[0].message.parsed
    assert parsed == Forecast(city="sample", days=1, readings=[Reading(value=1.5, unit=Unit.CELSIUS)], note="sample")

    response = client.responses.parse(model="gpt-4o-mini", input="forecast", text_format=Forecast)
    assert response.output_parsed == parsed

    json_mode = client.chat.completions.create(
        model="gpt-4o-mini", messages=USER_HI, response_format={"type": "json_object"}
    )
    assert json.loads(json_mode.choices[0].message.content) == {"message": DEFAULT_REPLY}


# ---------------------------------------------------------------------------
# FakeOpenAI: faults
# ---------------------------------------------------------------------------


def test_rate_limit_error_without_retries(client, fake_openai):
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="error-429", messages=USER_HI)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "0"
    assert caught.value.code == "rate_limit_exceeded"
    assert len(fake_openai.requests) == 1


def test_bad_request_is_not_retried(fake_openai):
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=2)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="error-400", messages=USER_HI)
    assert caught.value.type == "invalid_request_error"
    assert len(fake_openai.requests) == 1


def test_every_retry_is_recorded_and_can_succeed(fake_openai):
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=1)
    completion = client.chat.completions.create(model="error-500x1", messages=USER_HI)
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert [r["headers"]["x-stainless-retry-count"] for r in fake_openai.requests] == ["0", "1"]


def test_slow_model_delays_answer(client):
    started = time.monotonic()
    client.chat.completions.create(model="slow-300", messages=USER_HI)
    assert time.monotonic() - started >= 0.3


def test_stream_error_cuts_after_two_content_chunks(client):
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="stream-error", messages=USER_HI, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == ["Hello", " from"]


def test_unknown_path_and_missing_key(fake_openai):
    assert httpx.post(fake_openai.base_url + "/nope", json={}, headers={"Authorization": "Bearer x"}).status_code == 404
    unauthorized = httpx.post(fake_openai.base_url + "/chat/completions", json={"model": "gpt-4o"})
    assert unauthorized.status_code == 401
    assert unauthorized.json()["error"]["type"] == "invalid_request_error"


# ---------------------------------------------------------------------------
# FakeOpenAI: Azure dialect
# ---------------------------------------------------------------------------


def test_azure_openai_chat_stream_and_responses(fake_openai):
    azure = openai.AzureOpenAI(
        azure_endpoint=fake_openai.azure_endpoint, api_version="2024-10-21", api_key="azure-key", max_retries=0
    )
    completion = azure.chat.completions.create(model="my-gpt4o", messages=USER_HI)
    assert completion.choices[0].message.content == DEFAULT_REPLY
    request = fake_openai.requests[-1]
    assert request["path"] == "/openai/deployments/my-gpt4o/chat/completions"
    assert request["query"] == {"api-version": "2024-10-21"}
    assert request["headers"]["api-key"] == "azure-key"

    chunks = list(azure.chat.completions.create(model="my-gpt4o", messages=USER_HI, stream=True))
    assert chunks[0].choices == [] and chunks[0].model == ""  # Azure's prompt-filter chunk
    assert "".join(c.choices[0].delta.content or "" for c in chunks[1:]) == DEFAULT_REPLY

    assert azure.responses.create(model="my-gpt4o", input="hi").output_text == DEFAULT_REPLY
    assert fake_openai.requests[-1]["path"] == "/openai/responses"


# ---------------------------------------------------------------------------
# FakePostHog
# ---------------------------------------------------------------------------

TOKEN = "phc_test_project_token"
PROTOBUF = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {TOKEN}"}


def make_otlp_payload(extra_spans: int = 0) -> tuple[bytes, list]:
    """Encode a parent/child pair (plus ``extra_spans``) with the real OTel SDK."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "selfcheck"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("selfcheck.scope", "1.2.3")
    with tracer.start_as_current_span("workflow"):
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            span.set_attribute("gen_ai.usage.input_tokens", 11)
            span.set_attribute("gen_ai.request.temperature", 0.5)
            span.set_attribute("gen_ai.is_stream", True)
            span.set_attribute("gen_ai.response.finish_reasons", ["stop"])
            span.add_event("gen_ai.choice", {"index": 0})
            span.set_status(Status(StatusCode.ERROR, "boom"))
    for i in range(extra_spans):
        tracer.start_span(f"extra-{i}").end()
    provider.shutdown()
    sdk_spans = memory.get_finished_spans()
    return encode_spans(sdk_spans).SerializeToString(), list(sdk_spans)


def post(fake_posthog: FakePostHog, body: bytes, headers: dict, **kwargs) -> httpx.Response:
    return httpx.post(fake_posthog.endpoint, content=body, headers=headers, **kwargs)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_posthog_decodes_real_otlp_export(fake_posthog, compress):
    payload, sdk_spans = make_otlp_payload()
    headers = dict(PROTOBUF, **({"Content-Encoding": "gzip"} if compress else {}))
    wire = gzip.compress(payload) if compress else payload

    response = post(fake_posthog, wire, headers)
    assert (response.status_code, response.text) == (200, "{}")
    assert response.headers["content-type"] == "application/json"

    child, parent = fake_posthog.wait_for_spans(2)
    sdk_child = sdk_spans[0]
    assert child["name"] == "chat gpt-4o-mini"
    assert child["trace_id"] == format(sdk_child.context.trace_id, "032x")
    assert child["span_id"] == format(sdk_child.context.span_id, "016x")
    assert child["parent_span_id"] == parent["span_id"] and parent["parent_span_id"] is None
    assert (child["kind"], child["kind_name"]) == (3, "CLIENT")
    assert (child["status_code"], child["status_message"]) == ("ERROR", "boom")
    assert child["attributes"] == {
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.is_stream": True,
        "gen_ai.response.finish_reasons": ["stop"],
    }
    assert child["events"][0]["name"] == "gen_ai.choice" and child["events"][0]["attributes"] == {"index": 0}
    assert child["resource"]["service.name"] == "selfcheck"
    assert (child["scope_name"], child["scope_version"]) == ("selfcheck.scope", "1.2.3")
    assert child["start_ns"] <= child["end_ns"]

    [request] = fake_posthog.requests
    assert (request["status"], request["span_count"], request["raw"]) == (200, 2, wire)
    assert request["decompressed"] == payload
    assert fake_posthog.rejections == []


@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Basic abc", "Bearer phx_personal_key"], ids=["none", "empty", "basic", "phx"]
)
def test_posthog_auth_rules(fake_posthog, authorization):
    payload, _ = make_otlp_payload()
    headers = {"Content-Type": "application/x-protobuf"}
    if authorization is not None:
        headers["Authorization"] = authorization
    assert post(fake_posthog, payload, headers).status_code == 401
    assert len(fake_posthog.rejections) == 1 and fake_posthog.spans == []


def test_posthog_payload_rules(fake_posthog):
    payload, _ = make_otlp_payload()
    too_many, _ = make_otlp_payload(extra_spans=99)  # 101 spans
    cases = {
        "json": (payload, {**PROTOBUF, "Content-Type": "application/json"}),
        "deflate": (payload, {**PROTOBUF, "Content-Encoding": "deflate"}),
        "bad gzip": (b"not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}),
        "empty": (b"", PROTOBUF),
        "not protobuf": (b"\xff\xff\xff", PROTOBUF),
        "101 spans": (too_many, PROTOBUF),
        "wire too big": (b"\0" * (4 * 1024 * 1024 + 1), PROTOBUF),
        "inflates too big": (gzip.compress(b"\0" * (5 * 1024 * 1024)), {**PROTOBUF, "Content-Encoding": "gzip"}),
    }
    statuses = {name: post(fake_posthog, body, headers).status_code for name, (body, headers) in cases.items()}
    assert statuses == {name: 400 for name in cases}
    assert len(fake_posthog.rejections) == len(cases)
    assert fake_posthog.requests[5]["span_count"] == 101
    assert fake_posthog.spans == []


def test_posthog_fault_plan(fake_posthog):
    payload, _ = make_otlp_payload()
    fake_posthog.plan = ["503", "429:retry-after=1", "garbage", "200"]

    responses = [post(fake_posthog, payload, PROTOBUF) for _ in range(5)]
    assert [r.status_code for r in responses] == [503, 429, 200, 200, 200]
    assert responses[1].headers["retry-after"] == "1"
    with pytest.raises(ValueError):
        responses[2].json()
    assert fake_posthog.plan == []
    assert [r["fault"] for r in fake_posthog.requests] == ["503", "429:retry-after=1", "garbage", "200", None]
    assert len(fake_posthog.spans) == 6  # only the three accepted requests stored spans


def test_posthog_close_hang_and_slow(fake_posthog):
    payload, _ = make_otlp_payload()
    fake_posthog.plan = ["close", "slow:200", "hang"]

    with pytest.raises(httpx.RemoteProtocolError):
        post(fake_posthog, payload, PROTOBUF)
    started = time.monotonic()
    assert post(fake_posthog, payload, PROTOBUF).status_code == 200
    assert time.monotonic() - started >= 0.2
    with pytest.raises(httpx.ReadTimeout):
        post(fake_posthog, payload, PROTOBUF, timeout=0.3)
    assert [r["status"] for r in fake_posthog.wait_for_requests(3)] == [None, 200, None]

    started = time.monotonic()
    fake_posthog.stop()  # must release the hanging handler promptly
    assert time.monotonic() - started < 2


def test_posthog_wait_for_spans_explains_timeout(fake_posthog):
    fake_posthog.plan = ["503"]
    payload, _ = make_otlp_payload()
    post(fake_posthog, payload, PROTOBUF)
    with pytest.raises(AssertionError, match=r"waited 0.1s for at least 1 span.*503"):
        fake_posthog.wait_for_spans(1, timeout=0.1)


def test_posthog_rejects_unknown_plan_step(fake_posthog):
    with pytest.raises(ValueError):
        fake_posthog.plan = ["explode"]
