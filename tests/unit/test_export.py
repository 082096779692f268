"""Batching within PostHog's limits, retries, and a processor that never blocks the app."""

import gzip
import threading
import time
from dataclasses import replace

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from posthog_autoinstrument import config
from posthog_autoinstrument.export import PostHogSpanProcessor
from posthog_autoinstrument.export.egress import environment_proxy
from posthog_autoinstrument.export.exporter import MAX_REQUEST_BYTES, PostHogSender, _retry_after, split_into_requests

SETTINGS = replace(config.load({"POSTHOG_API_KEY": "phc_x"}), schedule_delay=0.01, flush_timeout=2.0)


def ai_span(i=0, size=10):
    context = SpanContext(trace_id=i + 1, span_id=i + 1, is_remote=False, trace_flags=TraceFlags(1))
    return ReadableSpan(
        name=f"chat {i}",
        context=context,
        start_time=1,
        end_time=2,
        attributes={"gen_ai.operation.name": "chat", "gen_ai.input.messages": "x" * size},
    )


def test_requests_hold_at_most_100_spans():
    bodies = split_into_requests([ai_span(i) for i in range(250)])
    assert sorted(count for count, _ in bodies) == [50, 100, 100]


def test_requests_stay_under_the_size_limit():
    bodies = split_into_requests([ai_span(i, size=400_000) for i in range(20)])
    assert sum(count for count, _ in bodies) == 20
    assert all(len(body) <= MAX_REQUEST_BYTES for _, body in bodies)


def test_retry_after_parsing():
    assert _retry_after("2") == 2.0
    assert _retry_after("999") == 60.0
    assert _retry_after(None) is None and _retry_after("soon") is None


def test_sender_takes_the_proxy_httpx_would_take_from_the_environment(monkeypatch):
    for name in (
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    endpoint = "https://us.i.posthog.com/i/v0/ai/otel"
    assert environment_proxy(endpoint) is None
    monkeypatch.setenv("HTTPS_PROXY", "proxy.internal:3128")
    assert environment_proxy(endpoint) == "http://proxy.internal:3128"
    assert environment_proxy("http://localhost:8000/i/v0/ai/otel") is None  # only HTTPS_PROXY is set
    monkeypatch.setenv("NO_PROXY", "localhost,.posthog.com")
    assert environment_proxy(endpoint) is None


def test_sender_retries_then_delivers(posthog):
    posthog.plan = ["503", "502", "200"]
    sender = PostHogSender(posthog.endpoint, "phc_x", timeout=2)
    ((_, body),) = split_into_requests([ai_span()])
    delivery = sender.send(body, time.monotonic() + 10, lambda: False)
    assert delivery.ok and len(posthog.requests) == 3 and len(posthog.spans) == 1
    assert gzip.decompress(posthog.requests[-1]["raw"]) == body
    assert [r["status"] for r in posthog.requests] == [503, 502, 200]


def test_sender_does_not_retry_a_rejection(posthog, capsys):
    posthog.plan = ["400"]
    sender = PostHogSender(posthog.endpoint, "phc_x", timeout=2)
    ((_, body),) = split_into_requests([ai_span()])
    assert not sender.send(body, time.monotonic() + 10, lambda: False).ok
    assert len(posthog.requests) == 1
    assert "400" in capsys.readouterr().err


def test_sender_gives_up_at_the_deadline_on_a_dead_endpoint():
    sender = PostHogSender("http://127.0.0.1:9/i/v0/ai/otel", "phc_x", timeout=0.5)
    ((_, body),) = split_into_requests([ai_span()])
    started = time.monotonic()
    assert not sender.send(body, started + 1.0, lambda: False).ok
    assert time.monotonic() - started < 1.5


class RecordingSender:
    def __init__(self, block: threading.Event | None = None):
        self.block = block
        self.bodies = []

    def send(self, body, deadline, stopping):
        if self.block is not None:
            # The processor passes a function returning the deadline, as PostHogSender accepts.
            deadline_at = deadline() if callable(deadline) else deadline
            self.block.wait(max(deadline_at - time.monotonic(), 0))
        self.bodies.append(body)
        from posthog_autoinstrument.export.exporter import Delivery

        return Delivery(True, 200)

    def close(self):
        pass


def test_processor_ships_only_ai_spans_on_flush():
    sender = RecordingSender()
    processor = PostHogSpanProcessor(sender, SETTINGS)
    processor.on_end(ai_span(1))
    processor.on_end(ReadableSpan(name="GET /", attributes={"http.method": "GET"}))
    assert processor.force_flush(2000)
    assert processor.exported == 1
    processor.shutdown()


def test_a_busy_app_gets_full_requests_not_one_per_span():
    # Spans arrive steadily while each request takes a while: the export must still batch them
    # (one request per 100 spans or per interval), not send what trickled in during the last one.
    class SlowSender(RecordingSender):
        def send(self, body, deadline, stopping):
            time.sleep(0.02)
            return super().send(body, deadline, stopping)

    sender = SlowSender()
    processor = PostHogSpanProcessor(sender, replace(SETTINGS, schedule_delay=30.0))
    for i in range(250):
        processor.on_end(ai_span(i))
        time.sleep(0.001)
    assert processor.force_flush(5000)
    assert processor.exported == 250
    assert len(sender.bodies) == 4  # the first span at once, then 100, 100, and the 49 the flush sent
    processor.shutdown()


def test_processor_drops_beyond_its_bound_without_waiting(capsys):
    gate = threading.Event()
    processor = PostHogSpanProcessor(
        RecordingSender(block=gate), replace(SETTINGS, max_queue_size=5, flush_timeout=0.2)
    )
    started = time.perf_counter()
    for i in range(200):
        processor.on_end(ai_span(i))
    elapsed = time.perf_counter() - started
    assert processor.dropped >= 195 - 100  # at most one batch in flight plus the bounded queue
    # The export is blocked for its batch deadline (60 s): an app thread that waited on it
    # would take that long. (A tight bound here only measures how loaded the machine is.)
    assert elapsed < 5.0
    processor.shutdown()
    gate.set()
    err = capsys.readouterr().err
    assert err.count("falling behind") == 1
    assert "could not be delivered" in err
