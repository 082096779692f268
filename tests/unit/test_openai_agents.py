"""The OpenAI Agents SDK adapter in process: what end-to-end runs cannot see from outside.

No state outlives a run, a span the SDK never ends is ended with its trace, the processor
survives ``set_trace_processors``, and a provider call made inside a tool nests under the
tool's step (our context follows the SDK's current span). The real SDK drives the real openai
SDK against the loopback OpenAI stand-in.
"""

from __future__ import annotations

import asyncio

import pytest
import wrapt
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from posthog_autoinstrument.instrumentation.openai import OpenAIInstrumentor
from posthog_autoinstrument.instrumentation.openai_agents import OpenAIAgentsInstrumentor
from tests.servers import FakeOpenAI

agents = pytest.importorskip("agents")
openai = pytest.importorskip("openai")

from agents.tracing import provider as sdk_provider  # noqa: E402


@pytest.fixture
def instrumented(monkeypatch):
    """Both adapters on an in-memory pipeline; the SDK's own processors replaced by none."""
    with FakeOpenAI() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        openai_adapter, agents_adapter = OpenAIInstrumentor(), OpenAIAgentsInstrumentor()
        already = openai_adapter.is_instrumented_by_opentelemetry
        if already:
            pytest.skip("the openai adapter is instrumented elsewhere in this process")
        openai_adapter.instrument(tracer_provider=tracer_provider)
        agents_adapter.instrument(tracer_provider=tracer_provider)
        try:
            # No network: nothing of the SDK's own may export. Ours must stay registered.
            agents.set_trace_processors([])
            agents.set_default_openai_client(openai.AsyncOpenAI(), use_for_tracing=False)
            yield agents_adapter, exporter, server
        finally:
            agents_adapter.uninstrument()
            openai_adapter.uninstrument()


def _processors() -> tuple:
    return agents.tracing.get_trace_provider()._multi_processor._processors


@agents.function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def test_no_state_outlives_the_runs_and_the_processor_survives_replacement(instrumented):
    adapter, exporter, _ = instrumented
    processor = adapter.processor
    assert _processors() == (processor,)  # set_trace_processors([]) kept ours

    agent = agents.Agent(name="Weather", instructions="Be brief.", tools=[get_weather], model="gpt-4o-mini")
    broken = agents.Agent(name="Broken", instructions="Be brief.", model="error-400")

    async def runs():
        await asyncio.gather(agents.Runner.run(agent, "one?"), agents.Runner.run(agent, "two?"))
        result = agents.Runner.run_streamed(agent, "three?")
        async for _ in result.stream_events():
            pass
        with pytest.raises(openai.BadRequestError):
            await agents.Runner.run(broken, "four?")

    asyncio.run(runs())
    assert processor._spans == {} and processor._traces == {} and len(processor._attached) == 0
    names = [s.name for s in exporter.get_finished_spans()]
    assert names.count("invoke_workflow Agent workflow") == 4
    assert names.count("execute_tool get_weather") == 3


def test_a_span_left_open_ends_with_its_trace(instrumented):
    adapter, exporter, _ = instrumented
    with agents.trace("Left open"):
        span = agents.custom_span("never finished", {"step": 1})
        span.start()
    assert adapter.processor._spans == {} and adapter.processor._traces == {}
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    root, step = by_name["invoke_workflow Left open"], by_name["custom never finished"]
    assert step.parent.span_id == root.context.span_id
    assert step.end_time <= root.end_time


def test_a_provider_call_inside_a_tool_nests_under_the_tool(instrumented):
    _, exporter, server = instrumented

    @agents.function_tool
    def ask_another_model(city: str) -> str:
        """Asks a second model, with the plain openai SDK."""
        reply = openai.OpenAI().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"About {city}?"}]
        )
        return reply.choices[0].message.content

    agent = agents.Agent(name="Nested", instructions="Be brief.", tools=[ask_another_model], model="gpt-4o-mini")
    agents.Runner.run_sync(agent, "Go")
    spans = exporter.get_finished_spans()
    (tool,) = [s for s in spans if s.name == "execute_tool ask_another_model"]
    (inner,) = [s for s in spans if s.parent is not None and s.parent.span_id == tool.context.span_id]
    assert inner.name == "chat gpt-4o-mini"
    assert inner.attributes["gen_ai.usage.input_tokens"] == 11
    assert inner.context.trace_id == tool.context.trace_id


def test_uninstrument_removes_the_processor_and_the_hooks():
    adapter = OpenAIAgentsInstrumentor()
    adapter.instrument(tracer_provider=TracerProvider())
    agents.tracing.get_trace_provider()
    assert adapter.processor in _processors()
    assert isinstance(agents.tracing.scope.Scope.__dict__["set_current_span"], wrapt.FunctionWrapper)
    adapter.uninstrument()
    assert adapter.processor not in _processors()
    assert isinstance(agents.tracing.scope.Scope.__dict__["set_current_span"], classmethod)
    assert not isinstance(
        sdk_provider.SynchronousMultiTracingProcessor.__dict__["set_processors"], wrapt.FunctionWrapper
    )


def test_a_streamed_run_cancelled_midway_leaves_no_state(instrumented):
    adapter, exporter, _ = instrumented
    agent = agents.Agent(name="Weather", instructions="Be brief.", tools=[get_weather], model="gpt-4o-mini")

    async def run():
        result = agents.Runner.run_streamed(agent, "stop early")
        async for event in result.stream_events():
            if event.type == "raw_response_event":
                result.cancel()
        await asyncio.sleep(0.05)

    asyncio.run(run())
    assert adapter.processor._spans == {} and adapter.processor._traces == {}
    assert len(adapter.processor._attached) == 0
    names = [s.name for s in exporter.get_finished_spans()]
    assert "invoke_workflow Agent workflow" in names and "invoke_agent Weather" in names
