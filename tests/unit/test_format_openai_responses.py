"""OpenAI's Responses API (formats/openai_responses.py) on saved payloads: input items, output
items, finish reasons by status, and usage, asserted exactly."""

from __future__ import annotations

from openai.types.responses import Response

from posthog_autoinstrument.formats import openai_responses
from posthog_autoinstrument.genai import Usage

INPUT = [
    {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "Weather in Paris?"},
            {"type": "input_image", "image_url": "https://example.com/p.jpg"},
        ],
    },
    {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "Need the tool."}, {"type": "summary_text", "text": "Call it."}],
    },
    {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
    {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
    {"type": "item_reference", "id": "msg_0"},
]

RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "model": "gpt-4.1-2025-04-14",
    "status": "completed",
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "service_tier": "default",
    "output": [
        {"type": "reasoning", "id": "rs_2", "summary": [{"type": "summary_text", "text": "Search first."}]},
        {
            "type": "web_search_call",
            "id": "ws_1",
            "status": "completed",
            "action": {"type": "search", "query": "paris weather"},
        },
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_2",
            "name": "get_time",
            "arguments": '{"tz": "CET"}',
            "status": "completed",
        },
    ],
    "usage": {
        "input_tokens": 80,
        "output_tokens": 30,
        "total_tokens": 110,
        "input_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 8},
        "output_tokens_details": {"reasoning_tokens": 12},
    },
}


def test_input_items_translate_to_messages():
    assert openai_responses.input_messages("Hello") == [
        {"role": "user", "parts": [{"type": "text", "content": "Hello"}]}
    ]
    assert openai_responses.input_messages(INPUT) == [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "Weather in Paris?"},
                {"type": "uri", "modality": "image", "uri": "https://example.com/p.jpg"},
            ],
        },
        {"role": "assistant", "parts": [{"type": "reasoning", "content": "Need the tool.\nCall it."}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "18C"}]},
        {"role": "user", "parts": [{"type": "item_reference"}]},
    ]


def test_response_output_and_details():
    response = Response.model_validate(RESPONSE)  # as the SDK hands it back
    assert openai_responses.output_message(response) == {
        "role": "assistant",
        "finish_reason": "tool_call",
        "parts": [
            {"type": "reasoning", "content": "Search first."},
            {"type": "server_tool_call", "name": "web_search_call", "id": "ws_1"},
            {"type": "text", "content": "Checking."},
            {"type": "tool_call", "id": "call_2", "name": "get_time", "arguments": {"tz": "CET"}},
        ],
    }
    assert openai_responses.response_details(response) == {
        "model": "gpt-4.1-2025-04-14",
        "response_id": "resp_1",
        "finish_reasons": ["tool_call"],
        "usage": Usage(
            input_tokens=80,
            output_tokens=30,
            cache_read_input_tokens=64,
            cache_creation_input_tokens=8,
            reasoning_tokens=12,
        ),
        "attributes": {"openai.response.service_tier": "default"},
    }


def test_finish_reason_follows_the_status():
    text_only = [{"type": "message", "content": [{"type": "output_text", "text": "Hi"}]}]
    cases = [
        ({"status": "completed", "output": text_only}, "stop"),
        ({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}, "length"),
        ({"status": "incomplete", "incomplete_details": {"reason": "content_filter"}}, "content_filter"),
        ({"status": "incomplete"}, "length"),
        ({"status": "failed"}, "error"),
        ({"status": "in_progress"}, "in_progress"),
    ]
    assert [openai_responses.finish_reason(response) for response, _ in cases] == [reason for _, reason in cases]
