"""An ordinary OpenAI application, run unmodified by the end-to-end tests.

It reads OPENAI_BASE_URL and OPENAI_API_KEY from the environment like any OpenAI app, runs
the scenario named on the command line, and prints what it saw. The tests run it with and
without ``posthog-instrument`` and compare: the output must be identical.
"""

import asyncio
import gc
import json
import sys

import openai
import pydantic

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def client(**kwargs):
    return openai.OpenAI(max_retries=kwargs.pop("max_retries", 0), **kwargs)


def show(*values):
    print(*values, flush=True)


def chunk_summary(chunks):
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage_chunks = [c for c in chunks if not c.choices]
    return f"text={text!r} chunks={len(chunks)} usage_chunks={len(usage_chunks)} usage_fields={[sorted(c.model_fields_set) for c in chunks[:2]]}"


def chat():
    r = client().chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        temperature=0.3,
        max_tokens=50,
        top_p=0.9,
        seed=7,
        stop=["END"],
        frequency_penalty=0.1,
        presence_penalty=0.2,
        user="user-123",
    )
    show(type(r).__name__, r.choices[0].message.content, r.usage.total_tokens)


def chat_tools():
    r = client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
    call = r.choices[0].message.tool_calls[0]
    show(r.choices[0].finish_reason, call.function.name, call.function.arguments)


def chat_stream():
    s = client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    show(s.__class__.__name__, isinstance(s, openai.Stream), chunk_summary(list(s)))


def chat_stream_app_usage():
    s = client().chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(s)
    show(chunk_summary(chunks), chunks[-1].usage.total_tokens)


def chat_stream_tools():
    s = client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS, stream=True)
    args = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in s
        if c.choices and c.choices[0].delta.tool_calls
    )
    show("arguments", args)


def chat_stream_two_choices():
    s = client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2, stream=True)
    texts = {}
    for c in s:
        for choice in c.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    show("choices", sorted(texts.items()))


def stream_break():
    s = client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "count chunks=20"}], stream=True
    )
    for i, _ in enumerate(s):
        if i == 2:
            break
    del s
    gc.collect()
    show("broke after 3 chunks")


def stream_close():
    s = client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(iter(s))
    s.close()
    show("closed")


def stream_with():
    with client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as s:
        for chunk in s:
            break
    show("left with-block", s.__class__.__name__)


def stream_error():
    s = client().chat.completions.create(model="stream-error", messages=MESSAGES, stream=True)
    try:
        for _ in s:
            pass
    except Exception as exc:
        show("stream failed:", type(exc).__name__)


def stream_helper():
    with client().chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as s:
        events = [e.type for e in s]
        final = s.get_final_completion()
    show(sorted(set(events)), final.choices[0].message.content)


def iterator_messages():
    r = client().chat.completions.create(model="gpt-4o-mini", messages=(m for m in MESSAGES))
    show(r.choices[0].message.content)


class Weather(pydantic.BaseModel):
    city: str


def parse():
    r = client().chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Weather)
    show(type(r).__name__, r.choices[0].message.content)


def responses():
    r = client().responses.create(
        model="gpt-4o-mini", input="Say hello", instructions="Be terse.", max_output_tokens=40
    )
    show(type(r).__name__, r.output_text)


def responses_stream():
    events = list(client().responses.create(model="gpt-4o-mini", input="Say hello", stream=True))
    show([e.type for e in events][-1], len(events))


def responses_helper():
    with client().responses.stream(model="gpt-4o-mini", input="Say hello") as s:
        for _ in s:
            pass
        final = s.get_final_response()
    show(final.output_text)


def responses_tools():
    r = client().responses.create(
        model="gpt-4o-mini",
        input="Weather in Paris?",
        tools=[{"type": "function", "name": "get_weather", "parameters": TOOLS[0]["function"]["parameters"]}],
    )
    show([item.type for item in r.output])


def embeddings():
    r = client().embeddings.create(model="text-embedding-3-small", input=["first text", "second text"])
    show(len(r.data), len(r.data[0].embedding))


def raw_response():
    raw = client().chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = raw.parse()
    show(raw.__class__.__name__, raw.http_response.status_code, completion.choices[0].message.content)


def raw_stream():
    raw = client().chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    show(chunk_summary(list(raw.parse())))


def streaming_response():
    with client().chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as raw:
        completion = raw.parse()
    show(completion.choices[0].message.content)


def _trim_history(history, tools, stop):
    # What agent loops do to save context once a call has returned: edit the history in place.
    history[0]["content"] = "EDITED system"
    history[1]["content"][0]["text"] = "TRIMMED"
    history.append({"role": "assistant", "content": "appended later"})
    tools[0]["function"]["description"] = "EDITED tool"
    stop.append("LATER")


def _history():
    # A first call to warm up: the export sends the first event at once, the rest after a while.
    client().embeddings.create(model="text-embedding-3-small", input="warm up")
    return (
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "Say hello"}]},
        ],
        json.loads(json.dumps(TOOLS)),
        ["END"],
    )


def history_edited():
    history, tools, stop = _history()
    r = client().chat.completions.create(model="gpt-4o-mini", messages=history, tools=tools, stop=stop)
    _trim_history(history, tools, stop)
    s = client().chat.completions.create(model="gpt-4o-mini", messages=history[:2], stream=True)
    first = next(iter(s))
    history[1]["content"][0]["text"] = "EDITED mid-stream"
    rest = list(s)
    show(r.choices[0].finish_reason, len(rest) + 1, first.choices[0].delta.role)


async def _history_edited_async():
    history, tools, stop = _history()
    r = await openai.AsyncOpenAI(max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=history, tools=tools, stop=stop
    )
    _trim_history(history, tools, stop)
    show(r.choices[0].finish_reason)


def history_edited_async():
    asyncio.run(_history_edited_async())


def responses_input_edited():
    items = [{"role": "user", "content": [{"type": "input_text", "text": "Say hello"}]}]
    client().embeddings.create(model="text-embedding-3-small", input="warm up")
    r = client().responses.create(model="gpt-4o-mini", input=items, instructions="You are terse.")
    items[0]["content"][0]["text"] = "TRIMMED"
    show(r.output_text)


def relayed_stream_bytes():
    # An LLM proxy: relays the provider's SSE bytes untouched, having asked for usage itself.
    with client().chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as raw:
        body = b"".join(raw.iter_bytes())
    show(raw.http_response.status_code, body.count(b"data:"))


def relayed_stream_lines():
    with client().chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as raw:
        lines = [line for line in raw.iter_lines() if line]
    show(len(lines), lines[-1])


def relayed_stream_text():
    with client().chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as raw:
        text = "".join(raw.iter_text())
    show(text.count("data:"))


def relayed_responses_stream():
    with client().responses.with_streaming_response.create(model="gpt-4o-mini", input="hi", stream=True) as raw:
        lines = [line for line in raw.iter_lines() if line.startswith("event:")]
    show(lines[-1])


def relayed_body():
    with client().chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as raw:
        body = raw.read()
    show(json.loads(body)["choices"][0]["message"]["content"])


async def _relayed_stream_async():
    c = openai.AsyncOpenAI(max_retries=0)
    async with c.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as raw:
        lines = [line async for line in raw.iter_lines() if line]
    async with c.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as raw:
        body = b"".join([chunk async for chunk in raw.iter_bytes()])
    show(len(lines), body.count(b"data:"))


def relayed_stream_async():
    asyncio.run(_relayed_stream_async())


def error_429():
    try:
        client().chat.completions.create(model="error-429", messages=MESSAGES)
    except openai.RateLimitError as exc:
        show("RateLimitError", exc.status_code)


def error_500_retried():
    try:
        client(max_retries=2).chat.completions.create(model="error-500", messages=MESSAGES)
    except openai.InternalServerError as exc:
        show("InternalServerError", exc.status_code)


def azure():
    import os

    c = openai.AzureOpenAI(
        azure_endpoint=os.environ["AZURE_ENDPOINT"], api_version="2024-10-21", api_key="az-key", max_retries=0
    )
    r = c.chat.completions.create(model="my-deployment", messages=MESSAGES)
    s = c.chat.completions.create(model="my-deployment", messages=MESSAGES, stream=True)
    show(r.choices[0].message.content, chunk_summary(list(s)))


async def _async_all():
    c = openai.AsyncOpenAI(max_retries=0)
    r = await c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    show("async", r.choices[0].message.content)
    s = await c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    show("async stream", isinstance(s, openai.AsyncStream), chunk_summary([c async for c in s]))
    async with await c.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "chunks=10"}], stream=True
    ) as s:
        async for _ in s:
            break
    show("async with left")
    r = await c.responses.create(model="gpt-4o-mini", input="hi")
    e = await c.embeddings.create(model="text-embedding-3-small", input="hi")
    show("async responses+embeddings", r.output_text, len(e.data))


def async_all():
    asyncio.run(_async_all())


def no_llm():
    show(json.dumps({"sum": sum(range(10))}))


if __name__ == "__main__":
    globals()[sys.argv[1]]()
