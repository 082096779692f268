"""An ordinary async Bedrock application on aiobotocore, run unmodified by the end-to-end tests.

It is configured only through the variables botocore itself reads (AWS_ENDPOINT_URL_BEDROCK_RUNTIME,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_MAX_ATTEMPTS), runs the scenarios
named on the command line in order, in one event loop, and prints what it saw.
"""

import asyncio
import gc
import json
import sys

from aiobotocore.session import get_session

CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
LLAMA = "meta.llama3-8b-instruct-v1:0"
NOVA = "us.amazon.nova-lite-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Say hello"}]}]
CLAUDE_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 40,
    "system": "Be brief.",
    "messages": [{"role": "user", "content": "Say hello"}],
}
NOVA_BODY = {
    "schemaVersion": "messages-v1",
    "messages": [{"role": "user", "content": [{"text": "Say hello"}]}],
    "inferenceConfig": {"maxTokens": 41},
}


def show(*values):
    print(*values, flush=True)


async def converse(c):
    r = await c.converse(
        modelId=CLAUDE,
        system=[{"text": "You are terse."}],
        messages=MESSAGES,
        inferenceConfig={"maxTokens": 50, "temperature": 0.3},
    )
    show("converse", r["output"]["message"]["content"][0]["text"], r["stopReason"], r["usage"]["totalTokens"])


async def converse_stream(c):
    r = await c.converse_stream(modelId="us." + CLAUDE, messages=MESSAGES, inferenceConfig={"maxTokens": 64})
    stream = r["stream"]
    events = [e async for e in stream]
    text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e)
    show("converse_stream", stream.__class__.__name__, [next(iter(e)) for e in events], repr(text))


async def invoke_claude(c):
    r = await c.invoke_model(modelId=CLAUDE, body=json.dumps(CLAUDE_BODY), contentType="application/json")
    body = r["body"]
    data = json.loads(await body.read())
    show("invoke_claude", body.__class__.__name__, r["contentType"], data["content"][0]["text"], await body.read())


async def invoke_llama(c):
    r = await c.invoke_model(modelId=LLAMA, body=json.dumps({"prompt": "Say hello", "max_gen_len": 43}))
    body = r["body"]
    async with body:  # (what ``as`` gives differs between aiobotocore 2 and 3)
        raw = b"".join([chunk async for chunk in body.iter_chunks(16)])
    show("invoke_llama", json.loads(raw)["generation"])


async def invoke_stream(c):
    for model_id, body in ((CLAUDE, CLAUDE_BODY), (NOVA, NOVA_BODY)):
        r = await c.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body))
        chunks = [json.loads(e["chunk"]["bytes"]) async for e in r["body"]]
        show("invoke_stream", model_id, len(chunks), sorted(chunks[-1].get("amazon-bedrock-invocationMetrics", {})))


async def stream_break(c):
    stream = (await c.converse_stream(modelId="us.amazon.nova-pro-v1:0", messages=MESSAGES))["stream"]
    n = 0
    async for _ in stream:
        n += 1
        if n == 3:
            break
    del stream
    gc.collect()
    show("stream_break", n)


async def stream_close(c):
    stream = (await c.converse_stream(modelId="meta.llama3-1-8b-instruct-v1:0", messages=MESSAGES))["stream"]
    async for first in stream:
        break
    stream.close()
    show("stream_close", first)


async def stream_error(c):
    stream = (await c.converse_stream(modelId="stream-error", messages=MESSAGES))["stream"]
    seen = []
    try:
        async for e in stream:
            seen.append(next(iter(e)))
    except Exception as exc:
        show("stream_error", seen, type(exc).__name__, exc.response["Error"]["Code"])


async def error(c):
    try:
        await c.converse(modelId="error-429", messages=MESSAGES)
    except Exception as exc:
        show("error", type(exc).__name__, exc.response["ResponseMetadata"]["HTTPStatusCode"])


async def other_aws_calls(c):
    # Not Bedrock inference: passes through untouched and unrecorded.
    show("other", c.meta.service_model.service_name, c.can_paginate("converse"))


async def main(names):
    async with get_session().create_client("bedrock-runtime") as c:
        for name in names:
            await globals()[name](c)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
