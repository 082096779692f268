"""The Bedrock adapter in process: class-level patching covers clients created before
instrumentation, other AWS calls pass through, InvokeModel bodies reach the app intact (the
bodies' translation: test_format_bedrock.py)."""

from __future__ import annotations

import json

import botocore.parsers
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from posthog_autoinstrument.genai import InferenceRequest
from posthog_autoinstrument.instrumentation import bedrock
from tests.servers.bedrock_server import FakeBedrock, encode_message

boto3 = pytest.importorskip("boto3")
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]


@pytest.fixture
def server():
    with FakeBedrock() as fake:
        yield fake


def make_client(server, service="bedrock-runtime"):
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="fake-secret",
    )


@pytest.fixture
def instrument():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = bedrock.BedrockInstrumentor()

    def start():
        instrumentor.instrument(tracer_provider=provider)
        return exporter

    yield start
    instrumentor.uninstrument()


def test_a_client_created_before_instrumentation_is_recorded(server, instrument):
    early = make_client(server)
    exporter = instrument()
    late = make_client(server)
    for client in (early, late):
        client.converse(modelId="amazon.nova-micro-v1:0", messages=MESSAGES)
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["chat amazon.nova-micro-v1:0"] * 2
    assert all(s.attributes["gen_ai.usage.output_tokens"] == 7 for s in spans)


def test_uninstrument_restores_botocore(server, instrument):
    from botocore.client import BaseClient

    original = BaseClient.__dict__["_make_api_call"]
    exporter = instrument()
    assert BaseClient.__dict__["_make_api_call"] is not original
    bedrock.BedrockInstrumentor().uninstrument()
    assert BaseClient.__dict__["_make_api_call"] is original
    make_client(server).converse(modelId="amazon.nova-micro-v1:0", messages=MESSAGES)
    assert exporter.get_finished_spans() == ()


def test_other_services_and_operations_are_not_recorded(server, instrument):
    exporter = instrument()
    with pytest.raises(botocore.parsers.ResponseParserError):
        make_client(server, "sts").get_caller_identity()  # the fake answers JSON, not STS's XML
    assert exporter.get_finished_spans() == ()
    assert not bedrock.is_bedrock_inference(make_client(server), ("ApplyGuardrail", {}))


def test_invoke_model_body_is_handed_back_intact(server, instrument):
    from botocore.response import StreamingBody

    exporter = instrument()
    body = {"prompt": "hi", "max_gen_len": 9}
    response = make_client(server).invoke_model(modelId="meta.llama3-8b-instruct-v1:0", body=json.dumps(body))
    assert isinstance(response["body"], StreamingBody)
    chunks = list(response["body"].iter_chunks(chunk_size=8))
    assert json.loads(b"".join(chunks))["generation"] == "Hello from fake Bedrock"
    (span,) = exporter.get_finished_spans()
    assert span.attributes["gen_ai.request.max_tokens"] == 9


def test_a_body_that_fails_to_read_fails_the_span_and_the_app_sees_the_error():
    from posthog_autoinstrument.genai import Recorder

    class Broken:
        def read(self, *args):
            raise ConnectionError("reset")

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    call = Recorder(provider.get_tracer("t")).start(InferenceRequest(provider="aws.bedrock", model="m"))
    response = {"body": Broken(), "ResponseMetadata": {}}
    handler = bedrock.BedrockCall(bedrock.INVOKE, {"modelId": "m", "body": b"{}"})
    assert handler.result(call, response, {}) is response
    with pytest.raises(ConnectionError):
        response["body"].read()
    (span,) = exporter.get_finished_spans()
    assert span.attributes["error.type"] == "ConnectionError"


def test_event_stream_framing_is_what_botocore_decodes():
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(encode_message({":event-type": "chunk", ":message-type": "event"}, b'{"a":1}'))
    (message,) = list(buffer)
    assert message.headers == {":event-type": "chunk", ":message-type": "event"}
    assert message.payload == b'{"a":1}'
