"""Export throughput of our pipeline on one core, and the application thread's cost per span.

Run as ``python export.py --sink URL --spans N`` (the harness does); prints one JSON line.
Spans are real: chat calls on canned completions recorded by our OpenAI adapter, with content
capture on, as in production: direct, so the export thread also runs the translation of each
call's request and response and builds its span (see genai.recording.DirectRecording). Measured:

- steady flow (the budget's figure): calls handed over as an app makes them, 100 (one
  request) at a time, each batch just recorded, exported before the next; spans per second of
  the process's CPU time (immune to other load on a shared machine) and of wall time;
- end to end, a backlog: the recorded calls of N chat calls handed to the processor at once,
  then ``force_flush`` until all are delivered to the loopback stand-in; slower, since calls
  recorded long before have left the caches by the time they are exported;
- ``on_direct_end`` (a direct call's ``on_end``) alone on the application thread, in runs of
  99 spans so the export thread stays asleep (the cost an app pays per span), in thread CPU time;
- the export thread's stages one by one, µs of thread CPU per span: building the span
  (deferred translation), PostHog copy (privacy, dialect), OTLP encoding, gzip, HTTP POST.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gzip
import os
import time

from common import API_KEY, WORKER_CPU, emit, median, pin_to_cpu


class _Collector:
    """Stands where our processor stands and keeps the calls the adapter records direct."""

    def __init__(self):
        self.calls: list = []

    def on_start(self, span, parent_context=None) -> None:
        pass

    def on_end(self, span) -> None:
        raise AssertionError("expected direct calls, got an SDK span")

    def on_direct_start(self, span_id, parent_context=None):
        return None

    def on_direct_end(self, call, span_id, parent, identity) -> None:
        self.calls.append(call)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def make_calls(count: int) -> list:
    """``count`` chat calls as our OpenAI adapter records them in production: direct, with the
    translation of their request and response still to do (on the export thread)."""
    from opentelemetry.sdk.trace import TracerProvider
    from posthog_autoinstrument.instrumentation.openai import OpenAIInstrumentor

    import workload

    collector = _Collector()
    provider = TracerProvider()
    provider.add_span_processor(collector)
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    call = workload.make_call("chat", workload.Clients())
    for _ in range(count):
        call()
    instrumentor.uninstrument()
    assert len(collector.calls) == count, "the adapter did not record direct"
    return collector.calls


def fresh(calls: list, total: int) -> list:
    """``total`` recorded calls, copies of ``calls`` with their deferred translation still to
    do: building a span runs it once, and every span the pipeline ships must pay for it."""
    copies = []
    for index in range(total):
        call = calls[index % len(calls)]
        clone = copy.copy(call)
        clone._attrs = dict(call._attrs)
        direct = copy.copy(call.recording)
        direct.pending = [tuple(clone if a is call else a for a in entry) for entry in call.recording.pending]
        clone.recording = direct
        copies.append((clone, direct))
    return copies


def _per_span(seconds: float, spans: int) -> float:
    return seconds / spans * 1e6


def stages(calls: list, settings, repeat: int) -> dict:
    from posthog_autoinstrument.export.dialect import for_posthog
    from posthog_autoinstrument.export.exporter import GZIP_LEVEL, PostHogSender, split_into_requests

    clock = time.thread_time  # CPU of this thread: the stages' own cost, whatever else runs
    sender = PostHogSender(settings.endpoint, settings.api_key, 10.0)
    timings = {"build_span": [], "posthog_copy": [], "otlp_encode": [], "gzip": [], "http_post_incl_gzip": []}
    for _ in range(repeat):
        recorded = [call for call, _ in fresh(calls, len(calls))]
        start = clock()
        spans = [call.build_span() for call in recorded]
        timings["build_span"].append(_per_span(clock() - start, len(spans)))
        start = clock()
        converted = [for_posthog(span, settings) for span in spans]
        timings["posthog_copy"].append(_per_span(clock() - start, len(spans)))
        start = clock()
        bodies = split_into_requests(converted)
        timings["otlp_encode"].append(_per_span(clock() - start, len(spans)))
        start = clock()
        for _count, body in bodies:
            gzip.compress(body, compresslevel=GZIP_LEVEL)
        timings["gzip"].append(_per_span(clock() - start, len(spans)))
        start = clock()
        for _count, body in bodies:
            sender.send(body, time.monotonic() + 30, lambda: False)
        timings["http_post_incl_gzip"].append(_per_span(clock() - start, len(spans)))
    sender.close()
    result = {f"{k}_us_per_span": median(v) for k, v in timings.items()}
    result["request_body_bytes_per_span"] = sum(len(b) for _, b in bodies) / len(spans)
    return result


def end_to_end(calls: list, settings, total: int) -> dict:
    from posthog_autoinstrument.export import PostHogSpanProcessor
    from posthog_autoinstrument.export.exporter import PostHogSender

    roomy = dataclasses.replace(settings, max_queue_size=total + 1)
    processor = PostHogSpanProcessor(PostHogSender(settings.endpoint, settings.api_key, 10.0), roomy)
    items = fresh(calls, total)
    cpu = time.process_time()
    start = time.perf_counter()
    for call, direct in items:
        processor.on_direct_end(call, direct.span_id, direct.parent, direct.identity)
    enqueued = time.perf_counter()
    flushed = processor.force_flush(120_000)
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    result = {
        "spans": total,
        "spans_per_second": total / (done - start),
        "spans_per_cpu_second": total / cpu,
        "on_end_us_per_span_while_exporting": _per_span(enqueued - start, total),
        "flushed": flushed,
        "exported": processor.exported,
        "dropped": processor.dropped,
        "failed": processor.failed,
    }
    processor.shutdown()
    return result


def steady(calls: list, settings, total: int) -> dict:
    """Calls handed over as an app makes them: a request's worth (100) at a time, each just
    recorded (cloned right before; the cloning is not timed), then exported before the next.
    What a process sustains; ``end_to_end`` drains a backlog of calls recorded long before,
    whose objects have left the caches."""
    from posthog_autoinstrument.export import PostHogSpanProcessor
    from posthog_autoinstrument.export.exporter import MAX_SPANS_PER_REQUEST, PostHogSender

    processor = PostHogSpanProcessor(PostHogSender(settings.endpoint, settings.api_key, 10.0), settings)
    cpu = wall = 0.0
    for _ in range(total // MAX_SPANS_PER_REQUEST):
        items = fresh(calls, MAX_SPANS_PER_REQUEST)
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        for call, direct in items:
            processor.on_direct_end(call, direct.span_id, direct.parent, direct.identity)
        processor.force_flush(60_000)
        cpu += time.process_time() - cpu_start
        wall += time.perf_counter() - wall_start
    done = total // MAX_SPANS_PER_REQUEST * MAX_SPANS_PER_REQUEST
    result = {
        "spans": done,
        "spans_per_cpu_second": done / cpu,
        "spans_per_second": done / wall,
        "exported": processor.exported,
        "dropped": processor.dropped,
        "failed": processor.failed,
    }
    processor.shutdown()
    return result


def on_end_alone(calls: list, settings, total: int) -> float:
    """µs per ``on_direct_end`` with the export thread asleep (runs of 99 stay below its wake-up)."""
    from posthog_autoinstrument.export import PostHogSpanProcessor
    from posthog_autoinstrument.export.exporter import PostHogSender

    sleepy = dataclasses.replace(settings, schedule_delay=3600.0)
    processor = PostHogSpanProcessor(PostHogSender(settings.endpoint, settings.api_key, 10.0), sleepy)
    run = 99
    samples = []
    clock = time.thread_time
    for index in range(max(total // run, 2)):
        chunk = fresh(calls, run)
        start = clock()
        for call, direct in chunk:
            processor.on_direct_end(call, direct.span_id, direct.parent, direct.identity)
        samples.append(_per_span(clock() - start, run))
        processor.force_flush(60_000)
    processor.shutdown()
    return median(samples[1:])  # the first run also starts the export thread


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sink", required=True)
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    options = parser.parse_args()
    pin_to_cpu(WORKER_CPU)
    os.environ["POSTHOG_HOST"] = options.sink
    os.environ["POSTHOG_API_KEY"] = API_KEY
    from posthog_autoinstrument import config

    config.reset()
    settings = config.settings()
    calls = make_calls(100)
    example = fresh(calls, 1)[0][0].build_span()
    emit(
        {
            "span_attribute_chars": sum(len(k) + len(str(v)) for k, v in example.attributes.items()),
            "end_to_end": end_to_end(calls, settings, options.spans),
            "steady": steady(calls, settings, options.spans),
            "on_end_us_per_span": on_end_alone(calls, settings, min(options.spans, 5_000)),
            "stages": stages(calls, settings, options.repeat),
        }
    )


if __name__ == "__main__":
    main()
