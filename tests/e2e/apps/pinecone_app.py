"""An ordinary Pinecone application, run unmodified by the end-to-end tests: one index reached
by its host (PINECONE_INDEX_HOST; the key from PINECONE_API_KEY, as the SDK reads it). Each
command-line argument names a scenario; they run in order and print what the app saw.
"""

import asyncio
import os
import sys

from pinecone import Pinecone, PineconeAsyncio

import posthog_autoinstrument

HOST = os.environ["PINECONE_INDEX_HOST"]


def show(*values):
    print(*values, flush=True)


def index():
    return Pinecone().Index(host=HOST)


def query_vector():
    r = index().query(vector=[0.9, 0.1, 0.0], top_k=2, include_metadata=True, include_values=True)
    show("query_vector", [(m.id, m.score, m.metadata["country"], m.values) for m in r.matches], r.usage.read_units)


def query_filter():
    r = index().query(vector=[0.9, 0.1, 0.0], top_k=1, namespace="europe", filter={"country": {"$eq": "Germany"}})
    show("query_filter", [m.id for m in r.matches], r.namespace)


def query_id():
    r = index().query(id="doc-madrid", top_k=1)
    show("query_id", [m.id for m in r.matches])


def in_a_run():
    with posthog_autoinstrument.context(trace_name="answer-question"):
        r = index().query(vector=[0.0, 0.0, 0.8], top_k=1)
    show("in_a_run", [m.id for m in r.matches])


def private():
    with posthog_autoinstrument.context(privacy_mode=True):
        r = index().query(vector=[0.1, 0.0, 0.95], top_k=1, include_metadata=True)
    show("private", [m.id for m in r.matches])


def error():
    try:
        index().query(vector=[1.0, 0.0, 0.0], top_k=1, namespace="error-429")
    except Exception as exc:
        show("error", type(exc).__name__, getattr(exc, "status_code", None))


def async_query():
    async def run():
        async with PineconeAsyncio() as pc:
            async with pc.IndexAsyncio(host=HOST) as idx:
                r = await idx.query(vector=[0.2, 0.7, 0.1], top_k=3)
        show("async_query", [m.id for m in r.matches])

    asyncio.run(run())


def main() -> None:
    for scenario in sys.argv[1:]:
        globals()[scenario]()


if __name__ == "__main__":
    main()
