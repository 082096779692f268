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


def test_enabled_tracer_span_processors_lists_what_the_provider_has():
    first, second = SimpleSpanProcessor(InMemorySpanExporter()), SimpleSpanProcessor(InMemorySpanExporter())
    tracer = _provider_with(first, second).get_tracer("t")
    assert list(otel_internals.enabled_tracer_span_processors(tracer)) == [first, second]
    assert otel_internals.enabled_tracer_span_processors(object()) is None


def test_enabled_tracer_span_processors_are_none_when_configuration_disables_the_tracer():
    from opentelemetry.sdk.trace import _disable_tracer_configurator

    provider = TracerProvider(_tracer_configurator=_disable_tracer_configurator)
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert otel_internals.enabled_tracer_span_processors(provider.get_tracer("t")) is None


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


def test_provider_span_processors_lists_what_the_provider_has():
    first, second = SimpleSpanProcessor(InMemorySpanExporter()), SimpleSpanProcessor(InMemorySpanExporter())
    assert list(otel_internals.provider_span_processors(_provider_with(first, second))) == [first, second]
    assert list(otel_internals.provider_span_processors(object())) == []


def test_allow_tracer_provider_override_reopens_the_set_once(monkeypatch):
    from opentelemetry import trace
    from opentelemetry.util._once import Once

    once = Once()  # a stand-in for the API's own, which this process may have used already
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", once)
    assert once.do_once(lambda: None) and not once.do_once(lambda: None)
    assert otel_internals.allow_tracer_provider_override() is True
    assert once.do_once(lambda: None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", object())
    assert otel_internals.allow_tracer_provider_override() is False


def test_follow_tracer_makes_spans_go_where_the_replacement_sends_them():
    from opentelemetry.sdk.resources import Resource

    ours, theirs = InMemorySpanExporter(), InMemorySpanExporter()
    tracer = _provider_with(SimpleSpanProcessor(ours)).get_tracer("t")
    app = TracerProvider(resource=Resource.create({"service.name": "the-app"}))
    app.add_span_processor(SimpleSpanProcessor(theirs))
    assert otel_internals.follow_tracer(tracer, app.get_tracer("t")) is True
    tracer.start_span("s").end()
    assert not ours.get_finished_spans()
    assert [s.resource.attributes["service.name"] for s in theirs.get_finished_spans()] == ["the-app"]
    assert otel_internals.follow_tracer(tracer, object()) is False


def test_forget_cached_tracers_empties_the_providers_cache():
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    assert provider.get_tracer("t") is tracer  # cached
    otel_internals.forget_cached_tracers(provider)
    assert provider.get_tracer("t") is not tracer
    otel_internals.forget_cached_tracers(object())  # nothing to empty: no error


def test_sdk_configurator_is_what_the_distro_configures_with():
    from opentelemetry.distro import OpenTelemetryConfigurator  # what opentelemetry-instrument runs

    configurator = otel_internals.sdk_configurator()
    assert configurator is not None and issubclass(OpenTelemetryConfigurator, configurator)
    assert callable(configurator().configure)


def test_instrumentation_suppression_keys_are_what_suppress_instrumentation_sets():
    from opentelemetry import context as otel_context
    from opentelemetry.instrumentation import utils

    keys = otel_internals.instrumentation_suppression_keys()
    assert set(keys) == {utils._SUPPRESS_INSTRUMENTATION_KEY, utils._SUPPRESS_INSTRUMENTATION_KEY_PLAIN}
    assert not any(otel_context.get_current().get(key) for key in keys)
    with utils.suppress_instrumentation():
        assert all(otel_context.get_current().get(key) for key in keys)
