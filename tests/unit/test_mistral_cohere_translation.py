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


def test_chat_requests_read_each_sdk_s_names_for_the_parameters():
    class Unset:  # Speakeasy's "argument omitted" sentinel
        pass

    class Effort:
        value = "high"

    mistral_kwargs = {
        "model": "mistral-small-latest",
        "temperature": 0.2,
        "top_p": Unset(),
        "max_tokens": 64,
        "random_seed": 7,
        "n": 2,
        "stop": "END",
        "reasoning_effort": Effort(),
        "response_format": {"type": "json_object"},
    }
    request = mi._fields.chat_request(mistral_kwargs, mi._CHAT_ARGUMENTS, "mistral_ai", "api.mistral.ai", 443, True)
    assert (request.provider, request.model, request.server_address, request.server_port, request.stream) == (
        "mistral_ai",
        "mistral-small-latest",
        "api.mistral.ai",
        443,
        True,
    )
    assert (request.temperature, request.top_p, request.max_tokens, request.seed, request.choice_count) == (
        0.2,
        None,
        64,
        7,
        2,
    )
    assert (request.stop_sequences, request.reasoning_level, request.output_type) == (["END"], "high", "json")

    cohere_kwargs = {"model": "command-a", "p": 0.9, "k": 40, "seed": ..., "stop_sequences": ["x"], "n": 3}
    request = co._fields.chat_request(cohere_kwargs, co._CHAT_ARGUMENTS, "cohere", None, None, False)
    assert (request.top_p, request.top_k, request.seed, request.stop_sequences) == (0.9, 40, None, ["x"])
    assert request.choice_count is None and request.reasoning_level is None and request.output_type is None
