"""An app that already records its LLM calls with another recorder, run unmodified by the
end-to-end tests: PostHog's own wrappers and LangChain callback handler, logfire, the official
OpenTelemetry OpenAI instrumentation, OpenLLMetry's and OpenInference's.

Configured as a real app is: OPENAI_BASE_URL / OPENAI_API_KEY, ANTHROPIC_BASE_URL /
ANTHROPIC_API_KEY, GOOGLE_GEMINI_BASE_URL / GEMINI_API_KEY, and POSTHOG_HOST for its own posthog client. The OpenTelemetry recorders
export to a TracerProvider of the app's own (an in-memory exporter stands for its collector), and
the app prints the names of the spans that recorder made there: with or without
posthog-instrument, the app's own telemetry must be the same.

Usage: python other_recorders_app.py <scenario>
"""

from __future__ import annotations

import asyncio
import os
import sys

import openai

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Say hello"}]


def show(*values):
    print(*values, flush=True)


def chat(client, **kwargs):
    response = client.chat.completions.create(model=MODEL, messages=MESSAGES, **kwargs)
    show("chat:", response.choices[0].message.content, response.usage.total_tokens)


def stream(client, **kwargs):
    chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    show("stream:", text, "chunks:", len(chunks), "usage chunks:", sum(1 for c in chunks if not c.choices))


def posthog_client():
    from posthog import Posthog

    return Posthog("phc_app_own_token", host=os.environ["POSTHOG_HOST"], sync_mode=True)


# -- PostHog's own wrappers and handler --------------------------------------------------------


def posthog_openai():
    from posthog.ai.openai import AsyncOpenAI, OpenAI

    ph = posthog_client()
    client = OpenAI(posthog_client=ph, max_retries=0)
    chat(client, posthog_distinct_id="wrapper-user", posthog_properties={"plan": "pro"})
    stream(client, posthog_distinct_id="wrapper-user", posthog_properties={"plan": "pro"})
    async_client = AsyncOpenAI(posthog_client=ph, max_retries=0)
    response = asyncio.run(
        async_client.chat.completions.create(
            model=MODEL, messages=MESSAGES, posthog_distinct_id="wrapper-user", posthog_properties={"plan": "pro"}
        )
    )
    show("async chat:", response.choices[0].message.content)
    # Passed through by the wrapper without recording (it warns): recorded by posthog-instrument.
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    show("raw:", raw.parse().choices[0].message.content)
    ph.shutdown()


def posthog_anthropic():
    from posthog.ai.anthropic import Anthropic

    ph = posthog_client()
    client = Anthropic(posthog_client=ph, max_retries=0)
    message = client.messages.create(
        model="claude-fake-1",
        max_tokens=64,
        messages=MESSAGES,
        posthog_distinct_id="wrapper-user",
        posthog_properties={"plan": "pro"},
    )
    show("create:", message.content[0].text)
    events = list(
        client.messages.create(
            model="claude-fake-1",
            max_tokens=64,
            messages=MESSAGES,
            stream=True,
            posthog_distinct_id="wrapper-user",
            posthog_properties={"plan": "pro"},
        )
    )
    show("create stream:", len(events), "events")
    with client.messages.stream(
        model="claude-fake-1",
        max_tokens=64,
        messages=MESSAGES,
        posthog_distinct_id="wrapper-user",
        posthog_properties={"plan": "pro"},
    ) as helper:
        show("stream helper:", "".join(helper.text_stream))
    ph.shutdown()


def posthog_gemini():
    from posthog.ai.gemini import Client

    ph = posthog_client()
    client = Client(posthog_client=ph, api_key=os.environ["GEMINI_API_KEY"])
    response = client.models.generate_content(
        model="gemini-2.5-flash",
        contents="Say hello",
        posthog_distinct_id="wrapper-user",
        posthog_properties={"plan": "pro"},
    )
    show("generate:", response.text)
    chunks = list(
        client.models.generate_content_stream(
            model="gemini-2.5-flash",
            contents="Say hello",
            posthog_distinct_id="wrapper-user",
            posthog_properties={"plan": "pro"},
        )
    )
    show("generate stream:", "".join(c.text or "" for c in chunks))
    ph.shutdown()


def posthog_langchain():
    from langchain_core.runnables import RunnableLambda
    from langchain_openai import ChatOpenAI
    from posthog.ai.langchain import CallbackHandler

    ph = posthog_client()
    handler = CallbackHandler(client=ph, distinct_id="wrapper-user", properties={"plan": "pro"})
    model = ChatOpenAI(model=MODEL, max_retries=0)
    show("invoke:", model.invoke("Say hello", config={"callbacks": [handler]}).content)
    show("stream:", "".join(c.content for c in model.stream("Say hello", config={"callbacks": [handler]})))
    # A chain the handler records, whose step calls OpenAI directly: not a LangChain model run,
    # so the handler does not record that call (posthog-instrument does).
    direct = RunnableLambda(
        lambda text: (
            openai.OpenAI(max_retries=0)
            .chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])
            .choices[0]
            .message.content
        )
    )
    show("direct call in a chain:", direct.invoke("Say hello", config={"callbacks": [handler]}))
    # Without the handler: the app's other runs are recorded by posthog-instrument.
    show("unhandled invoke:", model.invoke("Say hello").content)
    ph.shutdown()


# -- OpenTelemetry-based recorders -------------------------------------------------------------


def own_tracer_provider():
    """The app's own OpenTelemetry setup: a provider and its exporter (in memory here)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


def show_own_spans(exporter, scope_prefix: str):
    names = [
        s.name
        for s in exporter.get_finished_spans()
        if s.instrumentation_scope and s.instrumentation_scope.name.startswith(scope_prefix)
    ]
    show(f"the app's own {scope_prefix} spans:", names)


def calls_with(exporter, scope_prefix: str, client=None):
    client = client or openai.OpenAI(max_retries=0)
    chat(client)
    stream(client)
    show_own_spans(exporter, scope_prefix)


def logfire_openai():
    import logfire
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    logfire.configure(send_to_logfire=False, console=False, additional_span_processors=[SimpleSpanProcessor(exporter)])
    client = openai.OpenAI(max_retries=0)
    logfire.instrument_openai(client)
    calls_with(exporter, "logfire.openai", client)


def otel_openai_v2():
    exporter = own_tracer_provider()
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()
    calls_with(exporter, "opentelemetry.")


def openllmetry_openai():
    exporter = own_tracer_provider()
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()
    calls_with(exporter, "opentelemetry.instrumentation.openai")


def openinference_openai():
    exporter = own_tracer_provider()
    from openinference.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()
    calls_with(exporter, "openinference.")


if __name__ == "__main__":
    globals()[sys.argv[1]]()
