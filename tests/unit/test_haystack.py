"""How the Haystack adapter writes a component's inputs and outputs as step state: documents and
chat messages by their content, never a vector, other objects by their type (against the real
Haystack dataclasses, only where haystack-ai is installed); and when it keeps Haystack 2.x's own
OpenTelemetry tracer off."""

from __future__ import annotations

import pytest

pytest.importorskip("haystack")

from haystack import Document  # noqa: E402
from haystack.dataclasses import ChatMessage, SparseEmbedding, ToolCall  # noqa: E402

from posthog_autoinstrument.instrumentation._retrieval import MAX_TEXT  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from posthog_autoinstrument.instrumentation.haystack import _only_posthog_receives, state  # noqa: E402


def test_documents_keep_id_score_text_and_metadata_never_their_vectors():
    doc = Document(
        id="doc-1",
        content="Jean lives in Paris.",
        meta={"city": "Paris"},
        score=0.5,
        embedding=[0.1] * 384,
        sparse_embedding=SparseEmbedding(indices=[1, 2], values=[0.3, 0.4]),
    )
    assert state({"documents": [doc]}) == {
        "documents": [{"id": "doc-1", "score": 0.5, "text": "Jean lives in Paris.", "metadata": {"city": "Paris"}}]
    }


def test_vectors_are_their_dimensions():
    assert state({"embedding": [0.25, -0.5, 1.0]}) == {"embedding": {"dimensions": 3}}
    assert state({"embeddings": [[0.25, 0.5], [1.0, 2.0]]}) == {"embeddings": [{"dimensions": 2}] * 2}
    assert state([1, 2, 3]) == [1, 2, 3]  # (integers are not a vector)


def test_chat_messages_with_tool_calls_and_results():
    call = ToolCall(tool_name="get_weather", arguments={"city": "Paris"}, id="call_1")
    messages = [
        ChatMessage.from_system("Be terse."),
        ChatMessage.from_assistant(tool_calls=[call]),
        ChatMessage.from_tool("Sunny in Paris", origin=call),
    ]
    assert state(messages) == [
        {"role": "system", "text": "Be terse."},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"role": "tool", "tool_results": [{"result": "Sunny in Paris", "error": False}]},
    ]


def test_long_texts_are_cut_and_other_objects_are_named_by_type():
    assert state("x" * (MAX_TEXT + 10)) == "x" * MAX_TEXT + "...[truncated]"

    class Store:
        name = "main"

    assert state({"store": Store(), "callback": print, "nested": [[[[[[[["deep"]]]]]]]]}) == {
        "store": "<Store main>",
        "callback": "<builtin_function_or_method>",
        "nested": [[[[[["<list>"]]]]]],  # (cut below six levels)
    }


class _PostHogLikeProcessor(SimpleSpanProcessor):
    """Stands in for PostHog's processor, known by its ``on_direct_end``."""

    def on_direct_end(self, *args):
        pass


def test_haystacks_own_tracer_is_kept_off_only_where_posthog_alone_would_see_its_spans():
    ours = TracerProvider()
    ours.add_span_processor(_PostHogLikeProcessor(InMemorySpanExporter()))
    assert _only_posthog_receives(ours.get_tracer("haystack"))
    ours.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))  # the app's own export
    assert not _only_posthog_receives(ours.get_tracer("haystack"))
    theirs = TracerProvider()
    theirs.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert not _only_posthog_receives(theirs.get_tracer("haystack"))
