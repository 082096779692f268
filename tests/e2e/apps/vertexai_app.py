"""An ordinary Vertex AI SDK application (``vertexai`` from google-cloud-aiplatform), run
unmodified by the end-to-end tests.

It initialises the SDK with an access token and the API endpoint from VERTEX_API_ENDPOINT over
the REST transport, as an app behind a private endpoint would. Each command-line argument names
a scenario; they run in order and print what the app saw.
"""

import asyncio
import gc
import os
import sys

import vertexai
from google.auth.aio.credentials import StaticCredentials
from google.cloud.aiplatform import initializer
from google.oauth2.credentials import Credentials
from vertexai.generative_models import FunctionDeclaration, GenerationConfig, GenerativeModel, Part, Tool
from vertexai.language_models import TextEmbeddingModel

MODEL = "gemini-2.5-flash"
WEATHER = Tool(
    function_declarations=[
        FunctionDeclaration(
            name="get_weather",
            description="Weather for a city",
            parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        )
    ]
)


def init():
    vertexai.init(
        project="test-project",
        location="us-central1",
        api_endpoint=os.environ["VERTEX_API_ENDPOINT"],
        api_transport="rest",
        credentials=Credentials(token="test-token"),
    )
    # The SDK's async clients speak REST only with async credentials (else they fall back to gRPC).
    initializer._set_async_rest_credentials(StaticCredentials(token="test-token"))


def show(*values):
    print(*values, flush=True)


def generate():
    model = GenerativeModel(MODEL, system_instruction="You are terse.")
    r = model.generate_content(
        "Say hello",
        generation_config=GenerationConfig(
            temperature=0.3,
            top_p=0.9,
            top_k=20,
            max_output_tokens=50,
            seed=7,
            stop_sequences=["END"],
            presence_penalty=0.2,
            frequency_penalty=0.1,
        ),
    )
    show("generate", type(r).__name__, r.text, r.usage_metadata.total_token_count, r.candidates[0].finish_reason.name)


def tools():
    model = GenerativeModel(MODEL, tools=[WEATHER])
    chat = model.start_chat()
    first = chat.send_message("Weather in Paris?")
    call = first.candidates[0].function_calls[0]
    show("tools call", call.name, dict(call.args))
    second = chat.send_message(Part.from_function_response(name="get_weather", response={"temp": 21}))
    show("tools answer", second.text)


def stream():
    pieces = [chunk.text for chunk in GenerativeModel(MODEL).generate_content("Stream please", stream=True)]
    show("stream", len(pieces), "".join(pieces))


def stream_break():
    s = GenerativeModel(MODEL).generate_content("Break early chunks=6", stream=True)
    for i, _ in enumerate(s):
        if i == 1:
            break
    del s
    gc.collect()
    show("stream_break done")


def error_429():
    try:
        GenerativeModel("error-429").generate_content("Rate limit me")
    except Exception as exc:
        show("error_429", type(exc).__name__, exc.code)


def embed():
    embeddings = TextEmbeddingModel.from_pretrained("text-embedding-005").get_embeddings(["first text", "second text"])
    show("embed", len(embeddings), len(embeddings[0].values), embeddings[0].statistics.token_count)


async def _async_all():
    model = GenerativeModel(MODEL)
    r = await model.generate_content_async("Async hello")
    show("async generate", r.text)
    pieces = [chunk.text async for chunk in await model.generate_content_async("Async stream", stream=True)]
    show("async stream", "".join(pieces))


def async_all():
    asyncio.run(_async_all())


if __name__ == "__main__":
    init()
    for scenario in sys.argv[1:]:
        globals()[scenario]()
