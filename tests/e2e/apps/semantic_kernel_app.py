"""An ordinary Semantic Kernel application, run unmodified by the end-to-end tests.

It reads the model server's address from ``SK_APP_BASE_URL`` and the key from
``OPENAI_API_KEY``, runs every scenario in one asyncio program and prints what it got. The
tests run it with and without ``posthog-instrument`` and compare: the output must be identical.

With ``SK_APP_TELEMETRY_FILE`` set it also does what Semantic Kernel's telemetry samples do: it
installs its own tracer provider (with an in-memory exporter), and at the end writes what that
exporter got to the file (the names of Semantic Kernel's own spans, and whether every span's
parent is among the spans), for the tests to check that its telemetry is whole.

Every task starts with a label ("[agent] ...") so the tests can find its spans. The fake server
answers a request that offers tools, where the user spoke last, with a call of the first tool;
otherwise with the text of the last user message's ``reply="..."`` directive, or its default.
"""

import asyncio
import json
import os
from typing import Annotated

from semantic_kernel import Kernel
from semantic_kernel.agents import ChatCompletionAgent
from semantic_kernel.connectors.ai import FunctionChoiceBehavior
from semantic_kernel.connectors.ai.open_ai import OpenAIChatCompletion, OpenAIChatPromptExecutionSettings
from semantic_kernel.functions import KernelArguments, kernel_function

from openai import AsyncOpenAI

BASE_URL = os.environ["SK_APP_BASE_URL"]
TELEMETRY_FILE = os.environ.get("SK_APP_TELEMETRY_FILE")


def own_telemetry():
    """The app's own OpenTelemetry set-up, as Semantic Kernel's samples make it."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


def service(model="gpt-4o-mini"):
    client = AsyncOpenAI(base_url=BASE_URL, api_key=os.environ["OPENAI_API_KEY"])
    return OpenAIChatCompletion(ai_model_id=model, async_client=client)


class WeatherPlugin:
    @kernel_function(description="Weather for a city.")
    def get_weather(self, city: Annotated[str, "The city"]) -> str:
        return f"Sunny in {city}"


class ForecastPlugin:
    @kernel_function(description="A forecast, from a model asked through the openai SDK.")
    async def forecast(self, city: Annotated[str, "The city"]) -> str:
        answer = await AsyncOpenAI(base_url=BASE_URL).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f'[forecast] Forecast for {city}? reply="Rain"'}]
        )
        return answer.choices[0].message.content


class BrokenPlugin:
    @kernel_function(description="Always fails.")
    def fail(self, city: Annotated[str, "The city"]) -> str:
        raise ValueError(f"no weather for {city}")


def show(*values):
    print(*values, flush=True)


def weather_agent(name="Weather", model="gpt-4o-mini"):
    return ChatCompletionAgent(
        service=service(model), name=name, instructions="You report the weather.", plugins=[WeatherPlugin()]
    )


async def kernel_with_tool():
    """A prompt function whose model calls a plugin function (auto function calling)."""
    kernel = Kernel()
    kernel.add_service(service())
    kernel.add_plugin(WeatherPlugin(), plugin_name="Weather")
    settings = OpenAIChatPromptExecutionSettings(function_choice_behavior=FunctionChoiceBehavior.Auto())
    answer = kernel.add_function(
        plugin_name="Assistant", function_name="Answer", prompt="{{$question}}", prompt_execution_settings=settings
    )
    result = await kernel.invoke(answer, KernelArguments(question="[kernel] What is the weather in Paris?"))
    show("kernel", str(result))
    direct = await kernel.invoke(plugin_name="Weather", function_name="get_weather", city="Rome")
    show("direct", str(direct))
    kernel.add_plugin(ForecastPlugin(), plugin_name="Forecast")
    forecast = await kernel.invoke(plugin_name="Forecast", function_name="forecast", city="Rome")
    show("forecast", str(forecast))
    chunks = []
    async for chunk in kernel.invoke_prompt_stream("[kernel-stream] Say hello.", function_name="Greet"):
        chunks.append(str(chunk[0]))
    show("kernel-stream", len(chunks) > 1, "".join(chunks))


async def agent():
    response = await weather_agent().get_response(messages="[agent] What is the weather in Paris?")
    show("agent", response.message.content)


async def agent_stream():
    pieces = []
    async for item in weather_agent("Streamer").invoke_stream(messages="[stream] What is the weather in Paris?"):
        pieces.append(item.message.content)
    show("stream", len(pieces) > 1, "".join(pieces))


async def concurrent():
    async def by_invoke():
        return [item.message.content async for item in weather_agent("WeatherB").invoke("[gather-b] Weather?")]

    first, second = await asyncio.gather(weather_agent("WeatherA").get_response("[gather-a] Weather?"), by_invoke())
    show("gather", first.message.content, second)


async def failing():
    # A tool that raises: SK tells the model about the error, and the model answers.
    fragile = ChatCompletionAgent(service=service(), name="Fragile", plugins=[BrokenPlugin()])
    response = await fragile.get_response(messages="[tool-error] What is the weather in Paris?")
    show("tool-error", response.message.content)
    try:
        await weather_agent("Broken", "error-400").get_response(messages="[error] Hello")
    except Exception as exc:
        show("error", type(exc).__name__)


def write_telemetry(exporter):
    spans = exporter.get_finished_spans()
    ids = {s.context.span_id for s in spans}
    sk_spans = sorted({s.name for s in spans if s.instrumentation_scope.name.startswith("semantic_kernel")})
    with open(TELEMETRY_FILE, "w") as out:
        json.dump(
            {
                "semantic_kernel_spans": sk_spans,
                "parents_present": all(s.parent is None or s.parent.span_id in ids for s in spans),
                "count": len(spans),
            },
            out,
        )


async def main():
    exporter = own_telemetry() if TELEMETRY_FILE else None
    await kernel_with_tool()
    await agent()
    await agent_stream()
    await concurrent()
    await failing()
    if exporter is not None:
        write_telemetry(exporter)


if __name__ == "__main__":
    asyncio.run(main())
