"""An ordinary Hugging Face inference application, run unmodified by the end-to-end tests.

It reads HF_TOKEN (and HF_ENDPOINT, the Hub's address) like any huggingface_hub app, plus the URL
of its text-generation endpoint (TGI_URL). Hugging Face's router cannot be moved by configuration:
when HF_ROUTER_TEMPLATE is set, the app sends routed calls there (the stand-in of the router).
It runs the scenarios named on the command line in order, and prints what it saw.
"""

import asyncio
import os
import sys

from huggingface_hub import AsyncInferenceClient, InferenceClient, constants
from huggingface_hub.errors import HfHubHTTPError

TGI = os.environ["TGI_URL"]
if os.environ.get("HF_ROUTER_TEMPLATE"):
    constants.INFERENCE_PROXY_TEMPLATE = os.environ["HF_ROUTER_TEMPLATE"]
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def show(*values):
    print(*values, flush=True)


def chat():
    client = InferenceClient(base_url=TGI + "/v1")
    r = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.3, max_tokens=50, seed=7)
    show("chat", type(r).__name__, r.choices[0].message.content, r.usage.total_tokens)


def chat_stream():
    client = InferenceClient(model=TGI)  # (a stream reads from its client's open response)
    chunks = list(client.chat_completion(MESSAGES, stream=True))
    show(
        "chat_stream",
        len(chunks),
        repr("".join(c.choices[0].delta.content or "" for c in chunks if c.choices)),
        sum(c.usage is not None for c in chunks),
    )


async def async_chat_stream():
    client = AsyncInferenceClient(model=TGI)
    stream = await client.chat_completion(MESSAGES, stream=True, max_tokens=20)
    texts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    show("async_chat_stream", repr("".join(texts)))


def text_generation():
    r = InferenceClient(model=TGI).text_generation(
        "Once upon a time", details=True, decoder_input_details=True, max_new_tokens=5, temperature=0.5
    )
    show(
        "text_generation", type(r).__name__, repr(r.generated_text), r.details.finish_reason, r.details.generated_tokens
    )


def text_generation_plain():
    show("text_generation_plain", repr(InferenceClient(model=TGI).text_generation("Plain prompt")))


def text_generation_stream():
    client = InferenceClient(model=TGI)
    show("text_generation_stream", list(client.text_generation("Stream me", stream=True)))


async def async_text_generation_stream():
    client = AsyncInferenceClient(model=TGI)
    stream = await client.text_generation("Async stream", stream=True, details=True, max_new_tokens=5)
    outputs = [output async for output in stream]
    show("async_text_generation_stream", len(outputs), outputs[-1].details.finish_reason)


def feature_extraction():
    vectors = InferenceClient(model=TGI + "/embed").feature_extraction("Embed this text")
    show("feature_extraction", vectors.shape, vectors.dtype)


async def async_feature_extraction():
    vectors = await AsyncInferenceClient(model=TGI + "/embed").feature_extraction(["first", "second"])
    show("async_feature_extraction", vectors.shape)


def routed_chat():
    client = InferenceClient(provider="together", api_key=os.environ["HF_TOKEN"])
    r = client.chat_completion(MESSAGES, model=MODEL, max_tokens=30)
    show("routed_chat", r.choices[0].message.content)


async def routed_async_chat_stream():
    client = AsyncInferenceClient(provider="fireworks-ai", api_key=os.environ["HF_TOKEN"])
    stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    show("routed_async_chat_stream", len([chunk async for chunk in stream]))


def routed_text_generation():
    # No provider named: the client picks the first that serves the model (from the Hub).
    client = InferenceClient(api_key=os.environ["HF_TOKEN"])
    show("routed_text_generation", repr(client.text_generation("Routed prompt", model="mistralai/Mistral-7B-v0.1")))


def chat_error():
    try:
        InferenceClient(base_url=TGI + "/v1").chat_completion(MESSAGES, model="error-429")
    except HfHubHTTPError as exc:
        show("chat_error", type(exc).__name__, exc.response.status_code)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        scenario = globals()[name]
        if asyncio.iscoroutinefunction(scenario):
            asyncio.run(scenario())
        else:
            scenario()
