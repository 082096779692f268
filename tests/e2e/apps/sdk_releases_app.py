"""The calls every claimed release of the OpenAI and Anthropic SDKs has, one line of output each.

Run against each end of the claimed ranges (.ci/run's oldest-releases environment, and the main
one); the APIs only newer releases have are covered by test_openai.py and test_anthropic.py.

Usage: python sdk_releases_app.py openai | anthropic
"""

from __future__ import annotations

import asyncio
import sys

HELLO = [{"role": "user", "content": "Say hello"}]


def openai_calls() -> None:
    import openai

    client = openai.OpenAI(max_retries=0)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    print("openai chat:", reply.choices[0].message.content)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True)
    print("openai chat stream:", "".join(c.choices[0].delta.content or "" for c in stream if c.choices))
    print("openai embeddings:", len(client.embeddings.create(model="text-embedding-3-small", input="hi").data))

    async def chat_async():
        reply = await openai.AsyncOpenAI(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        return reply.choices[0].message.content

    print("openai async chat:", asyncio.run(chat_async()))


def anthropic_calls() -> None:
    import anthropic

    client = anthropic.Anthropic(max_retries=0)
    message = client.messages.create(model="claude-fake-1", max_tokens=64, messages=HELLO)
    print("anthropic create:", message.content[0].text)
    with client.messages.stream(model="claude-fake-1", max_tokens=64, messages=HELLO) as stream:
        print("anthropic stream:", "".join(stream.text_stream))

    async def create_async():
        reply = await anthropic.AsyncAnthropic(max_retries=0).messages.create(
            model="claude-fake-1", max_tokens=64, messages=HELLO
        )
        return reply.content[0].text

    print("anthropic async create:", asyncio.run(create_async()))


if __name__ == "__main__":
    {"openai": openai_calls, "anthropic": anthropic_calls}[sys.argv[1]]()
