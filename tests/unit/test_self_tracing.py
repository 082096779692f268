"""Libraries that trace themselves plug into the export pipeline by instrumentation scope."""

from __future__ import annotations

import importlib

from posthog_autoinstrument.export import foreign
from posthog_autoinstrument.genai import self_tracing


def test_a_registered_scope_is_completed_and_others_left_alone(monkeypatch):
    monkeypatch.setattr(self_tracing, "_exact", {})
    monkeypatch.setattr(self_tracing, "_with_sub_scopes", {})
    self_tracing.register("example.sdk", lambda attrs: attrs.update(done=True) or "chat m")
    self_tracing.register("example.platform", lambda attrs: self_tracing.NOT_AI, sub_scopes=True)

    attrs = {}
    assert foreign.complete(attrs, "example.sdk") == "chat m" and attrs == {"done": True}
    assert foreign.complete({}, "example.sdk.sub") is None  # exact scope only
    assert foreign.complete({}, "example.platform.bedrock") is foreign.NOT_AI
    assert foreign.complete({}, "example.platformer") is None
    assert foreign.complete({}, None) is None


def test_a_failing_completion_keeps_the_span(monkeypatch):
    monkeypatch.setattr(self_tracing, "_exact", {})

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
