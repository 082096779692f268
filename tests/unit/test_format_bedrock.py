"""Bedrock's formats (formats/bedrock.py) on saved payloads: Converse, and the InvokeModel bodies
and stream chunks of each model family, translated into parts, finish reasons and usage."""

from __future__ import annotations

import json

import pytest

from posthog_autoinstrument.formats import bedrock
from posthog_autoinstrument.genai import InferenceRequest

REPLY = "Hello from Bedrock"
PIECES = ["Hello ", "from ", "Bedrock"]
METRICS = {
    "amazon-bedrock-invocationMetrics": {
        "inputTokenCount": 11,
        "outputTokenCount": 7,
        "invocationLatency": 321,
        "firstByteLatency": 100,
    }
}


def text_parts(text: str = REPLY) -> list:
    return [{"type": "text", "content": text}]


def usage_of(result) -> tuple:
    usage = result.usage
    if usage is None:
        return None
    return (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens)


@pytest.mark.parametrize(
    "model_id, vendor",
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic"),
        ("us.anthropic.claude-3-haiku-20240307-v1:0", "anthropic"),
        ("global.amazon.nova-2-lite-v1:0", "amazon"),
        ("arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-8b-instruct-v1:0", "meta"),
        ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3", None),
        (None, None),
    ],
)
def test_vendor_of(model_id, vendor):
    assert bedrock.vendor_of(model_id) == vendor


def test_request_parameters_are_read_from_any_family_body():
    request = InferenceRequest(provider="aws.bedrock", model="x")
    bedrock.fill_request_from_body(
        request, {"inferenceConfig": {"max_new_tokens": 5, "top_p": 0.5, "topK": 3}, "temperature": 0.1, "stop": ["a"]}
    )
    assert (request.max_tokens, request.top_p, request.top_k, request.temperature, request.stop_sequences) == (
        5,
        0.5,
        3,
        0.1,
        ["a"],
    )


def test_anthropic_body_content_becomes_parts():
    messages, system, tools = bedrock.body_input(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "system": [{"type": "text", "text": "sys"}],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                        {"type": "text", "text": "what?"},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm"},
                        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ok"}]}
                    ],
                },
            ],
        },
        None,
    )
    assert system == [{"type": "text", "content": "sys"}]
    assert messages[0]["parts"] == [
        {"type": "blob", "modality": "image", "content": "AAA", "mime_type": "image/png"},
        {"type": "text", "content": "what?"},
    ]
    assert messages[1]["parts"] == [
        {"type": "reasoning", "content": "hmm"},
        {"type": "tool_call", "id": "t1", "name": "f", "arguments": {"a": 1}},
    ]
    # Anthropic's tool results as the Anthropic adapter records them (formats/anthropic.py).
    assert messages[2]["parts"] == [
        {"type": "tool_call_response", "id": "t1", "response": [{"type": "text", "text": "ok"}]}
    ]
    assert tools == []


def test_converse_reasoning_and_documents():
    parts = bedrock.block_parts(
        [
            {"reasoningContent": {"reasoningText": {"text": "thinking", "signature": "sig"}}},
            {"document": {"format": "pdf", "name": "a", "source": {"bytes": b"%PDF"}}},
            {"cachePoint": {"type": "default"}},
            {"video": {"format": "mp4", "source": {"s3Location": {"uri": "s3://b/v.mp4"}}}},
        ]
    )
    assert parts == [
        {"type": "reasoning", "content": "thinking"},
        {"type": "blob", "modality": "document", "content": "JVBERg==", "mime_type": "application/pdf"},
        {"type": "uri", "modality": "video", "uri": "s3://b/v.mp4", "mime_type": "video/mp4"},
    ]


def test_response_usage_falls_back_to_headers():
    result = bedrock.read_response_body({"outputs": [{"text": "x", "stop_reason": "length"}]})
    assert result.usage is None and result.finish_reason == "length"
    usage = bedrock.merge(
        result.usage,
        bedrock.header_usage(
            {
                "ResponseMetadata": {
                    "HTTPHeaders": {
                        "x-amzn-bedrock-input-token-count": "10",
                        "x-amzn-bedrock-output-token-count": "4",
                        "x-amzn-bedrock-cache-read-input-token-count": "5",
                    }
                }
            }
        ),
    )
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (15, 4, 5)


# Each family's InvokeModel response body, as Bedrock returns it: (body, parts, finish reason, usage,
# model, response id).
RESPONSES = {
    "anthropic": (
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-haiku-20241022",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 11,
                "output_tokens": 7,
                "cache_read_input_tokens": 3,
                "cache_creation_input_tokens": 2,
            },
        },
        [
            {"type": "text", "content": "Let me check."},
            {"type": "tool_call", "id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}},
        ],
        "tool_call",
        (16, 7, 3, 2),
        "claude-3-5-haiku-20241022",
        "msg_1",
    ),
    "nova": (
        {
            "output": {"message": {"role": "assistant", "content": [{"text": REPLY}]}},
            "stopReason": "max_tokens",
            "usage": {
                "inputTokens": 11,
                "outputTokens": 7,
                "totalTokens": 18,
                "cacheReadInputTokenCount": 4,
                "cacheWriteInputTokenCount": 0,
            },
        },
        text_parts(),
        "length",
        (15, 7, 4, 0),
        None,
        None,
    ),
    "titan": (
        {
            "inputTextTokenCount": 11,
            "results": [{"tokenCount": 7, "outputText": REPLY, "completionReason": "CONTENT_FILTERED"}],
        },
        text_parts(),
        "content_filter",
        (11, 7, None, None),
        None,
        None,
    ),
    "llama": (
        {"generation": REPLY, "prompt_token_count": 11, "generation_token_count": 7, "stop_reason": "length"},
        text_parts(),
        "length",
        (11, 7, None, None),
        None,
        None,
    ),
    "mistral": ({"outputs": [{"text": REPLY, "stop_reason": "stop"}]}, text_parts(), "stop", None, None, None),
    "openai-like": (
        {
            "id": "cmpl-1",
            "object": "chat.completion",
            "model": "mistral-large-2407",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        },
        [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
        "tool_call",
        (11, 7, None, None),
        "mistral-large-2407",
        "cmpl-1",
    ),
    "command-r": (
        {
            "response_id": "resp-1",
            "text": REPLY,
            "generation_id": "gen-1",
            "finish_reason": "MAX_TOKENS",
            "chat_history": [],
            "meta": {"billed_units": {"input_tokens": 11, "output_tokens": 7}},
        },
        text_parts(),
        "length",
        (11, 7, None, None),
        None,
        "resp-1",
    ),
    "command": (
        {
            "id": "gen-2",
            "prompt": "Say hello",
            "generations": [{"id": "g-1", "text": REPLY, "finish_reason": "COMPLETE"}],
        },
        text_parts(),
        "stop",
        None,
        None,
        "gen-2",
    ),
    "claude-text": (
        {"completion": REPLY, "stop_reason": "stop_sequence", "stop": "\n\nHuman:"},
        text_parts(),
        "stop",
        None,
        None,
        None,
    ),
}


@pytest.mark.parametrize("family", sorted(RESPONSES))
def test_each_family_response_body(family):
    body, parts, reason, usage, model, response_id = RESPONSES[family]
    result = bedrock.read_response_body(body)
    assert result.parts == parts
    assert result.finish_reason == reason
    assert usage_of(result) == usage
    assert (result.model, result.response_id) == (model, response_id)


def test_embedding_bodies_give_dimensions_and_no_parts():
    titan = bedrock.read_response_body({"embedding": [0.1] * 8, "inputTextTokenCount": 5})
    assert (titan.dimensions, titan.usage.input_tokens, titan.parts) == (8, 5, [])
    cohere = bedrock.read_response_body({"id": "emb-1", "embeddings": {"float": [[0.2] * 4, [0.3] * 4]}})
    assert (cohere.dimensions, cohere.response_id, cohere.usage) == (4, "emb-1", None)
    assert bedrock.read_response_body({"unknown": True}).parts == []


def test_request_bodies_of_each_family():
    nova = bedrock.body_input(
        {
            "schemaVersion": "messages-v1",
            "system": [{"text": "Be brief."}],
            "messages": [{"role": "user", "content": [{"text": "Say hello"}]}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {}}}}]},
        },
        "amazon",
    )
    assert nova == (
        [{"role": "user", "parts": text_parts("Say hello")}],
        text_parts("Be brief."),
        [{"type": "function", "name": "f", "parameters": {}}],
    )
    chat = bedrock.body_input(
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]}, "mistral"
    )
    assert [m["role"] for m in chat[0]] == ["system", "user"]
    command_r = bedrock.body_input(
        {
            "message": "Say hello",
            "preamble": "Be brief.",
            "chat_history": [{"role": "USER", "message": "Hi"}, {"role": "CHATBOT", "message": "Hey"}],
        },
        "cohere",
    )
    assert [m["role"] for m in command_r[0]] == ["user", "assistant", "user"] and command_r[1] == text_parts(
        "Be brief."
    )
    embed = bedrock.body_input({"texts": ["a", "b"], "input_type": "search_document"}, "cohere")
    assert embed[0] == [{"role": "user", "parts": text_parts("a")}, {"role": "user", "parts": text_parts("b")}]
    for body in ({"inputText": "Say hello"}, {"prompt": "Say hello", "max_gen_len": 5}):
        assert bedrock.body_input(body, None) == ([{"role": "user", "parts": text_parts("Say hello")}], [], [])
    assert bedrock.body_operation({"texts": ["a"]}, "cohere.embed-english-v3") == "embeddings"
    assert bedrock.body_operation({"inputText": "a"}, "amazon.titan-embed-text-v2:0") == "embeddings"
    assert (
        bedrock.body_operation({"inputText": "a", "textGenerationConfig": {}}, "amazon.titan-text") == "text_completion"
    )
    assert bedrock.body_operation({"message": "a"}, None) == "chat"


def fold(chunks: list, capture: bool = True) -> bedrock.Result:
    stream = bedrock.StreamedResponse(capture)
    for chunk in chunks:
        stream.add_chunk_bytes({"chunk": {"bytes": json.dumps(chunk).encode()}})
    return stream.result()


ANTHROPIC_STREAM = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_2",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-haiku-20241022",
            "content": [],
            "stop_reason": None,
            "usage": {
                "input_tokens": 11,
                "output_tokens": 1,
                "cache_read_input_tokens": 3,
                "cache_creation_input_tokens": 2,
            },
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    *[{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}} for p in PIECES],
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_2", "name": "f", "input": {}},
    },
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"ci'}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": 'ty": "Paris"}'}},
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 7}},
    {
        "type": "message_stop",
        "amazon-bedrock-invocationMetrics": {
            "inputTokenCount": 11,
            "outputTokenCount": 7,
            "cacheReadInputTokenCount": 3,
            "cacheWriteInputTokenCount": 2,
        },
    },
]


def test_anthropic_stream_chunks_are_folded_by_the_anthropic_format():
    result = fold(ANTHROPIC_STREAM)
    assert result.parts == text_parts() + [
        {"type": "tool_call", "id": "toolu_2", "name": "f", "arguments": {"city": "Paris"}}
    ]
    assert (result.finish_reason, result.model, result.response_id) == (
        "tool_call",
        "claude-3-5-haiku-20241022",
        "msg_2",
    )
    assert usage_of(result) == (16, 7, 3, 2)
    # Cut short before message_delta: the text so far, the input count, no output count.
    cut = fold(ANTHROPIC_STREAM[:4])
    assert cut.parts == text_parts("Hello from ") and cut.finish_reason is None
    assert usage_of(cut) == (16, None, 3, 2)
    assert fold(ANTHROPIC_STREAM, capture=False).parts == []


def last_with_metrics(chunks: list) -> list:
    chunks[-1].update(METRICS)
    return chunks


STREAMS = {
    "nova": [
        {"messageStart": {"role": "assistant"}},
        *[{"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}} for p in PIECES],
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "end_turn"}},
        {"metadata": {"usage": {"inputTokens": 11, "outputTokens": 7}}},
    ],
    "titan": [
        {"outputText": p, "index": 0, "completionReason": "FINISH" if n == 2 else None} for n, p in enumerate(PIECES)
    ],
    "llama": [{"generation": p, "stop_reason": "stop" if n == 2 else None} for n, p in enumerate(PIECES)],
    "mistral": [{"outputs": [{"text": p, "stop_reason": "stop" if n == 2 else None}]} for n, p in enumerate(PIECES)],
    "openai-like": [
        {
            "id": "cmpl-2",
            "object": "chat.completion.chunk",
            "model": "mistral-large-2407",
            "choices": [{"index": 0, "delta": {"content": p}, "stop_reason": "stop" if n == 2 else None}],
        }
        for n, p in enumerate(PIECES)
    ],
    "command-r": [
        {"is_finished": False, "event_type": "stream-start", "generation_id": "gen-3"},
        *[{"is_finished": False, "event_type": "text-generation", "text": p} for p in PIECES],
        {
            "is_finished": True,
            "event_type": "stream-end",
            "finish_reason": "COMPLETE",
            "response": {"response_id": "resp-3", "text": REPLY, "finish_reason": "COMPLETE"},
        },
    ],
    "command": [
        *[{"text": p, "is_finished": False} for p in PIECES],
        {"is_finished": True, "finish_reason": "COMPLETE", "text": ""},
    ],
    "claude-text": [
        {"completion": p, "stop_reason": "stop_sequence" if n == 2 else None} for n, p in enumerate(PIECES)
    ],
}


@pytest.mark.parametrize("family", sorted(STREAMS))
def test_each_family_stream(family):
    result = fold(last_with_metrics([dict(chunk) for chunk in STREAMS[family]]))
    assert result.parts == text_parts()
    assert result.finish_reason == "stop"
    assert usage_of(result) == (11, 7, None, None)  # the invocation metrics: Bedrock's own count


def test_converse_response_and_stream():
    response = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
                    {"text": "Let me check."},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {
            "inputTokens": 11,
            "outputTokens": 7,
            "totalTokens": 23,
            "cacheReadInputTokens": 3,
            "cacheWriteInputTokens": 2,
        },
    }
    result = bedrock.converse_result(response)
    tool_call = {"type": "tool_call", "id": "tooluse_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    assert result.parts == [
        {"type": "reasoning", "content": "hmm"},
        {"type": "text", "content": "Let me check."},
        tool_call,
    ]
    assert (result.finish_reason, usage_of(result)) == ("tool_call", (16, 7, 3, 2))

    stream = bedrock.StreamedResponse(capture=True)
    for event in [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Let me check."}}},
        {
            "contentBlockStart": {
                "contentBlockIndex": 1,
                "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}},
            }
        },
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city"'}}}},
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ': "Paris"}'}}}},
        {"messageStop": {"stopReason": "tool_use"}},
        {"metadata": {"usage": {"inputTokens": 11, "outputTokens": 7, "cacheReadInputTokens": 3}}},
    ]:
        stream.add_converse_event(event)
    streamed = stream.result()
    assert streamed.parts == [{"type": "text", "content": "Let me check."}, tool_call]
    assert (streamed.finish_reason, usage_of(streamed)) == ("tool_call", (14, 7, 3, None))


def test_converse_request_parameters():
    request = bedrock.converse_request_parameters(
        InferenceRequest(provider="aws.bedrock", model="m"),
        {
            "inferenceConfig": {"maxTokens": 50, "temperature": 0.3, "topP": 0.9, "stopSequences": ["END"]},
            "additionalModelRequestFields": {"top_k": 40},
        },
    )
    assert (request.max_tokens, request.temperature, request.top_p, request.top_k, request.stop_sequences) == (
        50,
        0.3,
        0.9,
        40,
        ["END"],
    )
