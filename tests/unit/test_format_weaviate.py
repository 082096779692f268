"""formats.weaviate on ``SearchRequest`` / ``SearchReply`` messages built with weaviate-client's
own protobuf definitions (what its collection queries send; the vertex-watsonx environment)."""

from __future__ import annotations

import struct
import uuid

import pytest

pytest.importorskip("weaviate")

from weaviate.proto.v1 import base_pb2, base_search_pb2, generative_pb2, properties_pb2, search_get_pb2  # noqa: E402

from posthog_autoinstrument.formats import grpc_status  # noqa: E402
from posthog_autoinstrument.formats import weaviate as wire  # noqa: E402

OBJECT_ID = "3f1c2a6e-0d4b-4c6e-9a51-1a2b3c4d5e01"


def _floats(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def test_a_near_vector_query_is_read_by_its_dimensions_never_its_values():
    request = search_get_pb2.SearchRequest(
        collection="Docs",
        tenant="acme",
        limit=4,
        offset=2,
        near_vector=base_search_pb2.NearVector(vector_bytes=_floats(0.5, 0.25, 0.125, 1.0), distance=0.3),
    )
    query = wire.search_query(request)
    assert query == {
        "collection": "Docs",
        "kind": "near_vector",
        "texts": None,
        "vector_dimensions": 4,
        "vector_count": 1,
        "top_k": 4,
        "details": {"distance": 0.3, "tenant": "acme", "offset": 2},
    }


def test_named_and_multi_vectors():
    named = base_search_pb2.NearVector(
        vectors=[
            base_pb2.Vectors(name="title", vector_bytes=_floats(1, 2), type=base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32)
        ],
        target_vectors=["title"],
    )
    assert wire.vector_shape(named) == (2, 1)
    multi = struct.pack("<H", 3) + _floats(1, 2, 3, 4, 5, 6)
    colbert = base_search_pb2.NearVector(
        vectors=[base_pb2.Vectors(vector_bytes=multi, type=base_pb2.Vectors.VECTOR_TYPE_MULTI_FP32)]
    )
    assert wire.vector_shape(colbert) == (3, 2)
    per_target = base_search_pb2.NearVector(
        vector_for_targets=[base_search_pb2.VectorForTarget(name="a", vector_bytes=_floats(1, 2, 3))]
    )
    assert wire.vector_shape(per_target) == (3, 1)
    query = wire.search_query(search_get_pb2.SearchRequest(collection="Docs", near_vector=named))
    assert query["details"] == {"target_vectors": ["title"]}
    assert query["top_k"] is None  # no limit: the server's default


def test_text_searches_and_their_settings():
    near_text = wire.search_query(
        search_get_pb2.SearchRequest(
            collection="Docs", limit=3, near_text=base_search_pb2.NearTextSearch(query=["a", "b"])
        )
    )
    assert (near_text["kind"], near_text["texts"]) == ("near_text", ["a", "b"])
    hybrid = wire.search_query(
        search_get_pb2.SearchRequest(
            collection="Docs",
            hybrid_search=base_search_pb2.Hybrid(
                query="cats",
                alpha=0.25,
                fusion_type=base_search_pb2.Hybrid.FUSION_TYPE_RELATIVE_SCORE,
                vector_bytes=_floats(1, 0, 0),
                properties=["title"],
            ),
        )
    )
    assert hybrid["texts"] == ["cats"] and hybrid["vector_dimensions"] == 3
    assert hybrid["details"] == {"alpha": 0.25, "fusion_type": "RelativeScore", "properties": ["title"]}
    bm25 = wire.search_query(
        search_get_pb2.SearchRequest(collection="Docs", bm25_search=base_search_pb2.BM25(query="dogs"))
    )
    assert (bm25["kind"], bm25["texts"], bm25["details"]) == ("bm25", ["dogs"], {})


def test_other_kinds_name_what_they_search_from():
    near_object = wire.search_query(
        search_get_pb2.SearchRequest(collection="Docs", near_object=base_search_pb2.NearObject(id=OBJECT_ID))
    )
    assert near_object["kind"] == "near_object" and near_object["details"] == {"query_object_id": OBJECT_ID}
    image = wire.search_query(
        search_get_pb2.SearchRequest(collection="Docs", near_image=base_search_pb2.NearImageSearch(image="aGVsbG8="))
    )
    assert image["kind"] == "near_image" and "aGVsbG8=" not in repr(image)  # never the image
    fetch = wire.search_query(
        search_get_pb2.SearchRequest(
            collection="Docs",
            limit=10,
            generative=generative_pb2.GenerativeSearch(single_response_prompt="Sum up {text}"),
            group_by=search_get_pb2.GroupBy(path=["author"], number_of_groups=2, objects_per_group=1),
        )
    )
    assert fetch["kind"] == "fetch_objects"
    assert fetch["details"] == {"generative": True, "group_by": ["author"]}
    page = wire.search_query(search_get_pb2.SearchRequest(collection="Docs", limit=100, after=OBJECT_ID))
    assert (page["kind"], page["top_k"], page["details"]) == ("fetch_objects", 100, {"after": OBJECT_ID})


def test_filters_as_plain_json():
    by_reference = base_pb2.Filters(
        operator=base_pb2.Filters.OPERATOR_EQUAL,
        value_text="Ann",
        target=base_pb2.FilterTarget(
            single_target=base_pb2.FilterReferenceSingleTarget(
                on="author", target=base_pb2.FilterTarget(property="name")
            )
        ),
    )
    any_tag = base_pb2.Filters(
        operator=base_pb2.Filters.OPERATOR_CONTAINS_ANY,
        value_text_array=base_pb2.TextArray(values=["a", "b"]),
        target=base_pb2.FilterTarget(property="tags"),
    )
    old_path = base_pb2.Filters(operator=base_pb2.Filters.OPERATOR_IS_NULL, value_boolean=True, on=["summary"])
    either = base_pb2.Filters(operator=base_pb2.Filters.OPERATOR_OR, filters=[by_reference, any_tag, old_path])
    assert wire.filters(either) == {
        "operator": "Or",
        "filters": [
            {"operator": "Equal", "property": "author.name", "value": "Ann"},
            {"operator": "ContainsAny", "property": "tags", "value": ["a", "b"]},
            {"operator": "IsNull", "property": "summary", "value": True},
        ],
    }


def _value(**kind) -> properties_pb2.Value:
    return properties_pb2.Value(**kind)


def test_results_uuids_scores_and_properties_without_vectors_or_blobs():
    fields = {
        "title": _value(text_value="Cats"),
        "views": _value(int_value=7),
        "rating": _value(number_value=4.5),
        "tags": _value(list_value=properties_pb2.ListValue(text_values=properties_pb2.TextValues(values=["a", "b"]))),
        "years": _value(
            list_value=properties_pb2.ListValue(
                int_values=properties_pb2.IntValues(values=struct.pack("<2q", 1999, 2024))
            )
        ),
        "embedding": _value(
            list_value=properties_pb2.ListValue(
                number_values=properties_pb2.NumberValues(values=struct.pack("<2d", 0.1, 0.2))
            )
        ),
        "photo": _value(blob_value="aGVsbG8="),
        "place": _value(geo_value=properties_pb2.GeoCoordinate(latitude=48.5, longitude=2.25)),
        "author": _value(object_value=properties_pb2.Properties(fields={"name": _value(text_value="Ann")})),
        "nothing": _value(null_value=0),
    }
    by_distance = search_get_pb2.SearchResult(
        metadata=search_get_pb2.MetadataResult(
            id_as_bytes=uuid.UUID(OBJECT_ID).bytes, distance=0.25, distance_present=True, vector_bytes=_floats(1, 2)
        ),
        properties=search_get_pb2.PropertiesResult(non_ref_props=properties_pb2.Properties(fields=fields)),
    )
    by_certainty = search_get_pb2.SearchResult(
        metadata=search_get_pb2.MetadataResult(id="b", certainty=0.9, certainty_present=True)
    )
    grouped = search_get_pb2.GroupByResult(
        name="g", objects=[search_get_pb2.SearchResult(metadata=search_get_pb2.MetadataResult(id="c"))]
    )
    reply = search_get_pb2.SearchReply(results=[by_distance, by_certainty], group_by_results=[grouped])
    assert wire.search_results(reply) == [
        {
            "id": OBJECT_ID,
            "score_name": "distance",
            "score": 0.25,
            "properties": {
                "title": "Cats",
                "views": 7,
                "rating": 4.5,
                "tags": ["a", "b"],
                "years": [1999, 2024],
                "place": {"latitude": 48.5, "longitude": 2.25},
                "author": {"name": "Ann"},
            },
        },
        {"id": "b", "score_name": "certainty", "score": pytest.approx(0.9), "properties": None},
        {"id": "c", "score_name": None, "score": None, "properties": None},
    ]


def test_grpc_status_codes_as_http_statuses():
    class Failed(Exception):
        def code(self):
            import grpc

            return grpc.StatusCode.NOT_FOUND

    assert grpc_status.http_status(Failed()) == 404
    assert grpc_status.http_status(ValueError()) is None
