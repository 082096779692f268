"""The Ollama adapter in process: module-level functions bound before instrumentation started are
re-bound, and uninstrumenting restores them."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from posthog_autoinstrument.instrumentation.ollama import OllamaInstrumentor
from tests.servers.ollama_server import FakeOllama

ollama = pytest.importorskip("ollama")


def test_ollama_imported_before_instrumentation(monkeypatch):
    with FakeOllama() as server:
        # The package was imported (at the top of this test module) before instrumentation.
        monkeypatch.setattr(ollama._client._client, "base_url", server.host)
        original_chat = ollama.chat
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrumentor = OllamaInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            assert ollama.chat is not original_chat
            ollama.chat(model="late", messages=[{"role": "user", "content": "hi"}])
            ollama.Client(host=server.host).generate("late-generate", "hi")
        finally:
            instrumentor.uninstrument()
        assert ollama.chat == original_chat
        assert ollama._client.chat.__func__ is ollama.Client.chat  # the class is restored too
        ollama.chat(model="after", messages=[{"role": "user", "content": "hi"}])
    assert [s.name for s in exporter.get_finished_spans()] == ["chat late", "text_completion late-generate"]
