"""The GenAI core records spans that follow the conventions, and never raises."""

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from posthog_autoinstrument.genai import InferenceRequest, Recorder, Usage
from posthog_autoinstrument.genai import messages as m
from posthog_autoinstrument.genai.attributes import exception_type


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def recorder(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Recorder(provider.get_tracer("test"), capture_content=True)


def test_a_full_call(recorder, exporter):
    call = recorder.start(
        InferenceRequest(
            provider="openai",
            model="gpt-4o",
            server_address="api.openai.com",
            server_port=443,
            stream=True,
            temperature=0.5,
            max_tokens=100,
            stop_sequences="END",
            choice_count=2,
            seed=3,
            reasoning_level="low",
        )
    )
    call.set_input(
        messages=[m.message("user", [m.text("hi")])],
        system_instructions=[m.text("be nice")],
        tool_definitions=[m.function_tool("lookup", "Look up", {"type": "object"})],
    )
    call.chunk_received()
    call.set_response(
        model="gpt-4o-2024",
        response_id="r1",
        finish_reasons=["stop", None],
        usage=Usage(
            input_tokens=10,
            output_tokens=5,
            cache_read_input_tokens=2,
            cache_creation_input_tokens=1,
            reasoning_tokens=3,
        ),
    )
    call.set_output([m.output_message([m.text("hello"), m.tool_call("c1", "lookup", '{"q": 1}')], "tool_call")])
    call.end()
    call.end()  # a second end is a no-op

    (span,) = exporter.get_finished_spans()
    attrs = dict(span.attributes)
    assert span.name == "chat gpt-4o"
    assert span.kind == SpanKind.CLIENT
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["server.address"] == "api.openai.com" and attrs["server.port"] == 443
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.request.stop_sequences"] == ("END",)
    assert attrs["gen_ai.request.choice.count"] == 2
    assert attrs["gen_ai.request.reasoning.level"] == "low"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == 10
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 2
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 1
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 3
    assert attrs["gen_ai.response.time_to_first_chunk"] >= 0
    assert json.loads(attrs["gen_ai.system_instructions"]) == [{"type": "text", "content": "be nice"}]
    assert json.loads(attrs["gen_ai.tool.definitions"]) == [
        {"type": "function", "name": "lookup", "description": "Look up", "parameters": {"type": "object"}}
    ]
    output = json.loads(attrs["gen_ai.output.messages"])
    assert output[0]["parts"][1] == {"type": "tool_call", "name": "lookup", "arguments": {"q": 1}, "id": "c1"}
    assert output[0]["finish_reason"] == "tool_call"


def test_choice_count_of_one_and_unset_fields_are_not_recorded(recorder, exporter):
    recorder.start(InferenceRequest(provider="openai", model=None, choice_count=1, temperature="hot")).end()
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat"
    recorded = {k for k in span.attributes if not k.startswith("code.")}
    assert recorded == {"gen_ai.operation.name", "gen_ai.provider.name"}


def test_the_calling_application_function_is_recorded(recorder, exporter):
    def summarize_ticket():
        recorder.start(InferenceRequest("openai", "m")).end()

    summarize_ticket()
    attrs = exporter.get_finished_spans()[0].attributes
    assert attrs["code.function.name"].endswith("summarize_ticket")
    assert attrs["code.file.path"] == __file__
    assert attrs["code.line.number"] > 0


def test_content_is_not_recorded_when_capture_is_off(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    call = Recorder(provider.get_tracer("t"), capture_content=False).start(InferenceRequest("openai", "m"))
    call.set_input(messages=[m.message("user", [m.text("secret")])], tool_definitions=[m.function_tool("f")])
    call.set_output([m.output_message([m.text("secret")], "stop")])
    call.end()
    attrs = exporter.get_finished_spans()[0].attributes
    assert "gen_ai.input.messages" not in attrs and "gen_ai.output.messages" not in attrs
    assert "gen_ai.tool.definitions" in attrs  # metadata, not content


class RateLimitError(Exception):
    status_code = 429


def test_failure_records_error_type_status_and_exception_event(recorder, exporter):
    call = recorder.start(InferenceRequest("openai", "m"))
    call.fail(RateLimitError("slow down"))
    call.fail(ValueError("ignored: already ended"))
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "tests.RateLimitError"
    assert span.attributes["http.response.status_code"] == 429
    assert [e.name for e in span.events] == ["exception"]


def test_exception_type_names():
    assert exception_type(ValueError()) == "ValueError"
    assert exception_type(RateLimitError()) == "tests.RateLimitError"


def test_a_broken_tracer_never_raises():
    class BrokenTracer:
        def start_span(self, *args, **kwargs):
            raise RuntimeError("broken")

    assert Recorder(BrokenTracer()).start(InferenceRequest("openai", "m")) is None


def test_unserialisable_content_falls_back_to_text(recorder, exporter):
    class Model:
        def model_dump(self):
            return {"dumped": True}

    call = recorder.start(InferenceRequest("openai", "m"))
    call.set_input(messages=[m.message("user", [m.generic("x", value=Model(), other=object())])])
    call.end()
    (message,) = json.loads(exporter.get_finished_spans()[0].attributes["gen_ai.input.messages"])
    assert message["parts"][0]["value"] == {"dumped": True}
    assert message["parts"][0]["other"].startswith("<object object")


def test_media_from_data_url():
    assert m.media_from_data_url("image", "data:image/png;base64,AAAA") == {
        "type": "blob",
        "modality": "image",
        "content": "AAAA",
        "mime_type": "image/png",
    }
    assert m.media_from_data_url("image", "https://x/y.png") == {
        "type": "uri",
        "modality": "image",
        "uri": "https://x/y.png",
    }


@pytest.mark.parametrize(
    "data",
    [
        b'{"id":"x","n":[1,2.5,null,true],"s":"\\u00e9t\xc3\xa9"}',
        '{"a": 1}',
        b' {"a": 1}\n',
        b'{"a": 1} ',
        b"\xef\xbb\xbf" + b'{"a": 1}',
        '{"a": 1}'.encode("utf-16"),
        b"123",
        b'"text"',
    ],
)
def test_from_json_is_json_loads(data):
    assert m.from_json(data) == json.loads(data)


@pytest.mark.parametrize("data", [b'{"a": 1}xyz', b"", b"{", b"\xff", "\ufeff{}", b'{"a": NaNx}', None])
def test_from_json_raises_as_json_loads_raises(data):
    with pytest.raises(Exception) as expected:
        json.loads(data)
    with pytest.raises(type(expected.value)):
        m.from_json(data)


def test_one_model_call_is_one_generation_across_layers(recorder, exporter):
    from posthog_autoinstrument.genai import Layer

    framework = recorder.start(InferenceRequest("openai", "gpt-4o", layer=Layer.FRAMEWORK))
    token = framework.attach()
    provider = recorder.start(InferenceRequest("openai", "gpt-4o"))
    inner_token = provider.attach()
    assert recorder.start(InferenceRequest("openai", "gpt-4o")) is None  # an SDK built on an SDK: same call
    provider.detach(inner_token)
    provider.set_response(usage=Usage(input_tokens=5, output_tokens=2))
    provider.end()
    framework.detach(token)
    framework.set_response(usage=Usage(input_tokens=5, output_tokens=2))
    framework.end()

    inner, outer = exporter.get_finished_spans()
    assert inner.parent.span_id == outer.context.span_id
    assert "posthog_autoinstrument.delegated" not in inner.attributes
    assert outer.attributes["posthog_autoinstrument.delegated"] is True

    from posthog_autoinstrument import config
    from posthog_autoinstrument.export.dialect import for_posthog

    settings = config.load({"POSTHOG_API_KEY": "phc_x"})
    step, generation = for_posthog(outer, settings).attributes, for_posthog(inner, settings).attributes
    assert "gen_ai.operation.name" not in step and "gen_ai.usage.input_tokens" not in step
    assert "posthog_autoinstrument.delegated" not in step
    assert generation["gen_ai.operation.name"] == "chat" and generation["gen_ai.usage.input_tokens"] == 5


def test_a_framework_call_without_an_instrumented_provider_stays_the_generation(recorder, exporter):
    from posthog_autoinstrument.genai import Layer

    call = recorder.start(InferenceRequest("ollama", "llama3", layer=Layer.FRAMEWORK))
    call.end()
    assert "posthog_autoinstrument.delegated" not in exporter.get_finished_spans()[0].attributes


def test_steps_record_state_and_follow_the_conventions(recorder, exporter):
    from posthog_autoinstrument.genai import StepRequest

    agent = recorder.start_step(StepRequest("invoke_agent", name="Planner", framework="langchain"))
    token = agent.attach()
    tool = recorder.start_step(StepRequest("execute_tool", name="get_weather", tool_call_id="c1", tool_type="function"))
    tool.set_input_state({"city": "Paris"})
    tool.set_output_state("sunny")
    tool.end()
    agent.detach(token)
    agent.set_input_state({"question": "weather?"})
    agent.end()

    tool_span, agent_span = exporter.get_finished_spans()
    assert tool_span.name == "execute_tool get_weather" and agent_span.name == "invoke_agent Planner"
    assert tool_span.parent.span_id == agent_span.context.span_id
    assert tool_span.attributes["gen_ai.tool.call.arguments"] == '{"city":"Paris"}'
    assert tool_span.attributes["gen_ai.tool.call.result"] == "sunny"
    assert agent_span.attributes["gen_ai.agent.name"] == "Planner"

    from posthog_autoinstrument import config
    from posthog_autoinstrument.export.dialect import for_posthog

    settings = config.load({"POSTHOG_API_KEY": "phc_x"})
    agent_copy = for_posthog(agent_span, settings).attributes
    assert agent_copy["$ai_input_state"] == '{"question":"weather?"}'
    assert agent_copy["$ai_framework"] == "langchain"
    assert "posthog_autoinstrument.input_state" not in agent_copy
    tool_copy = for_posthog(tool_span, settings).attributes
    assert tool_copy["$ai_input_state"] == '{"city":"Paris"}' and tool_copy["$ai_output_state"] == "sunny"
    private = for_posthog(tool_span, config.load({"POSTHOG_API_KEY": "phc_x", "POSTHOG_PRIVACY_MODE": "1"})).attributes
    assert "Paris" not in repr(dict(private)) and private["gen_ai.tool.name"] == "get_weather"


def _processor_sending_to(sent: list):
    from posthog_autoinstrument import config
    from posthog_autoinstrument.export import PostHogSpanProcessor

    class Keep:
        def send(self, body, deadline, stopping, report=True):
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
            from posthog_autoinstrument.export.exporter import Delivery

            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            sent.extend(s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans)
            return Delivery(True, 200)

        def close(self):
            pass

    return PostHogSpanProcessor(Keep(), config.load({"POSTHOG_API_KEY": "phc_x"}))


def test_a_span_whose_parent_is_not_exported_becomes_a_root():
    from posthog_autoinstrument.genai import StepRequest

    provider = TracerProvider()
    sent: list = []
    processor = _processor_sending_to(sent)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    recorder = Recorder(tracer)
    with tracer.start_as_current_span("GET /tickets"):  # the app's own web request span
        workflow = recorder.start_step(StepRequest("invoke_workflow", name="summarize"))
        token = workflow.attach()
        recorder.start(InferenceRequest("openai", "gpt-4o")).end()
        workflow.detach(token)
        workflow.end()
    processor.force_flush(2000)
    by_name = {s.name: s for s in sent}
    assert set(by_name) == {"invoke_workflow summarize", "chat gpt-4o"}
    assert by_name["invoke_workflow summarize"].parent_span_id == b""  # its parent was not an AI span
    assert by_name["chat gpt-4o"].parent_span_id == by_name["invoke_workflow summarize"].span_id
    processor.shutdown()


def test_spans_posthog_never_receives_are_skipped_in_its_tree():
    """The app's own spans (or another instrumentation's) between two AI spans: PostHog's copy
    of the inner one names the outer one as its parent; the app's exporters keep the real tree."""
    from posthog_autoinstrument.genai import StepRequest

    provider = TracerProvider()
    sent: list = []
    processor = _processor_sending_to(sent)
    provider.add_span_processor(processor)
    everything = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(everything))
    tracer = provider.get_tracer("t")
    recorder = Recorder(tracer)
    agent = recorder.start_step(StepRequest("invoke_agent", name="helper"))
    token = agent.attach()
    with tracer.start_as_current_span("load-profile"):  # the app's own function, inside the run
        with tracer.start_as_current_span("SELECT"):  # and a database span inside that
            tool = recorder.start_step(StepRequest("execute_tool", name="lookup"))
            tool_token = tool.attach()
            recorder.start(InferenceRequest("openai", "gpt-4o")).end()
            tool.detach(tool_token)
            tool.end()
    # A model call made after its enclosing app span ended (a stream read later) keeps the ancestor.
    with tracer.start_as_current_span("handler"):
        late = recorder.start(InferenceRequest("openai", "gpt-4o-mini"))
    late.end()
    agent.detach(token)
    agent.end()
    processor.force_flush(2000)
    by_name = {s.name: s for s in sent}
    assert set(by_name) == {"invoke_agent helper", "execute_tool lookup", "chat gpt-4o", "chat gpt-4o-mini"}
    agent_id = by_name["invoke_agent helper"].span_id
    assert by_name["invoke_agent helper"].parent_span_id == b""
    assert by_name["execute_tool lookup"].parent_span_id == agent_id
    assert by_name["chat gpt-4o"].parent_span_id == by_name["execute_tool lookup"].span_id
    assert by_name["chat gpt-4o-mini"].parent_span_id == agent_id
    # The app's own exporter sees the real parents.
    real = {s.name: s for s in everything.get_finished_spans()}
    assert real["execute_tool lookup"].parent.span_id == real["SELECT"].context.span_id
    processor.shutdown()
