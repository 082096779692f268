"""An ordinary Weaviate application (weaviate-client v4), run unmodified by the end-to-end tests:
one local Weaviate reached on WEAVIATE_HTTP_PORT and WEAVIATE_GRPC_PORT (init checks skipped:
they would ask PyPI for the client's newest version). Each command-line argument names a
scenario; they run in order and print what the app saw.
"""

import asyncio
import os
import sys

import weaviate
from weaviate.classes.query import Filter, MetadataQuery

import posthog_autoinstrument

PORTS = {"port": int(os.environ["WEAVIATE_HTTP_PORT"]), "grpc_port": int(os.environ["WEAVIATE_GRPC_PORT"])}


def show(*values):
    print(*values, flush=True)


def connect():
    return weaviate.connect_to_local(host="127.0.0.1", skip_init_checks=True, **PORTS)


def cities(client):
    return client.collections.get("City")


def near_vector():
    with connect() as client:
        r = cities(client).query.near_vector(
            [0.9, 0.1, 0.0], limit=2, include_vector=True, return_metadata=MetadataQuery(distance=True)
        )
    show("near_vector", [(o.properties["city"], round(o.metadata.distance, 3), o.vector["default"]) for o in r.objects])


def near_text():
    with connect() as client:
        r = cities(client).query.near_text(
            "capital of Germany",
            limit=1,
            filters=Filter.by_property("country").equal("Germany"),
            return_metadata=MetadataQuery(distance=True),
        )
    show("near_text", [(str(o.uuid), o.properties["city"], round(o.metadata.distance, 3)) for o in r.objects])


def hybrid():
    with connect() as client:
        r = cities(client).query.hybrid("Madrid Spain", alpha=0.5, limit=3, return_metadata=MetadataQuery(score=True))
    show("hybrid", [(o.properties["city"], o.metadata.score) for o in r.objects])


def bm25():
    with connect() as client:
        r = cities(client).query.bm25(
            "Paris", limit=5, return_properties=["city"], return_metadata=MetadataQuery(score=True)
        )
    show("bm25", [(o.properties, o.metadata.score) for o in r.objects])


def fetch_objects():
    with connect() as client:
        large = Filter.by_property("population").greater_than(3000000)
        r = cities(client).query.fetch_objects(
            limit=2, filters=large & Filter.by_property("country").not_equal("Spain")
        )
    show("fetch_objects", [o.properties["city"] for o in r.objects])


def in_a_run():
    with connect() as client, posthog_autoinstrument.context(trace_name="answer-question"):
        r = cities(client).query.near_text("Spain", limit=1)
    show("in_a_run", [o.properties["city"] for o in r.objects])


def private():
    with connect() as client, posthog_autoinstrument.context(privacy_mode=True):
        r = cities(client).query.near_text("a secret about Madrid", limit=1)
    show("private", [o.properties["city"] for o in r.objects])


def error():
    with connect() as client:
        try:
            client.collections.get("Nowhere").query.bm25("Paris", limit=1)
        except Exception as exc:
            show("error", type(exc).__name__)


def async_query():
    async def run():
        async with weaviate.use_async_with_local(host="127.0.0.1", skip_init_checks=True, **PORTS) as client:
            r = await client.collections.get("City").query.near_vector([0.2, 0.7, 0.1], limit=3)
        show("async_query", [o.properties["city"] for o in r.objects])

    asyncio.run(run())


def main() -> None:
    for scenario in sys.argv[1:]:
        globals()[scenario]()


if __name__ == "__main__":
    main()
