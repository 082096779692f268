"""An ordinary AutoGen AgentChat application, run unmodified by the end-to-end tests.

It reads the model server's address from ``AUTOGEN_APP_BASE_URL`` and the key from
``OPENAI_API_KEY``, runs every scenario in one asyncio program and prints what it got. The
tests run it with and without ``posthog-instrument`` and compare: the output must be identical.

Every task starts with a label ("[solo] ...") so the tests can find its spans. The fake server
answers a request that offers tools, where the user spoke last, with a call of the first tool;
otherwise with the text of the last user message's ``reply="..."`` directive, or its default.
"""

import asyncio
import os

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from autogen_core.models import ModelFamily
from autogen_core.tools import FunctionTool
from autogen_ext.models.openai import OpenAIChatCompletionClient
from openai import AsyncOpenAI

BASE_URL = os.environ["AUTOGEN_APP_BASE_URL"]


def client(model="gpt-4o-mini"):
    # A model name AutoGen does not know needs its capabilities spelled out.
    info = (
        None
        if model == "gpt-4o-mini"
        else {
            "vision": False,
            "function_calling": True,
            "json_output": True,
            "family": ModelFamily.GPT_4O,
            "structured_output": True,
        }
    )
    return OpenAIChatCompletionClient(
        model=model, base_url=BASE_URL, api_key=os.environ["OPENAI_API_KEY"], model_info=info
    )


async def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"Sunny in {city}"


weather_tool = FunctionTool(get_weather, description="Weather for a city.")


async def forecast(city: str) -> str:
    """A tool that asks a model itself, through the openai SDK."""
    answer = await AsyncOpenAI(base_url=BASE_URL).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f'[tool-body] Forecast for {city}? reply="Rain"'}]
    )
    return answer.choices[0].message.content


def show(*values):
    print(*values, flush=True)


def describe(result: TaskResult):
    return [type(m).__name__ for m in result.messages], result.messages[-1].to_text()


def weather_agent(name="Weather"):
    return AssistantAgent(
        name,
        model_client=client(),
        tools=[weather_tool],
        reflect_on_tool_use=True,
        system_message="You report the weather.",
    )


async def solo():
    result = await weather_agent().run(task="[solo] What is the weather in Paris?")
    show("solo", *describe(result))


async def tool_with_model_call():
    agent = AssistantAgent("Forecaster", model_client=client(), tools=[FunctionTool(forecast, description="Forecast.")])
    result = await agent.run(task="[forecast] Will it rain in Paris?")
    show("forecast", *describe(result))


async def stream():
    agent = AssistantAgent("Streamer", model_client=client(), model_client_stream=True)
    kinds = []
    async for item in agent.run_stream(task='[stream] Say hello. reply="Hello in three words"'):
        kinds.append(type(item).__name__)
    show("stream", kinds, item.messages[-1].to_text())


async def round_robin():
    writer = AssistantAgent("Writer", model_client=client(), system_message="You write.")
    reviewer = AssistantAgent("Reviewer", model_client=client(), system_message="You review.")
    team = RoundRobinGroupChat([writer, reviewer], termination_condition=MaxMessageTermination(3))
    result = await team.run(task='[round] Write a haiku. reply="A haiku about Paris"')
    show("round", *describe(result))


async def selector():
    writer = AssistantAgent("Writer", model_client=client(), description="Writes text.")
    reviewer = AssistantAgent("Reviewer", model_client=client(), description="Reviews text.")
    team = SelectorGroupChat([writer, reviewer], model_client=client(), termination_condition=MaxMessageTermination(2))
    result = await team.run(task='[selector] Who should write? reply="Writer"')
    show("selector", *describe(result))


async def concurrent():
    first, second = await asyncio.gather(
        weather_agent("WeatherA").run(task="[gather-a] What is the weather in Paris?"),
        weather_agent("WeatherB").run(task="[gather-b] What is the weather in Paris?"),
    )
    show("gather", describe(first)[1], describe(second)[1])


async def failing():
    agent = AssistantAgent("Broken", model_client=client("error-400"))
    try:
        await agent.run(task="[error] Hello")
    except Exception as exc:
        show("error", type(exc).__name__)


async def main():
    await solo()
    await tool_with_model_call()
    await stream()
    await round_robin()
    await selector()
    await concurrent()
    await failing()


if __name__ == "__main__":
    asyncio.run(main())
