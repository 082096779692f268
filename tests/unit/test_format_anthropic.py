"""Anthropic's Messages format (formats/anthropic.py) on saved payloads: request content blocks and
tools, a response's usage and stop reason, and the streamed events folded into one message, as
plain JSON and as the SDK's own objects."""

from __future__ import annotations

import pytest

from posthog_autoinstrument.formats import anthropic as fmt
from posthog_autoinstrument.formats.anthropic import StreamedMessage

PNG = "iVBORw0KGgo="

# A request body as the app sends it: media, a server tool and its result, a client tool and its result.
REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
                {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
                {"type": "text", "text": "What is this, and the weather in Paris?"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Search first.", "signature": "sig"},
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_1",
                    "name": "web_search",
                    "input": {"query": "Paris weather"},
                },
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": "srvtoolu_1",
                    "content": [
                        {
                            "type": "web_search_result",
                            "url": "https://w.example",
                            "title": "W",
                            "encrypted_content": "opaque",
                        }
                    ],
                },
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [
                        {"type": "text", "text": "18C"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    ],
                },
                {"type": "redacted_thinking", "data": "opaque"},
            ],
        },
    ],
    "tools": [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ],
}

# A response with a tool call, cache reads and writes, thinking tokens and a service tier.
RESPONSE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Lyon"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 30,
        "service_tier": "standard",
        "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 0},
    },
}


def test_request_blocks_become_parts():
    user, assistant, results = fmt.input_messages(REQUEST["messages"])
    assert user == {
        "role": "user",
        "parts": [
            {"type": "blob", "modality": "image", "mime_type": "image/png", "content": PNG},
            {"type": "uri", "modality": "document", "uri": "https://example.com/a.pdf"},
            {"type": "file", "modality": "image", "file_id": "file_1"},
            {"type": "text", "content": "What is this, and the weather in Paris?"},
        ],
    }
    assert assistant["parts"] == [
        {"type": "reasoning", "content": "Search first."},
        {"type": "tool_call", "id": "srvtoolu_1", "name": "web_search", "arguments": {"query": "Paris weather"}},
        # Opaque encrypted fields are left out of tool results.
        {
            "type": "tool_call_response",
            "id": "srvtoolu_1",
            "response": [{"type": "web_search_result", "url": "https://w.example", "title": "W"}],
        },
        {"type": "tool_call", "id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}},
    ]
    # Media inside a tool result is named, not copied.
    assert results["parts"] == [
        {
            "type": "tool_call_response",
            "id": "toolu_1",
            "response": [{"type": "text", "text": "18C"}, {"type": "image"}],
        },
        {"type": "anthropic_redacted_thinking"},
    ]
    assert fmt.content_parts(REQUEST["system"]) == [{"type": "text", "content": "You are terse."}]
    assert fmt.content_parts("plain") == [{"type": "text", "content": "plain"}]


def test_tool_definitions():
    assert fmt.tool_definitions(REQUEST["tools"]) == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"type": "web_search_20250305", "name": "web_search"},
    ]


def test_response_usage_counts_cache_tokens_as_input():
    details = fmt.response_details(RESPONSE)
    usage = details.pop("usage")
    assert (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
    ) == (140, 20, 100, 30)
    assert details == {
        "model": "claude-sonnet-4-5-20250929",
        "response_id": "msg_1",
        "finish_reasons": ["tool_call"],
        "attributes": {
            "anthropic.response.service_tier": "standard",
            "anthropic.usage.cache_creation.ephemeral_5m_input_tokens": 30,
            "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 0,
        },
    }
    assert fmt.output_message(RESPONSE) == {
        "role": "assistant",
        "finish_reason": "tool_call",
        "parts": [
            {"type": "text", "content": "Checking."},
            {"type": "tool_call", "id": "toolu_2", "name": "get_weather", "arguments": {"city": "Lyon"}},
        ],
    }


@pytest.mark.parametrize(
    "stop_reason, reason",
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_call"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause_turn"),
        (None, None),
        ("", None),
    ],
)
def test_finish_reasons(stop_reason, reason):
    assert fmt.finish_reason(stop_reason) == reason


# The raw events of a streamed answer: thinking, text, then a tool call whose input comes in pieces.
EVENTS = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_2",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 5},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "see."}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hello "}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "there"}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "id": "toolu_3", "name": "f", "input": {}},
    },
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"a": '}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "1}"}},
    {"type": "content_block_stop", "index": 2},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 42, "cache_creation_input_tokens": 7},
    },
    {"type": "message_stop"},
]

STREAMED_PARTS = [
    {"type": "reasoning", "content": "Let me see."},
    {"type": "text", "content": "Hello there"},
    {"type": "tool_call", "id": "toolu_3", "name": "f", "arguments": {"a": 1}},
]


def fold(events: list, capture: bool = True) -> StreamedMessage:
    message = StreamedMessage(capture)
    for event in events:
        message.add(event)
    return message


def test_stream_is_folded_into_one_message():
    message = fold(EVENTS)
    assert message.content()[0] == {"type": "thinking", "thinking": "Let me see.", "signature": "sig"}
    assert message.output_message() == {"role": "assistant", "finish_reason": "tool_call", "parts": STREAMED_PARTS}
    details = message.response_details()
    usage = details["usage"]
    # message_delta's counts are final, its cache writes included.
    assert (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
    ) == (22, 42, 5, 7)
    assert (details["model"], details["response_id"], details["finish_reasons"]) == (
        "claude-sonnet-4-5-20250929",
        "msg_2",
        ["tool_call"],
    )


def test_a_stream_cut_short_has_no_output_count_nor_finish_reason():
    message = fold(EVENTS[:8])
    details = message.response_details()
    assert details["usage"].input_tokens == 15 and details["usage"].output_tokens is None
    assert details["finish_reasons"] is None
    assert message.output_message()["parts"] == STREAMED_PARTS[:1] + [{"type": "text", "content": "Hello "}]


def test_without_capture_no_content_is_kept():
    message = fold(EVENTS, capture=False)
    assert message.content() == [] and message.blocks == {}
    assert message.response_details()["usage"].output_tokens == 42


def test_the_sdks_objects_read_as_their_json():
    types = pytest.importorskip("anthropic.types")
    sdk_message = types.Message.model_validate(RESPONSE)
    assert fmt.output_message(sdk_message) == fmt.output_message(RESPONSE)
    assert fmt.response_details(sdk_message)["usage"].input_tokens == 140
    events = [_sdk_event(types, event) for event in EVENTS]
    assert fold(events).output_message() == fold(EVENTS).output_message()


def _sdk_event(types, event: dict):
    classes = {
        "message_start": types.RawMessageStartEvent,
        "content_block_start": types.RawContentBlockStartEvent,
        "content_block_delta": types.RawContentBlockDeltaEvent,
        "content_block_stop": types.RawContentBlockStopEvent,
        "message_delta": types.RawMessageDeltaEvent,
        "message_stop": types.RawMessageStopEvent,
    }
    return classes[event["type"]].model_validate(event)
