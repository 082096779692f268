"""The measured workloads: real SDK calls over an in-process transport with canned responses.

The SDKs (openai 3.x, anthropic) are built on ``httpx2``; each client gets an
``httpx2.MockTransport`` whose handler answers from a cache keyed by the request body, so
the network costs nothing and varies not at all, while the SDK does all its usual work
(request building, headers, JSON or SSE parsing, pydantic models). Responses are in the
providers' wire format, built by ``tests/servers/openai_wire.py`` for OpenAI. When an
instrumentation asks for more (OpenAI's ``stream_options.include_usage``) the request body
differs and the canned answer is the one the real API would give (one extra usage chunk).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, Callable

from common import REPO

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.servers import openai_wire as wire  # noqa: E402

STREAM_CHUNKS = 200
# A short stream of the same call: the difference between the two is the marginal cost per chunk.
SHORT_STREAM_CHUNKS = 2
PROMPT = "Say hello in one short sentence."
SYSTEM = "You are a terse assistant."
CHAT_MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
ANTHROPIC_MODEL = "claude-sonnet-4-5"

WORKLOADS = (
    "chat",
    "embeddings",
    "anthropic",
    "stream_sync",
    "stream_async",
    "stream_sync_short",
    "stream_async_short",
)
OPENAI_WORKLOADS = ("chat", "embeddings", "stream_sync", "stream_async", "stream_sync_short", "stream_async_short")


def _anthropic_message(body: dict) -> dict:
    return {
        "id": "msg_01BenchmarkCannedReply",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": [{"type": "text", "text": "Hello from fake Anthropic"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 11,
            "output_tokens": 7,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _answer(path: str, body: dict) -> tuple:
    """(content type, body bytes) the provider would send for this request."""
    if path.endswith("/chat/completions"):
        meta = wire.Meta(id="chatcmpl-benchmark", model=wire.served_model(body["model"]), created=1_700_000_000)
        reply = wire.chat_reply(body, wire.DEFAULT_REPLY)
        if body.get("stream"):
            events = [
                f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n" for chunk in wire.chat_chunks(body, reply, meta)
            ]
            return "text/event-stream", ("".join(events) + "data: [DONE]\n\n").encode()
        return "application/json", json.dumps(wire.chat_completion(body, reply, meta)).encode()
    if path.endswith("/embeddings"):
        return "application/json", json.dumps(wire.embeddings(body)).encode()
    if path.endswith("/messages"):
        return "application/json", json.dumps(_anthropic_message(body)).encode()
    raise ValueError(f"no canned answer for {path}")


def transport():
    """An ``httpx2.MockTransport`` answering every provider request from a cache."""
    import httpx2

    cache: dict = {}

    def handler(request):
        key = (request.url.path, request.content)
        answer = cache.get(key)
        if answer is None:
            answer = cache[key] = _answer(request.url.path, json.loads(request.content))
        return httpx2.Response(200, content=answer[1], headers={"content-type": answer[0]})

    return httpx2.MockTransport(handler)


class Clients:
    """Client classes and extra constructor arguments; a setup may swap them (PostHog's wrappers)."""

    def __init__(self, openai_cls=None, async_openai_cls=None, anthropic_cls=None, **extra: Any):
        import openai

        self.openai_cls = openai_cls or openai.OpenAI
        self.async_openai_cls = async_openai_cls or openai.AsyncOpenAI
        self.anthropic_cls = anthropic_cls
        self.extra = extra

    def openai(self):
        import openai

        return self.openai_cls(
            api_key="sk-benchmark",
            base_url="https://api.openai.com/v1",
            max_retries=0,
            http_client=openai.DefaultHttpxClient(transport=transport()),
            **self.extra,
        )

    def async_openai(self):
        import openai

        return self.async_openai_cls(
            api_key="sk-benchmark",
            base_url="https://api.openai.com/v1",
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(transport=transport()),
            **self.extra,
        )

    def anthropic(self):
        import anthropic

        cls = self.anthropic_cls or anthropic.Anthropic
        return cls(
            api_key="sk-ant-benchmark",
            base_url="https://api.anthropic.com",
            max_retries=0,
            http_client=anthropic.DefaultHttpxClient(transport=transport()),
        )


def _chat_messages(prompt: str = PROMPT) -> list:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def make_call(workload: str, clients: Clients) -> Callable:
    """One call of ``workload``: a function, or for async workloads a coroutine function."""
    if workload == "chat":
        client = clients.openai()
        messages = _chat_messages()
        return lambda: client.chat.completions.create(
            model=CHAT_MODEL, messages=messages, temperature=0.2, max_tokens=64
        )
    if workload == "embeddings":
        client = clients.openai()
        return lambda: client.embeddings.create(model=EMBEDDING_MODEL, input="The quick brown fox")
    if workload == "anthropic":
        client = clients.anthropic()
        messages = [{"role": "user", "content": PROMPT}]
        return lambda: client.messages.create(model=ANTHROPIC_MODEL, max_tokens=64, system=SYSTEM, messages=messages)
    if workload in ("stream_sync", "stream_sync_short", "stream_sync_app_usage", "stream_sync_app_usage_short"):
        client = clients.openai()
        messages = _chat_messages(f"{PROMPT} chunks={stream_chunks(workload)}")
        # The app asks for the usage chunk itself (for the SDK's own cost of it: instructions.py).
        extra = {"stream_options": {"include_usage": True}} if "_app_usage" in workload else {}

        def stream_sync():
            count = 0
            for _chunk in client.chat.completions.create(model=CHAT_MODEL, messages=messages, stream=True, **extra):
                count += 1
            return count

        return stream_sync
    if workload in ("stream_async", "stream_async_short"):
        client = clients.async_openai()
        messages = _chat_messages(f"{PROMPT} chunks={stream_chunks(workload)}")

        async def stream_async():
            count = 0
            async for _chunk in await client.chat.completions.create(model=CHAT_MODEL, messages=messages, stream=True):
                count += 1
            return count

        return stream_async
    raise ValueError(f"unknown workload {workload}")


def is_async(workload: str) -> bool:
    return workload.startswith("stream_async")


def stream_chunks(workload: str) -> int:
    return SHORT_STREAM_CHUNKS if workload.endswith("_short") else STREAM_CHUNKS


def time_batches(
    call: Callable,
    asynchronous: bool,
    warmup: int,
    batches: int,
    per_batch: int,
    flush: Callable[[], None] = lambda: None,
) -> dict:
    """Per batch, µs per call of wall time, of this thread's CPU and of the whole process's CPU.

    The two CPU clocks tell the application thread's share from the background threads'
    (export), which on CPython compete with the application for the GIL. Each batch ends with
    ``flush``, counted on the process clock only: every exporter then pays for shipping its
    own batch's spans, whether it ships them at once (ours: 100 spans a request) or holds
    them for seconds (a BatchSpanProcessor waits for a full batch or 5 s).
    """
    if asynchronous:
        return asyncio.run(_time_batches_async(call, warmup, batches, per_batch, flush))
    for _ in range(warmup):
        call()
    flush()
    samples = _Samples(per_batch)
    for _ in range(batches):
        samples.start()
        for _ in range(per_batch):
            call()
        samples.stop(flush)
    return samples.result


async def _time_batches_async(call: Callable, warmup: int, batches: int, per_batch: int, flush: Callable) -> dict:
    for _ in range(warmup):
        await call()
    flush()
    samples = _Samples(per_batch)
    for _ in range(batches):
        samples.start()
        for _ in range(per_batch):
            await call()
        samples.stop(flush)
    return samples.result


class _Samples:
    def __init__(self, per_batch: int):
        self.per_batch = per_batch
        self.result = {"us_per_call": [], "thread_cpu_us_per_call": [], "process_cpu_us_per_call": []}

    def start(self) -> None:
        self._clocks = (time.perf_counter(), time.thread_time(), time.process_time())

    def stop(self, flush: Callable[[], None]) -> None:
        wall, thread = time.perf_counter(), time.thread_time()
        flush()
        now = (wall, thread, time.process_time())
        for key, before, after in zip(self.result, self._clocks, now):
            self.result[key].append((after - before) / self.per_batch * 1e6)


def run_once(call: Callable, asynchronous: bool) -> Any:
    return asyncio.run(call()) if asynchronous else call()
