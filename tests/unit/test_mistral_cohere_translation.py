"""Translation of mistralai and cohere shapes into the conventions' terms."""

from types import SimpleNamespace as NS

from posthog_autoinstrument.instrumentation import cohere as co
from posthog_autoinstrument.instrumentation import mistral as mi


def test_mistral_native_tracing_is_off_only_for_the_global_provider():
    tracer = object()
    assert mi._without_global_tracing(lambda *a, **k: (True, tracer), None, (), {}) == (False, tracer)
    custom = object()
    assert mi._without_global_tracing(lambda *a, **k: (True, tracer), None, (), {"provider": custom}) == (True, tracer)


def test_mistral_usage_reads_cached_tokens_from_either_spelling():
    usage = mi._usage(NS(prompt_tokens=10, completion_tokens=4, prompt_tokens_details={"cached_tokens": 3}))
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (10, 4, 3)
    assert mi._usage(NS(prompt_tokens=10, completion_tokens=4, num_cached_tokens=6)).cache_read_input_tokens == 6


def test_mistral_message_content_chunks():
    message = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
            {"type": "text", "text": "hi"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
        ],
        "tool_calls": [{"id": "null", "function": {"name": "f", "arguments": '{"a": 1}'}}],
    }
    assert mi._message(message)["parts"] == [
        {"type": "reasoning", "content": "hmm"},
        {"type": "text", "content": "hi"},
        {"type": "blob", "modality": "image", "content": "AAA", "mime_type": "image/png"},
        {"type": "tool_call", "name": "f", "arguments": {"a": 1}},
    ]


def test_cohere_usage_prefers_billed_units():
    usage = co._usage(
        NS(billed_units=NS(input_tokens=5.0, output_tokens=7.0), tokens=NS(input_tokens=71.0, output_tokens=9.0))
    )
    assert (usage.input_tokens, usage.output_tokens) == (5, 7)
    assert isinstance(usage.input_tokens, int)
    fallback = co._usage(NS(billed_units=None, tokens=NS(input_tokens=71.0, output_tokens=9.0)))
    assert (fallback.input_tokens, fallback.output_tokens) == (71, 9)


def test_cohere_omitted_arguments_are_not_values():
    assert co._value({"temperature": ...}, "temperature") is None
    assert co._finish_reason("MAX_TOKENS") == "length"
    assert co._finish_reason("TOOL_CALL") == "tool_call"
