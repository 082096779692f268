"""The aiobotocore adapter's own parts (instrumentation/aiobotocore.py), without aiobotocore: the
hook reads an InvokeModel body inside the awaited call, and the body the app gets back serves the
same bytes through aiobotocore's async reading methods; it hands Bedrock Agents calls to
bedrock_agents, whose run ends with the async stream the app reads (tests/e2e/test_aiobotocore.py
and test_aiobotocore_agents.py run the real SDK)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from posthog_autoinstrument.genai import Recorder, semconv
from posthog_autoinstrument.instrumentation.aiobotocore import AioBotocoreInstrumentor, BufferedBody

DATA = b'{"type": "message", "content": [{"type": "text", "text": "Hi"}],\n"usage": {"input_tokens": 3, "output_tokens": 1}}\n'


class Body:
    """aiobotocore's body as far as the hook and the app use it: async read, async with, close."""

    def __init__(self, data: bytes = DATA, fail_with: BaseException | None = None):
        self.data = data
        self.fail_with = fail_with
        self.exited = False
        self.raw_stream = "the HTTP response"

    async def read(self, amt=None):
        if self.fail_with is not None:
            raise self.fail_with
        data, self.data = self.data, b""
        return data

    async def __aexit__(self, *exc):
        self.exited = True


def run(coroutine):
    return asyncio.new_event_loop().run_until_complete(coroutine)


def test_the_buffered_body_reads_like_aiobotocores():
    async def read_all_ways():
        body = BufferedBody(Body(), DATA)
        first = await body.read(5)
        assert body.tell() == 5 and body.readable()
        buffer = bytearray(4)
        assert await body.readinto(buffer) == 4 and bytes(buffer) == DATA[5:9]
        assert first + bytes(buffer) + await body.read() == DATA
        assert await body.read() == b"" and not body.readable()

        body = BufferedBody(Body(), DATA)
        assert b"".join([chunk async for chunk in body.iter_chunks(7)]) == DATA
        body = BufferedBody(Body(), DATA)
        assert b"".join([chunk async for chunk in body]) == DATA
        body = BufferedBody(Body(), DATA)
        assert await body.anext() == DATA and await body.read() == b""
        body = BufferedBody(Body(), DATA)
        assert await body.readlines() == DATA.splitlines()
        body = BufferedBody(Body(), DATA)
        assert [line async for line in body.iter_lines(keepends=True)] == DATA.splitlines(True)

        original = Body()
        async with BufferedBody(original, DATA) as body:
            assert await body.read() == DATA
            assert body.raw_stream == "the HTTP response"  # everything else is the body's own
        assert original.exited

    run(read_all_ways())


def test_a_body_whose_read_failed_fails_again_for_the_app():
    error = ConnectionResetError("reset")
    body = BufferedBody(Body(), b"", error)
    with pytest.raises(ConnectionResetError) as raised:
        run(body.read())
    assert raised.value is error


def _client() -> SimpleNamespace:
    model = SimpleNamespace(service_name="bedrock-runtime")
    return SimpleNamespace(meta=SimpleNamespace(service_model=model, endpoint_url="http://127.0.0.1:9"))


def _invoke(response: dict):
    """One InvokeModel call through the adapter's hook; (response the app got, finished spans)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = SimpleNamespace(_active=True, recorder=Recorder(provider.get_tracer("t"), capture_content=True))

    async def make_api_call(operation, params):
        return response

    params = {"modelId": "anthropic.claude-3-5-haiku-20241022-v1:0", "body": b'{"messages": []}'}
    call = AioBotocoreInstrumentor._make_api_call(instrumentor, make_api_call, _client(), ("InvokeModel", params), {})
    return run(call), exporter.get_finished_spans()


def test_invoke_model_body_is_read_within_the_call_and_served_again():
    response = {"body": Body(), "contentType": "application/json"}
    returned, (span,) = _invoke(response)
    assert returned is response and isinstance(returned["body"], BufferedBody)
    assert run(returned["body"].read()) == DATA
    assert span.attributes["gen_ai.usage.output_tokens"] == 1
    assert "Hi" in span.attributes["gen_ai.output.messages"]


def test_invoke_model_body_that_fails_to_read_fails_the_call_not_the_app():
    error = ConnectionResetError("reset")
    returned, (span,) = _invoke({"body": Body(fail_with=error)})
    assert span.status.status_code.name == "ERROR"
    with pytest.raises(ConnectionResetError) as raised:
        run(returned["body"].read())
    assert raised.value is error


def test_a_body_that_is_not_aiobotocores_is_left_alone():
    class SyncBody:
        def read(self):
            return DATA

    body = SyncBody()
    returned, (span,) = _invoke({"body": body})
    assert returned["body"] is body
    assert span.status.status_code.name != "ERROR"


# -- Bedrock Agents: the same hook hands bedrock-agent-runtime calls to bedrock_agents.async_call --


class AgentStream:
    """aiobotocore's event stream as far as an app reads it: ``async for``, and ``close``."""

    def __init__(self, events: list):
        self.events = events
        self.closed = False

    async def _events(self):
        for event in self.events:
            yield event

    def __aiter__(self):
        return self._events()

    def close(self):
        self.closed = True


class NotFound(Exception):
    """A botocore ClientError as far as the hook reads it."""

    response = {"Error": {"Code": "ResourceNotFoundException"}, "ResponseMetadata": {"HTTPStatusCode": 404}}


def _invoke_agent(answer):
    """One InvokeAgent call through the adapter's hook: (the awaited call, finished spans)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = SimpleNamespace(_active=True, recorder=Recorder(provider.get_tracer("t"), capture_content=True))

    async def make_api_call(operation, params):
        if isinstance(answer, BaseException):
            raise answer
        return answer

    client = _client()
    client.meta.service_model.service_name = "bedrock-agent-runtime"
    params = {"agentId": "AGENT123", "agentAliasId": "ALIAS1", "sessionId": "s-1", "inputText": "Weather?"}
    call = AioBotocoreInstrumentor._make_api_call(instrumentor, make_api_call, client, ("InvokeAgent", params), {})
    return call, exporter


def test_an_agent_run_ends_when_the_app_has_read_its_async_stream():
    events = [{"chunk": {"bytes": b"It is "}}, {"chunk": {"bytes": b"sunny."}}]
    stream = AgentStream(events)
    call, exporter = _invoke_agent({"completion": stream, "sessionId": "s-1"})

    async def read():
        response = await call
        assert exporter.get_finished_spans() == ()  # the run is still open while the app reads
        return [event async for event in response["completion"]]

    assert run(read()) == events  # the same events, unchanged
    (span,) = exporter.get_finished_spans()
    assert span.name == "invoke_agent AGENT123"
    assert span.attributes["gen_ai.conversation.id"] == "s-1"
    assert span.attributes[semconv.OUTPUT_STATE] == "It is sunny."


def test_an_agent_run_closed_early_ends_with_what_the_app_read():
    stream = AgentStream([{"chunk": {"bytes": b"It is "}}, {"chunk": {"bytes": b"sunny."}}])
    call, exporter = _invoke_agent({"completion": stream})

    async def read_one_then_close():
        completion = (await call)["completion"]
        async for _ in completion:
            break
        completion.close()

    run(read_one_then_close())
    assert stream.closed
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code.name != "ERROR"
    assert span.attributes[semconv.OUTPUT_STATE] == "It is "


def test_a_failed_agent_call_raises_the_same_error_and_records_its_status():
    error = NotFound("no such agent")
    call, exporter = _invoke_agent(error)
    with pytest.raises(NotFound) as raised:
        run(call)
    assert raised.value is error
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 404
