"""An app that uses OpenTelemetry's API itself: a span of its own ("checkout") around an
OpenAI call, as many times as asked. Run unmodified, under ``opentelemetry-instrument``,
``posthog-instrument`` or both.

``--late-provider NAME``: after the first call the app installs its own TracerProvider (service
name NAME) exporting to the OTLP endpoint in OTEL_EXPORTER_OTLP_ENDPOINT, as apps that set up
tracing in code do, then calls again.
``--reloader``: the process only re-launches itself as a child (as a development server's
reloader does) and exits with the child's status.
"""

import argparse
import os
import subprocess
import sys

import openai
from opentelemetry import trace

parser = argparse.ArgumentParser()
parser.add_argument("--calls", type=int, default=1)
parser.add_argument("--late-provider", metavar="NAME")
parser.add_argument("--reloader", action="store_true")
options = parser.parse_args()

if options.reloader and not os.environ.get("COEXIST_APP_CHILD"):
    child = subprocess.run([sys.executable, *sys.argv], env=dict(os.environ, COEXIST_APP_CHILD="1"))
    sys.exit(child.returncode)


def checkout(number: int) -> str:
    tracer = trace.get_tracer("shop.checkout")
    with tracer.start_as_current_span(f"checkout {number}"):
        response = openai.OpenAI(max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"order {number}"}]
        )
    return response.choices[0].message.content


print("reply", checkout(1), flush=True)
if options.late_provider:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": options.late_provider}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    print("global provider is the app's:", trace.get_tracer_provider() is provider, flush=True)
for number in range(2, options.calls + 1):
    print("reply", checkout(number), flush=True)
print("provider", type(trace.get_tracer_provider()).__name__, flush=True)
