"""An ordinary xAI (``xai-sdk``, gRPC) application, run unmodified by the end-to-end tests.

It reads XAI_API_KEY (as the SDK does) and the API host from XAI_API_HOST, which it passes to
the client with an insecure channel, as an app pointed at a local gateway would. Each
command-line argument names a scenario; they run in order and print what the app saw.
"""

import asyncio
import gc
import os
import sys

import pydantic
from xai_sdk import AsyncClient, Client
from xai_sdk.chat import image, system, tool, tool_result, user

MODEL = "grok-4-fast"
WEATHER = tool(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PIXEL = "data:image/png;base64,iVBORw0KGgo="


def client(kind=Client):
    return kind(api_key=os.environ["XAI_API_KEY"], api_host=os.environ["XAI_API_HOST"], use_insecure_channel=True)


def show(*values):
    print(*values, flush=True)


def chat():
    c = client().chat.create(
        model=MODEL,
        messages=[system("You are terse."), user("Say hello")],
        temperature=0.3,
        top_p=0.9,
        max_tokens=50,
        seed=7,
        stop=["END"],
        frequency_penalty=0.1,
        presence_penalty=0.2,
    )
    r = c.sample()
    show("chat", type(r).__name__, r.content, r.usage.total_tokens, r.finish_reason)


def tools():
    c = client().chat.create(model=MODEL, messages=[user("Weather in Paris?")], tools=[WEATHER])
    first = c.sample()
    call = first.tool_calls[0]
    show("tools call", first.finish_reason, call.function.name, call.function.arguments)
    c.append(first)
    c.append(tool_result('{"temp": 21}', tool_call_id=call.id))
    second = c.sample()
    show("tools answer", second.content)


def reasoning():
    r = client().chat.create(model="grok-3-mini-reasoning", messages=[user("Think, then greet")]).sample()
    show("reasoning", r.reasoning_content, r.content, r.usage.reasoning_tokens)


def picture():
    r = client().chat.create(model=MODEL, messages=[user("Describe this", image(PIXEL))]).sample()
    show("picture", r.content)


class City(pydantic.BaseModel):
    city: str


def parse():
    response, city = client().chat.create(model=MODEL, messages=[user("Parse the city")]).parse(City)
    show("parse", type(response).__name__, city)


def stream():
    pieces = [
        chunk.content for _, chunk in client().chat.create(model=MODEL, messages=[user("Stream please")]).stream()
    ]
    show("stream", len(pieces), "".join(pieces))


def stream_break():
    s = client().chat.create(model=MODEL, messages=[user("Break early chunks=6")]).stream()
    for i, _ in enumerate(s):
        if i == 1:
            break
    del s
    gc.collect()
    show("stream_break done")


def stream_error():
    try:
        for _ in client().chat.create(model="stream-error", messages=[user("Fail midway")]).stream():
            pass
    except Exception as exc:
        show("stream_error", type(exc).__name__, exc.code().name)


def error_429():
    try:
        client().chat.create(model="error-RESOURCE_EXHAUSTED", messages=[user("Rate limit me")]).sample()
    except Exception as exc:
        show("error_429", type(exc).__name__, exc.code().name)


async def _async_all():
    c = client(AsyncClient)
    r = await c.chat.create(model=MODEL, messages=[user("Async hello")]).sample()
    show("async sample", r.content)
    pieces = [chunk.content async for _, chunk in c.chat.create(model=MODEL, messages=[user("Async stream")]).stream()]
    show("async stream", "".join(pieces))


def async_all():
    asyncio.run(_async_all())


if __name__ == "__main__":
    for scenario in sys.argv[1:]:
        globals()[scenario]()
