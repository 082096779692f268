"""LiteLLM adapter translations, without importing LiteLLM (a stand-in module supplies what the
adapter reads from it: ``provider_list`` and ``model_cost``)."""

import asyncio
import json
import sys
from types import SimpleNamespace as NS

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from posthog_autoinstrument.formats import litellm as litellm_format
from posthog_autoinstrument.genai import InferenceRequest, Layer, Recorder
from posthog_autoinstrument.instrumentation import litellm as adapter


@pytest.fixture(autouse=True)
def fake_litellm(monkeypatch):
    module = NS(
        provider_list=["openai", "azure", "ollama", "ollama_chat", "openrouter", "anthropic", "vertex_ai"],
        model_cost={"gpt-4o-mini": {"litellm_provider": "openai"}},
    )
    monkeypatch.setitem(sys.modules, "litellm", module)
    return module


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def recorder(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Recorder(provider.get_tracer("test"), capture_content=True)


@pytest.mark.parametrize(
    "model, explicit, expected",
    [
        ("ollama_chat/llama3.2", None, ("ollama_chat", "llama3.2")),
        ("openrouter/openai/gpt-4o", None, ("openrouter", "openai/gpt-4o")),
        ("gpt-4o-mini", None, ("openai", "gpt-4o-mini")),  # LiteLLM's bundled cost map names it
        ("my-model-group", None, (None, "my-model-group")),
        ("not-a-provider/model", None, (None, "not-a-provider/model")),
        ("azure/my-deployment", "azure", ("azure", "my-deployment")),
        ("my-deployment", "azure", ("azure", "my-deployment")),
        (None, None, (None, None)),
    ],
)
def test_split_model(model, explicit, expected):
    assert adapter.split_model(model, explicit) == expected


def test_provider_list_changes_are_seen(fake_litellm):
    assert adapter.split_model("newprov/x") == (None, "newprov/x")
    fake_litellm.provider_list = fake_litellm.provider_list + ["newprov"]
    assert adapter.split_model("newprov/x") == ("newprov", "x")


@pytest.mark.parametrize(
    "litellm_name, expected",
    [
        ("openai", "openai"),
        ("azure", "azure.ai.openai"),
        ("azure_ai", "azure.ai.inference"),
        ("ollama_chat", "ollama"),
        ("vertex_ai", "gcp.vertex_ai"),
        ("gemini", "gcp.gemini"),
        ("bedrock", "aws.bedrock"),
        ("together_ai", "together"),
        ("xai", "x_ai"),
        ("watsonx", "ibm.watsonx.ai"),
        ("fireworks_ai", "fireworks_ai"),  # not in the conventions' list: kept as LiteLLM names it
        (None, None),
        ("", None),
    ],
)
def test_provider_names(litellm_name, expected):
    assert adapter.provider_name(litellm_name) == expected


def test_usage_counts_cache_tokens_inside_input_tokens():
    usage = litellm_format.usage(
        NS(
            prompt_tokens=100,
            completion_tokens=20,
            prompt_tokens_details=NS(cached_tokens=40, cache_creation_tokens=10),
            completion_tokens_details=NS(reasoning_tokens=5),
        )
    )
    assert (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
        usage.reasoning_tokens,
    ) == (100, 20, 40, 10, 5)
    # Older LiteLLM versions put Anthropic's cache counts on the usage object itself.
    usage = litellm_format.usage(
        {"prompt_tokens": 9, "completion_tokens": 1, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 2}
    )
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (4, 2)


def test_stream_usage_is_merged_from_the_providers_events():
    # Anthropic-style: input counts in the first event, output counts in a later one.
    chunks = [
        NS(usage={"prompt_tokens": 100, "prompt_tokens_details": {"cached_tokens": 40}}),
        NS(usage=None),
        NS(),
        NS(usage=NS(completion_tokens=20, prompt_tokens_details=None, completion_tokens_details=None)),
    ]
    usage = litellm_format.reported_stream_usage(chunks)
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (100, 20, 40)
    assert litellm_format.reported_stream_usage([NS(), NS(usage=None)]) is None
    assert litellm_format.reported_stream_usage(None) is None


def test_request_reads_positional_arguments_and_records_at_the_framework_layer():
    request, replaced = adapter._Chat(asynchronous=False).request(
        None,
        ("ollama_chat/llama3.2", [{"role": "user", "content": "hi"}]),
        {
            "temperature": 0.5,
            "max_completion_tokens": 9,
            "stop": "END",
            "n": 2,
            "stream": True,
            "api_base": "http://127.0.0.1:11434",
            "user": "u-1",
            "reasoning_effort": "low",
        },
    )
    assert replaced is None  # the application's arguments pass through untouched
    assert isinstance(request, InferenceRequest)
    assert request.layer == Layer.FRAMEWORK
    assert (request.provider, request.model) == ("ollama", "llama3.2")
    assert (request.server_address, request.server_port) == ("127.0.0.1", 11434)
    assert (request.temperature, request.max_tokens, request.stop_sequences, request.choice_count) == (0.5, 9, "END", 2)
    assert request.stream is True and request.reasoning_level == "low"
    assert request.attributes[adapter.semconv.END_USER_ID] == "u-1"


def _chunk(content=None, reasoning=None, tool_calls=None, finish=None, **fields):
    delta = NS(content=content, reasoning_content=reasoning, tool_calls=tool_calls)
    return NS(id="chatcmpl-1", model="claude-x", choices=[NS(index=0, delta=delta, finish_reason=finish)], **fields)


def test_stream_accumulator_assembles_reasoning_text_and_tool_calls(recorder, exporter):
    call = recorder.start(InferenceRequest(provider="litellm", model="claude-x", layer=Layer.FRAMEWORK))
    provider_chunks = [NS(usage={"prompt_tokens": 12}), NS(usage={"completion_tokens": 4})]
    wrapper = NS(custom_llm_provider="anthropic", chunks=provider_chunks)
    accumulator = adapter.ChatStreamAccumulator(wrapper, capture=True)
    fragments = [
        _chunk(reasoning="Think"),
        _chunk(reasoning="ing."),
        _chunk(content="Let me check."),
        _chunk(tool_calls=[NS(index=0, id="toolu_1", function=NS(name="get_weather", arguments=""))]),
        _chunk(tool_calls=[NS(index=0, id=None, function=NS(name=None, arguments='{"city": '))]),
        _chunk(tool_calls=[NS(index=0, id=None, function=NS(name=None, arguments='"Paris"}'))]),
        _chunk(finish="tool_calls"),
    ]
    assert [accumulator.on_chunk(c) for c in fragments] == [False] * len(fragments)  # nothing hidden
    accumulator.finish(call)
    call.end()
    (span,) = exporter.get_finished_spans()
    attrs = span.attributes
    assert attrs["gen_ai.provider.name"] == "anthropic"  # the stream named the provider
    assert attrs["gen_ai.usage.input_tokens"] == 12 and attrs["gen_ai.usage.output_tokens"] == 4
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_call",)
    assert json.loads(attrs["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "finish_reason": "tool_call",
            "parts": [
                {"type": "reasoning", "content": "Thinking."},
                {"type": "text", "content": "Let me check."},
                {"type": "tool_call", "id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}},
            ],
        }
    ]


def test_stream_accumulator_takes_tool_arguments_sent_whole_as_objects(recorder, exporter):
    call = recorder.start(InferenceRequest(provider="ollama", model="llama3.2", layer=Layer.FRAMEWORK))
    accumulator = adapter.ChatStreamAccumulator(NS(chunks=[]), capture=True)
    accumulator.on_chunk(
        _chunk(tool_calls=[NS(index=None, id="1", function=NS(name="f", arguments={"a": 1}))], finish="tool_calls")
    )
    accumulator.finish(call)
    call.end()
    (span,) = exporter.get_finished_spans()
    (output,) = json.loads(span.attributes["gen_ai.output.messages"])
    assert output["parts"] == [{"type": "tool_call", "id": "1", "name": "f", "arguments": {"a": 1}}]
    assert "gen_ai.usage.input_tokens" not in span.attributes  # no provider report, no estimate


def _model_response(text="hi"):
    message = NS(content=text, tool_calls=None, function_call=None, refusal=None, audio=None, reasoning_content=None)
    return NS(
        id="r-1",
        model="ollama_chat/llama3.2",
        system_fingerprint=None,
        choices=[NS(index=0, message=message, finish_reason="stop")],
        usage=NS(prompt_tokens=3, completion_tokens=2, prompt_tokens_details=None, completion_tokens_details=None),
        _hidden_params={"custom_llm_provider": "ollama_chat"},
    )


def test_an_unawaited_async_result_is_recorded_when_awaited(recorder, exporter):
    # ``completion(..., acompletion=True)`` returns the async call itself.
    handler = adapter._Chat(asynchronous=False)

    async def succeed():
        return _model_response()

    async def fail():
        raise TimeoutError("slow")

    async def main():
        call = recorder.start(InferenceRequest(provider="ollama", model="llama3.2", layer=Layer.FRAMEWORK))
        result = handler.result(call, succeed(), {"acompletion": True})
        assert not call.ended
        assert (await result).id == "r-1"
        call = recorder.start(InferenceRequest(provider="ollama", model="llama3.2", layer=Layer.FRAMEWORK))
        with pytest.raises(TimeoutError):
            await handler.result(call, fail(), {"acompletion": True})

    asyncio.run(main())
    done, failed = exporter.get_finished_spans()
    assert done.attributes["gen_ai.response.model"] == "llama3.2"  # LiteLLM's prefix stripped
    assert done.attributes["gen_ai.usage.output_tokens"] == 2
    assert failed.attributes["error.type"] == "TimeoutError"


def test_empty_text_beside_tool_calls_is_no_part():
    message = NS(
        content="",
        tool_calls=[NS(id="c", function=NS(name="f", arguments="{}"))],
        function_call=None,
        refusal=None,
        audio=None,
        reasoning_content="why",
    )
    output = adapter._output(message, "tool_call")
    assert output["parts"] == [
        {"type": "reasoning", "content": "why"},
        {"type": "tool_call", "id": "c", "name": "f", "arguments": {}},
    ]


def test_mock_responses_record_no_usage(recorder, exporter):
    # LiteLLM's mock_response answers locally with made-up token counts.
    call = recorder.start(InferenceRequest(provider="ollama", model="llama3.2", layer=Layer.FRAMEWORK))
    adapter._Chat(asynchronous=False).result(call, _model_response("mocked"), {"mock_response": "mocked"})
    (span,) = exporter.get_finished_spans()
    assert "gen_ai.usage.input_tokens" not in span.attributes
    assert json.loads(span.attributes["gen_ai.output.messages"])[0]["parts"] == [{"type": "text", "content": "mocked"}]
