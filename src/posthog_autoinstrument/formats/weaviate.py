"""Weaviate's gRPC ``Search`` call as weaviate-client v4 sends it: a ``weaviate.v1.SearchRequest``
answered by a ``SearchReply``.

Every query of a v4 collection (``near_text``, ``near_vector``, ``hybrid``, ``bm25``,
``near_object``, the media searches, ``fetch_objects`` and their ``generate`` twins) is one such
request, so one translation reads them all:

* ``search_query``: the collection, the kind of search (which of the request's search fields is
  set; none is ``fetch_objects``), its text, the dimensions of its vector (never the vector), the
  limit as top-k and the filters as plain JSON;
* ``search_results``: each returned object's uuid, its distance, score or certainty (whichever
  the app asked for), and its properties; number arrays and blobs are left out (a number array
  may be an embedding, a blob an image).

Enum fields (filter operators, vector types, fusion types) are read by their names in the
message's own descriptor, never by number. Nothing here imports the client: any message with
these fields is read.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any, Optional

# The request's search fields, by the name of the collection query method that sets each.
SEARCH_KINDS = (
    ("near_text", "near_text"),
    ("near_vector", "near_vector"),
    ("hybrid_search", "hybrid"),
    ("bm25_search", "bm25"),
    ("near_object", "near_object"),
    ("near_image", "near_image"),
    ("near_audio", "near_audio"),
    ("near_video", "near_video"),
    ("near_depth", "near_depth"),
    ("near_thermal", "near_thermal"),
    ("near_imu", "near_imu"),
)
_FLOAT32 = 4


def _has(message: Any, name: str) -> bool:
    try:
        return message.HasField(name)
    except (ValueError, AttributeError):
        return False


def enum_name(message: Any, name: str) -> Optional[str]:
    """The name of an enum field's value, None when unset or unknown."""
    try:
        number = getattr(message, name)
        value = message.DESCRIPTOR.fields_by_name[name].enum_type.values_by_number.get(number)
        return value.name if value is not None and number else None
    except Exception:
        return None


def _camel(name: Optional[str], prefix: str) -> Optional[str]:
    """``OPERATOR_GREATER_THAN`` as ``GreaterThan`` (the name the client's API uses)."""
    if not name or not name.startswith(prefix):
        return name
    return "".join(word.capitalize() for word in name[len(prefix) :].split("_"))


def vector_shape(message: Any) -> tuple:
    """(dimensions, count) of the vector a ``NearVector`` or ``Hybrid`` message carries, or
    (None, 0) when it carries none."""
    if getattr(message, "vector_bytes", b""):
        return len(message.vector_bytes) // _FLOAT32, 1
    if len(getattr(message, "vector", ())):
        return len(message.vector), 1
    for vectors in getattr(message, "vectors", ()):
        data = vectors.vector_bytes
        if enum_name(vectors, "type") == "VECTOR_TYPE_MULTI_FP32" and len(data) >= 2:
            dimensions = struct.unpack("<H", data[:2])[0]
            return dimensions, (len(data) - 2) // (_FLOAT32 * dimensions) if dimensions else 0
        return len(data) // _FLOAT32, 1
    for target in getattr(message, "vector_for_targets", ()):  # one vector per target vector
        if target.vector_bytes:
            return len(target.vector_bytes) // _FLOAT32, 1
        if len(target.vectors):
            return vector_shape(target)
    per_target = getattr(message, "vector_per_target", None)  # a map: target name -> vector
    for data in (per_target or {}).values():
        return len(data) // _FLOAT32, 1
    return None, 0


def _target_vectors(message: Any) -> Optional[list]:
    names = list(getattr(message, "target_vectors", ()))
    targets = getattr(message, "targets", None)
    if not names and targets is not None:
        names = list(getattr(targets, "target_vectors", ()))
    return names or None


def _filter_target(message: Any) -> Optional[str]:
    """The property a filter tests: a name, ``ref.property`` through a reference, or
    ``count(ref)``; the old ``on`` path where the client sends that."""
    if _has(message, "target"):
        target = message.target
        which = target.WhichOneof("target")
        if which == "property":
            return target.property
        if which == "single_target":
            inner = _filter_target(target.single_target)
            return f"{target.single_target.on}.{inner}" if inner else target.single_target.on
        if which == "multi_target":
            inner = _filter_target(target.multi_target)
            return f"{target.multi_target.on}.{inner}" if inner else target.multi_target.on
        if which == "count":
            return f"count({target.count.on})"
    path = list(getattr(message, "on", ()))
    return ".".join(path) if path else None


def _filter_value(message: Any) -> Any:
    which = message.WhichOneof("test_value")
    if which is None:
        return None
    value = getattr(message, which)
    if which == "value_geo":
        return {"latitude": value.latitude, "longitude": value.longitude, "distance": value.distance}
    if hasattr(value, "values"):
        return list(value.values)
    return value


def filters(message: Any) -> dict:
    """A ``Filters`` message as ``{"operator", "property", "value"}``, or ``{"operator",
    "filters"}`` for ``And`` / ``Or``."""
    operator = _camel(enum_name(message, "operator"), "OPERATOR_")
    if message.filters:
        return {"operator": operator, "filters": [filters(f) for f in message.filters]}
    entry: dict = {"operator": operator, "property": _filter_target(message)}
    value = _filter_value(message)
    if value is not None:
        entry["value"] = value
    return entry


def search_kind(request: Any) -> str:
    """The collection query method that made the request (``fetch_objects`` when none searches)."""
    for field_name, kind in SEARCH_KINDS:
        if _has(request, field_name):
            return kind
    return "fetch_objects"


def search_query(request: Any) -> dict:
    """What a ``SearchRequest`` asks: ``collection``, ``kind``, ``texts`` (the query text, if
    any), ``vector_dimensions`` and ``vector_count`` (if it carries a vector), ``top_k`` and
    ``details`` (filters, tenant, the object a ``near_object`` starts from, hybrid's alpha and
    fusion, target vectors, offset, the ``after`` cursor, autocut), each None or absent when not asked."""
    kind = search_kind(request)
    query: dict = {
        "collection": request.collection or None,
        "kind": kind,
        "texts": None,
        "vector_dimensions": None,
        "vector_count": 1,
        "top_k": request.limit or None,
    }
    details: dict = {}
    search = None
    if kind == "near_text":
        search = request.near_text
        query["texts"] = list(search.query)
    elif kind == "bm25":
        search = request.bm25_search
        query["texts"] = [search.query]
        details["properties"] = list(search.properties) or None
    elif kind == "hybrid":
        search = request.hybrid_search
        query["texts"] = [search.query] if search.query else None
        details["alpha"] = round(search.alpha, 6)
        details["fusion_type"] = _camel(enum_name(search, "fusion_type"), "FUSION_TYPE_")
        details["properties"] = list(search.properties) or None
        vector = search.near_vector if _has(search, "near_vector") else search
        dimensions, count = vector_shape(vector)
        if dimensions is not None:
            query["vector_dimensions"], query["vector_count"] = dimensions, count
        elif _has(search, "near_text"):
            details["near_text"] = list(search.near_text.query)
    elif kind == "near_vector":
        search = request.near_vector
        dimensions, count = vector_shape(search)
        query["vector_dimensions"], query["vector_count"] = dimensions, count or 1
    elif kind == "near_object":
        search = request.near_object
        details["query_object_id"] = search.id
    elif kind != "fetch_objects":
        search = getattr(request, kind)
    if search is not None:
        details["target_vectors"] = _target_vectors(search)
        for bound in ("distance", "certainty"):
            if _has(search, bound):
                details[bound] = getattr(search, bound)
    if _has(request, "filters"):
        details["filters"] = filters(request.filters)
    details["tenant"] = request.tenant or None
    details["offset"] = request.offset or None
    details["after"] = request.after or None  # the cursor of an iterator's page
    details["autocut"] = request.autocut or None
    if _has(request, "group_by"):
        details["group_by"] = list(request.group_by.path)
    if _has(request, "generative"):
        details["generative"] = True
    query["details"] = {name: value for name, value in details.items() if value is not None}
    return query


def _object_id(metadata: Any) -> Optional[str]:
    if metadata.id:
        return metadata.id
    raw = getattr(metadata, "id_as_bytes", b"")
    return str(uuid.UUID(bytes=raw)) if len(raw) == 16 else None


def _score(metadata: Any) -> tuple:
    """(name, value) of the object's relevance: a distance (lower is closer), else a score
    (bm25, hybrid), else a certainty, else a reranker's score; (None, None) when none came."""
    for name in ("distance", "score", "certainty"):
        if getattr(metadata, f"{name}_present", False):
            return name, getattr(metadata, name)
    if getattr(metadata, "rerank_score_present", False):
        return "rerank_score", metadata.rerank_score
    return None, None


def _list(message: Any) -> Optional[list]:
    which = message.WhichOneof("kind")
    if which in ("text_values", "date_values", "uuid_values", "bool_values"):
        return list(getattr(message, which).values)
    if which == "int_values":
        data = message.int_values.values
        return list(struct.unpack(f"<{len(data) // 8}q", data))
    if which == "object_values":
        return [properties(p) for p in message.object_values.values]
    if which is None and len(message.values):  # the older, untyped form
        return [v for v in (value(item) for item in message.values) if v is not None]
    return None  # number arrays (maybe embeddings)


def value(message: Any) -> Any:
    """One property ``Value`` as JSON; None for blobs, number arrays and nulls."""
    which = message.WhichOneof("kind")
    if which in ("text_value", "string_value", "date_value", "uuid_value", "number_value", "int_value", "bool_value"):
        return getattr(message, which)
    if which == "object_value":
        return properties(message.object_value)
    if which == "list_value":
        return _list(message.list_value)
    if which == "geo_value":
        return {"latitude": message.geo_value.latitude, "longitude": message.geo_value.longitude}
    if which == "phone_value":
        return message.phone_value.input or message.phone_value.international_formatted or None
    return None


def properties(message: Any) -> dict:
    """A ``Properties`` message as a dict of its JSON-able values."""
    found = {}
    for name, item in message.fields.items():
        converted = value(item)
        if converted is not None:
            found[name] = converted
    return found


def _result(result: Any) -> dict:
    metadata = result.metadata
    score_name, score = _score(metadata)
    entry = {"id": _object_id(metadata), "score_name": score_name, "score": score, "properties": None}
    if _has(result, "properties") and _has(result.properties, "non_ref_props"):
        entry["properties"] = properties(result.properties.non_ref_props)
    return entry


def search_results(reply: Any) -> list:
    """The objects a ``SearchReply`` returns, in order (a ``group_by`` query's, group after
    group): each ``{"id", "score_name", "score", "properties"}``."""
    results = [_result(r) for r in reply.results]
    for group in getattr(reply, "group_by_results", ()):
        results += [_result(r) for r in group.objects]
    return results
