"""An ordinary Qdrant application, run unmodified by the end-to-end tests: the client's own
in-memory mode (``:memory:``), one collection of three points. Each command-line argument names
a scenario; they run in order and print what the app saw.
"""

import asyncio
import sys

from qdrant_client import AsyncQdrantClient, QdrantClient, models

import posthog_autoinstrument

POINTS = [
    (1, [1.0, 0.0, 0.0], {"city": "Paris", "text": "Paris is the capital of France."}),
    (2, [0.0, 1.0, 0.0], {"city": "Berlin", "text": "Berlin is the capital of Germany."}),
    (3, [0.0, 0.0, 1.0], {"city": "Madrid", "text": "Madrid is the capital of Spain."}),
]
COLLECTION = "cities"


def show(*values):
    print(*values, flush=True)


def points():
    return [models.PointStruct(id=i, vector=v, payload=p) for i, v, p in POINTS]


def client():
    qdrant = QdrantClient(":memory:")
    qdrant.create_collection(COLLECTION, vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
    qdrant.upsert(COLLECTION, points=points())
    return qdrant


def query_vector():
    r = client().query_points(COLLECTION, query=[0.9, 0.1, 0.0], limit=2, with_vectors=True)
    show("query_vector", [(p.id, round(p.score, 3), p.payload["city"]) for p in r.points])


def query_filter():
    city = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="Berlin"))])
    r = client().query_points(collection_name=COLLECTION, query=[0.9, 0.1, 0.0], query_filter=city, limit=1)
    show("query_filter", [p.id for p in r.points])


def query_point_id():
    r = client().query_points(COLLECTION, query=3, limit=1)
    show("query_point_id", [p.id for p in r.points])


def query_batch():
    r = client().query_batch_points(
        COLLECTION,
        requests=[
            models.QueryRequest(query=[0.0, 1.0, 0.0], limit=1, with_payload=True),
            models.QueryRequest(query=[0.0, 0.0, 1.0], limit=1, with_payload=True),
        ],
    )
    show("query_batch", [[p.id for p in response.points] for response in r])


def in_a_run():
    with posthog_autoinstrument.context(trace_name="answer-question"):
        r = client().query_points(COLLECTION, query=[0.0, 0.0, 0.8], limit=1)
    show("in_a_run", [p.id for p in r.points])


def private():
    with posthog_autoinstrument.context(privacy_mode=True):
        r = client().query_points(COLLECTION, query=[0.1, 0.0, 0.95], limit=1)
    show("private", [p.id for p in r.points])


def error():
    try:
        client().query_points("no-such-collection", query=[1.0, 0.0, 0.0], limit=1)
    except Exception as exc:
        show("error", type(exc).__name__)


def async_query():
    async def run():
        qdrant = AsyncQdrantClient(":memory:")
        await qdrant.create_collection(
            COLLECTION, vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT)
        )
        await qdrant.upsert(COLLECTION, points=points())
        r = await qdrant.query_points(COLLECTION, query=[0.2, 0.7, 0.1], limit=3)
        show("async_query", [p.id for p in r.points])

    asyncio.run(run())


def main() -> None:
    for scenario in sys.argv[1:]:
        globals()[scenario]()


if __name__ == "__main__":
    main()
