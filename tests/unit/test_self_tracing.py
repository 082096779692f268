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
