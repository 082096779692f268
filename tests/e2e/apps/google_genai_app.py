"""An ordinary google-genai application, run unmodified by the end-to-end tests.

It is configured like any Gemini app, through the environment the SDK reads itself
(GEMINI_API_KEY, GOOGLE_GEMINI_BASE_URL), except the Vertex AI scenario, which passes
``http_options={"base_url": ...}`` in code as an app pinned to an endpoint would. Each
command-line argument names a scenario; they run in order and print what the app saw.
"""

import asyncio
import gc
import os
import sys

from google import genai
from google.genai import errors, types

MODEL = "gemini-2.5-flash"
PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")  # a PNG header
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather for a city",
            parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        )
    ]
)
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)


def show(*values):
    print(*values, flush=True)


_clients = []


def client():
    # Keep the client alive: a dropped genai.Client closes its HTTP connection pool.
    _clients.append(genai.Client())
    return _clients[-1]


def usage_line(usage):
    return (
        usage.prompt_token_count,
        usage.candidates_token_count,
        usage.cached_content_token_count,
        usage.thoughts_token_count,
        usage.total_token_count,
    )


def generate():
    r = client().models.generate_content(
        model=MODEL,
        contents=[
            types.Content(
                role="user",
                parts=[
                    types.Part.from_text(text="Describe this picture"),
                    types.Part.from_bytes(data=PIXEL, mime_type="image/png"),
                ],
            )
        ],
        config=types.GenerateContentConfig(
            system_instruction="You are terse.",
            temperature=0.3,
            top_p=0.9,
            top_k=40,
            max_output_tokens=50,
            stop_sequences=["END"],
            seed=7,
            candidate_count=1,
            presence_penalty=0.2,
            frequency_penalty=0.1,
            thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_level="LOW"),
        ),
    )
    show("generate", type(r).__name__, r.text, usage_line(r.usage_metadata), r.model_version)


def tools():
    c = client()
    question = types.Content(role="user", parts=[types.Part.from_text(text="Weather in Paris?")])
    config = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=NO_AFC)
    first = c.models.generate_content(model=MODEL, contents=[question], config=config)
    call = first.function_calls[0]
    show("tools call", call.name, dict(call.args), first.candidates[0].finish_reason.value)
    answer = types.Content(
        role="user", parts=[types.Part.from_function_response(name=call.name, response={"temp": 21})]
    )
    second = c.models.generate_content(
        model=MODEL, contents=[question, first.candidates[0].content, answer], config=config
    )
    show("tools answer", second.text)


def get_weather(city: str) -> dict:
    """Weather for a city."""
    return {"city": city, "sky": "clear"}


def afc():
    r = client().models.generate_content(
        model=MODEL,
        contents="What is the weather like in Paris? (afc)",
        config=types.GenerateContentConfig(tools=[get_weather]),
    )
    show("afc", r.text, len(r.automatic_function_calling_history))


def stream():
    chunks = list(
        client().models.generate_content_stream(
            model=MODEL,
            contents="Stream please",
            config={"thinking_config": {"include_thoughts": True}, "system_instruction": "Be brief."},
        )
    )
    show(
        "stream",
        len(chunks),
        "".join(p.text for c in chunks for p in c.candidates[0].content.parts if not p.thought),
        usage_line(chunks[-1].usage_metadata),
    )


def stream_break():
    s = client().models.generate_content_stream(model=MODEL, contents="Break early chunks=6")
    for i, _ in enumerate(s):
        if i == 1:
            break
    del s
    gc.collect()
    show("stream_break done")


def stream_close():
    s = client().models.generate_content_stream(model=MODEL, contents="Close early chunks=6")
    first = next(s)
    s.close()
    show("stream_close", first.text)


def stream_error():
    try:
        for _ in client().models.generate_content_stream(model="stream-error", contents="Fail midway"):
            pass
    except Exception as exc:
        show("stream_error", type(exc).__name__)


def error_429():
    try:
        client().models.generate_content(model="error-429", contents="Rate limit me")
    except errors.ClientError as exc:
        show("error_429", type(exc).__name__, exc.code, exc.status)


def embed():
    r = client().models.embed_content(model="text-embedding-004", contents=["first text", "second text"])
    show("embed", len(r.embeddings), len(r.embeddings[0].values))


def chat():
    session = client().chats.create(model=MODEL, config=types.GenerateContentConfig(system_instruction="Chatty."))
    show("chat 1", session.send_message("Hi there").text)
    show("chat 2", session.send_message("And again reply=Again").text)
    text = "".join(c.text or "" for c in session.send_message_stream("Stream it"))
    show("chat stream", text, len(session.get_history()))


async def _async_all():
    aio = client().aio
    r = await aio.models.generate_content(model=MODEL, contents="Async hello")
    show("async generate", r.text)
    chunks = [c async for c in await aio.models.generate_content_stream(model=MODEL, contents="Async stream")]
    show("async stream", len(chunks), "".join(c.text for c in chunks))
    s = await aio.models.generate_content_stream(model=MODEL, contents="Async break chunks=6")
    async for _ in s:
        break
    await s.aclose()
    show("async break done")
    s = await aio.models.generate_content_stream(model=MODEL, contents="Async abandon chunks=6")
    async for _ in s:
        break
    del s
    gc.collect()
    show("async abandon done")
    session = aio.chats.create(model=MODEL)
    show("async chat", (await session.send_message("Async chat")).text)
    e = await aio.models.embed_content(model="text-embedding-004", contents="async embed")
    show("async embed", len(e.embeddings))


def async_all():
    asyncio.run(_async_all())


def vertex():
    c = genai.Client(vertexai=True, api_key="vertex-express-key", http_options={"base_url": os.environ["VERTEX_URL"]})
    _clients.append(c)
    show("vertex", c.models.generate_content(model=MODEL, contents="Vertex hello").text)
    show("vertex embed", len(c.models.embed_content(model="text-embedding-004", contents=["a", "b"]).embeddings))


if __name__ == "__main__":
    for scenario in sys.argv[1:]:
        globals()[scenario]()
