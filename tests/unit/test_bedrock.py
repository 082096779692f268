"""The Bedrock adapter in process: class-level patching covers clients created before
instrumentation, other AWS calls pass through, and the body translation of each family."""

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
    return boto3.client(service, region_name="us-east-1", endpoint_url=server.endpoint_url,
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="fake-secret")


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
    assert not bedrock._is_bedrock_inference(make_client(server), ("ApplyGuardrail", {}))


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


@pytest.mark.parametrize("model_id, vendor", [
    ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic"),
    ("us.anthropic.claude-3-haiku-20240307-v1:0", "anthropic"),
    ("global.amazon.nova-2-lite-v1:0", "amazon"),
    ("arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-8b-instruct-v1:0", "meta"),
    ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3", None),
    (None, None),
])
def test_vendor_of(model_id, vendor):
    assert bedrock.vendor_of(model_id) == vendor


def test_request_parameters_are_read_from_any_family_body():
    request = InferenceRequest(provider="aws.bedrock", model="x")
    bedrock.fill_request_from_body(request, {"inferenceConfig": {"max_new_tokens": 5, "top_p": 0.5, "topK": 3},
                                             "temperature": 0.1, "stop": ["a"]})
    assert (request.max_tokens, request.top_p, request.top_k, request.temperature, request.stop_sequences) == (
        5, 0.5, 3, 0.1, ["a"])


def test_anthropic_body_content_becomes_parts():
    messages, system, tools = bedrock.body_input({
        "anthropic_version": "bedrock-2023-05-31",
        "system": [{"type": "text", "text": "sys"}],
        "messages": [
            {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                                         {"type": "text", "text": "what?"}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm"},
                                              {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ok"}]}]},
        ],
    }, None)
    assert system == [{"type": "text", "content": "sys"}]
    assert messages[0]["parts"] == [{"type": "blob", "modality": "image", "content": "AAA", "mime_type": "image/png"},
                                    {"type": "text", "content": "what?"}]
    assert messages[1]["parts"] == [{"type": "reasoning", "content": "hmm"},
                                    {"type": "tool_call", "id": "t1", "name": "f", "arguments": {"a": 1}}]
    assert messages[2]["parts"] == [{"type": "tool_call_response", "id": "t1", "response": "ok"}]
    assert tools == []


def test_converse_reasoning_and_documents():
    parts = bedrock.block_parts([
        {"reasoningContent": {"reasoningText": {"text": "thinking", "signature": "sig"}}},
        {"document": {"format": "pdf", "name": "a", "source": {"bytes": b"%PDF"}}},
        {"cachePoint": {"type": "default"}},
        {"video": {"format": "mp4", "source": {"s3Location": {"uri": "s3://b/v.mp4"}}}},
    ])
    assert parts == [
        {"type": "reasoning", "content": "thinking"},
        {"type": "blob", "modality": "document", "content": "JVBERg==", "mime_type": "application/pdf"},
        {"type": "uri", "modality": "video", "uri": "s3://b/v.mp4", "mime_type": "video/mp4"},
    ]


def test_response_usage_falls_back_to_headers():
    result = bedrock.read_response_body({"outputs": [{"text": "x", "stop_reason": "length"}]})
    assert result.usage is None and result.finish_reason == "length"
    usage = bedrock._merge(result.usage, bedrock._header_usage({"ResponseMetadata": {"HTTPHeaders": {
        "x-amzn-bedrock-input-token-count": "10", "x-amzn-bedrock-output-token-count": "4",
        "x-amzn-bedrock-cache-read-input-token-count": "5"}}}))
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (15, 4, 5)


def test_event_stream_framing_is_what_botocore_decodes():
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(encode_message({":event-type": "chunk", ":message-type": "event"}, b'{"a":1}'))
    (message,) = list(buffer)
    assert message.headers == {":event-type": "chunk", ":message-type": "event"}
    assert message.payload == b'{"a":1}'
