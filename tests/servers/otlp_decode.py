"""Turn an OTLP/protobuf trace export into plain Python dicts.

Tests assert on span attributes far more than on protobuf structure, so each
span is flattened into one dict carrying its resource and instrumentation
scope, with ids as lowercase hex and enum values as short names. Decoding goes
through the official ``opentelemetry-proto`` messages, so anything our
exporter gets wrong on the wire fails here the same way it would at PostHog.
"""

from __future__ import annotations

from typing import Any, Optional

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

__all__ = ["decode_export", "any_value", "attributes"]


def decode_export(payload: bytes) -> list[dict]:
    """Parse an ``ExportTraceServiceRequest`` and return its spans in order.

    Raises ``google.protobuf.message.DecodeError`` for bytes that are not a
    valid message.
    """
    request = ExportTraceServiceRequest()
    request.ParseFromString(payload)
    return [
        span_dict(span, resource_spans, scope_spans)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


def span_dict(span: Span, resource_spans: ResourceSpans, scope_spans: ScopeSpans) -> dict:
    return {
        "name": span.name,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex() or None,
        "kind": span.kind,
        "kind_name": _strip_prefix(Span.SpanKind.Name(span.kind), "SPAN_KIND_"),
        "status_code": _strip_prefix(Status.StatusCode.Name(span.status.code), "STATUS_CODE_"),
        "status_message": span.status.message,
        "start_ns": span.start_time_unix_nano,
        "end_ns": span.end_time_unix_nano,
        "attributes": attributes(span.attributes),
        "events": [
            {"name": event.name, "time_ns": event.time_unix_nano, "attributes": attributes(event.attributes)}
            for event in span.events
        ],
        "links": [
            {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(), "attributes": attributes(link.attributes)}
            for link in span.links
        ],
        "resource": attributes(resource_spans.resource.attributes),
        "scope_name": scope_spans.scope.name,
        "scope_version": scope_spans.scope.version,
    }


def attributes(key_values: "list[KeyValue] | Any") -> dict[str, Any]:
    """OTLP ``repeated KeyValue`` as a dict (last duplicate key wins)."""
    return {kv.key: any_value(kv.value) for kv in key_values}


def any_value(value: AnyValue) -> Optional[Any]:
    """An ``AnyValue`` as str/bool/int/float/bytes/list/dict, or None if unset."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind in ("string_value", "bool_value", "int_value", "double_value", "bytes_value"):
        return getattr(value, kind)
    return None


def _strip_prefix(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name
