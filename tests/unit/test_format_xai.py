"""formats.xai on protobuf messages built with the xai-sdk's own definitions."""

from __future__ import annotations

import pytest

pytest.importorskip("xai_sdk")

from xai_sdk.chat import assistant, image, system, text, tool, tool_result, user  # noqa: E402
from xai_sdk.proto import chat_pb2, sample_pb2, usage_pb2  # noqa: E402

from posthog_autoinstrument.formats import xai as wire  # noqa: E402
from posthog_autoinstrument.genai import semconv  # noqa: E402


def _request(**fields) -> chat_pb2.GetCompletionsRequest:
    return chat_pb2.GetCompletionsRequest(model="grok-4", **fields)


def test_messages_of_every_role_and_part():
    call = chat_pb2.ToolCall(id="c1", function=chat_pb2.FunctionCall(name="f", arguments='{"a": 1}'))
    said = assistant(text(""))
    said.tool_calls.append(call)
    said.reasoning_content = "thought"
    request = _request(
        messages=[
            system("Be terse."),
            user("Look", image("https://example.test/cat.png")),
            said,
            tool_result("42", tool_call_id="c1"),
        ]
    )
    assert wire.input_messages(request) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be terse."}]},
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "Look"},
                {"type": "uri", "modality": "image", "uri": "https://example.test/cat.png"},
            ],
        },
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "thought"},
                {"type": "tool_call", "id": "c1", "name": "f", "arguments": {"a": 1}},
            ],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "42"}]},
    ]


def test_tools_and_parameters_as_sent():
    request = _request(
        tools=[tool("f", "does f", {"type": "object"})],
        temperature=0.5,
        max_tokens=10,
        n=1,
        reasoning_effort=chat_pb2.ReasoningEffort.EFFORT_HIGH,
        response_format=chat_pb2.ResponseFormat(format_type=chat_pb2.FormatType.FORMAT_TYPE_JSON_SCHEMA),
    )
    assert wire.tool_definitions(request) == [
        {"type": "function", "name": "f", "description": "does f", "parameters": {"type": "object"}}
    ]
    assert wire.parameters(request) == {
        semconv.REQUEST_TEMPERATURE: 0.5,
        semconv.REQUEST_MAX_TOKENS: 10,
        semconv.REQUEST_REASONING_LEVEL: "high",
        semconv.OUTPUT_TYPE: "json",
    }  # unset ones and the SDK's n=1 left out


def test_outputs_are_grouped_by_choice_and_usage_is_as_reported():
    message = chat_pb2.CompletionMessage(content="hi", role=chat_pb2.MessageRole.ROLE_ASSISTANT)
    response = chat_pb2.GetChatCompletionResponse(
        outputs=[
            chat_pb2.CompletionOutput(index=0, message=chat_pb2.CompletionMessage(reasoning_content="r")),
            chat_pb2.CompletionOutput(index=0, message=message, finish_reason=sample_pb2.FinishReason.REASON_MAX_LEN),
        ],
        usage=usage_pb2.SamplingUsage(
            prompt_tokens=9, completion_tokens=4, reasoning_tokens=2, cached_prompt_text_tokens=1
        ),
    )
    reasons, outputs = wire.outputs(response)
    assert reasons == ["length"]
    assert outputs == [
        {
            "role": "assistant",
            "finish_reason": "length",
            "parts": [{"type": "reasoning", "content": "r"}, {"type": "text", "content": "hi"}],
        }
    ]
    usage = wire.usage(response)
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens, usage.cache_read_input_tokens) == (
        9,
        4,
        2,
        1,
    )
    assert wire.usage(chat_pb2.GetChatCompletionResponse(usage=usage_pb2.SamplingUsage())) is None
