"""An ordinary Agno application, run unmodified by the end-to-end tests.

Its agents use ``OpenAIChat`` at OPENAI_BASE_URL. Each input starts with a label ("[agent] ...")
so the tests can find its trace; the loopback server calls the first tool offered while the
user spoke last, then answers with text. It prints what it got; the tests compare the output
with and without ``posthog-instrument``.
"""

import asyncio

from agno.agent import Agent
from agno.models.openai import OpenAIChat
from agno.team import Team


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def broken_lookup(city: str) -> str:
    """A lookup that always fails."""
    raise RuntimeError(f"no data for {city}")


def model():
    return OpenAIChat(id="gpt-4o-mini")


def show(*values):
    print(*values, flush=True)


def ask(label):
    return f"[{label}] What is the weather in Paris?"


weather_agent = Agent(name="Weather", model=model(), tools=[get_weather], telemetry=False)
show("agent", weather_agent.run(ask("agent")).content)

failing_agent = Agent(name="Failing", model=model(), tools=[broken_lookup], telemetry=False)
show("failing", failing_agent.run(ask("failing")).content)

# The team leader delegates (``call=...``: the server fills the tool's arguments with "sample",
# hence the member's id).
member = Agent(name="Reporter", id="sample", model=model(), telemetry=False)
team = Team(name="Desk", members=[member], model=model(), telemetry=False)
show("team", team.run(ask("team") + " call=delegate_task_to_member").content)


def streamed_text(events):
    return "".join(e.content for e in events if type(e).__name__ == "RunContentEvent" and isinstance(e.content, str))


show("stream", streamed_text(weather_agent.run(ask("stream"), stream=True)))


async def astream():
    agent = Agent(name="Weather", model=model(), tools=[get_weather], telemetry=False)
    show("astream", streamed_text([event async for event in agent.arun(ask("astream"), stream=True)]))


async def concurrent():
    agents = [Agent(name="Weather", model=model(), tools=[get_weather], telemetry=False) for _ in range(2)]
    outputs = await asyncio.gather(*(agent.arun(ask(label)) for agent, label in zip(agents, ("async-a", "async-b"))))
    show("async", [output.content for output in outputs])


async def main():
    await astream()
    await concurrent()


asyncio.run(main())
show("done")
