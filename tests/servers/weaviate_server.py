"""A loopback stand-in for a Weaviate server as weaviate-client v4 uses it: the REST endpoints it
reads on connecting (``GET /v1/meta``, ``/v1/.well-known/ready``,
``/v1/.well-known/openid-configuration`` answered 404: no authentication) over HTTP, and the
gRPC ``weaviate.v1.Weaviate`` service's ``Search``, built from the client's own protobuf
definitions (``weaviate.proto.v1``), both on 127.0.0.1 without TLS::

    weaviate.connect_to_local(host="127.0.0.1", port=http_port, grpc_port=grpc_port,
                              skip_init_checks=True)

It holds one collection, ``City``, of three objects (``OBJECTS``: fixed uuids, 3-dimensional
vectors, ``city`` / ``country`` / ``text`` / ``population`` properties) and searches it as
Weaviate does, simply:

* ``near_vector``: cosine distance to the query vector (``vector_bytes``, float32);
* ``near_text``: a stand-in embedding, the words an object's text shares with the query (the
  distance is 1 - shared words / query words);
* ``bm25``: objects whose text has a query word, scored by the number of such words;
  ``hybrid``: every object, scored by the same count;
* neither: ``fetch_objects``, in stored order;

then filters (``Equal`` / ``NotEqual`` on text, ``GreaterThan`` / ``LessThan`` on ints, ``And``,
``Or``), ``limit``, and returns what the request's ``MetadataRequest`` and
``PropertiesRequest`` ask for (uuid, distance, certainty, score, the vector). Any other
collection fails with ``NOT_FOUND``, as Weaviate reports a class missing from the schema.
"""

from __future__ import annotations

import math
import struct
import threading
import uuid
from concurrent import futures

import grpc
from weaviate.proto.v1 import (
    base_pb2,
    properties_pb2,
    search_get_pb2,
    weaviate_pb2_grpc,
)

from ._http import BaseHandler, RecordingServer

COLLECTION = "City"
SERVER_VERSION = "1.32.4"
OBJECTS = (
    (
        "3f1c2a6e-0d4b-4c6e-9a51-1a2b3c4d5e01",
        [1.0, 0.0, 0.0],
        {"city": "Paris", "country": "France", "text": "Paris is the capital of France.", "population": 2100000},
    ),
    (
        "3f1c2a6e-0d4b-4c6e-9a51-1a2b3c4d5e02",
        [0.0, 1.0, 0.0],
        {"city": "Berlin", "country": "Germany", "text": "Berlin is the capital of Germany.", "population": 3700000},
    ),
    (
        "3f1c2a6e-0d4b-4c6e-9a51-1a2b3c4d5e03",
        [0.0, 0.0, 1.0],
        {"city": "Madrid", "country": "Spain", "text": "Madrid is the capital of Spain.", "population": 3300000},
    ),
)


def _words(text: str) -> set:
    return {w.strip(".,?!").lower() for w in text.split()} - {"", "is", "the", "of", "a"}


def _floats(data: bytes) -> list:
    return list(struct.unpack(f"<{len(data) // 4}f", data))


def _query_vector(near_vector) -> list:
    if near_vector.vector_bytes:
        return _floats(near_vector.vector_bytes)
    if len(near_vector.vectors):
        return _floats(near_vector.vectors[0].vector_bytes)
    return list(near_vector.vector)


def _cosine_distance(a: list, b: list) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(x * x for x in b))
    return 1.0 - (sum(x * y for x, y in zip(a, b)) / norm if norm else 0.0)


def _matches(condition, properties: dict) -> bool:
    operator = base_pb2.Filters.Operator.Name(condition.operator)
    if operator == "OPERATOR_AND":
        return all(_matches(f, properties) for f in condition.filters)
    if operator == "OPERATOR_OR":
        return any(_matches(f, properties) for f in condition.filters)
    name = condition.target.property if condition.HasField("target") else condition.on[0]
    actual = properties.get(name)
    expected = getattr(condition, condition.WhichOneof("test_value"))
    return {
        "OPERATOR_EQUAL": lambda: actual == expected,
        "OPERATOR_NOT_EQUAL": lambda: actual != expected,
        "OPERATOR_GREATER_THAN": lambda: actual > expected,
        "OPERATOR_LESS_THAN": lambda: actual < expected,
    }[operator]()


def _ranked(request) -> list:
    """(uuid, vector, properties, distance or None, score or None) in the order found."""
    if request.HasField("near_vector"):
        query = _query_vector(request.near_vector)
        found = [(*o, _cosine_distance(query, o[1]), None) for o in OBJECTS]
        return sorted(found, key=lambda f: f[3])
    if request.HasField("near_text"):
        words = _words(" ".join(request.near_text.query))
        found = [(*o, 1.0 - len(words & _words(o[2]["text"])) / max(1, len(words)), None) for o in OBJECTS]
        return sorted(found, key=lambda f: f[3])
    for field in ("bm25_search", "hybrid_search"):
        if request.HasField(field):
            words = _words(getattr(request, field).query)
            found = [(*o, None, float(len(words & _words(o[2]["text"])))) for o in OBJECTS]
            if field == "bm25_search":
                found = [f for f in found if f[4] > 0]
            return sorted(found, key=lambda f: -f[4])
    return [(*o, None, None) for o in OBJECTS]


def _value(value) -> properties_pb2.Value:
    if isinstance(value, int):
        return properties_pb2.Value(int_value=value)
    return properties_pb2.Value(text_value=value)


def _result(request, found) -> search_get_pb2.SearchResult:
    object_id, vector, properties, distance, score = found
    asked = request.metadata
    # The client reads the uuid from its 16 bytes; the string form is sent beside them.
    metadata = search_get_pb2.MetadataResult(id=object_id, id_as_bytes=uuid.UUID(object_id).bytes)
    if asked.distance and distance is not None:
        metadata.distance, metadata.distance_present = distance, True
    if asked.certainty and distance is not None:
        metadata.certainty, metadata.certainty_present = 1.0 - distance / 2, True
    if asked.score and score is not None:
        metadata.score, metadata.score_present = score, True
    if asked.vector or len(asked.vectors):
        data = struct.pack(f"<{len(vector)}f", *vector)
        metadata.vectors.append(base_pb2.Vectors(name="default", vector_bytes=data))
        metadata.vector_bytes = data
    names = list(request.properties.non_ref_properties)
    if request.properties.return_all_nonref_properties or not request.HasField("properties"):
        names = list(properties)
    returned = properties_pb2.Properties(fields={n: _value(properties[n]) for n in names if n in properties})
    return search_get_pb2.SearchResult(
        metadata=metadata,
        properties=search_get_pb2.PropertiesResult(non_ref_props=returned, target_collection=COLLECTION),
    )


class _Weaviate(weaviate_pb2_grpc.WeaviateServicer):
    def __init__(self, owner: "FakeWeaviate"):
        self.owner = owner

    def Search(self, request, context):  # noqa: N802 (the service's method name)
        self.owner._record_search(request)
        if request.collection != COLLECTION:
            context.abort(grpc.StatusCode.NOT_FOUND, f"could not find class {request.collection} in schema")
        found = [f for f in _ranked(request) if not request.HasField("filters") or _matches(request.filters, f[2])]
        if request.limit:
            found = found[: request.limit]
        return search_get_pb2.SearchReply(took=0.001, results=[_result(request, f) for f in found])


class _RestHandler(BaseHandler):
    server_version = "fake-weaviate/1"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        path, _ = self.split_path()
        if path == "/v1/meta":
            return self.send_json(
                200,
                {
                    "hostname": "http://[::]:8080",
                    "version": SERVER_VERSION,
                    "modules": {},
                    "grpcMaxMessageSize": 104858000,
                },
            )
        if path in ("/v1/.well-known/ready", "/v1/.well-known/live"):
            return self.send_body(200, b"", "application/json")
        self.send_json(404, {"error": [{"message": f"no route {path}"}]})


class FakeWeaviate(RecordingServer):
    """Weaviate's REST API on ``http_port`` and its gRPC API on ``grpc_port``, both 127.0.0.1."""

    def __init__(self) -> None:
        super().__init__()
        self.handler_class = _RestHandler
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        weaviate_pb2_grpc.add_WeaviateServicer_to_server(_Weaviate(self), self._grpc)
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._lock = threading.Lock()
        self.searches: list = []  # each SearchRequest received, as received

    @property
    def http_port(self) -> int:
        return self.port

    def _record_search(self, request) -> None:
        with self._lock:
            self.searches.append(request)

    def __enter__(self) -> "FakeWeaviate":
        super().__enter__()
        self._grpc.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._grpc.stop(grace=None)
        super().__exit__(*exc_info)
