"""An ordinary IBM watsonx.ai application (``ibm-watsonx-ai``), run unmodified by the end-to-end tests.

It connects to the Cloud Pak for Data install at WATSONX_URL with a bearer token (WATSONX_TOKEN),
trusting the CA bundle at WATSONX_CA, as an app on a private install would. Each command-line
argument names a scenario; they run in order and print what the app saw.
"""

import asyncio
import os
import sys

from ibm_watsonx_ai import Credentials
from ibm_watsonx_ai.foundation_models import Embeddings, ModelInference

MODEL = "ibm/granite-3-8b-instruct"
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


def credentials():
    return Credentials(
        url=os.environ["WATSONX_URL"], token=os.environ["WATSONX_TOKEN"], version="5.2", instance_id="openshift"
    )


def model(model_id=MODEL, **params):
    return ModelInference(
        model_id=model_id,
        credentials=credentials(),
        project_id="test-project",
        verify=os.environ["WATSONX_CA"],
        params=params or None,
    )


def show(*values):
    print(*values, flush=True)


def chat():
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]
    r = model().chat(
        messages=messages,
        params={
            "temperature": 0.3,
            "top_p": 0.9,
            "max_tokens": 50,
            "seed": 7,
            "stop": ["END"],
            "frequency_penalty": 0.1,
            "presence_penalty": 0.2,
        },
    )
    show("chat", r["choices"][0]["message"]["content"], r["usage"]["total_tokens"])


def tools():
    m = model()
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = m.chat(messages=messages, tools=TOOLS)
    call = first["choices"][0]["message"]["tool_calls"][0]
    show("tools call", first["choices"][0]["finish_reason"], call["function"]["name"])
    messages += [
        first["choices"][0]["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temp": 21}'},
    ]
    second = m.chat(messages=messages, tools=TOOLS)
    show("tools answer", second["choices"][0]["message"]["content"])


def stream():
    chunks = list(model().chat_stream(messages=[{"role": "user", "content": "Stream please"}]))
    show("stream", len(chunks), "".join(c["choices"][0]["delta"].get("content", "") for c in chunks))


def error_400():
    try:
        model("error-400").chat(messages=[{"role": "user", "content": "Refuse me"}])
    except Exception as exc:
        show("error_400", type(exc).__name__)


def generate():
    m = model(max_new_tokens=40, temperature=0.5)
    r = m.generate(prompt="Write a greeting")
    show("generate", r["results"][0]["generated_text"])
    show("generate_text", m.generate_text(prompt="Write a line"))
    show("generate_text_stream", "".join(m.generate_text_stream(prompt="Stream a line")))


def embed():
    e = Embeddings(
        model_id="ibm/slate-30m-english-rtrvr",
        credentials=credentials(),
        project_id="test-project",
        verify=os.environ["WATSONX_CA"],
    )
    vectors = e.embed_documents(["first text", "second text"])
    show("embed", len(vectors), len(vectors[0]))


async def _async_all():
    m = model()
    r = await m.achat(messages=[{"role": "user", "content": "Async hello"}])
    show("async chat", r["choices"][0]["message"]["content"])
    pieces = [
        c["choices"][0]["delta"].get("content", "")
        async for c in await m.achat_stream(messages=[{"role": "user", "content": "Async stream"}])
    ]
    show("async stream", "".join(pieces))


def async_all():
    asyncio.run(_async_all())


if __name__ == "__main__":
    for scenario in sys.argv[1:]:
        globals()[scenario]()
