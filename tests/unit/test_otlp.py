"""Our OTLP writer produces exactly the official encoder's bytes, for every shape of span."""

from __future__ import annotations

import logging

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from posthog_autoinstrument.export import exporter, otlp
from posthog_autoinstrument.export.otlp import encode_request

RESOURCE = Resource({"service.name": "app", "telemetry.sdk.language": "python"})
SCOPE = InstrumentationScope("posthog_autoinstrument", "1.0")


def context(
    span_id: int,
    trace_id: int = 0x0AF7651916CD43DD8448EB211C80319C,
    remote: bool = False,
    state: TraceState | None = None,
) -> SpanContext:
    return SpanContext(trace_id, span_id, is_remote=remote, trace_flags=TraceFlags(1), trace_state=state)


def span(
    attributes=None,
    *,
    span_id: int = 0x00F067AA0BA902B7,
    parent: SpanContext | None = None,
    resource: Resource = RESOURCE,
    scope: InstrumentationScope | None = SCOPE,
    **fields,
) -> ReadableSpan:
    defaults = dict(
        name="chat gpt-4o-mini",
        kind=SpanKind.CLIENT,
        start_time=1_700_000_000_000_000_000,
        end_time=1_700_000_000_250_000_000,
        status=Status(StatusCode.UNSET),
    )
    defaults.update(fields)
    return ReadableSpan(
        context=context(span_id),
        parent=parent,
        resource=resource,
        attributes=attributes or {},
        instrumentation_scope=scope,
        **defaults,
    )


def assert_same_bytes(spans: list) -> None:
    ours = encode_request(spans)
    official = encode_spans(spans).SerializeToString()
    assert ours == official
    # and it parses as what it claims to be
    request = ExportTraceServiceRequest()
    request.ParseFromString(ours)
    assert sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans) == len(spans)


def test_a_typical_generation_span():
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 300,
        "gen_ai.request.stream": False,
        "gen_ai.usage.input_tokens": 1234,
        "gen_ai.usage.output_tokens": 56_789_012,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.input.messages": '[{"role":"user","parts":[]}]' * 20,
        "posthog.distinct_id": "user-ü-😀",
        "$process_person_profile": True,
    }
    assert_same_bytes([span(attributes)])


def test_every_value_type_and_edge_of_varint_lengths():
    attributes = {
        "empty": "",
        "short": "x",
        "127": "a" * 125,
        "128": "a" * 126,
        "16383": "b" * 16_370,
        "big": "c" * 70_000,
        "zero": 0,
        "negative": -1,
        "int64 min": -(1 << 63),
        "int64 max": (1 << 63) - 1,
        "16384": 16_384,
        "false": False,
        "true": True,
        "float": -0.0,
        "nan-free float": 1e300,
        "strings": ["a", "", "é"],
        "ints": [1, -2, 3],
        "floats": [0.5],
        "bools": [True, False],
        "empty list": [],
        "bytes": b"\x00\x01",
        "tuple": ("x", "y"),
    }
    assert_same_bytes([span(attributes)])


def test_texts_seen_before_and_keys_whose_texts_keep_changing():
    # The writer remembers short texts per key; what it remembers must not change the bytes:
    # not a second time, not when a key's texts keep changing (ids), not for values equal to
    # a remembered one but of another type ((1,) == (True,)).
    first = span(
        {
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.finish_reasons": ("stop",),
            "tuple": (1,),
            "float": 0.25,
            "empty": "",
        }
    )
    assert_same_bytes([first, first])
    changing = [
        span(
            {
                "gen_ai.response.id": f"chatcmpl-{n}",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.finish_reasons": (f"reason-{n % 70}",),
            },
            span_id=n + 1,
        )
        for n in range(200)
    ]
    assert_same_bytes(changing)
    assert_same_bytes(changing)
    assert len(otlp._repeated_values["gen_ai.response.id"]) <= otlp._MAX_VALUES_PER_KEY  # memory stays bounded
    assert_same_bytes([span({"tuple": (True,), "float": 0.25, "gen_ai.response.finish_reasons": ("stop",)})])


def test_numbers_seen_before_and_keys_whose_numbers_keep_changing():
    # Ints are remembered per key like texts: never for a bool or a float equal to one (1 == True
    # == 1.0), a text or a tuple under the same key, and not once a key's numbers keep changing.
    for value in (1, True, 1.0, "1", ("1",), 1, -1, 1 << 40, 0, False, 0.0, -0.0, 0):
        assert_same_bytes([span({"n": value, "port": 443}), span({"n": value, "port": 443})])
    counts = [span({"gen_ai.usage.input_tokens": n * 37, "port": 443}, span_id=n + 1) for n in range(150)]
    assert_same_bytes(counts)
    assert_same_bytes(counts)
    assert otlp._repeated_values["gen_ai.usage.input_tokens"] is otlp._VARIED


def test_values_the_official_encoder_skips_are_skipped_too(caplog):
    caplog.set_level(logging.CRITICAL)  # the official encoder logs its skips loudly
    assert_same_bytes([span({"too big": 1 << 64, "fine": "yes", "object": object()})])


def test_errors_events_links_remote_parents_trace_state_and_dropped_counts():
    parent = context(0x1111111111111111, remote=True)
    first = span(
        {"error.type": "RateLimitError"},
        parent=parent,
        status=Status(StatusCode.ERROR, "429: slow down"),
        events=[
            Event(
                "exception",
                {"exception.type": "RateLimitError", "exception.message": "slow"},
                timestamp=1_700_000_000_100_000_000,
            )
        ],
        links=[
            Link(context(0x2222222222222222, remote=True), {"link.kind": "follows"}),
            Link(context(0x3333333333333333)),
        ],
    )
    second = ReadableSpan(
        name="invoke_agent",
        context=context(0x4444, state=TraceState([("vendor", "value")])),
        parent=context(0x1111111111111111),
        resource=RESOURCE,
        attributes={"a": 1},
        kind=SpanKind.INTERNAL,
        status=Status(StatusCode.OK),
        instrumentation_scope=SCOPE,
        start_time=1,
        end_time=2,
    )
    assert_same_bytes([first, second])


def test_grouping_by_resource_and_scope_with_schema_urls():
    other_resource = Resource({"service.name": "worker"}, schema_url="https://opentelemetry.io/schemas/1.30.0")
    other_scope = InstrumentationScope("com.anthropic.sdk.python", "2.14.0", "https://schema", {"scope.attr": "v"})
    spans = [
        span({"n": 1}, span_id=1),
        span({"n": 2}, span_id=2, scope=other_scope),
        span({"n": 3}, span_id=3, resource=other_resource),
        span({"n": 4}, span_id=4, scope=None),
        span({"n": 5}, span_id=5),
        span({"n": 6}, span_id=6),
        span({"n": 7}, span_id=7, resource=Resource(dict(RESOURCE.attributes))),  # equal, not the same
        span({"n": 8}, span_id=8, scope=InstrumentationScope(SCOPE.name, SCOPE.version)),
        span({"n": 9}, span_id=9, resource=other_resource),
    ]
    assert_same_bytes(spans)
    assert_same_bytes(spans)  # the second time from the resource and scope caches


def test_a_span_it_cannot_write_goes_through_the_official_encoder():
    odd = span({"a": "b"})
    odd._kind = None  # not something we write: the official encoder decides what happens
    try:
        expected = encode_spans([odd]).SerializeToString()
    except Exception:
        expected = None
    try:
        body = exporter.encode([odd])
    except Exception:
        body = None
    assert body == expected


scalars = st.one_of(
    st.text(max_size=300),
    st.booleans(),
    st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    st.floats(allow_nan=False),
    st.binary(max_size=40),
)
values = st.one_of(scalars, st.lists(st.one_of(st.text(max_size=20), st.integers(-5, 5)), max_size=4))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(max_size=40), values, max_size=12),
    st.text(max_size=50),
    st.sampled_from(list(SpanKind)),
    st.sampled_from(list(StatusCode)),
    st.text(max_size=30),
)
def test_any_attributes_name_kind_and_status(attributes, name, kind, code, description):
    status = Status(code, description if code is StatusCode.ERROR else None)
    assert_same_bytes([span(attributes, name=name, kind=kind, status=status)])


def test_structured_values_the_posthog_copy_sends():
    # Messages, tools and parameters as key-value lists and arrays, the same bytes as the official
    # encoder's; small objects of texts are remembered, and must not stand in for others.
    messages = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    ]
    attributes = {
        "$ai_input": messages,
        "$ai_model_parameters": {"temperature": 0.2, "stream": True, "n": 1},
        "flags": [{"a": True}, {"a": 1}, {"a": "1"}, {"a": 1.0}, {"a": 0.0}, {"a": -0.0}, {1: "x"}, {True: "x"}],
        "$groups": {"company": "acme"},
        "empty": {},
        "$ai_tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "nested": [["a", 1], [], [{"b": ["c"]}]],
    }
    for _ in range(2):
        assert_same_bytes([span(attributes)])
