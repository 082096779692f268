"""Translation shared by the OpenAI-shaped SDKs (groq, together): vendor usage, finish reasons,
reasoning text, and lenient reading of chunk models that lack OpenAI's fields."""

from __future__ import annotations

import json

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from posthog_autoinstrument.genai import InferenceRequest, Recorder
from posthog_autoinstrument.instrumentation import openai_compatible as compat


def finished(drive) -> dict:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    call = Recorder(provider.get_tracer("t")).start(InferenceRequest(provider="groq", model="m"))
    drive(call)
    call.end()
    (span,) = exporter.get_finished_spans()
    return dict(span.attributes)


def test_groq_stream_usage_from_x_groq_and_reasoning_deltas():
    chunks = [
        {
            "id": "c1",
            "model": "m-served",
            "choices": [{"index": 0, "delta": {"role": "assistant", "reasoning": "think"}}],
        },
        {"id": "c1", "choices": [{"index": 0, "delta": {"content": "Hi"}}]},
        {
            "id": "c1",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "x_groq": {
                "id": "req",
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 1}},
            },
        },
    ]
    accumulator = compat.ChatStreamAccumulator(capture=True)

    def drive(call):
        for chunk in chunks:
            accumulator.on_chunk(chunk)
        accumulator.finish(call)

    attrs = finished(drive)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (5, 2)
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1
    assert attrs["gen_ai.response.model"] == "m-served"
    assert json.loads(attrs["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "finish_reason": "stop",
            "parts": [{"type": "reasoning", "content": "think"}, {"type": "text", "content": "Hi"}],
        }
    ]


def test_groq_hardware_cache_usage_is_not_token_usage():
    assert compat.chat_usage({"usage": None, "x_groq": {"usage": {"dram_cached_tokens": 4}}}) is None


def test_together_eos_and_float_tool_call_index():
    accumulator = compat.ChatStreamAccumulator(capture=True)
    chunk = {
        "id": "t",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "eos",
                "delta": {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "index": 0.0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 1}'},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }

    def drive(call):
        accumulator.on_chunk(chunk)
        accumulator.finish(call)

    attrs = finished(drive)
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert json.loads(attrs["gen_ai.output.messages"])[0]["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "f", "arguments": {"a": 1}}
    ]
