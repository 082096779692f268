"""An app whose LLM traffic is full of text that must not leave the process in privacy mode.

Every piece of content carries a unique marker (PROMPT-..., SYSTEM-..., COMPLETION-... comes
from the OpenAI stand-in) so a test can scan the raw bytes sent to PostHog for it. The
scenarios named on the command line run in order (all by default):

* ``openai``: chat with a system prompt, tool history and an inline image; a stream; a
  Responses call offering an MCP tool whose definition holds credentials; an embedding; a
  rate-limited call; a call inside ``context(privacy_mode=True)``; a very long prompt.
* ``anthropic``: Anthropic Messages (system prompt, tool history, a stream, a rate-limited call).
* ``native``: spans a library that traces itself would emit (OpenTelemetry GenAI attributes
  set directly, older indexed attributes, an exception quoting an API key), one of them inside
  ``context(privacy_mode=True)``; and one with a very long error message.
* ``credential_attributes``: a native span that records credentials in ordinary attributes.
"""

import base64
import json
import sys

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

import posthog_autoinstrument as pai

MODEL = "gpt-4o-mini"
IMAGE_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"MEDIA-PAYLOAD-BYTES-" * 400).decode()
PLANTED_KEY = "sk-planted-SECRET-123"
MCP_TOOL = {
    "type": "mcp",
    "server_label": "crm",
    "server_url": "https://mcp.example.com/sse",
    "headers": {"Authorization": "Bearer planted-secret"},
    "authorization": "planted-oauth-token",
    "require_approval": "never",
}
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def show(*values):
    print(*values, flush=True)


def openai_calls():
    import openai

    client = openai.OpenAI(max_retries=0)
    messages = [
        {"role": "system", "content": "SYSTEM-FROBOZZ-17 be terse"},
        {"role": "user", "content": "What is the weather? USER-EARLIER-18"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps({"city": "TOOLARG-GRUE-66"})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "TOOLRESULT-ZORK-55 sunny"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "PROMPT-XYZZY-42 describe this"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE_B64}"}},
            ],
        },
    ]
    r = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        user="privacy-user",
        max_tokens=20,
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": WEATHER_TOOL["parameters"],
                },
            }
        ],
    )
    show("chat", r.choices[0].finish_reason, r.usage.total_tokens)

    stream = client.chat.completions.create(
        model=MODEL, stream=True, messages=[{"role": "user", "content": "STREAM-PROMPT-43"}]
    )
    show("stream", "".join(c.choices[0].delta.content or "" for c in stream if c.choices))

    r = client.responses.create(model=MODEL, input="RESPONSES-PROMPT-44 use the crm", tools=[MCP_TOOL])
    show("responses", r.output_text)

    r = client.embeddings.create(model="text-embedding-3-small", input="EMBED-INPUT-39")
    show("embedding", len(r.data[0].embedding))

    try:
        client.chat.completions.create(model="error-429", messages=[{"role": "user", "content": "RATE-PROMPT-45"}])
    except openai.RateLimitError as exc:
        show("rate limited", exc.status_code)

    with pai.context(privacy_mode=True):
        r = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "PERCALL-PRIVATE-51 reply=PERCALL-REPLY-52"}]
        )
    show("per-call private", r.choices[0].message.content)

    big = "BIG-PROMPT-START " + "lorem ipsum dolor sit amet " * 5000
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "BIG-SYSTEM " + "x" * 30000}, {"role": "user", "content": big}],
    )
    show("big", r.usage.total_tokens)


def anthropic_calls():
    """Anthropic's SDK, which traces itself from 1.14 (its own span is the event)."""
    import anthropic

    client = anthropic.Anthropic(max_retries=0)
    tools = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    message = client.messages.create(
        model="claude-fake-1",
        max_tokens=64,
        system="ANTH-SYSTEM-71",
        tools=tools,
        metadata={"user_id": "anthropic-user"},
        messages=[
            {"role": "user", "content": "ANTH-EARLIER-72 weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "ANTH-TOOLARG-73"}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "ANTH-TOOLRESULT-74"}],
            },
        ],
    )
    show("anthropic", message.content[0].text)
    with client.messages.stream(
        model="claude-fake-1", max_tokens=64, messages=[{"role": "user", "content": "ANTH-STREAM-76"}]
    ) as stream:
        show("anthropic stream", "".join(stream.text_stream))
    try:
        client.messages.create(model="error-429", max_tokens=64, messages=[{"role": "user", "content": "ANTH-RATE-77"}])
    except anthropic.RateLimitError as exc:
        show("anthropic rate limited", exc.status_code)


def _native_span(tracer, name, attributes, error=None):
    with tracer.start_as_current_span(
        name, kind=trace.SpanKind.CLIENT, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))


def _native_attributes(marker):
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "acme",
        "gen_ai.request.model": "acme-large",
        "gen_ai.response.model": "acme-large-001",
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 6,
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": f"{marker}-PROMPT"}]}]
        ),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": f"{marker}-COMPLETION"}]}]
        ),
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": f"{marker}-SYSTEM"}]),
        "gen_ai.tool.call.arguments": json.dumps({"q": f"{marker}-TOOLARG"}),
        "gen_ai.tool.call.result": f"{marker}-TOOLRESULT",
        "gen_ai.tool.definitions": json.dumps([{**MCP_TOOL, "name": "crm"}]),
        "gen_ai.prompt.0.content": f"{marker}-LEGACY-PROMPT",
        "gen_ai.completion.0.content": f"{marker}-LEGACY-COMPLETION",
    }


def native():
    tracer = trace.get_tracer("acme.native_llm", "1.0")
    _native_span(
        tracer,
        "chat acme-large",
        _native_attributes("NATIVE"),
        RuntimeError(f"NATIVE-ERROR-38 Incorrect API key provided: {PLANTED_KEY}"),
    )
    with pai.context(privacy_mode=True):
        _native_span(
            tracer, "chat acme-large", _native_attributes("PERCALL-NATIVE-53"), RuntimeError("PERCALL-NATIVE-53-ERROR")
        )
    huge = {**_native_attributes("HUGE"), "gen_ai.request.model": "acme-huge-error"}
    _native_span(tracer, "chat acme-huge-error", huge, RuntimeError("HUGE-ERROR " + "y" * 60000))
    show("native done")


def credential_attributes():
    tracer = trace.get_tracer("acme.native_llm", "1.0")
    _native_span(
        tracer,
        "chat acme-large",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "acme",
            "gen_ai.request.model": "acme-large",
            # What some instrumentations record: the call's keyword arguments, and HTTP request headers.
            "llm.invocation_parameters": json.dumps({"model": "acme-large", "api_key": PLANTED_KEY}),
            "http.request.header.authorization": [f"Bearer {PLANTED_KEY}"],
        },
    )
    show("credential_attributes done")


SCENARIOS = {
    "openai": openai_calls,
    "anthropic": anthropic_calls,
    "native": native,
    "credential_attributes": credential_attributes,
}

if __name__ == "__main__":
    for name in sys.argv[1:] or ["openai", "native"]:
        SCENARIOS[name]()
    show("done")
