"""Each probe of OpenTelemetry's internals (otel_internals.py) against the installed SDK: an
upgrade that changes what one reads fails here, not silently in the fallback."""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import TraceFlags

from posthog_autoinstrument import otel_internals


def _provider_with(*processors):
    provider = TracerProvider()
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def test_tracer_span_processors_lists_what_the_provider_has():
    first, second = SimpleSpanProcessor(InMemorySpanExporter()), SimpleSpanProcessor(InMemorySpanExporter())
    tracer = _provider_with(first, second).get_tracer("t")
    assert list(otel_internals.tracer_span_processors(tracer)) == [first, second]
    assert otel_internals.tracer_span_processors(object()) is None


def test_tracer_is_enabled_unless_its_configuration_disables_it():
    from opentelemetry.sdk.trace import _disable_tracer_configurator

    assert otel_internals.tracer_is_enabled(TracerProvider().get_tracer("t")) is True
    disabled = TracerProvider(_tracer_configurator=_disable_tracer_configurator).get_tracer("t")
    assert otel_internals.tracer_is_enabled(disabled) is False
    assert otel_internals.tracer_is_enabled(object()) is False


def test_tracer_scope_is_the_scope_of_its_spans():
    exporter = InMemorySpanExporter()
    tracer = _provider_with(SimpleSpanProcessor(exporter)).get_tracer("the-scope", "1.2.3")
    tracer.start_span("s").end()
    scope = otel_internals.tracer_scope(tracer)
    assert scope == exporter.get_finished_spans()[0].instrumentation_scope
    assert (scope.name, scope.version) == ("the-scope", "1.2.3")
    assert otel_internals.tracer_scope(object()) is None


def test_random_trace_id_flag_is_the_w3c_flag():
    assert otel_internals.random_trace_id_flag() == TraceFlags.RANDOM_TRACE_ID == 0x02
