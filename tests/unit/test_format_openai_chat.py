"""The OpenAI chat-completions wire format (formats/openai_chat.py) on saved payloads: requests,
responses, usage and streamed chunks translated into message parts, asserted exactly."""

from __future__ import annotations

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from posthog_autoinstrument.formats import openai_chat
from posthog_autoinstrument.formats.openai_chat import ChoiceBuffer, ToolCallBuffer
from posthog_autoinstrument.genai import InferenceRequest, Usage
from posthog_autoinstrument.instrumentation.openai import ChatStreamAccumulator

PNG = "iVBORw0KGgo="

# A request body as the app sends it: text, images (inline and by URL), a tool call and its result.
REQUEST = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "name": "ada",
            "content": [
                {"type": "text", "text": "What is in this picture, and the weather there?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/paris.jpg", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, clear"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ],
    "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {}}},
}

# A response with a refusal on one choice and tool calls on the other.
RESPONSE = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
        },
        {
            "index": 1,
            "finish_reason": "tool_calls",
            "logprobs": None,
            "message": {
                "role": "assistant",
                "content": "Checking.",
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "not json"}},
                ],
            },
        },
    ],
    "usage": {
        "prompt_tokens": 120,
        "completion_tokens": 40,
        "total_tokens": 160,
        "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 32, "audio_tokens": 0},
    },
}


def _chunk(choices: list, usage: dict = None) -> dict:
    return {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_1",
        "choices": choices,
        "usage": usage,
    }


def _delta(index: int, finish_reason: str = None, **delta) -> dict:
    return {"index": index, "delta": delta, "finish_reason": finish_reason}


# Two choices streamed together; choice 1 calls two tools, their arguments split across chunks;
# then the usage-only chunk that include_usage asks for.
STREAM = [
    _chunk([_delta(0, role="assistant", content=""), _delta(1, role="assistant")]),
    _chunk(
        [
            _delta(0, content="Hel"),
            _delta(
                1,
                tool_calls=[
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ],
            ),
        ]
    ),
    _chunk(
        [
            _delta(0, content="lo"),
            _delta(
                1,
                tool_calls=[
                    {"index": 0, "function": {"arguments": '{"city": '}},
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"tz"'},
                    },
                ],
            ),
        ]
    ),
    _chunk(
        [
            _delta(
                1,
                tool_calls=[
                    {"index": 0, "function": {"arguments": '"Paris"}'}},
                    {"index": 1, "function": {"arguments": ': "CET"}'}},
                ],
            )
        ]
    ),
    _chunk([_delta(0, finish_reason="stop"), _delta(1, finish_reason="tool_calls")]),
    _chunk(
        [],
        usage={
            "prompt_tokens": 50,
            "completion_tokens": 20,
            "total_tokens": 70,
            "prompt_tokens_details": {"cached_tokens": 10},
            "completion_tokens_details": {"reasoning_tokens": 5},
        },
    ),
]


def test_request_messages_translate_to_parts():
    assert [openai_chat.input_message(message) for message in REQUEST["messages"]] == [
        {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
        {
            "role": "user",
            "name": "ada",
            "parts": [
                {"type": "text", "content": "What is in this picture, and the weather there?"},
                {"type": "blob", "modality": "image", "content": PNG, "mime_type": "image/png"},
                {"type": "uri", "modality": "image", "uri": "https://example.com/paris.jpg"},
            ],
        },
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "18C, clear"}]},
    ]


def test_request_tools_and_output_type():
    assert openai_chat.tool_definitions(REQUEST["tools"]) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    legacy = [{"name": "get_time", "parameters": {"type": "object"}}]
    assert openai_chat.request_tool_definitions(None, legacy) == [
        {"type": "function", "name": "get_time", "parameters": {"type": "object"}}
    ]
    assert openai_chat.output_type(REQUEST["response_format"]) == "json"
    assert openai_chat.output_type({"type": "text"}) == "text"
    assert openai_chat.output_type(None) is None


def test_request_parameters():
    sent = dict(
        REQUEST,
        temperature=0.2,
        top_p=1,
        seed=7,
        max_completion_tokens=256,
        max_tokens=99,
        stop=["\n"],
        n=2,
        reasoning_effort="low",
        frequency_penalty=0.5,
        presence_penalty=True,
    )
    request = openai_chat.request_parameters(InferenceRequest(provider="openai", model="gpt-4o"), sent)
    assert (
        request.temperature,
        request.top_p,
        request.seed,
        request.frequency_penalty,
        request.presence_penalty,
        request.max_tokens,
        request.stop_sequences,
        request.choice_count,
        request.reasoning_level,
        request.output_type,
    ) == (0.2, 1, 7, 0.5, None, 256, ["\n"], 2, "low", "json")


def test_response_choices_translate_with_refusal_and_tool_calls():
    completion = ChatCompletion.model_validate(RESPONSE)  # as the SDK hands it back
    reasons = [openai_chat.finish_reason(choice.finish_reason) for choice in completion.choices]
    assert reasons == ["stop", "tool_call"]
    assert [
        openai_chat.output_message(choice.message, reason) for choice, reason in zip(completion.choices, reasons)
    ] == [
        {
            "role": "assistant",
            "finish_reason": "stop",
            "parts": [{"type": "refusal", "content": "I can't help with that."}],
        },
        {
            "role": "assistant",
            "finish_reason": "tool_call",
            "parts": [
                {"type": "text", "content": "Checking."},
                {"type": "tool_call", "id": "call_a", "name": "get_weather", "arguments": {"city": "Paris"}},
                {"type": "tool_call", "id": "call_b", "name": "get_time", "arguments": "not json"},
            ],
        },
    ]


def test_usage_with_cached_and_reasoning_tokens():
    expected = Usage(input_tokens=120, output_tokens=40, cache_read_input_tokens=100, reasoning_tokens=32)
    assert openai_chat.usage(RESPONSE["usage"]) == expected  # the plain JSON
    assert openai_chat.usage(ChatCompletion.model_validate(RESPONSE).usage) == expected  # the SDK's model
    assert openai_chat.usage(None) is None


class _Call:
    """Stands in for the core's call: keeps what the accumulator reports."""

    def __init__(self):
        self.response: dict = {}
        self.output = None

    def set_response(self, **fields):
        self.response = fields

    def set_output(self, messages):
        self.output = messages


def test_stream_of_two_choices_with_tool_call_fragments():
    accumulator = ChatStreamAccumulator(hide_usage_chunk=True, capture=True)
    hidden = [accumulator.on_chunk(ChatCompletionChunk.model_validate(chunk)) for chunk in STREAM]
    assert hidden == [False] * 5 + [True]  # only the usage chunk we asked for is hidden from the app
    call = _Call()
    accumulator.finish(call)
    assert call.response["finish_reasons"] == ["stop", "tool_call"]
    assert call.response["usage"] == Usage(
        input_tokens=50, output_tokens=20, cache_read_input_tokens=10, reasoning_tokens=5
    )
    assert (call.response["model"], call.response["response_id"]) == ("gpt-4o-2024-08-06", "chatcmpl-2")
    assert call.output == [
        {"role": "assistant", "finish_reason": "stop", "parts": [{"type": "text", "content": "Hello"}]},
        {
            "role": "assistant",
            "finish_reason": "tool_call",
            "parts": [
                {"type": "tool_call", "id": "call_a", "name": "get_weather", "arguments": {"city": "Paris"}},
                {"type": "tool_call", "id": "call_b", "name": "get_time", "arguments": {"tz": "CET"}},
            ],
        },
    ]


def test_choice_buffer_orders_parts_and_leaves_out_what_never_came():
    choice = ChoiceBuffer()
    assert choice.parts() == []
    choice.tool_call(1).fragments.append('{"b": 2}')
    first = choice.tool_call(0)
    first.id, first.name = "call_x", "f"
    first.fragments += ['{"a"', ": 1}"]
    assert choice.tool_call(0) is first  # later fragments of the same index reach the same buffer
    choice.refusal.append("no")
    choice.text += ["a", "b"]
    choice.reasoning.append("think")
    assert choice.parts() == [
        {"type": "reasoning", "content": "think"},
        {"type": "text", "content": "ab"},
        {"type": "refusal", "content": "no"},
        {"type": "tool_call", "id": "call_x", "name": "f", "arguments": {"a": 1}},
        {"type": "tool_call", "name": None, "arguments": {"b": 2}},
    ]


def test_tool_call_arguments_sent_whole_stand_for_all_of_them():
    buffer = ToolCallBuffer()
    buffer.add_arguments('{"ignored": ')
    buffer.add_arguments({"city": "Paris"})
    buffer.add_arguments(None)
    assert buffer.part() == {"type": "tool_call", "name": None, "arguments": {"city": "Paris"}}


def test_tool_call_arguments_in_text_pieces_are_joined():
    buffer = ToolCallBuffer()
    for piece in ('{"city"', "", ': "Paris"}'):
        buffer.add_arguments(piece)
    assert buffer.part() == {"type": "tool_call", "name": None, "arguments": {"city": "Paris"}}


def test_lenient_chunks_fold_into_the_same_buffers():
    """OpenAI-shaped SDKs (Groq, Together, LiteLLM) and relayed JSON: plain dicts, float indexes,
    fragments without an index (their position then), arguments sent as an object."""
    buffers: dict = {}
    chunks = [
        [{"index": 0.0, "delta": {"content": "Hi", "reasoning_content": "think"}}],
        [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {"index": 0.0, "id": "call_a", "function": {"name": "f", "arguments": '{"a": '}},
                        {"id": "call_b", "function": {"name": "g", "arguments": {"b": 2}}},
                    ]
                },
            }
        ],
        [
            {
                "index": 0,
                "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
                "finish_reason": "tool_calls",
            }
        ],
    ]
    for choices in chunks:
        openai_chat.add_chunk_choices(buffers, choices, True, lambda delta: delta.get("reasoning_content"))
    (choice,) = openai_chat.ordered_choices(buffers)
    assert openai_chat.finish_reason(choice.finish_reason) == "tool_call"
    assert choice.parts() == [
        {"type": "reasoning", "content": "think"},
        {"type": "text", "content": "Hi"},
        {"type": "tool_call", "id": "call_a", "name": "f", "arguments": {"a": 1}},
        {"type": "tool_call", "id": "call_b", "name": "g", "arguments": {"b": 2}},
    ]
    without_content: dict = {}
    for choices in chunks:
        openai_chat.add_chunk_choices(without_content, choices, False, lambda delta: None)
    assert without_content[0].finish_reason == "tool_calls" and without_content[0].parts() == []
