"""One model call, one generation: the core's rule for a model-call span that encloses another.

Applied from two places: ``Recorder.start`` (our adapters) and the export processor's
``on_start`` (SDKs and frameworks that trace themselves). Both are exercised here with real SDK
tracers whose instrumentation scopes stand for the libraries (``pydantic-ai``'s chat span, the
anthropic SDK's native span).
"""

from dataclasses import replace

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from posthog_autoinstrument import config
from posthog_autoinstrument.export import PostHogSpanProcessor
from posthog_autoinstrument.export.dialect import for_posthog
from posthog_autoinstrument.genai import InferenceRequest, Layer, Recorder, semconv
from posthog_autoinstrument.genai.one_generation import (
    GENAI_CALL_CONTEXT_KEYS,
    RECORDED_ELSEWHERE,
    SCOPE_NAME,
    model_call_starts,
)

SETTINGS = config.load({"POSTHOG_API_KEY": "phc_x"})


@pytest.fixture
def provider():
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.exporter = exporter
    return provider


def finished(provider, name):
    spans = [s for s in provider.exporter.get_finished_spans() if s.name == name]
    assert len(spans) == 1, [s.name for s in provider.exporter.get_finished_spans()]
    return spans[0]


def framework_chat(provider, scope="pydantic-ai"):
    """A framework's own span of a model request, as pydantic-ai starts it (current, chat)."""
    return provider.get_tracer(scope).start_as_current_span(
        "chat fw",
        kind=trace.SpanKind.CLIENT,
        attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"},
    )


def test_our_provider_call_inside_a_foreign_model_call_makes_it_a_step(provider):
    recorder = Recorder(provider.get_tracer(SCOPE_NAME))
    with framework_chat(provider):
        call = recorder.start(InferenceRequest("openai", "gpt-4o-mini"))
        call.end()
    outer = finished(provider, "chat fw")
    ours = [s for s in provider.exporter.get_finished_spans() if s.instrumentation_scope.name == SCOPE_NAME][0]
    assert outer.instrumentation_scope.name == "pydantic-ai"
    assert outer.attributes[semconv.DELEGATED] is True
    assert semconv.DELEGATED not in ours.attributes
    assert ours.parent.span_id == outer.context.span_id


def test_a_foreign_model_call_without_an_instrumented_call_inside_stays_the_generation(provider):
    with framework_chat(provider):
        pass
    assert semconv.DELEGATED not in finished(provider, "chat fw").attributes


def test_only_the_direct_parent_and_only_model_calls_are_marked(provider):
    recorder = Recorder(provider.get_tracer(SCOPE_NAME))
    tracer = provider.get_tracer("pydantic-ai")
    with tracer.start_as_current_span("invoke_agent a", attributes={"gen_ai.operation.name": "invoke_agent"}):
        with framework_chat(provider):
            with tracer.start_as_current_span("execute_tool t", attributes={"gen_ai.operation.name": "execute_tool"}):
                recorder.start(InferenceRequest("openai", "gpt-4o-mini")).end()
    assert semconv.DELEGATED not in finished(provider, "invoke_agent a").attributes
    assert semconv.DELEGATED not in finished(provider, "execute_tool t").attributes
    # The model call is not directly inside the chat span (a tool ran in between): not the same request.
    assert semconv.DELEGATED not in finished(provider, "chat fw").attributes


def test_an_ended_or_non_recording_parent_is_left_alone(provider):
    tracer = provider.get_tracer("pydantic-ai")
    span = tracer.start_span("chat m", attributes={"gen_ai.operation.name": "chat"})
    span.end()
    assert model_call_starts(Layer.PROVIDER, trace.set_span_in_context(span)) is True
    assert semconv.DELEGATED not in finished(provider, "chat m").attributes
    assert model_call_starts(Layer.PROVIDER, trace.set_span_in_context(trace.INVALID_SPAN)) is True


def test_our_own_layers_keep_their_rule(provider):
    recorder = Recorder(provider.get_tracer(SCOPE_NAME))
    framework = recorder.start(InferenceRequest("openai", "gpt-4o", layer=Layer.FRAMEWORK))
    token = framework.attach()
    provider_call = recorder.start(InferenceRequest("openai", "gpt-4o"))
    inner_token = provider_call.attach()
    assert recorder.start(InferenceRequest("openai", "gpt-4o")) is None  # the same request again
    provider_call.detach(inner_token)
    provider_call.end()
    framework.detach(token)
    framework.end()
    spans = provider.exporter.get_finished_spans()
    assert [s.attributes.get(semconv.DELEGATED) for s in spans] == [None, True]  # provider, then framework


class _Keep:
    def prepare(self):
        pass

    def send(self, body, deadline, stopping, report=True):
        from posthog_autoinstrument.export.exporter import Delivery

        return Delivery(True, 200)

    def close(self):
        pass


def test_a_native_provider_span_inside_a_foreign_model_call_makes_it_a_step(provider):
    """The export processor applies the same rule to spans that libraries record themselves."""
    processor = PostHogSpanProcessor(_Keep(), SETTINGS)
    provider.add_span_processor(processor)
    try:
        with framework_chat(provider):
            native = provider.get_tracer("com.anthropic.sdk.python").start_span(
                "anthropic.messages.create", attributes={"gen_ai.operation.name": "chat"}
            )
            native.end()
        with framework_chat(provider, scope="some.framework"):
            # Not a model call (count_tokens): the enclosing span stays the generation.
            provider.get_tracer("com.anthropic.sdk.python").start_span(
                "anthropic.messages.count_tokens", attributes={"gen_ai.operation.name": "count_tokens"}
            ).end()
    finally:
        processor.shutdown()
    spans = {s.instrumentation_scope.name: s for s in provider.exporter.get_finished_spans() if s.name == "chat fw"}
    assert spans["pydantic-ai"].attributes[semconv.DELEGATED] is True
    assert semconv.DELEGATED not in spans["some.framework"].attributes
    assert semconv.DELEGATED not in finished(provider, "anthropic.messages.create").attributes


def test_a_native_provider_span_inside_our_framework_call_marks_our_call(provider):
    processor = PostHogSpanProcessor(_Keep(), SETTINGS)
    provider.add_span_processor(processor)
    recorder = Recorder(provider.get_tracer(SCOPE_NAME))
    try:
        framework = recorder.start(InferenceRequest("anthropic", "claude", layer=Layer.FRAMEWORK))
        token = framework.attach()
        provider.get_tracer("com.anthropic.sdk.python").start_span(
            "anthropic.messages.create", attributes={"gen_ai.operation.name": "chat"}
        ).end()
        framework.detach(token)
        framework.end()
    finally:
        processor.shutdown()
    assert finished(provider, "chat claude").attributes[semconv.DELEGATED] is True


def test_the_delegated_span_reaches_posthog_as_a_step_without_tokens(provider):
    recorder = Recorder(provider.get_tracer(SCOPE_NAME))
    with framework_chat(provider) as outer:
        outer.set_attributes({"gen_ai.usage.input_tokens": 11, "gen_ai.usage.output_tokens": 7})
        recorder.start(InferenceRequest("openai", "gpt-4o-mini")).end()
    copy = for_posthog(finished(provider, "chat fw"), replace(SETTINGS))
    assert "gen_ai.operation.name" not in copy.attributes  # PostHog: $ai_span, not $ai_generation
    assert not [k for k in copy.attributes if k.startswith("gen_ai.usage.") or k == semconv.DELEGATED]


# -- calls recorded by someone else ------------------------------------------------------------


class _Collect(_Keep):
    """A sender that keeps the names of the spans PostHog would get."""

    def __init__(self):
        self.names = []

    def send(self, body, deadline, stopping, report=True):
        from tests.servers.otlp_decode import decode_export

        self.names += [span["name"] for span in decode_export(body)]
        return super().send(body, deadline, stopping, report)


def exported_names(provider, record) -> list:
    sender = _Collect()
    processor = PostHogSpanProcessor(sender, SETTINGS)
    provider.add_span_processor(processor)
    try:
        record()
        assert processor.force_flush(5000)
    finally:
        processor.shutdown()
    return sorted(sender.names)


def test_nothing_of_ours_is_recorded_where_another_recorder_records_the_call(provider):
    recorder = Recorder(provider.get_tracer(SCOPE_NAME))
    token = RECORDED_ELSEWHERE.attach()
    try:
        assert recorder.start(InferenceRequest("openai", "gpt-4o")) is None
        assert recorder.start(InferenceRequest("langchain", "gpt-4o", layer=Layer.FRAMEWORK)) is None
    finally:
        RECORDED_ELSEWHERE.detach(token)
    call = recorder.start(InferenceRequest("openai", "gpt-4o"))
    assert call is not None
    call.end()


def test_native_spans_of_a_call_another_recorder_records_are_not_exported(provider):
    # The SDK's import loads our adapter, which registers how its spans are completed.
    import posthog_autoinstrument.instrumentation.anthropic  # noqa: F401

    def record():
        token = RECORDED_ELSEWHERE.attach()
        provider.get_tracer("com.anthropic.sdk.python").start_span(
            "anthropic.messages.create", attributes={"gen_ai.operation.name": "chat"}
        ).end()
        RECORDED_ELSEWHERE.detach(token)
        provider.get_tracer("com.anthropic.sdk.python").start_span(
            "anthropic.messages.create later", attributes={"gen_ai.operation.name": "chat"}
        ).end()

    assert exported_names(provider, record) == ["chat"]  # the later call only (named as ours)


@pytest.mark.parametrize(
    "attributes",
    [
        {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 11},  # logfire
        {"openinference.span.kind": "LLM", "llm.token_count.prompt": 11},  # OpenInference
        {"llm.request.type": "chat", "gen_ai.usage.prompt_tokens": 11},  # OpenLLMetry, older
    ],
)
def test_other_instrumentations_model_spans_beneath_our_call_are_not_exported(provider, attributes):
    recorder = Recorder(provider.get_tracer(SCOPE_NAME))

    def record():
        call = recorder.start(InferenceRequest("openai", "gpt-4o"))
        token = call.attach()
        other = provider.get_tracer("other.instrumentation")
        other.start_span("their view", attributes=attributes).end()
        other.start_span("their http step", attributes={"gen_ai.tool.name": "x"}).end()  # not a model call
        call.detach(token)
        # A span parented by our call's ids alone (a context carried across, as logfire does for
        # a stream's end): the same request too.
        carried = trace.set_span_in_context(trace.NonRecordingSpan(call.span.get_span_context()))
        other.start_span("their stream end", context=carried, attributes=attributes).end()
        call.end()
        other.start_span("their own call", attributes=attributes).end()  # outside any call of ours

    assert exported_names(provider, record) == ["chat gpt-4o", "their http step", "their own call"]


def test_a_delegated_span_of_another_convention_is_no_generation_for_posthog(provider):
    tracer = provider.get_tracer("openinference.instrumentation.langchain")
    with tracer.start_as_current_span(
        "ChatOpenAI",
        attributes={"openinference.span.kind": "LLM", "llm.token_count.prompt": 11, "llm.request.type": "chat"},
    ):
        Recorder(provider.get_tracer(SCOPE_NAME)).start(InferenceRequest("openai", "gpt-4o-mini")).end()
    span = finished(provider, "ChatOpenAI")
    assert span.attributes[semconv.DELEGATED] is True  # recognised as a model call around ours
    copy = for_posthog(span, replace(SETTINGS))
    assert copy.attributes["openinference.span.kind"] == "CHAIN"
    assert "llm.request.type" not in copy.attributes
    assert not [k for k in copy.attributes if "token" in k]


def test_an_inference_in_progress_by_the_conventions_context_key_is_a_model_call(provider):
    from opentelemetry import context

    tracer = provider.get_tracer("opentelemetry.util.genai.handler")
    with tracer.start_as_current_span("their inference"):  # attributes not known yet
        token = context.attach(context.set_value(GENAI_CALL_CONTEXT_KEYS[0], object()))
        Recorder(provider.get_tracer(SCOPE_NAME)).start(InferenceRequest("openai", "gpt-4o-mini")).end()
        context.detach(token)
    assert finished(provider, "their inference").attributes[semconv.DELEGATED] is True


def test_a_framework_call_around_a_call_another_recorder_records_becomes_a_step(provider):
    # ChatOpenAI over PostHog's wrapped OpenAI client: the wrapper's event is the generation.
    recorder = Recorder(provider.get_tracer(SCOPE_NAME))
    framework = recorder.start(InferenceRequest("openai", "gpt-4o", layer=Layer.FRAMEWORK))
    token = framework.attach()
    marker = RECORDED_ELSEWHERE.attach()
    assert recorder.start(InferenceRequest("openai", "gpt-4o")) is None
    RECORDED_ELSEWHERE.detach(marker)
    framework.detach(token)
    framework.end()
    assert finished(provider, "chat gpt-4o").attributes[semconv.DELEGATED] is True
