"""An app that sets up OpenTelemetry itself: its own TracerProvider and exporter, installed
globally, and its own span around an OpenAI call. It prints what its exporter received."""

import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

tracer = trace.get_tracer("shop.checkout")
with tracer.start_as_current_span("checkout") as span:
    reply = openai.OpenAI(max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "own provider"}]
    )
    checkout_id = span.get_span_context().span_id

print("reply", reply.choices[0].message.content, flush=True)
print("global provider is the app's:", trace.get_tracer_provider() is provider, flush=True)
for finished in sorted(exporter.get_finished_spans(), key=lambda s: s.name):
    parent = "checkout" if finished.parent and finished.parent.span_id == checkout_id else finished.parent
    print("app exporter got", repr(finished.name), "parent", parent, flush=True)
print(f"checkout span id {checkout_id:016x}", flush=True)
