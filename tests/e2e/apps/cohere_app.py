"""An ordinary Cohere application, run unmodified by the end-to-end tests.

It is configured like any Cohere app, through the environment the SDK reads itself
(CO_API_KEY, CO_API_URL). Each command-line argument names a scenario; they run in order and
print what the app saw.
"""

import asyncio
import gc
import sys

import cohere

MODEL = "command-a-03-2025"
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


def show(*values):
    print(*values, flush=True)


def user(text):
    return [{"role": "user", "content": text}]


def chat():
    r = cohere.ClientV2().chat(
        model=MODEL,
        messages=MESSAGES,
        temperature=0.3,
        p=0.9,
        k=40,
        max_tokens=50,
        seed=7,
        stop_sequences=["END"],
        frequency_penalty=0.1,
        presence_penalty=0.2,
        response_format={"type": "json_object"},
    )
    show("chat", type(r).__name__, r.message.content[0].text, r.finish_reason, r.usage.billed_units.input_tokens)


def tools():
    co = cohere.ClientV2()
    first = co.chat(model=MODEL, messages=user("Weather in Paris?"), tools=TOOLS)
    call = first.message.tool_calls[0]
    show("tools call", first.finish_reason, first.message.tool_plan, call.function.name, call.function.arguments)
    second = co.chat(
        model=MODEL,
        tools=TOOLS,
        messages=user("Weather in Paris?")
        + [
            {"role": "assistant", "tool_plan": first.message.tool_plan, "tool_calls": [call]},
            {
                "role": "tool",
                "tool_call_id": call.id,
                "content": [{"type": "document", "document": {"data": {"temp": 21}}}],
            },
        ],
    )
    show("tools answer", second.message.content[0].text)


def reasoning():
    r = cohere.ClientV2().chat(model="command-a-reasoning-08-2025", messages=user("Think, then greet"))
    show("reasoning", [c.type for c in r.message.content])


def stream():
    events = list(cohere.ClientV2().chat_stream(model="command-a-reasoning-08-2025", messages=user("Stream please")))
    text = "".join(e.delta.message.content.text or "" for e in events if e.type == "content-delta")
    show("stream", [e.type for e in events][-1], len(events), text)


def stream_tools():
    events = list(cohere.ClientV2().chat_stream(model=MODEL, messages=user("Stream a tool call"), tools=TOOLS))
    show("stream_tools", [e.type for e in events if e.type.startswith("tool")])


def stream_break():
    s = cohere.ClientV2().chat_stream(model=MODEL, messages=user("Break early chunks=6"))
    for i, _ in enumerate(s):
        if i == 3:
            break
    del s
    gc.collect()
    show("stream_break done")


def stream_close():
    s = cohere.ClientV2().chat_stream(model=MODEL, messages=user("Close early chunks=6"))
    next(s)
    s.close()
    show("stream_close", s.__class__.__name__)


def stream_error():
    try:
        for _ in cohere.ClientV2().chat_stream(model="stream-error", messages=user("Fail midway")):
            pass
    except Exception as exc:
        show("stream_error", type(exc).__name__)


def error_429():
    try:
        cohere.ClientV2(max_retries=0).chat(model="error-429", messages=user("Rate limit me"))
    except cohere.errors.TooManyRequestsError as exc:
        show("error_429", type(exc).__name__, exc.status_code)


def embed():
    r = cohere.ClientV2().embed(
        model="embed-v4.0", texts=["first text", "second text"], input_type="search_document", embedding_types=["float"]
    )
    show("embed", len(r.embeddings.float_), len(r.embeddings.float_[0]), r.meta.billed_units.input_tokens)


RERANK_DOCUMENTS = [
    "Berlin is the capital of Germany.",
    "Paris is the capital of France.",
    "Madrid is the capital of Spain.",
]


def rerank():
    r = cohere.ClientV2().rerank(model="rerank-v3.5", query="capital of France", documents=RERANK_DOCUMENTS, top_n=2)
    show("rerank", [(x.index, x.relevance_score) for x in r.results], r.meta.billed_units.search_units)
    v1 = cohere.Client().rerank(
        model="rerank-english-v3.0", query="Spain", documents=[{"text": t} for t in RERANK_DOCUMENTS]
    )
    show("rerank v1", [x.index for x in v1.results])


def v2_property():
    r = cohere.Client().v2.chat(model=MODEL, messages=user("Through Client().v2"))
    show("v2_property", r.message.content[0].text)


async def _async_all():
    co = cohere.AsyncClientV2()
    r = await co.chat(model=MODEL, messages=user("Async hello"))
    show("async chat", r.message.content[0].text)
    text = "".join(
        [
            e.delta.message.content.text or ""
            async for e in co.chat_stream(model=MODEL, messages=user("Async stream"))
            if e.type == "content-delta"
        ]
    )
    show("async stream", text)
    s = co.chat_stream(model=MODEL, messages=user("Async break chunks=6"))
    async for e in s:
        if e.type == "content-delta":
            break
    await s.aclose()
    show("async break done")
    s = co.chat_stream(model=MODEL, messages=user("Async abandon chunks=6"))
    async for e in s:
        if e.type == "content-delta":
            break
    del s
    gc.collect()
    show("async abandon done")
    e = await co.embed(model="embed-v4.0", texts=["async embed"], input_type="search_query", embedding_types=["float"])
    show("async embed", len(e.embeddings.float_))
    r = await co.rerank(model="rerank-v3.5", query="async Germany", documents=RERANK_DOCUMENTS, top_n=1)
    show("async rerank", [x.index for x in r.results])


def async_all():
    asyncio.run(_async_all())


if __name__ == "__main__":
    for scenario in sys.argv[1:]:
        globals()[scenario]()
