"""Libraries that trace themselves plug into the export pipeline by instrumentation scope."""

from __future__ import annotations

import importlib

from posthog_autoinstrument.export import foreign
from posthog_autoinstrument.genai import self_tracing


def test_a_registered_scope_is_completed_and_others_left_alone(monkeypatch):
    monkeypatch.setattr(self_tracing, "_exact", {})
    monkeypatch.setattr(self_tracing, "_resolved", {})  # what was looked up with the registrations replaced
    monkeypatch.setattr(self_tracing, "_with_sub_scopes", {})
    self_tracing.register("example.sdk", lambda attrs: attrs.update(done=True) or "chat m")
    self_tracing.register("example.platform", lambda attrs: self_tracing.NOT_AI, sub_scopes=True)

    attrs = {}
    assert foreign.complete(attrs, "example.sdk") == "chat m" and attrs == {"done": True}
    assert foreign.complete({}, "example.sdk.sub") is None  # exact scope only
    assert foreign.complete({}, "example.platform.bedrock") is foreign.NOT_AI
    assert foreign.complete({}, "example.platformer") is None
    assert foreign.complete({}, None) is None


def test_a_scope_looked_up_before_its_registration_is_completed_after_it(monkeypatch):
    monkeypatch.setattr(self_tracing, "_exact", {})
    monkeypatch.setattr(self_tracing, "_resolved", {})  # what was looked up with the registrations replaced
    monkeypatch.setattr(self_tracing, "_with_sub_scopes", {})
    assert self_tracing.completion_for("late.sdk") is None
    assert self_tracing.completion_for("late.platform.vertex") is None
    self_tracing.register("late.sdk", lambda attrs: "chat late")
    self_tracing.register("late.platform", lambda attrs: "chat platform", sub_scopes=True)
    assert foreign.complete({}, "late.sdk") == "chat late"
    assert foreign.complete({}, "late.platform.vertex") == "chat platform"
    assert foreign.complete({}, "late.platform.vertex") == "chat platform"  # remembered: the same
    assert self_tracing.completion_for("late.platformer") is None


def test_a_failing_completion_keeps_the_span(monkeypatch):
    monkeypatch.setattr(self_tracing, "_exact", {})
    monkeypatch.setattr(self_tracing, "_resolved", {})  # what was looked up with the registrations replaced

    def broken(attrs):
        attrs["half"] = 1
        raise RuntimeError("boom")

    self_tracing.register("example.broken", broken)
    attrs = {}
    assert foreign.complete(attrs, "example.broken") is None
    assert attrs == {"half": 1}


def test_the_adapters_register_their_scopes_when_imported():
    importlib.import_module("posthog_autoinstrument.instrumentation.anthropic")
    importlib.import_module("posthog_autoinstrument.instrumentation.pydantic_ai")
    assert self_tracing.completion_for("com.anthropic.sdk.python") is not None
    assert self_tracing.completion_for("com.anthropic.sdk.python.vertex") is not None
    assert self_tracing.completion_for("pydantic-ai") is not None


def test_content_in_events_is_read_and_only_exceptions_stay(monkeypatch):
    from opentelemetry.sdk.trace import Event

    monkeypatch.setattr(self_tracing, "_exact", {})

    monkeypatch.setattr(self_tracing, "_resolved", {})  # what was looked up with the registrations replaced
    monkeypatch.setattr(self_tracing, "_event_readers", {})

    def read(attrs, events):
        attrs["gen_ai.input.messages"] = "|".join(e.attributes["content"] for e in events if e.name == "message")

    self_tracing.register("example.events", lambda attrs: None, read_events=read)
    events = (Event("message", {"content": "hi"}), Event("exception", {"exception.type": "E"}))
    attrs = {}
    kept = foreign.content_from_events(attrs, events, "example.events")
    assert attrs == {"gen_ai.input.messages": "hi"} and [e.name for e in kept] == ["exception"]
    # Other scopes' events are left as they are.
    assert foreign.content_from_events({}, events, "example.other") is events


def test_spans_of_a_scope_whose_attributes_come_late_are_ai_spans_from_their_start(monkeypatch):
    from opentelemetry.sdk.trace import TracerProvider

    from posthog_autoinstrument import config
    from posthog_autoinstrument.export.processor import PostHogSpanProcessor

    monkeypatch.setattr(self_tracing, "_every_span_ai", set())
    self_tracing.register("example.late", lambda attrs: None, every_span_ai=True)
    processor = PostHogSpanProcessor(sender=None, settings=config.load({"POSTHOG_API_KEY": "phc_x"}))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    late = provider.get_tracer("example.late").start_span("step")
    other = provider.get_tracer("example.other").start_span("step")
    assert late.context.span_id in processor._ai_span_ids
    assert other.context.span_id not in processor._ai_span_ids


def test_model_calls_inside_a_frameworks_own_model_call_span_name_the_framework(monkeypatch):
    """Ours at any layer (LiteLLM's call is framework-level) and an SDK's own span, which the
    processor sees start with no context given (the current one)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from posthog_autoinstrument import config
    from posthog_autoinstrument.export.processor import PostHogSpanProcessor
    from posthog_autoinstrument.genai import InferenceRequest, Layer, Recorder

    monkeypatch.setattr(self_tracing, "_frameworks", {})
    self_tracing.register("example.framework", lambda attrs: None, framework="example")
    provider = TracerProvider(shutdown_on_exit=False)  # nothing to deliver at exit
    provider.add_span_processor(PostHogSpanProcessor(sender=None, settings=config.load({"POSTHOG_API_KEY": "phc_x"})))
    recorder = Recorder(provider.get_tracer("posthog_autoinstrument"), capture_content=False)
    sdk = provider.get_tracer("example.sdk")
    chat = {"gen_ai.operation.name": "chat"}

    def framework_of(span):
        return span.attributes.get("posthog_autoinstrument.framework")

    with provider.get_tracer("example.framework").start_as_current_span("chat", attributes=chat):
        ours = recorder.start(InferenceRequest("openai", "m", layer=Layer.FRAMEWORK))
        ours.end()
        sdk_span = sdk.start_span("sdk.create", attributes=chat)
    with provider.get_tracer("example.framework").start_as_current_span("invoke_agent"):  # not a model call
        outside = sdk.start_span("sdk.create", attributes=chat)
    outside_any = sdk.start_span("sdk.create", attributes=chat, context=trace.set_span_in_context(trace.INVALID_SPAN))
    assert framework_of(ours.span) == "example"
    assert framework_of(sdk_span) == "example"
    assert framework_of(outside) is None and framework_of(outside_any) is None
