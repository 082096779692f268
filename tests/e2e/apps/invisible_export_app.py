"""An app with tracing of its own (Sentry, or OpenTelemetry's httpx instrumentation) that makes an
LLM call inside a request it traces, and waits there (for a line on stdin, then for OpenTelemetry
to flush) while the call is exported to PostHog; so the export happens inside the traced request.

``sentry``: Sentry with tracing on; every envelope Sentry would send is written, one serialized
envelope after another, to the file named by ``SENTRY_ENVELOPES``.
``otel``: nothing here: the launcher loads OpenTelemetry's httpx instrumentation and the
console exporter that the environment asks for.
"""

import sys

import openai
from opentelemetry import trace

mode = sys.argv[1]


def ask(prompt):
    return (
        openai.OpenAI(max_retries=0)
        .chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
        .choices[0]
        .message.content
    )


def traced_request(prompt):
    ask(prompt)  # the first event is exported at once, while the request is still open
    print("called", flush=True)
    sys.stdin.readline()
    # Waits until the export has finished (so whatever it recorded is recorded by now).
    trace.get_tracer_provider().force_flush()


if mode == "sentry":
    import os

    import sentry_sdk
    from sentry_sdk.transport import Transport

    class Capture(Transport):
        def capture_envelope(self, envelope):
            with open(os.environ["SENTRY_ENVELOPES"], "ab") as out:
                out.write(envelope.serialize() + b"\n")

    sentry_sdk.init(dsn="http://public@127.0.0.1:9/1", transport=Capture, traces_sample_rate=1.0)
    with sentry_sdk.start_span(name="handle request"):
        traced_request("sentry request")
        sentry_sdk.capture_message("after the export")  # carries the breadcrumbs of the request
    sentry_sdk.flush()
else:
    traced_request("otel request")
print("done", flush=True)
