"""An unmodified AWS Lambda function (this directory plays /var/task): handlers that call
OpenAI, for tests/e2e/test_lambda.py. The event says what to ask and how to fail."""

import asyncio
import json

import openai

client = openai.OpenAI(max_retries=0)


def _ask(event, model="gpt-4o-mini"):
    return [{"role": "user", "content": event.get("prompt", "hello")}], model


def sync_handler(event, context):
    messages, model = _ask(event)
    completion = client.chat.completions.create(model=model, messages=messages)
    return {"reply": completion.choices[0].message.content, "request_id": context.aws_request_id}


def async_handler(event, context):
    # awslambdaric runs handlers synchronously: an async function is run by the handler itself.
    async def ask():
        async with openai.AsyncOpenAI(max_retries=0) as async_client:
            messages, model = _ask(event)
            completion = await async_client.chat.completions.create(model=model, messages=messages)
            return completion.choices[0].message.content

    return {"reply": asyncio.run(ask()), "request_id": context.aws_request_id}


class OrderRejected(Exception):
    pass


def failing_handler(event, context):
    messages, model = _ask(event)
    client.chat.completions.create(model=model, messages=messages)  # succeeds
    if event.get("fail") == "rate_limit":
        client.chat.completions.create(model="error-429", messages=messages)  # raises RateLimitError
    raise OrderRejected(json.dumps({"order": event.get("order"), "reason": "out of stock"}))


def streaming_handler(event, context):
    messages, model = _ask(event)
    stream = client.chat.completions.create(model=model, messages=messages, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    return {"reply": text}
