"""An ordinary Groq or Together AI application (the first argument says which), run unmodified by
the end-to-end tests. Both SDKs have OpenAI's chat API under their own names.

It reads <SDK>_BASE_URL and <SDK>_API_KEY from the environment like any app of that SDK, runs the
scenarios named on the command line in order, and prints what it saw.
"""

import asyncio
import gc
import importlib
import sys

LIBRARY = sys.argv[1]  # "groq" | "together"
sdk = importlib.import_module(LIBRARY)

MODEL, EMBEDDING_MODEL = {
    "groq": ("llama-3.3-70b-versatile", "nomic-embed-text-v1_5"),
    "together": ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "BAAI/bge-base-en-v1.5"),
}[LIBRARY]
# What each API offers beyond the options both take.
CHAT_OPTIONS = {
    "groq": dict(max_completion_tokens=50),
    "together": dict(max_tokens=50, top_k=40, repetition_penalty=1.1),
}[LIBRARY]
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]
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


def client():
    return (sdk.Groq if LIBRARY == "groq" else sdk.Together)(max_retries=0)


def async_client():
    return (sdk.AsyncGroq if LIBRARY == "groq" else sdk.AsyncTogether)(max_retries=0)


def show(*values):
    print(*values, flush=True)


def chat():
    r = client().chat.completions.create(
        model=MODEL, messages=MESSAGES, temperature=0.3, top_p=0.9, seed=7, stop=["END"], **CHAT_OPTIONS
    )
    # Groq's own x_groq field; Together's raw finish reason ("eos").
    show(
        "chat",
        type(r).__name__,
        r.choices[0].message.content,
        r.usage.total_tokens,
        r.x_groq.id if LIBRARY == "groq" else r.choices[0].finish_reason,
    )


def chat_tools():
    r = client().chat.completions.create(model=MODEL, messages=MESSAGES, tools=TOOLS)
    call = r.choices[0].message.tool_calls[0]
    show("chat_tools", r.choices[0].finish_reason, call.function.name, call.function.arguments)


def chat_stream():
    s = client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    chunks = list(s)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # Groq sends the stream's usage in x_groq.usage on the last chunk.
    last = chunks[-1].x_groq if LIBRARY == "groq" else chunks[-1]
    show(
        "chat_stream",
        s.__class__.__name__,
        isinstance(s, sdk.Stream),
        repr(text),
        len(chunks),
        last.usage.completion_tokens,
    )


def stream_tools():
    with client().chat.completions.create(model=MODEL, messages=MESSAGES, tools=TOOLS, stream=True) as s:
        calls = [c.choices[0].delta.tool_calls[0] for c in s if c.choices and c.choices[0].delta.tool_calls]
    show("stream_tools", calls[0].function.name, calls[0].function.arguments)


def reasoning():  # Groq only
    r = client().chat.completions.create(
        model="openai/gpt-oss-20b", messages=MESSAGES, reasoning_format="parsed", reasoning_effort="low"
    )
    show("reasoning", r.choices[0].message.reasoning, r.choices[0].message.content)
    s = client().chat.completions.create(
        model="openai/gpt-oss-120b", messages=MESSAGES, reasoning_format="parsed", stream=True
    )
    show("reasoning_stream", "".join(c.choices[0].delta.reasoning or "" for c in s))


def raw_response():
    raw = client().chat.completions.with_raw_response.create(model="raw-model", messages=MESSAGES)
    show("raw", raw.headers.get("content-type"), raw.parse().choices[0].message.content)


def relayed_stream():
    # An LLM proxy relaying the server-sent events as they come.
    with client().chat.completions.with_streaming_response.create(
        model="relay-model", messages=MESSAGES, stream=True
    ) as raw:
        lines = [line for line in raw.iter_lines() if line]
    show("relayed_stream", len(lines), lines[-1])


def iterator_messages():
    r = client().chat.completions.create(model="iter-model", messages=(m for m in MESSAGES))
    show("iterator", r.choices[0].message.content)


def stream_break():
    s = client().chat.completions.create(model="break-model", messages=MESSAGES, stream=True)
    for n, _ in enumerate(s):
        if n == 2:
            break
    del s
    gc.collect()
    show("stream_break")


def stream_error():
    try:
        for _ in client().chat.completions.create(model="stream-error", messages=MESSAGES, stream=True):
            pass
    except Exception as exc:
        show("stream_error", type(exc).__name__)


def error_429():
    try:
        client().chat.completions.create(model="error-429", messages=MESSAGES)
    except sdk.RateLimitError as exc:
        show("error_429", type(exc).__name__, exc.status_code)


def embeddings():
    r = client().embeddings.create(model=EMBEDDING_MODEL, input=["first text", "second text"])
    show("embeddings", len(r.data), len(r.data[0].embedding))


async def _async_all():
    c = async_client()
    r = await c.chat.completions.create(model="async-model", messages=MESSAGES)
    s = await c.chat.completions.create(model="async-stream-model", messages=MESSAGES, stream=True)
    text = "".join([ch.choices[0].delta.content or "" async for ch in s if ch.choices])
    show("async", r.choices[0].message.content, repr(text))


def async_all():
    asyncio.run(_async_all())


if __name__ == "__main__":
    for name in sys.argv[2:]:
        globals()[name]()
