"""An ordinary OpenAI Agents SDK application, run unmodified by the end-to-end tests.

Configured only through what the SDK and the openai client read (OPENAI_BASE_URL,
OPENAI_API_KEY). Like an app that sends its agent traces to a proxy rather than to OpenAI,
it points the SDK's own trace exporter at ``$OPENAI_BASE_URL/traces/ingest`` with
``set_trace_processors``: with no network here, the SDK's default exporter would otherwise
spend seconds at exit retrying api.openai.com. The tests check that PostHog's processor
survives that call and that the app's exporter still receives every span.

Each scenario runs under its own workflow name (``RunConfig(workflow_name=...)``), which the
tests use to find its trace. It prints what it saw; the tests compare the output with and
without ``posthog-instrument``.
"""

import asyncio
import os
import sys

from openai import AsyncOpenAI

from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    OpenAIChatCompletionsModel,
    OpenAIProvider,
    RunConfig,
    Runner,
    function_tool,
    input_guardrail,
    output_guardrail,
    set_trace_processors,
)
from agents.tracing.processors import BackendSpanExporter, BatchTraceProcessor

MODEL = "gpt-4o-mini"


def show(*values):
    print(*values, flush=True)


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@function_tool
def flaky_lookup(city: str) -> str:
    """A lookup that always fails (its error goes back to the model)."""
    raise RuntimeError(f"lookup service down for {city}")


@function_tool(failure_error_function=None)
def fatal_lookup(city: str) -> str:
    """A lookup whose failure ends the run."""
    raise ValueError(f"no data for {city}")


@input_guardrail
async def polite_check(ctx, agent, user_input):
    return GuardrailFunctionOutput(output_info={"polite": True}, tripwire_triggered=False)


@input_guardrail
async def block_everything(ctx, agent, user_input):
    return GuardrailFunctionOutput(output_info={"blocked": True}, tripwire_triggered=True)


@output_guardrail
async def length_check(ctx, agent, output):
    return GuardrailFunctionOutput(output_info={"length": len(output)}, tripwire_triggered=False)


def weather_agent(name="Weather"):
    return Agent(name=name, instructions="Answer briefly.", tools=[get_weather], model=MODEL)


def config(label):
    return RunConfig(workflow_name=label)


def report(label, result):
    show(
        label,
        result.last_agent.name,
        repr(result.final_output),
        len(result.new_items),
        sum(r.usage.input_tokens for r in result.raw_responses),
    )


# -- scenarios --------------------------------------------------------------------------------


def run_sync():
    # A client of its own: the SDK's shared default client would stay bound to this event loop.
    run_config = RunConfig(workflow_name="sync", model_provider=OpenAIProvider(openai_client=AsyncOpenAI()))
    report("sync", Runner.run_sync(weather_agent(), "Weather in Paris?", run_config=run_config))


async def run_tool():
    report("tool", await Runner.run(weather_agent(), "What is the weather?", run_config=config("tool")))


async def run_streamed():
    result = Runner.run_streamed(weather_agent(), "Stream the weather", run_config=config("streamed"))
    kinds = []
    async for event in result.stream_events():
        if event.type == "run_item_stream_event":
            kinds.append(event.item.type)
    show("streamed", kinds)
    report("streamed", result)


async def run_handoff():
    spanish = Agent(name="Spanish", instructions="Answer in Spanish.", model=MODEL)
    triage = Agent(name="Triage", instructions="Hand off to the right agent.", handoffs=[spanish], model=MODEL)
    report("handoff", await Runner.run(triage, "Hola, que tiempo hace?", run_config=config("handoff")))


async def run_guardrails():
    agent = Agent(
        name="Guarded",
        instructions="Answer briefly.",
        model=MODEL,
        input_guardrails=[polite_check],
        output_guardrails=[length_check],
    )
    report("guardrails", await Runner.run(agent, "Tell me something", run_config=config("guardrails")))


async def run_chat_completions():
    model = OpenAIChatCompletionsModel(model=MODEL, openai_client=AsyncOpenAI())
    agent = Agent(name="ChatWeather", instructions="Answer briefly.", tools=[get_weather], model=model)
    report("chat", await Runner.run(agent, "Weather via chat completions?", run_config=config("chat")))


async def run_concurrently():
    first, second = await asyncio.gather(
        Runner.run(weather_agent("First"), "Weather for the first?", run_config=config("gather-1")),
        Runner.run(weather_agent("Second"), "Weather for the second?", run_config=config("gather-2")),
    )
    report("gather-1", first)
    report("gather-2", second)


async def run_errors():
    agent = Agent(name="Flaky", instructions="Answer briefly.", tools=[flaky_lookup], model=MODEL)
    report("tool-error", await Runner.run(agent, "Look it up", run_config=config("tool-error")))

    agent = Agent(name="Fatal", instructions="Answer briefly.", tools=[fatal_lookup], model=MODEL)
    try:
        await Runner.run(agent, "Look it up", run_config=config("fatal-error"))
    except Exception as exc:
        show("fatal-error failed:", type(exc).__name__, exc)

    agent = Agent(name="Blocked", instructions="Answer briefly.", model=MODEL, input_guardrails=[block_everything])
    try:
        await Runner.run(agent, "Anything", run_config=config("tripwire"))
    except InputGuardrailTripwireTriggered as exc:
        show("tripwire failed:", type(exc).__name__, exc.guardrail_result.guardrail.get_name())

    agent = Agent(name="Broken", instructions="Answer briefly.", model="error-400")
    try:
        await Runner.run(agent, "Anything", run_config=config("model-error"))
    except Exception as exc:
        show("model-error failed:", type(exc).__name__, getattr(exc, "status_code", None))


async def run_async_scenarios():
    await run_tool()
    await run_streamed()
    await run_handoff()
    await run_guardrails()
    await run_chat_completions()
    await run_concurrently()
    await run_errors()


def everything():
    run_sync()  # run_sync starts its own event loop, so it runs outside asyncio.run
    asyncio.run(run_async_scenarios())


def tool_only():
    asyncio.run(run_tool())


if __name__ == "__main__":
    set_trace_processors(
        [
            BatchTraceProcessor(
                BackendSpanExporter(endpoint=os.environ["OPENAI_BASE_URL"].rstrip("/") + "/traces/ingest")
            )
        ]
    )
    {"everything": everything, "tool": tool_only}[sys.argv[1]]()
