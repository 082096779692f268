"""How each measured configuration is switched on inside a worker process.

``baseline`` is the SDK alone. ``ours`` runs our real start-up path (the one the
``posthog-instrument`` bootstrap runs, with no OpenTelemetry export of the user's own), so the
span processor, queue, encoder and exporter posting to the loopback stand-in are all live, and
every instrumentor we register in entry points is applied. The peers get an SDK
``TracerProvider`` with a ``BatchSpanProcessor`` (batches of 100 spans, PostHog's limit) and the
OTLP/HTTP protobuf exporter (gzip, like ours) posting to the same kind of stand-in, with content
capture on through each peer's own switch; PostHog's ``posthog.ai.openai`` wrappers send their
events through the ``posthog`` client's own queue and consumer thread.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

from common import API_KEY, versions
from workload import Clients

OUR_GROUP = "posthog_autoinstrument_instrumentors"  # fast_start.INSTRUMENTORS
OUR_MODULE = "posthog_autoinstrument"
PEER_BATCH_SIZE = 100  # spans a request, PostHog's limit: see _otel_provider

PEERS = {
    "openllmetry": "OpenLLMetry (opentelemetry-instrumentation-openai)",
    "openinference": "OpenInference (openinference-instrumentation-openai)",
    "otel_genai": "OTel GenAI (opentelemetry-instrumentation-genai-openai)",
    "posthog_sdk": "PostHog SDK wrapper (posthog.ai.openai)",
}


class Setup:
    """An active configuration: the clients to call with, and how to flush and check it."""

    def __init__(
        self,
        name: str,
        clients: Clients,
        workloads: tuple,
        provider: Any = None,
        flush: Optional[Callable] = None,
        notes: Optional[list] = None,
        packages: Optional[dict] = None,
        record_events: Optional[Callable[[list], None]] = None,
    ):
        self.name = name
        self.clients = clients
        self.workloads = workloads  # the workloads this setup instruments
        self.provider = provider
        self._flush = flush
        self.notes = notes or []
        self.packages = packages or {}
        self._record_events = record_events  # for setups that emit events, not spans
        self._events: Optional[list] = None

    def flush(self) -> None:
        if self._flush is not None:
            self._flush()

    def verify(self, workload: str, call: Callable, run_once: Callable) -> dict:
        """Make one more call while recording what the instrumentation emitted.

        Confirms that the comparison is fair: one span (or event) per call, with the prompt
        and the output captured.
        """
        from workload import PROMPT

        texts: list = []
        if self.provider is not None:
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

            exporter = InMemorySpanExporter()
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
            run_once(call)
            items = exporter.get_finished_spans()
            exporter.clear()
            exporter.shutdown()
            records = [s for s in items if s.attributes]
            texts = [str(v) for s in records for v in s.attributes.values()]
        elif self._record_events is not None:
            if self._events is None:
                self._events = []
                self._record_events(self._events)
            self._events.clear()
            run_once(call)
            records = list(self._events)
            texts = [str(v) for properties in records for v in properties.values()]
        else:
            return {}
        expected_input = "The quick brown fox" if workload == "embeddings" else PROMPT
        return {
            "records_per_call": len(records),
            "input_captured": any(expected_input in t for t in texts),
            "output_captured": workload == "embeddings" or any("Hello from fake" in t for t in texts),
        }


def _our_instrumentors() -> list:
    from importlib.metadata import entry_points

    return sorted(ep.name for ep in entry_points(group=OUR_GROUP) if ep.value.startswith(OUR_MODULE))


def our_instrumented_workloads() -> tuple:
    """Workloads our registered instrumentors cover; Anthropic counts once an adapter is registered."""
    names = _our_instrumentors()
    covered = []
    if any("openai" in n for n in names):
        covered += ["chat", "embeddings", "stream_sync", "stream_async", "stream_sync_short", "stream_async_short"]
    if any("anthropic" in n for n in names):
        covered.append("anthropic")
    return tuple(covered)


def baseline() -> Setup:
    return Setup(
        "baseline",
        Clients(),
        workloads=(
            "chat",
            "embeddings",
            "anthropic",
            "stream_sync",
            "stream_async",
            "stream_sync_short",
            "stream_async_short",
        ),
    )


def ours() -> Setup:
    """Our real in-process start-up (what ``bootstrap/sitecustomize.py`` runs)."""
    import posthog_autoinstrument
    from opentelemetry import trace
    from posthog_autoinstrument.startup import initialize

    if not os.environ.get("POSTHOG_HOST"):
        raise RuntimeError("POSTHOG_HOST must point at the loopback stand-in")
    os.environ.setdefault("POSTHOG_API_KEY", API_KEY)
    bootstrap = os.path.join(os.path.dirname(os.path.abspath(posthog_autoinstrument.__file__)), "bootstrap")
    initialize(bootstrap)
    provider = trace.get_tracer_provider()
    return Setup(
        "ours",
        Clients(),
        workloads=our_instrumented_workloads(),
        provider=provider,
        flush=lambda: provider.force_flush(10_000),
        notes=[f"instrumentors: {', '.join(_our_instrumentors())}"],
        packages=versions(["posthog-autoinstrument", "opentelemetry-sdk", "wrapt"]),
    )


def posthog_processor(provider: Any) -> Any:
    """Our span processor inside a provider, for counters (exported, dropped, queued)."""
    from posthog_autoinstrument.export import PostHogSpanProcessor

    multi = getattr(provider, "_active_span_processor", None)
    for processor in getattr(multi, "_span_processors", ()):
        if isinstance(processor, PostHogSpanProcessor):
            return processor
    return None


def _otel_provider(sink_url: str):
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=f"{sink_url}/v1/traces", compression=Compression.Gzip)
    # Batches of at most 100 spans, as a user must set them to export to PostHog: its OTLP
    # endpoint refuses a request of more than 100 AI spans with a 400 that is not retried
    # (MAX_AI_EVENTS_PER_REQUEST, rust/capture/src/otel/mod.rs), and the processor's default
    # batch of 512 would lose every full batch. Ours sends 100 a request for the same reason.
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=PEER_BATCH_SIZE))
    trace.set_tracer_provider(provider)
    return provider


def openllmetry(sink_url: str) -> Setup:
    os.environ["TRACELOOP_TRACE_CONTENT"] = "true"
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    provider = _otel_provider(sink_url)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    return Setup(
        "openllmetry",
        Clients(),
        workloads=("chat", "embeddings", "stream_sync", "stream_async", "stream_sync_short", "stream_async_short"),
        provider=provider,
        flush=lambda: provider.force_flush(10_000),
        notes=["content: TRACELOOP_TRACE_CONTENT=true"],
        packages=versions(["opentelemetry-instrumentation-openai"]),
    )


def openinference(sink_url: str) -> Setup:
    os.environ["OPENINFERENCE_HIDE_INPUTS"] = "false"
    os.environ["OPENINFERENCE_HIDE_OUTPUTS"] = "false"
    from openinference.instrumentation.openai import OpenAIInstrumentor

    provider = _otel_provider(sink_url)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    return Setup(
        "openinference",
        Clients(),
        workloads=("chat", "embeddings", "stream_sync", "stream_async", "stream_sync_short", "stream_async_short"),
        provider=provider,
        flush=lambda: provider.force_flush(10_000),
        notes=["content: OPENINFERENCE_HIDE_INPUTS/OUTPUTS=false (the default)"],
        packages=versions(["openinference-instrumentation-openai", "openinference-instrumentation"]),
    )


def otel_genai(sink_url: str) -> Setup:
    # "true" means *off* for this package; span_only puts content on the span.
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "span_only"
    notes = ["content: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only"]
    try:
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        package = "opentelemetry-instrumentation-genai-openai"
    except ImportError:
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        package = "opentelemetry-instrumentation-openai-v2"
        notes.append("FALLBACK: genai-openai unavailable, measured the deprecated openai-v2")
    provider = _otel_provider(sink_url)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    return Setup(
        "otel_genai",
        Clients(),
        workloads=("chat", "embeddings", "stream_sync", "stream_async", "stream_sync_short", "stream_async_short"),
        provider=provider,
        flush=lambda: provider.force_flush(10_000),
        notes=notes,
        packages=versions([package, "opentelemetry-util-genai"]),
    )


def posthog_sdk(sink_url: str) -> Setup:
    from posthog import Posthog
    from posthog.ai.openai import AsyncOpenAI, OpenAI

    client = Posthog(API_KEY, host=sink_url, gzip=True, flush_at=100, flush_interval=1.0)

    def record_events(into: list) -> None:
        """After measuring: also keep the properties of each event the wrappers capture."""
        capture = client.capture

        def recording(*args, **kwargs):
            into.append(kwargs.get("properties") or {})
            return capture(*args, **kwargs)

        client.capture = recording

    return Setup(
        "posthog_sdk",
        Clients(openai_cls=OpenAI, async_openai_cls=AsyncOpenAI, posthog_client=client),
        workloads=("chat", "embeddings", "stream_sync", "stream_async", "stream_sync_short", "stream_async_short"),
        flush=client.flush,
        notes=["explicit client swap (posthog.ai.openai.OpenAI); events via the posthog client queue"],
        packages=versions(["posthog"]),
        record_events=record_events,
    )


def create(name: str, sink_url: Optional[str]) -> Setup:
    if name == "baseline":
        return baseline()
    if name == "ours":
        return ours()
    factory = {
        "openllmetry": openllmetry,
        "openinference": openinference,
        "otel_genai": otel_genai,
        "posthog_sdk": posthog_sdk,
    }.get(name)
    if factory is None:
        raise ValueError(f"unknown setup {name}")
    return factory(sink_url)
