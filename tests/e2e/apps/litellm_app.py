"""An ordinary LiteLLM application, run unmodified by the end-to-end tests.

It is configured only through the environment variables LiteLLM itself reads (OPENAI_BASE_URL,
OPENAI_API_KEY, AZURE_API_BASE, AZURE_API_KEY, AZURE_API_VERSION, OLLAMA_API_BASE,
ANTHROPIC_API_BASE, ANTHROPIC_API_KEY), runs the
scenario group named on the command line, and prints what it saw. The tests run it with and
without ``posthog-instrument`` and compare: the output must be identical.

Every call's last user message starts with a label ("[chat] ...") so the tests can find its
span among the others; the fake servers ignore it.
"""

import asyncio
import gc
import os
import sys

import litellm
from litellm import completion  # bound by name, as many apps do

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


def messages(label, extra=""):
    return [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": f"[{label}] Say hello {extra}".strip()},
    ]


def show(*values):
    print(*values, flush=True)


def texts(chunks):
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def stream_summary(stream, chunks):
    usage_chunks = [c for c in chunks if not c.choices]
    return (
        f"{stream.__class__.__name__} {isinstance(stream, litellm.CustomStreamWrapper)} "
        f"text={texts(chunks)!r} chunks={len(chunks)} usage_chunks={len(usage_chunks)}"
    )


def failure(call):
    try:
        call()
    except Exception as exc:
        show("failed:", type(exc).__name__, getattr(exc, "status_code", None))


# -- litellm's own HTTP: OpenAI chat (the openai client's low-level post) and Ollama -------------


def openai_chat():
    r = completion(
        model="gpt-4o-mini",
        messages=messages("chat"),
        temperature=0.3,
        max_tokens=50,
        top_p=0.9,
        seed=7,
        stop=["END"],
        frequency_penalty=0.1,
        presence_penalty=0.2,
        user="user-123",
    )
    show(type(r).__name__, r.choices[0].message.content, r.usage.total_tokens, r.model)


def openai_tools():
    r = litellm.completion(model="openai/gpt-4o-mini", messages=messages("tools"), tools=TOOLS)
    call = r.choices[0].message.tool_calls[0]
    show(r.choices[0].finish_reason, call.function.name, call.function.arguments)


def openai_streams():
    s = litellm.completion(
        model="gpt-4o-mini", messages=messages("stream-usage"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(s)
    show(stream_summary(s, chunks), chunks[-1].usage.total_tokens)
    s = litellm.completion(model="gpt-4o-mini", messages=messages("stream-plain"), stream=True)
    show(stream_summary(s, list(s)))
    s = litellm.completion(model="gpt-4o-mini", messages=messages("stream-tools"), tools=TOOLS, stream=True)
    args = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in s
        if c.choices and c.choices[0].delta.tool_calls
    )
    show("streamed arguments", args)


def openai_stream_exits():
    s = litellm.completion(model="gpt-4o-mini", messages=messages("break", "chunks=20"), stream=True)
    for i, _ in enumerate(s):
        if i == 2:
            break
    del s
    gc.collect()
    s = litellm.completion(model="gpt-4o-mini", messages=messages("close", "chunks=20"), stream=True)
    next(iter(s))
    s.close()
    with litellm.completion(model="gpt-4o-mini", messages=messages("with", "chunks=20"), stream=True) as s:
        next(s)
    show("left streams early")
    s = litellm.completion(model="openai/stream-error", messages=messages("stream-error"), stream=True)
    failure(lambda: list(s))


def openai_errors():
    failure(lambda: litellm.completion(model="openai/error-429", messages=messages("429")))


async def _openai_async():
    r = await litellm.acompletion(model="gpt-4o-mini", messages=messages("async"))
    show("async", r.choices[0].message.content)
    s = await litellm.acompletion(
        model="gpt-4o-mini", messages=messages("async-stream"), stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in s]
    show("async", stream_summary(s, chunks))
    e = await litellm.aembedding(model="text-embedding-3-small", input=["first text", "second text"])
    show("async embedding", len(e.data), e.usage.prompt_tokens)


def ollama_calls():
    r = litellm.completion(model="ollama_chat/llama3.2", messages=messages("ollama"), temperature=0.2, max_tokens=30)
    show(r.model, r.choices[0].message.content, r.usage.prompt_tokens, r.usage.completion_tokens)
    r = litellm.completion(
        model="ollama_chat/llama3.2",
        messages=messages("ollama-tools"),
        tools=TOOLS,
        api_base=os.environ["OLLAMA_API_BASE"],
    )
    show(r.choices[0].finish_reason, r.choices[0].message.tool_calls[0].function.arguments)
    s = litellm.completion(model="ollama_chat/llama3.2", messages=messages("ollama-stream"), stream=True)
    show("ollama", stream_summary(s, list(s)))
    e = litellm.embedding(model="ollama/nomic-embed-text", input=["a", "b"])
    show("ollama embedding", e.model, len(e.data), e.usage.prompt_tokens)
    failure(lambda: litellm.completion(model="ollama_chat/error-404", messages=messages("ollama-404")))


def anthropic_calls():
    thinking = {"type": "enabled", "budget_tokens": 1024}
    r = litellm.completion(
        model="anthropic/claude-sonnet-4-5", messages=messages("anthropic"), max_tokens=2000, thinking=thinking
    )
    show(r.model, r.choices[0].message.reasoning_content, r.choices[0].message.content, r.usage.prompt_tokens)
    s = litellm.completion(
        model="anthropic/claude-sonnet-4-5", messages=messages("anthropic-stream"), max_tokens=2000, stream=True
    )
    show("anthropic", stream_summary(s, list(s)))


async def _ollama_async():
    s = await litellm.acompletion(model="ollama_chat/llama3.2", messages=messages("ollama-astream"), stream=True)
    show("ollama async", stream_summary(s, [c async for c in s]))


# -- through an SDK that has its own adapter: Azure chat and OpenAI embeddings via the openai SDK --


def sdk_layer_calls():
    r = litellm.completion(model="azure/my-deployment", messages=messages("azure"))
    show("azure", r.choices[0].message.content, r.usage.total_tokens)
    s = litellm.completion(model="azure/my-deployment", messages=messages("azure-stream"), stream=True)
    show("azure", stream_summary(s, list(s)))
    e = litellm.embedding(model="text-embedding-3-small", input=["embed me"], encoding_format="float")
    show("embedding", len(e.data), len(e.data[0]["embedding"]))


# -- the Router ----------------------------------------------------------------------------------


def router():
    return litellm.Router(
        model_list=[
            {"model_name": "fast", "litellm_params": {"model": "openai/gpt-4o-mini"}},
            {"model_name": "flaky", "litellm_params": {"model": "openai/error-500"}},
            {"model_name": "local", "litellm_params": {"model": "ollama_chat/llama3.2"}},
            {"model_name": "vectors", "litellm_params": {"model": "ollama/nomic-embed-text"}},
        ],
        fallbacks=[{"flaky": ["local"]}],
        num_retries=0,
    )


def router_calls():
    r = router()
    response = r.completion(model="fast", messages=messages("router"))
    show("router", response.choices[0].message.content, response.usage.total_tokens)
    response = r.completion(model="flaky", messages=messages("router-fallback"))
    show("router fallback", response.choices[0].message.content)
    s = r.completion(model="local", messages=messages("router-stream"), stream=True)
    show("router stream", texts(list(s)))
    e = r.embedding(model="vectors", input=["x"])
    show("router embedding", len(e.data))

    async def run():
        response = await r.acompletion(model="local", messages=messages("router-async"))
        show("router async", response.choices[0].message.content)
        s = await r.acompletion(model="local", messages=messages("router-astream"), stream=True)
        show("router astream", texts([c async for c in s]))

    asyncio.run(run())


def direct():
    openai_chat()
    openai_tools()
    openai_streams()
    openai_stream_exits()
    openai_errors()
    asyncio.run(_openai_async())
    ollama_calls()
    asyncio.run(_ollama_async())
    anthropic_calls()


def layers_and_router():
    sdk_layer_calls()
    router_calls()


if __name__ == "__main__":
    globals()[sys.argv[1]]()
