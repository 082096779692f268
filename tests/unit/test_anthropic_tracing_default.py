"""Whether a new Anthropic client traces itself: off while PostHog's processor is the only
consumer of spans (our adapter records the call instead), on as the SDK's own default as soon
as the app has telemetry of its own or has set ``ANTHROPIC_OPEN_TELEMETRY`` itself."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from posthog_autoinstrument import lifecycle
from posthog_autoinstrument.instrumentation.anthropic import TRACING_ENV, AnthropicInstrumentor

anthropic = pytest.importorskip("anthropic")
if tuple(int(p) for p in version("anthropic").split(".")[:2]) < (1, 14):
    pytest.skip("the SDK does not trace itself", allow_module_level=True)


@pytest.fixture
def provider(monkeypatch):
    """The global provider, with PostHog's processor on it and nothing else."""
    ours = SpanProcessor()
    provider = TracerProvider()
    provider.add_span_processor(ours)
    monkeypatch.setattr(lifecycle, "_processor", ours)
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    monkeypatch.delenv(TRACING_ENV, raising=False)
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield provider
    instrumentor.uninstrument()


def traces_itself(**options) -> bool:
    return anthropic.Anthropic(api_key="k", **options).open_telemetry["traces"]["enabled"]


def test_off_while_posthog_is_the_only_consumer(provider):
    assert lifecycle.posthog_is_the_only_consumer()
    assert not traces_itself()
    assert not anthropic.AsyncAnthropic(api_key="k").open_telemetry["traces"]["enabled"]


def test_on_once_the_app_has_a_processor_of_its_own(provider):
    provider.add_span_processor(SpanProcessor())  # an exporter of the app's, added in code
    assert not lifecycle.posthog_is_the_only_consumer()
    assert traces_itself()


def test_the_apps_switch_and_options_decide(provider, monkeypatch):
    assert traces_itself(open_telemetry={})  # an option given: the environment is not read
    monkeypatch.setenv(TRACING_ENV, "true")
    assert traces_itself()
    monkeypatch.setenv(TRACING_ENV, "false")
    assert not traces_itself()


def test_as_without_us_once_uninstrumented(provider):
    AnthropicInstrumentor().uninstrument()
    assert traces_itself()
    AnthropicInstrumentor().instrument(tracer_provider=provider)


def test_no_posthog_processor_means_no_opinion(monkeypatch):
    monkeypatch.setattr(lifecycle, "_processor", None)
    assert not lifecycle.posthog_is_the_only_consumer()
