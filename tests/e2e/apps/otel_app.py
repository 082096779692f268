"""An application that already uses OpenTelemetry itself: it wraps its LLM call in its own
(non-AI) span, and prints that span's id so a test can check the LLM span's parent."""

import openai
from opentelemetry import trace

tracer = trace.get_tracer("shop.checkout")

with tracer.start_as_current_span("handle-checkout") as span:
    span.set_attribute("shop.order_id", "order-42")
    response = openai.OpenAI(max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Summarise order 42"}]
    )
    print(f"app span id {span.get_span_context().span_id:016x}", flush=True)
    print(f"reply {response.choices[0].message.content}", flush=True)
