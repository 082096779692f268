"""OTLP/protobuf request bodies, written directly as bytes.

Why not the official encoder: ``opentelemetry-exporter-otlp-proto-common`` builds a protobuf
message object per span, attribute and value and then serialises the tree; for our spans
(~30 attributes, JSON message texts) that costs ~120 µs of the export thread per span, six
times everything else the pipeline does, and holds the GIL the application needs. Writing
the wire format straight from the span is ~5x cheaper.

The output is byte-for-byte what ``encode_spans(spans).SerializeToString()`` produces (same
grouping by resource and scope, same field order, same defaults left out, same span flags),
which ``tests/unit/test_otlp.py`` checks against the official encoder on real and generated
spans; the official encoder stays the reference and the fallback (``encode``).

Field numbers are those of ``opentelemetry/proto/trace/v1/trace.proto`` and
``common/v1/common.proto``; each constant below is a field's tag byte(s): field << 3 | wire type.
"""

from __future__ import annotations

import logging
import struct
from typing import Any, Iterable, Mapping, Sequence, Union

logger = logging.getLogger("posthog_autoinstrument")

_MASK64 = (1 << 64) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

# Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
_REQUEST_RESOURCE_SPANS = b"\x0a"  # ExportTraceServiceRequest.resource_spans = 1
_RESOURCE_SPANS_RESOURCE = b"\x0a"  # ResourceSpans.resource = 1
_RESOURCE_SPANS_SCOPE_SPANS = b"\x12"  # = 2
_RESOURCE_SPANS_SCHEMA_URL = b"\x1a"  # = 3
_RESOURCE_ATTRIBUTES = b"\x0a"  # Resource.attributes = 1
_SCOPE_SPANS_SCOPE = b"\x0a"  # ScopeSpans.scope = 1
_SCOPE_SPANS_SPANS = b"\x12"  # = 2
_SCOPE_SPANS_SCHEMA_URL = b"\x1a"  # = 3
_SCOPE_NAME = b"\x0a"  # InstrumentationScope.name = 1
_SCOPE_VERSION = b"\x12"  # = 2
_SCOPE_ATTRIBUTES = b"\x1a"  # = 3
_SPAN_TRACE_ID = b"\x0a"  # Span.trace_id = 1
_SPAN_SPAN_ID = b"\x12"  # = 2
_SPAN_TRACE_STATE = b"\x1a"  # = 3
_SPAN_PARENT_SPAN_ID = b"\x22"  # = 4
_SPAN_NAME = b"\x2a"  # = 5
_SPAN_KIND = b"\x30"  # = 6, enum
_SPAN_START = b"\x39"  # = 7, fixed64
_SPAN_END = b"\x41"  # = 8, fixed64
_SPAN_ATTRIBUTES = b"\x4a"  # = 9
_SPAN_DROPPED_ATTRIBUTES = b"\x50"  # = 10
_SPAN_EVENTS = b"\x5a"  # = 11
_SPAN_DROPPED_EVENTS = b"\x60"  # = 12
_SPAN_LINKS = b"\x6a"  # = 13
_SPAN_DROPPED_LINKS = b"\x70"  # = 14
_SPAN_STATUS = b"\x7a"  # = 15
_SPAN_FLAGS = b"\x85\x01"  # = 16, fixed32
_EVENT_TIME = b"\x09"  # Span.Event.time_unix_nano = 1, fixed64
_EVENT_NAME = b"\x12"  # = 2
_EVENT_ATTRIBUTES = b"\x1a"  # = 3
_EVENT_DROPPED_ATTRIBUTES = b"\x20"  # = 4
_LINK_TRACE_ID = b"\x0a"  # Span.Link.trace_id = 1
_LINK_SPAN_ID = b"\x12"  # = 2
_LINK_ATTRIBUTES = b"\x22"  # = 4
_LINK_DROPPED_ATTRIBUTES = b"\x28"  # = 5
_LINK_FLAGS = b"\x35"  # = 6, fixed32
_STATUS_MESSAGE = b"\x12"  # Status.message = 2
_STATUS_CODE = b"\x18"  # = 3, enum
_KEY_VALUE_KEY = b"\x0a"  # KeyValue.key = 1
_KEY_VALUE_VALUE = b"\x12"  # = 2
_ANY_STRING = b"\x0a"  # AnyValue.string_value = 1
_ANY_BOOL = b"\x10"  # = 2
_ANY_INT = b"\x18"  # = 3
_ANY_DOUBLE = b"\x21"  # = 4, fixed64
_ANY_ARRAY = b"\x2a"  # = 5
_ANY_KVLIST = b"\x32"  # = 6
_ANY_BYTES = b"\x3a"  # = 7
_LIST_VALUES = b"\x0a"  # ArrayValue.values = 1, KeyValueList.values = 1

# SpanFlags: the span context's is_remote is known, and whether the parent is remote.
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200

_pack_fixed64 = struct.Struct("<Q").pack
_pack_fixed32 = struct.Struct("<I").pack
_pack_double = struct.Struct("<d").pack


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# Lengths and small numbers are nearly always below 16 KiB: look their varints up. Filled by
# the first encode_request (on the export thread), not at import (start-up).
_SMALL_VARINTS: list = []


def fill_small_varints() -> None:
    if not _SMALL_VARINTS:
        _SMALL_VARINTS.extend(
            [bytes((i,)) for i in range(0x80)] + [bytes(((i & 0x7F) | 0x80, i >> 7)) for i in range(0x80, 0x4000)]
        )


def _varint(value: int) -> bytes:
    if value < 0x4000:
        return _SMALL_VARINTS[value]
    return _encode_varint(value)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


_key_fields: dict = {}  # attribute key -> its encoded KeyValue.key field; keys repeat endlessly


def _key_field(key: str) -> bytes:
    encoded = _key_fields.get(key)
    if encoded is None:
        encoded = _field(_KEY_VALUE_KEY, key.encode("utf-8")) if key else b""  # proto3 omits ""
        if len(_key_fields) < 4096:
            _key_fields[key] = encoded
    return encoded


def _any_value(value: Any) -> bytes:
    """An AnyValue message. Oneof members are written even when they hold the default."""
    if value is None:
        return b""
    kind = type(value)
    if kind is str:
        return _field(_ANY_STRING, value.encode("utf-8"))
    if kind is bool:
        return _ANY_BOOL + (b"\x01" if value else b"\x00")
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"{value} does not fit in int64")
        return _ANY_INT + _varint(value & _MASK64)
    if kind is float:
        return _ANY_DOUBLE + _pack_double(value)
    # Structured values (the PostHog copy's messages, tools, parameters, groups): exact types
    # first, as the ABC checks below cost more than the encoding of a short text.
    if kind is dict:
        return _kvlist_value(value)
    if kind is list or kind is tuple:
        return _array_value(value)
    if isinstance(value, bool):
        return _ANY_BOOL + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return _field(_ANY_STRING, value.encode("utf-8"))
    if isinstance(value, int):
        return _any_value(int(value))
    if isinstance(value, float):
        return _ANY_DOUBLE + _pack_double(value)
    if isinstance(value, bytes):
        return _field(_ANY_BYTES, value)
    if isinstance(value, Sequence):
        return _field(_ANY_ARRAY, b"".join(_field(_LIST_VALUES, _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        return _field(_ANY_KVLIST, b"".join(_field(_LIST_VALUES, _key_value(str(k), v)) for k, v in value.items()))
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _array_value(values: Any) -> bytes:
    """An AnyValue{array_value}. Its items are mostly messages or content parts (objects)."""
    varint, out = _varint, []
    for item in values:
        kind = type(item)
        if kind is dict:
            inner = _kvlist_value(item)
        elif kind is str:
            text = item.encode("utf-8")
            inner = _ANY_STRING + varint(len(text)) + text
        elif kind is list:
            inner = _array_value(item)
        else:
            inner = _any_value(item)
        out.append(_LIST_VALUES + varint(len(inner)) + inner)
    payload = b"".join(out)
    return _ANY_ARRAY + varint(len(payload)) + payload


# Small objects whose encoding is remembered: their keys are texts, their values texts, or
# numbers and booleans, keyed with their types as well (1 == 1.0 == True, written otherwise);
# never a zero (0.0 == -0.0, written with their signs).
_TEXT_TYPE = frozenset({str})
_SCALAR_TYPES = frozenset({str, int, float, bool})
_MAX_REMEMBERED_KEYS = 8


def _kvlist_value(value: dict) -> bytes:
    """An AnyValue{kvlist_value}, texts inline: messages are mostly short texts under few keys.
    Small objects of plain values are remembered: a conversation resends its history with every
    call (and its system prompt), and a call site its parameters, so most were encoded before."""
    remembered_key: Any = None
    if len(value) <= _MAX_REMEMBERED_KEYS and _TEXT_TYPE.issuperset(map(type, value)):
        if _TEXT_TYPE.issuperset(map(type, value.values())):
            remembered_key = tuple(value.items())
        else:
            kinds = tuple(map(type, value.values()))
            if _SCALAR_TYPES.issuperset(kinds) and 0.0 not in value.values():
                remembered_key = (tuple(value.items()), kinds)
        if remembered_key is not None:
            encoded = _remembered_objects.get(remembered_key)
            if encoded is not None:
                return encoded
    encoded = _encode_kvlist(value)
    if remembered_key is not None and len(encoded) <= _MAX_REMEMBERED_OBJECT:
        if len(_remembered_objects) >= 1024:
            _remembered_objects.clear()
        _remembered_objects[remembered_key] = encoded
    return encoded


_remembered_objects: dict = {}  # a small object's items (and their types) -> its AnyValue
_MAX_REMEMBERED_OBJECT = 4096


def _encode_kvlist(value: dict) -> bytes:
    varint, key_fields, out = _varint, _key_fields, []
    for key, item in value.items():
        key_field = key_fields.get(key) if type(key) is str else None
        if key_field is None:
            key_field = _key_field(str(key))
        kind = type(item)
        if kind is str:
            text = item.encode("utf-8")
            inner = _ANY_STRING + varint(len(text)) + text
        elif kind is list:  # a message's content items
            inner = _array_value(item)
        elif kind is dict:  # a tool call's function, a schema's properties
            inner = _kvlist_value(item)
        else:
            inner = _any_value(item)
        pair = key_field + _KEY_VALUE_VALUE + varint(len(inner)) + inner
        out.append(_LIST_VALUES + varint(len(pair)) + pair)
    payload = b"".join(out)
    return _ANY_KVLIST + varint(len(payload)) + payload


def _key_value(key: str, value: Any) -> bytes:
    return _key_field(key) + _field(_KEY_VALUE_VALUE, _any_value(value))


# Short values that repeat from span to span (model, provider, server, caller, parameters,
# finish reasons, ports, status codes): attribute key -> {value: its KeyValue message,
# length-prefixed}. A value is a text, an int (never a bool: True == 1) or a one-text tuple;
# a text never equals an int or a tuple, so the three share a key's entries. A key whose values
# keep changing (response ids, token counts) is given up on, so the cache stays small and its
# lookups pay.
_repeated_values: dict[str, dict[Union[str, int, tuple[str]], bytes]] = {}
_MAX_REPEATED_TEXT = 256
_MAX_VALUES_PER_KEY = 64
_VARIED: dict[
    Union[str, int, tuple[str]], bytes
] = {}  # the marker of a key given up on: always empty, so every lookup in it misses


def _remember_value(key: str, value: Union[str, int, tuple[str]], encoded: bytes) -> None:
    values = _repeated_values.get(key)
    if values is None:
        if len(_repeated_values) >= 4096:
            return
        values = _repeated_values[key] = {}
    elif values is _VARIED:
        return
    if len(values) >= _MAX_VALUES_PER_KEY:
        _repeated_values[key] = _VARIED
    else:
        values[value] = encoded


def _attributes(tag: bytes, attributes: Any) -> bytes:
    """Repeated KeyValue fields. A short value seen before under the same key is one lookup;
    strings, the bulk of our attributes, take an inlined path that computes the nested lengths
    instead of building the nested messages."""
    if not attributes:
        return b""
    out: list = []
    extend = out.extend
    key_fields = _key_fields
    repeated = _repeated_values
    small = _SMALL_VARINTS
    for key, value in attributes.items():
        try:
            kind = type(value)
            if kind is str:
                encoded = repeated.get(key, _VARIED).get(value)
                if encoded is not None:
                    extend((tag, encoded))
                    continue
                key_field = key_fields.get(key) or _key_field(key)
                text = value.encode("utf-8")
                length = len(text)
                any_length = length + (2 if length < 0x80 else 3)  # AnyValue{string_value}
                kv_length = len(key_field) + any_length + (2 if any_length < 0x80 else 3)
                if kv_length < 0x4000:
                    if length > _MAX_REPEATED_TEXT:
                        extend(
                            (
                                tag,
                                small[kv_length],
                                key_field,
                                _KEY_VALUE_VALUE,
                                small[any_length],
                                _ANY_STRING,
                                small[length],
                                text,
                            )
                        )
                        continue
                    encoded = b"".join(
                        (
                            small[kv_length],
                            key_field,
                            _KEY_VALUE_VALUE,
                            small[any_length],
                            _ANY_STRING,
                            small[length],
                            text,
                        )
                    )
                    _remember_value(key, value, encoded)
                    extend((tag, encoded))
                    continue
                out.append(_field(tag, key_field + _field(_KEY_VALUE_VALUE, _any_value(value))))
                continue
            if kind is int or (kind is tuple and len(value) == 1 and type(value[0]) is str):
                encoded = repeated.get(key, _VARIED).get(value)
                if encoded is None:
                    key_field = key_fields.get(key) or _key_field(key)
                    if kind is int and 0 <= value < 0x4000:  # a count: inlined, as texts are
                        number = small[value]
                        any_length = 1 + len(number)  # AnyValue{int_value}
                        message = b"".join((key_field, _KEY_VALUE_VALUE, small[any_length], _ANY_INT, number))
                    else:
                        message = key_field + _field(_KEY_VALUE_VALUE, _any_value(value))
                    encoded = _varint(len(message)) + message
                    if len(message) <= _MAX_REPEATED_TEXT:
                        _remember_value(key, value, encoded)
                extend((tag, encoded))
                continue
            key_field = key_fields.get(key) or _key_field(key)
            if kind is list:  # the PostHog copy's messages and tools
                inner = _array_value(value)
                pair = key_field + _KEY_VALUE_VALUE + _varint(len(inner)) + inner
                extend((tag, _varint(len(pair)), pair))
                continue
            if kind is float:
                extend(
                    (
                        tag,
                        small[len(key_field) + 11],
                        key_field,
                        _KEY_VALUE_VALUE,
                        b"\x09",
                        _ANY_DOUBLE,
                        _pack_double(value),
                    )
                )
                continue
            elif kind is bool:
                extend(
                    (
                        tag,
                        small[len(key_field) + 4],
                        key_field,
                        _KEY_VALUE_VALUE,
                        b"\x02",
                        _ANY_BOOL,
                        b"\x01" if value else b"\x00",
                    )
                )
                continue
            out.append(_field(tag, key_field + _field(_KEY_VALUE_VALUE, _any_value(value))))
        except Exception as error:  # as the official encoder: skip what cannot be encoded
            logger.debug("posthog-instrument: failed to encode attribute %s: %s", key, error)
    return b"".join(out)


_LOCAL_FLAGS = _pack_fixed32(_HAS_IS_REMOTE)
_REMOTE_FLAGS = _pack_fixed32(_HAS_IS_REMOTE | _IS_REMOTE)


def _flags(parent) -> bytes:
    return _REMOTE_FLAGS if parent is not None and parent.is_remote else _LOCAL_FLAGS


def _uint(tag: bytes, value: int) -> bytes:
    return tag + _varint(value) if value else b""


def _span(span) -> bytes:
    context = span.context
    parent = span.parent
    out = [
        _SPAN_TRACE_ID,
        b"\x10",
        context.trace_id.to_bytes(16, "big"),
        _SPAN_SPAN_ID,
        b"\x08",
        context.span_id.to_bytes(8, "big"),
    ]
    trace_state = context.trace_state
    if trace_state:
        out.append(_field(_SPAN_TRACE_STATE, ",".join(f"{k}={v}" for k, v in trace_state.items()).encode("utf-8")))
    if parent is not None:
        out += (_SPAN_PARENT_SPAN_ID, b"\x08", parent.span_id.to_bytes(8, "big"))
    if span.name:
        out.append(_field(_SPAN_NAME, span.name.encode("utf-8")))
    # (An enum member's ``_value_``: its ``value`` is a Python-level descriptor, read per span.)
    out += (_SPAN_KIND, _SMALL_VARINTS[span.kind._value_ + 1])
    if span.start_time:
        out += (_SPAN_START, _pack_fixed64(span.start_time))
    if span.end_time:
        out += (_SPAN_END, _pack_fixed64(span.end_time))
    out.append(_attributes(_SPAN_ATTRIBUTES, span.attributes))
    if span.dropped_attributes:
        out.append(_uint(_SPAN_DROPPED_ATTRIBUTES, span.dropped_attributes))
    for event in span.events or ():
        body: list[bytes] = []
        if event.timestamp:
            body += (_EVENT_TIME, _pack_fixed64(event.timestamp))
        if event.name:
            body.append(_field(_EVENT_NAME, event.name.encode("utf-8")))
        body.append(_attributes(_EVENT_ATTRIBUTES, event.attributes))
        body.append(_uint(_EVENT_DROPPED_ATTRIBUTES, event.dropped_attributes))
        out.append(_field(_SPAN_EVENTS, b"".join(body)))
    if span.dropped_events:
        out.append(_uint(_SPAN_DROPPED_EVENTS, span.dropped_events))
    for link in span.links or ():
        body = [
            _LINK_TRACE_ID,
            b"\x10",
            link.context.trace_id.to_bytes(16, "big"),
            _LINK_SPAN_ID,
            b"\x08",
            link.context.span_id.to_bytes(8, "big"),
            _attributes(_LINK_ATTRIBUTES, link.attributes),
            _uint(_LINK_DROPPED_ATTRIBUTES, link.dropped_attributes),
            _LINK_FLAGS,
            _flags(link.context),
        ]
        out.append(_field(_SPAN_LINKS, b"".join(body)))
    if span.dropped_links:
        out.append(_uint(_SPAN_DROPPED_LINKS, span.dropped_links))
    status = span.status
    if status is not None:
        status_body = b""
        if status.description:
            status_body = _field(_STATUS_MESSAGE, status.description.encode("utf-8"))
        code = status.status_code._value_
        if code:
            status_body += _STATUS_CODE + _varint(code)
        out.append(_field(_SPAN_STATUS, status_body))
    out += (_SPAN_FLAGS, _flags(parent))
    return b"".join(out)


def _scope(scope) -> bytes:
    if scope is None:
        return b""
    out = []
    if scope.name:
        out.append(_field(_SCOPE_NAME, scope.name.encode("utf-8")))
    if scope.version:
        out.append(_field(_SCOPE_VERSION, scope.version.encode("utf-8")))
    out.append(_attributes(_SCOPE_ATTRIBUTES, scope.attributes))
    return b"".join(out)


# Encoded resources and scopes: a process has a handful, and every request repeats them.
_encoded_parts: dict = {}


def _cached(kind: str, obj, encode) -> bytes:
    key = (kind, id(obj))
    hit = _encoded_parts.get(key)
    if hit is not None and hit[0] is obj:
        return hit[1]
    encoded = encode(obj)
    if len(_encoded_parts) < 256:
        _encoded_parts[key] = (obj, encoded)
    return encoded


def encode_request(spans: Iterable) -> bytes:
    """An ExportTraceServiceRequest body for ``spans`` (``ReadableSpan``s)."""
    fill_small_varints()
    # Grouped by resource as the official encoder does (by equality), but found by identity
    # first: hashing a Resource serialises its attributes to JSON, ~9 µs a span, and a
    # process's spans nearly always share one Resource object.
    # A span nearly always has the resource and scope of the span before it: then its group is
    # the same list (hashing a scope is a Python-level __hash__).
    grouped: list = []  # (resource, {scope: [encoded span]}) in order of first appearance
    by_id: dict = {}
    last_resource = last_scope = last_group = None
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope or None
        if resource is not last_resource or scope is not last_scope or last_group is None:
            scopes = by_id.get(id(resource))
            if scopes is None:
                scopes = next((s for r, s in grouped if r == resource), None)
                if scopes is None:
                    scopes = {}
                    grouped.append((resource, scopes))
                by_id[id(resource)] = scopes
            last_resource, last_scope, last_group = resource, scope, scopes.setdefault(scope, [])
        last_group.append(_span(span))
    out = []
    for resource, scopes in grouped:
        body = [
            _field(
                _RESOURCE_SPANS_RESOURCE,
                _cached("resource", resource, lambda r: _attributes(_RESOURCE_ATTRIBUTES, r.attributes)),
            )
        ]
        for scope, encoded_spans in scopes.items():
            scope_body = [_field(_SCOPE_SPANS_SCOPE, _cached("scope", scope, _scope))]
            scope_body.extend(_field(_SCOPE_SPANS_SPANS, s) for s in encoded_spans)
            if scope is not None and scope.schema_url:
                scope_body.append(_field(_SCOPE_SPANS_SCHEMA_URL, scope.schema_url.encode("utf-8")))
            body.append(_field(_RESOURCE_SPANS_SCOPE_SPANS, b"".join(scope_body)))
        if resource.schema_url:
            body.append(_field(_RESOURCE_SPANS_SCHEMA_URL, resource.schema_url.encode("utf-8")))
        out.append(_field(_REQUEST_RESOURCE_SPANS, b"".join(body)))
    return b"".join(out)
