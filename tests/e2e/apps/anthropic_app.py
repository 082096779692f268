"""An ordinary Anthropic app: every Messages surface the adapter covers, one function each.

Configured only as a real app would be: ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY, the Bedrock
client's ANTHROPIC_BEDROCK_BASE_URL, AWS_REGION and AWS credentials (SigV4-signed requests),
the Vertex client's ANTHROPIC_VERTEX_BASE_URL, CLOUD_ML_REGION, ANTHROPIC_VERTEX_PROJECT_ID
and an access token. Prints only deterministic results, so that its output can be compared
with and without instrumentation.

Usage: python anthropic_app.py all | <function name> ...
"""

from __future__ import annotations

import asyncio
import os
import sys

import anthropic
import pydantic

MODEL = "claude-fake-1"
BEDROCK_MODEL = "anthropic.claude-fake-1-v1:0"
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
TOOL_HISTORY = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    },
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "21C and sunny"}]},
]


def client() -> anthropic.Anthropic:
    return anthropic.Anthropic(max_retries=0)


def create_text():
    message = client().messages.create(
        model=MODEL,
        max_tokens=64,
        system="You are terse.",
        stop_sequences=["END"],
        metadata={"user_id": "user-42"},
        messages=[{"role": "user", "content": "Say hello"}],
    )
    print("create_text:", message.content[0].text, message.stop_reason, message.usage.input_tokens)


def create_tool_call():
    message = client().messages.create(
        model=MODEL, max_tokens=64, tools=TOOLS, messages=[{"role": "user", "content": "Weather in Paris?"}]
    )
    block = message.content[-1]
    print("create_tool_call:", block.type, block.name, block.input, message.stop_reason)


def create_tool_result():
    message = client().messages.create(model=MODEL, max_tokens=64, tools=TOOLS, messages=TOOL_HISTORY)
    print("create_tool_result:", message.content[0].text)


def create_thinking():
    message = client().messages.create(
        model=MODEL,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Say hello"}],
    )
    print("create_thinking:", [block.type for block in message.content])


def create_stream():
    stream = client().messages.create(
        model=MODEL, max_tokens=64, stream=True, messages=[{"role": "user", "content": "Say hello"}]
    )
    text = [
        event.delta.text for event in stream if event.type == "content_block_delta" and event.delta.type == "text_delta"
    ]
    print("create_stream:", "".join(text), stream.__class__.__name__)


def stream_text():
    with client().messages.stream(
        model=MODEL, max_tokens=64, system="You are terse.", messages=[{"role": "user", "content": "Say hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    print("stream_text:", text, final.usage.output_tokens, stream.__class__.__name__)


def stream_tool_until_done():
    with client().messages.stream(
        model=MODEL, max_tokens=64, tools=TOOLS, messages=[{"role": "user", "content": "Weather in Paris?"}]
    ) as stream:
        stream.until_done()
        final = stream.get_final_message()
    print("stream_tool_until_done:", final.content[-1].name, final.content[-1].input, final.stop_reason)


def stream_thinking():
    stream = client().messages.create(
        model=MODEL,
        max_tokens=2048,
        stream=True,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Say hello"}],
    )
    kinds = [event.delta.type for event in stream if event.type == "content_block_delta"]
    print("stream_thinking:", sorted(set(kinds)))


class Weather(pydantic.BaseModel):
    city: str
    celsius: int


def parse():
    message = client().messages.parse(
        model=MODEL,
        max_tokens=64,
        output_format=Weather,
        messages=[{"role": "user", "content": "Weather in Paris as JSON"}],
    )
    print("parse:", message.parsed_output)


def beta_create():
    message = client().beta.messages.create(
        model=MODEL,
        max_tokens=64,
        betas=["context-management-2025-06-27"],
        messages=[{"role": "user", "content": "Say hello"}],
    )
    print("beta_create:", message.content[0].text)


def raw_response():
    raw = client().messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]
    )
    print("raw_response:", raw.http_response.status_code, raw.parse().content[0].text)


def error_rate_limit():
    try:
        client().messages.create(model="error-429", max_tokens=64, messages=[{"role": "user", "content": "Say hello"}])
    except anthropic.APIStatusError as exc:
        print("error_rate_limit:", type(exc).__name__, exc.status_code)


def stream_error_event():
    stream = client().messages.create(
        model="stream-error-event", max_tokens=64, stream=True, messages=[{"role": "user", "content": "Say hello"}]
    )
    seen = 0
    try:
        for _ in stream:
            seen += 1
    except anthropic.APIStatusError as exc:
        print("stream_error_event:", type(exc).__name__, seen)


async def _async_calls():
    async_client = anthropic.AsyncAnthropic(max_retries=0)
    message = await async_client.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]
    )
    text = await _async_stream_text(async_client)
    return message.content[0].text, text


async def _async_stream_text(async_client):
    async with async_client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]
    ) as stream:
        return "".join([text async for text in stream.text_stream])


def async_calls():
    print("async_calls:", asyncio.run(_async_calls()))


def bedrock():
    bedrock_client = anthropic.AnthropicBedrock(max_retries=0)
    message = bedrock_client.messages.create(
        model=BEDROCK_MODEL, max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]
    )
    with bedrock_client.messages.stream(
        model=BEDROCK_MODEL, max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
    print("bedrock:", message.content[0].text, text)


def vertex():
    vertex_client = anthropic.AnthropicVertex(access_token="vertex-test-token", max_retries=0)
    message = vertex_client.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]
    )
    stream = vertex_client.messages.create(
        model=MODEL, max_tokens=64, stream=True, messages=[{"role": "user", "content": "Say hello"}]
    )
    text = "".join(e.delta.text for e in stream if e.type == "content_block_delta")
    print("vertex:", message.content[0].text, text)


def history_edited():
    # An agent loop trimming its history in place once a call has returned. (A warm-up call
    # first: the export sends the first event at once, the rest a little later.)
    client().messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "warm up"}])
    history = [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]
    system = [{"type": "text", "text": "You are terse."}]
    tools = [dict(TOOLS[0])]
    message = client().messages.create(model=MODEL, max_tokens=64, system=system, tools=tools, messages=history)
    history[0]["content"][0]["text"] = "TRIMMED"
    system[0]["text"] = "EDITED"
    tools[0]["description"] = "EDITED tool"
    history.append({"role": "assistant", "content": "appended later"})
    print("history_edited:", message.stop_reason)


def relayed_stream():
    # An LLM proxy relaying the provider's server-sent events as they come.
    with client().messages.with_streaming_response.create(
        model=MODEL, max_tokens=64, stream=True, messages=[{"role": "user", "content": "Say hello"}]
    ) as raw:
        lines = [line for line in raw.iter_lines() if line.startswith("event:")]
    print("relayed_stream:", lines[-1])


def content_mode_env():
    # What the SDK's own spans were told about content (on stderr: stdout is compared).
    print("content_mode_env:", os.environ.get("ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE"), file=sys.stderr)


ALL = [
    create_text,
    create_tool_call,
    create_tool_result,
    create_thinking,
    create_stream,
    stream_text,
    stream_tool_until_done,
    stream_thinking,
    parse,
    beta_create,
    raw_response,
    error_rate_limit,
    stream_error_event,
    async_calls,
    bedrock,
    vertex,
]

if __name__ == "__main__":
    names = sys.argv[1:] or ["all"]
    for name in names:
        for function in ALL if name == "all" else [globals()[name]]:
            function()
