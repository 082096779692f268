"""An ordinary Mistral AI application, run unmodified by the end-to-end tests.

It reads MISTRAL_API_KEY (as the SDK does) and the server URL from MISTRAL_SERVER_URL, which it
passes to the client as an app pinned to an endpoint would. Each command-line argument names a
scenario; they run in order and print what the app saw.
"""

import asyncio
import gc
import os
import sys

import pydantic
from mistralai.client import Mistral
from mistralai.client.utils.eventstreaming import EventStream

MODEL = "mistral-small-latest"
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
_clients = []


def client():
    _clients.append(Mistral(api_key=os.environ["MISTRAL_API_KEY"], server_url=os.environ["MISTRAL_SERVER_URL"]))
    return _clients[-1]


def show(*values):
    print(*values, flush=True)


def user(text):
    return [{"role": "user", "content": text}]


def chat():
    r = client().chat.complete(
        model=MODEL,
        messages=MESSAGES,
        temperature=0.3,
        top_p=0.9,
        max_tokens=50,
        random_seed=7,
        stop=["END"],
        presence_penalty=0.2,
        frequency_penalty=0.1,
        response_format={"type": "text"},
    )
    show("chat", type(r).__name__, r.choices[0].message.content, r.usage.total_tokens, r.choices[0].finish_reason)


def tools():
    c = client()
    first = c.chat.complete(model=MODEL, messages=user("Weather in Paris?"), tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    show("tools call", first.choices[0].finish_reason, call.function.name, call.function.arguments)
    second = c.chat.complete(
        model=MODEL,
        tools=TOOLS,
        messages=user("Weather in Paris?")
        + [
            {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]},
            {"role": "tool", "name": "get_weather", "tool_call_id": call.id, "content": '{"temp": 21}'},
        ],
    )
    show("tools answer", second.choices[0].message.content)


def magistral():
    r = client().chat.complete(model="magistral-medium-latest", messages=user("Think, then greet"))
    show("magistral", [chunk.type for chunk in r.choices[0].message.content])


class City(pydantic.BaseModel):
    city: str


def parse():
    r = client().chat.parse(response_format=City, model=MODEL, messages=user('Parse reply={"city":"Paris"}'))
    show("parse", r.choices[0].message.parsed)


def stream():
    events = list(client().chat.stream(model="magistral-small-latest", messages=user("Stream please")))
    text = "".join(e.data.choices[0].delta.content for e in events if isinstance(e.data.choices[0].delta.content, str))
    show("stream", len(events), text, events[-1].data.usage.total_tokens)


def stream_tools():
    events = list(client().chat.stream(model=MODEL, messages=user("Stream a tool call"), tools=TOOLS))
    calls = [c for e in events for c in (e.data.choices[0].delta.tool_calls or [])]
    show("stream_tools", [c.function.name for c in calls], events[-1].data.choices[0].finish_reason)


def stream_break():
    s = client().chat.stream(model=MODEL, messages=user("Break early chunks=6"))
    for i, _ in enumerate(s):
        if i == 2:
            break
    del s
    gc.collect()
    show("stream_break done")


def stream_close():
    s = client().chat.stream(model=MODEL, messages=user("Close early chunks=6"))
    next(s)
    s.close()
    show("stream_close", s.__class__.__name__, isinstance(s, EventStream))


def stream_with():
    with client().chat.stream(model=MODEL, messages=user("With block chunks=6")) as s:
        for i, _ in enumerate(s):
            if i == 1:
                break
    show("stream_with", s.__class__.__name__)


def stream_error():
    try:
        for _ in client().chat.stream(model="stream-error", messages=user("Fail midway")):
            pass
    except Exception as exc:
        show("stream_error", type(exc).__name__)


def error_429():
    try:
        client().chat.complete(model="error-429", messages=user("Rate limit me"))
    except Exception as exc:
        show("error_429", type(exc).__name__, exc.status_code)


def embed():
    r = client().embeddings.create(model="mistral-embed", inputs=["first text", "second text"])
    show("embed", len(r.data), len(r.data[0].embedding), r.usage.prompt_tokens)


async def _async_all():
    c = client()
    r = await c.chat.complete_async(model=MODEL, messages=user("Async hello"))
    show("async chat", r.choices[0].message.content)
    s = await c.chat.stream_async(model=MODEL, messages=user("Async stream"))
    show("async stream", "".join([e.data.choices[0].delta.content async for e in s]))
    async with await c.chat.stream_async(model=MODEL, messages=user("Async with chunks=6")) as s:
        async for _ in s:
            break
    show("async with done")
    e = await c.embeddings.create_async(model="mistral-embed", inputs="async embed")
    show("async embed", len(e.data))


def async_all():
    asyncio.run(_async_all())


def clouds():
    from mistralai.azure.client import MistralAzure
    from mistralai.gcp.client import MistralGCP

    url = os.environ["MISTRAL_SERVER_URL"]
    azure = MistralAzure(api_key="azure-key", server_url=url)
    show(
        "azure",
        azure.chat.complete(model="mistral-small-2503", messages=user("Azure hello")).choices[0].message.content,
    )
    gcp = MistralGCP(access_token="gcp-token", project_id="my-project", server_url=url)
    show("gcp", gcp.chat.complete(model="mistral-small-2503", messages=user("Vertex hello")).choices[0].message.content)
    _clients.extend([azure, gcp])


if __name__ == "__main__":
    for scenario in sys.argv[1:]:
        globals()[scenario]()
