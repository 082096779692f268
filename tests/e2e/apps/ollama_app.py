"""An ordinary Ollama application, run unmodified by the end-to-end tests.

It reaches the server through OLLAMA_HOST like any Ollama app, runs the scenarios named on the
command line in order, and prints what it saw. It uses the module-level functions (both
``ollama.chat`` and a name imported with ``from ollama import ...``) as well as the clients.
"""

import asyncio
import gc
import sys

import ollama
from ollama import chat as imported_chat
from ollama import generate as imported_generate

MODEL = "llama3.2"
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]


def get_weather(city: str) -> str:
    """Weather for a city.

    Args:
      city: The city to look up

    Returns:
      str: The weather
    """
    return "sunny"


def show(*values):
    print(*values, flush=True)


def module_chat():
    r = ollama.chat(
        model=MODEL,
        messages=MESSAGES,
        options={"temperature": 0.3, "num_predict": 50, "top_p": 0.9, "top_k": 40, "seed": 7, "stop": ["END"]},
    )
    show("module_chat", type(r).__name__, r.message.content, r.prompt_eval_count, r.eval_count, r.done_reason)


def imported_functions():
    r = imported_chat("imported-model", [{"role": "user", "content": "Say hello"}])
    g = imported_generate("imported-generate", "Say hello", system="Be brief.", format="json")
    show("imported", r["message"]["content"], g.response)


def client_tools():
    c = ollama.Client()
    r = c.chat(model="tools-model", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=[get_weather])
    call = r.message.tool_calls[0]
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        r.message,
        {"role": "tool", "content": get_weather(**call.function.arguments), "tool_name": call.function.name},
    ]
    r2 = c.chat(model="tools-followup", messages=history)
    show("client_tools", call.function.name, dict(call.function.arguments), r2.message.content)


def chat_stream():
    parts = list(ollama.chat(model="stream-model", messages=MESSAGES, stream=True, think=True))
    text = "".join(p.message.content for p in parts)
    thinking = "".join(p.message.thinking or "" for p in parts)
    show("chat_stream", len(parts), repr(text), repr(thinking), parts[-1].eval_count)


def generate_stream():
    parts = list(
        ollama.Client().generate(
            model="generate-stream", prompt="Say hello", stream=True, options=ollama.Options(num_predict=4)
        )
    )
    show("generate_stream", repr("".join(p.response for p in parts)), parts[-1].done_reason)


def images():
    r = ollama.chat(
        model="llava", messages=[{"role": "user", "content": "What is this?", "images": [b"\x89PNG fake image"]}]
    )
    show("images", r.message.content)


def embed():
    e = ollama.embed(model="nomic-embed-text", input=["first text", "second text"])
    old = ollama.embeddings(model="legacy-embed", prompt="first text")
    show("embed", len(e.embeddings), len(e.embeddings[0]), e.prompt_eval_count, len(old.embedding))


def stream_break():
    s = ollama.chat(model="break-model", messages=MESSAGES, stream=True)
    for n, _ in enumerate(s):
        if n == 1:
            break
    del s
    gc.collect()
    show("stream_break")


def stream_error():
    try:
        for _ in ollama.chat(model="stream-error", messages=MESSAGES, stream=True):
            pass
    except ollama.ResponseError as exc:
        show("stream_error", type(exc).__name__, exc.error)


def error_404():
    try:
        ollama.chat(model="missing-model", messages=MESSAGES)
    except ollama.ResponseError as exc:
        show("error_404", exc.status_code, exc.error)


async def _async_all():
    c = ollama.AsyncClient()
    r = await c.chat(model="async-model", messages=MESSAGES)
    s = await c.chat(model="async-stream", messages=MESSAGES, stream=True)
    text = "".join([p.message.content async for p in s])
    g = await c.generate(model="async-generate", prompt="Say hello")
    e = await c.embed(model="async-embed", input="first text")
    show("async", r.message.content, repr(text), g.response, len(e.embeddings))


def async_all():
    asyncio.run(_async_all())


if __name__ == "__main__":
    for name in sys.argv[1:]:
        globals()[name]()
