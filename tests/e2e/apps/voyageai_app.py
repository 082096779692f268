"""An ordinary Voyage AI application, run unmodified by the end-to-end tests (the key from
VOYAGE_API_KEY, as the SDK reads it; the API's address from VOYAGE_BASE_URL, which this app
passes on). Each command-line argument names a scenario; they run in order and print what the
app saw.
"""

import asyncio
import os
import sys

import voyageai

import posthog_autoinstrument

BASE_URL = os.environ["VOYAGE_BASE_URL"]
DOCUMENTS = ["Berlin is the capital of Germany.", "Paris is the capital of France.", "Madrid is the capital of Spain."]


def show(*values):
    print(*values, flush=True)


def client():
    return voyageai.Client(base_url=BASE_URL)


def embed():
    r = client().embed(["first text", "second text"], model="voyage-3.5", input_type="document")
    show("embed", len(r.embeddings), [round(x, 2) for x in r.embeddings[0]], r.total_tokens)


def rerank():
    r = client().rerank("capital of France", DOCUMENTS, model="rerank-2.5", top_k=2)
    show("rerank", [(x.index, x.relevance_score, x.document) for x in r.results], r.total_tokens)


def rag():
    # A rerank inside a unit of work the app named, after an embedding: both nest under it.
    with posthog_autoinstrument.context(trace_name="answer-question"):
        client().embed(["capital of Spain"], model="voyage-3.5", input_type="query")
        r = client().rerank(query="capital of Spain", documents=DOCUMENTS, model="rerank-2.5-lite")
    show("rag", [x.index for x in r.results])


def private():
    with posthog_autoinstrument.context(privacy_mode=True):
        r = client().rerank("a secret about Madrid", DOCUMENTS, model="rerank-2.5", top_k=1)
    show("private", [x.index for x in r.results])


def error():
    try:
        client().rerank("anything", DOCUMENTS, model="error-429")
    except voyageai.error.RateLimitError as exc:
        show("error", type(exc).__name__, exc.http_status)
    try:
        client().embed(["anything"], model="error-429")
    except voyageai.error.RateLimitError as exc:
        show("error embed", type(exc).__name__, exc.http_status)


def async_all():
    async def run():
        co = voyageai.AsyncClient(base_url=BASE_URL)
        e = await co.embed(["async text"], model="voyage-3.5")
        r = await co.rerank("async Germany", DOCUMENTS, model="rerank-2.5", top_k=1)
        show("async", len(e.embeddings), [x.index for x in r.results])

    asyncio.run(run())


def main() -> None:
    for scenario in sys.argv[1:]:
        globals()[scenario]()


if __name__ == "__main__":
    main()
