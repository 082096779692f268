"""An ordinary Pydantic AI application, run unmodified by the end-to-end tests.

It reaches the model through the OpenAI provider pointed at ``OPENAI_BASE_URL`` (the fake
OpenAI server, which answers a user message with a call to the first tool, and a tool result
with text), runs the scenario group named on the command line, and prints what it saw. The
tests run it with and without ``posthog-instrument`` and compare: the output must be identical.

Every prompt starts with a label ("[sync] ...") so the tests can find its trace.
"""

import sys

# Whether anything imported Pydantic AI before the app did (start-up must not).
print("pydantic_ai imported before the app:", "pydantic_ai" in sys.modules, flush=True)

import asyncio  # noqa: E402
import inspect  # noqa: E402
import os  # noqa: E402

from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel  # noqa: E402
from pydantic_ai.models.test import TestModel  # noqa: E402
from pydantic_ai.providers.openai import OpenAIProvider  # noqa: E402


def show(*values):
    print(*values, flush=True)


def provider():
    return OpenAIProvider(base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"])


def weather_agent(model, name="weather_agent"):
    agent = Agent(model, name=name, instructions="Answer in one sentence.")

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}"

    return agent


def report(label, result, output=None):
    usage = result.usage
    usage = usage() if inspect.ismethod(usage) else usage  # a method before 2.x
    output = result.output if output is None else output
    show(label, repr(output), "requests", usage.requests, "in", usage.input_tokens, "out", usage.output_tokens)


async def streamed(agent, prompt):
    async with agent.run_stream(prompt) as run:
        pieces = [piece async for piece in run.stream_text(delta=True)]
        output = await run.get_output()
    show("[stream] pieces joined:", repr("".join(pieces)))
    report("[stream]", run, output)


def main_group():
    chat = weather_agent(OpenAIChatModel("gpt-4o-mini", provider=provider()))
    report("[sync]", chat.run_sync("[sync] What is the weather in Paris?"))

    asyncio.run(streamed(chat, "[stream] What is the weather in Paris? chunks=3"))

    responses = weather_agent(OpenAIResponsesModel("gpt-4o-mini", provider=provider()), name="responses_agent")
    report("[responses]", asyncio.run(responses.run("[responses] What is the weather in Paris?")))

    # A model no adapter of ours sees: Pydantic AI's own span is the generation.
    tested = weather_agent(TestModel(), name="test_agent")
    report("[testmodel]", tested.run_sync("[testmodel] What is the weather?"))

    async def concurrently():
        return await asyncio.gather(
            chat.run("[first] What is the weather in Paris?"),
            chat.run("[second] What is the weather in Paris?"),
        )

    first, second = asyncio.run(concurrently())
    report("[first]", first)
    report("[second]", second)

    # The app's own choice for one agent: no instrumentation.
    quiet = weather_agent(OpenAIChatModel("gpt-4o-mini", provider=provider()), name="quiet_agent")
    quiet.instrument = False
    report("[quiet]", quiet.run_sync("[quiet] What is the weather in Paris?"))


def app_choice_group():
    # The app instruments Pydantic AI itself, without content: that choice stands.
    from pydantic_ai.models.instrumented import InstrumentationSettings

    Agent.instrument_all(InstrumentationSettings(include_content=False))
    agent = weather_agent(TestModel(), name="own_choice_agent")
    report("[own-choice]", agent.run_sync("[own-choice] What is the weather?"))


if __name__ == "__main__":
    {"main": main_group, "app_choice": app_choice_group}[sys.argv[1]]()
