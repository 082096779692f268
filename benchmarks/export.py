"""Export throughput of our pipeline on one core, and the application thread's cost per span.

Run as ``python export.py --sink URL --spans N`` (the harness does); prints one JSON line.
Spans are real: made by our OpenAI adapter on canned chat completions with content capture
on. Measured:

- end to end: ``on_end`` for N spans, then ``force_flush`` until all are delivered to the
  loopback stand-in; spans per second of wall time, and per second of the process's CPU time
  (the budget's basis: immune to other load on a shared machine);
- ``on_end`` alone on the application thread, in runs of 99 spans so the export thread stays
  asleep (the cost an app pays per span), in thread CPU time;
- the export thread's stages one by one, µs of thread CPU per span: PostHog copy (privacy,
  dialect), OTLP encoding, gzip, HTTP POST.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import os
import time

from common import API_KEY, WORKER_CPU, emit, median, pin_to_cpu


def make_spans(count: int) -> list:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from posthog_autoinstrument.instrumentation.openai import OpenAIInstrumentor

    import workload

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    call = workload.make_call("chat", workload.Clients())
    for _ in range(count):
        call()
    instrumentor.uninstrument()
    return list(exporter.get_finished_spans())


def _per_span(seconds: float, spans: int) -> float:
    return seconds / spans * 1e6


def stages(spans: list, settings, repeat: int) -> dict:
    from posthog_autoinstrument.export.dialect import for_posthog
    from posthog_autoinstrument.export.exporter import PostHogSender, split_into_requests

    clock = time.thread_time  # CPU of this thread: the stages' own cost, whatever else runs
    sender = PostHogSender(settings.endpoint, settings.api_key, 10.0)
    timings = {"posthog_copy": [], "otlp_encode": [], "gzip": [], "http_post_incl_gzip": []}
    for _ in range(repeat):
        start = clock()
        converted = [for_posthog(span, settings) for span in spans]
        timings["posthog_copy"].append(_per_span(clock() - start, len(spans)))
        start = clock()
        bodies = split_into_requests(converted)
        timings["otlp_encode"].append(_per_span(clock() - start, len(spans)))
        start = clock()
        for _count, body in bodies:
            gzip.compress(body, compresslevel=6)
        timings["gzip"].append(_per_span(clock() - start, len(spans)))
        start = clock()
        for _count, body in bodies:
            sender.send(body, time.monotonic() + 30, lambda: False)
        timings["http_post_incl_gzip"].append(_per_span(clock() - start, len(spans)))
    sender.close()
    result = {f"{k}_us_per_span": median(v) for k, v in timings.items()}
    result["request_body_bytes_per_span"] = sum(len(b) for _, b in bodies) / len(spans)
    return result


def end_to_end(spans: list, settings, total: int) -> dict:
    from posthog_autoinstrument.export import PostHogSpanProcessor
    from posthog_autoinstrument.export.exporter import PostHogSender

    roomy = dataclasses.replace(settings, max_queue_size=total + 1)
    processor = PostHogSpanProcessor(PostHogSender(settings.endpoint, settings.api_key, 10.0), roomy)
    items = [spans[i % len(spans)] for i in range(total)]
    cpu = time.process_time()
    start = time.perf_counter()
    for span in items:
        processor.on_end(span)
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


def on_end_alone(spans: list, settings, total: int) -> float:
    """µs per ``on_end`` with the export thread asleep (runs of 99 stay below its wake-up)."""
    from posthog_autoinstrument.export import PostHogSpanProcessor
    from posthog_autoinstrument.export.exporter import PostHogSender

    sleepy = dataclasses.replace(settings, schedule_delay=3600.0)
    processor = PostHogSpanProcessor(PostHogSender(settings.endpoint, settings.api_key, 10.0), sleepy)
    run = 99
    samples = []
    clock = time.thread_time
    for index in range(max(total // run, 2)):
        chunk = [spans[(index * run + i) % len(spans)] for i in range(run)]
        start = clock()
        for span in chunk:
            processor.on_end(span)
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
    spans = make_spans(100)
    emit({
        "span_attribute_chars": sum(len(k) + len(str(v)) for k, v in spans[0].attributes.items()),
        "end_to_end": end_to_end(spans, settings, options.spans),
        "on_end_us_per_span": on_end_alone(spans, settings, min(options.spans, 5_000)),
        "stages": stages(spans, settings, options.repeat),
    })


if __name__ == "__main__":
    main()
