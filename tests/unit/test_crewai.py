"""CrewAI adapter pieces that the end-to-end runs do not reach: tool failures, the ReAct path's
``CrewStructuredTool.invoke``, an application's ``BaseLLM`` subclass (and a subclass of that
calling ``super().call``), privacy of task names, and unpatching.

Runs in-process against the real CrewAI package (only where it is installed: the second venv)."""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytest.importorskip("crewai")

from crewai import Task  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from crewai.tools import tool  # noqa: E402

from posthog_autoinstrument.instrumentation import crewai as adapter  # noqa: E402


@pytest.fixture(scope="module")
def instrumented():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = adapter.CrewAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield instrumentor, exporter, provider
    instrumentor.uninstrument()


@pytest.fixture
def spans(instrumented):
    exporter = instrumented[1]
    exporter.clear()
    return exporter.get_finished_spans


@tool("boom")
def boom(city: str) -> str:
    """Always fails."""
    raise ValueError(f"no weather for {city}")


@tool("get_weather")
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"Sunny in {city}"


class HouseLLM(BaseLLM):
    def call(
        self,
        messages,
        tools=None,
        callbacks=None,
        available_functions=None,
        from_task=None,
        from_agent=None,
        response_model=None,
    ):
        self._track_token_usage_internal({"prompt_tokens": 5, "completion_tokens": 2})
        self._track_token_usage_internal({"prompt_tokens": 4, "completion_tokens": 1})  # a follow-up request
        return "hi"

    async def acall(
        self,
        messages,
        tools=None,
        callbacks=None,
        available_functions=None,
        from_task=None,
        from_agent=None,
        response_model=None,
    ):
        return self.call(messages)


class LoudHouseLLM(HouseLLM):
    def call(self, messages, **kwargs):
        return super().call(messages, **kwargs).upper()


def test_a_failing_tool_is_recorded_and_its_error_reaches_crewai(spans):
    with pytest.raises(ValueError, match="no weather for Rome"):
        boom.run(city="Rome")
    (span,) = spans()
    assert span.name == "execute_tool boom"
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "ValueError"
    assert json.loads(span.attributes["gen_ai.tool.call.arguments"]) == {"city": "Rome"}


def test_the_react_path_records_one_tool_span(spans):
    structured = get_weather.to_structured_tool()
    assert structured.invoke({"city": "Rome"}) == "Sunny in Rome"
    (span,) = spans()
    assert span.name == "execute_tool get_weather"
    assert json.loads(span.attributes["gen_ai.tool.call.arguments"]) == {"city": "Rome"}
    assert span.attributes["gen_ai.tool.call.result"] == "Sunny in Rome"


@tool("aget_weather")
async def aget_weather(city: str) -> str:
    """Weather for a city, asynchronously."""
    return f"Sunny in {city}"


def test_async_tool_run(spans):
    assert asyncio.run(aget_weather.arun(city="Oslo")) == "Sunny in Oslo"
    (span,) = spans()
    assert span.name == "execute_tool aget_weather"
    assert span.attributes["gen_ai.tool.call.result"] == "Sunny in Oslo"


def test_an_application_llm_is_a_generation_with_the_usage_crewai_counted(spans):
    assert HouseLLM(model="house-model").call("hello") == "hi"
    (span,) = spans()
    attrs = span.attributes
    assert span.name == "chat house-model"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.usage.input_tokens"] == 9  # both requests of the one call
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hello"}]}
    ]
    assert json.loads(attrs["gen_ai.output.messages"])[0]["parts"] == [{"type": "text", "content": "hi"}]


def test_a_subclass_calling_super_is_one_call(spans):
    assert LoudHouseLLM(model="house-model").call("hello") == "HI"
    (span,) = spans()
    assert json.loads(span.attributes["gen_ai.output.messages"])[0]["parts"] == [{"type": "text", "content": "HI"}]
    assert asyncio.run(LoudHouseLLM(model="house-model").acall("hello")) == "HI"
    assert len(spans()) == 2  # acall, and the call it makes on the same LLM, is still one


def test_task_names_are_content():
    task = Task(description="Summarise the secret report", expected_output="A summary")
    request, _ = adapter._task_step(task, (), {}, capture=True)
    assert request.name == "Summarise the secret report"
    request, state = adapter._task_step(task, (), {}, capture=False)
    assert request.name is None
    named = Task(name="summary", description="Summarise the secret report", expected_output="A summary")
    assert adapter._task_step(named, (), {}, capture=False)[0].name == "summary"


def test_uninstrument_restores_the_methods(instrumented):
    instrumentor, _, provider = instrumented
    wrapped = HouseLLM.__dict__["call"]
    instrumentor.uninstrument()
    try:
        assert HouseLLM.__dict__["call"] is wrapped.__wrapped__
        assert type(HouseLLM.__dict__["call"]).__name__ == "function"
    finally:
        instrumentor.instrument(tracer_provider=provider)
