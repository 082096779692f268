"""An ordinary Google ADK application, run unmodified by the end-to-end tests.

Its Gemini models reach the model server through the google-genai SDK, which reads the
server's address from ``GOOGLE_GEMINI_BASE_URL`` and the key from ``GEMINI_API_KEY``. It runs
every scenario (each agent named after it, so the tests can find its trace) and prints what it
got. The tests run it with and without ``posthog-instrument`` and compare: the output must be
identical. Its MCP tools come from an MCP server over stdio, started with the command given as
the app's arguments (``google_adk_app.py COMMAND ARG...``).

The fake server answers a request that offers functions, where the user spoke last, with a call
of the first function; otherwise with the text of the last user message's ``reply="..."``
directive, or its default.
"""

import asyncio
import sys
import warnings

from google import genai
from google.adk.agents import LlmAgent, LoopAgent, ParallelAgent, RunConfig, SequentialAgent
from google.adk.agents.run_config import StreamingMode
from google.adk.models import Gemini
from google.adk.runners import InMemoryRunner
from google.adk.tools import AgentTool, FunctionTool
from google.adk.tools.mcp_tool import McpToolset, StdioConnectionParams
from google.adk.workflow import START, Workflow
from google.genai import types
from mcp import StdioServerParameters

MODEL = "gemini-2.5-flash"
# The workflow agents (SequentialAgent, ParallelAgent, LoopAgent) are deprecated in favour of
# ADK 2's Workflow, and still supported.
warnings.simplefilter("ignore", DeprecationWarning)


def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"Sunny in {city}"


async def forecast(city: str) -> str:
    """A tool that asks a model itself, through the google-genai SDK."""
    answer = await genai.Client().aio.models.generate_content(
        model=MODEL, contents=f'[tool-body] Forecast for {city}? reply="Rain"'
    )
    return answer.text


def show(*values):
    print(*values, flush=True)


def message(text):
    return types.Content(role="user", parts=[types.Part(text=text)])


def describe(events):
    """(author, what the event carries) for each event of a run."""
    out = []
    for event in events:
        for part in (event.content and event.content.parts) or ():
            if part.function_call:
                out.append((event.author, "call", part.function_call.name, dict(part.function_call.args)))
            elif part.function_response:
                out.append((event.author, "result", part.function_response.name, part.function_response.response))
            elif part.text and not part.thought:
                out.append((event.author, "text", part.text))
    return out


async def run_events(agent, text, run_config=None):
    runner = InMemoryRunner(agent=agent, app_name="weather_app")
    session = await runner.session_service.create_session(app_name="weather_app", user_id="ada")
    events = []
    async for event in runner.run_async(
        user_id="ada", session_id=session.id, new_message=message(text), run_config=run_config
    ):
        events.append(event)
    return events


async def run(agent, text, run_config=None):
    events = await run_events(agent, text, run_config)
    return [("partial" if event.partial else "whole", *item) for event in events for item in describe([event])]


def run_sync(agent, text):
    runner = InMemoryRunner(agent=agent, app_name="weather_app")
    session = asyncio.run(runner.session_service.create_session(app_name="weather_app", user_id="ada"))
    return describe(runner.run(user_id="ada", session_id=session.id, new_message=message(text)))


def weather_agent(name="Weather"):
    return LlmAgent(
        name=name,
        model=MODEL,
        description="Reports the weather.",
        instruction="You report the weather.",
        tools=[FunctionTool(get_weather)],
    )


def writer(name, instruction):
    return LlmAgent(name=name, model=MODEL, instruction=instruction)


async def scenarios():
    show("tool", await run(weather_agent(), "[tool] What is the weather in Paris?"))
    pipeline = SequentialAgent(
        name="Pipeline", sub_agents=[writer("Writer", "You write."), writer("Reviewer", "You review.")]
    )
    show("sequential", await run(pipeline, '[sequential] Write a haiku. reply="A haiku about Paris"'))
    fan_out = ParallelAgent(
        name="FanOut", sub_agents=[writer("Poet", "You write poems."), writer("Critic", "You criticise.")]
    )
    show("parallel", sorted(await run(fan_out, '[parallel] Go. reply="Done"')))
    loop = LoopAgent(name="Loop", sub_agents=[writer("Drafter", "You draft.")], max_iterations=2)
    show("loop", await run(loop, '[loop] Draft. reply="A draft"'))
    streamed = RunConfig(streaming_mode=StreamingMode.SSE)
    show("stream", await run(writer("Streamer", "You talk."), '[stream] Hi. reply="Hello there" chunks=3', streamed))
    forecaster = LlmAgent(name="Forecaster", model=MODEL, tools=[FunctionTool(forecast)])
    show("tool-body", await run(forecaster, "[tool-body] Will it rain in Paris?"))
    first, second = await asyncio.gather(
        run(weather_agent("WeatherA"), "[gather-a] What is the weather in Paris?"),
        run(weather_agent("WeatherB"), "[gather-b] What is the weather in Rome?"),
    )
    show("gather", first, second)
    helper = LlmAgent(name="Helper", model=MODEL, description="Answers questions.", instruction="You help.")
    delegator = LlmAgent(name="Delegator", model=MODEL, tools=[AgentTool(agent=helper)])
    show("agent-tool", await run(delegator, "[agent-tool] Ask the helper about Paris."))
    # A workflow whose node is a tool (called by the workflow, not by a model).
    flow = Workflow(name="Flow", edges=[(START, FunctionTool(get_weather))])
    show("workflow-tool", [event.output for event in await run_events(flow, "Oslo")])
    command, *arguments = sys.argv[1:]
    server = StdioServerParameters(command=command, args=arguments)
    clock = McpToolset(connection_params=StdioConnectionParams(server_params=server, timeout=60))
    try:
        show("mcp", await run(LlmAgent(name="Clock", model=MODEL, tools=[clock]), "[mcp] What time is it in Paris?"))
    finally:
        await clock.close()
    try:
        # (a model instance: ADK resolves only names it knows, and the server fails "error-400")
        await run(LlmAgent(name="Broken", model=Gemini(model="error-400")), "[error] Hello")
    except Exception as exc:
        show("error", type(exc).__name__)


def main():
    show("sync", run_sync(weather_agent("SyncWeather"), "[sync] What is the weather in Oslo?"))
    asyncio.run(scenarios())


if __name__ == "__main__":
    main()
