"""An ordinary CrewAI application, run unmodified by the end-to-end tests.

It is configured only through the environment variables CrewAI and the openai SDK read
(OPENAI_BASE_URL, OPENAI_API_KEY, CREWAI_DISABLE_TELEMETRY, ...), runs the scenario group
named on the command line ("sync": one kickoff; "more": kickoff_async, akickoff, two crews at
once, CrewAI's LiteLLM-backed LLM, and an application-defined BaseLLM), and prints what it
saw. The tests run it with and without ``posthog-instrument`` and compare: the output must be
identical.

Every weather crew has one agent with one tool and one task; the task description names the
scenario ("[sync] ...") so the tests can tell the runs apart. The fake OpenAI server answers the
first model call with a call to the tool and the second (after the tool's result) with text.
"""

import asyncio
import json
import os
import sys
import urllib.request

from crewai import LLM, Agent, Crew, Task
from crewai.llms.base_llm import BaseLLM
from crewai.tools import tool


@tool("get_weather")
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"Sunny in {city}, 21 degrees"


def build_crew(label: str, **llm_options) -> Crew:
    llm = LLM(model="gpt-4o-mini", temperature=0.2, **llm_options)
    agent = Agent(
        role=f"Weather reporter {label}",
        goal="Report the weather",
        backstory="You know the weather everywhere.",
        llm=llm,
        tools=[get_weather],
    )
    task = Task(
        description=f"[{label}] What is the weather in {{city}}?",
        expected_output="A short weather report",
        agent=agent,
    )
    return Crew(name=f"weather crew {label}", agents=[agent], tasks=[task])


def show(label: str, output) -> None:
    usage = output.token_usage
    print(
        label,
        repr(output.raw),
        type(output).__name__,
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.successful_requests,
        flush=True,
    )


def sync() -> None:
    show("sync", build_crew("sync").kickoff(inputs={"city": "Paris"}))


async def one_by_one() -> None:
    show("kickoff_async", await build_crew("kickoff_async").kickoff_async(inputs={"city": "Paris"}))
    show("akickoff", await build_crew("akickoff").akickoff(inputs={"city": "Paris"}))


async def side_by_side() -> None:
    # Two crews at once: kickoff_async runs each on a thread of its own.
    first, second = await asyncio.gather(
        build_crew("first").kickoff_async(inputs={"city": "Paris"}),
        build_crew("second").kickoff_async(inputs={"city": "Paris"}),
    )
    show("first", first)
    show("second", second)


class HouseLLM(BaseLLM):
    """The application's own model client (CrewAI's documented extension point), over plain
    urllib: nothing below CrewAI records its requests. It reports usage the way CrewAI's own
    provider classes do, so that CrewAI's token counts include it."""

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
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        body = json.dumps({"model": self.model, "messages": messages}).encode()
        request = urllib.request.Request(
            os.environ["OPENAI_BASE_URL"] + "/chat/completions",
            data=body,
            headers={"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        self._track_token_usage_internal(answer["usage"])
        return answer["choices"][0]["message"]["content"]

    def supports_function_calling(self) -> bool:
        return False


@tool("look_up_weather", result_as_answer=True)
def look_up_weather(city: str) -> str:
    """Weather for a city, as the final answer."""
    return f"Sunny in {city}"


def house_model() -> None:
    # Without native function calling CrewAI prompts ReAct style and parses the model's text;
    # the tool's result is the answer, so one model call is enough.
    agent = Agent(
        role="House reporter",
        goal="Report the weather",
        backstory="You know the weather.",
        llm=HouseLLM(model="house-model"),
        tools=[look_up_weather],
    )
    task = Task(
        name="house weather",
        description="[house] Say the weather in Paris. "
        "reply=\"Thought: I look it up\nAction: look_up_weather\nAction Input: {'city': 'Paris'}\"",
        expected_output="A short weather report",
        agent=agent,
    )
    show("house", Crew(name="house crew", agents=[agent], tasks=[task]).kickoff())


def through_litellm() -> None:
    # CrewAI's LiteLLM-backed LLM instead of its native OpenAI provider.
    crew = build_crew("litellm", is_litellm=True)
    show("litellm", crew.kickoff(inputs={"city": "Paris"}))


def more() -> None:
    asyncio.run(one_by_one())
    asyncio.run(side_by_side())
    through_litellm()
    house_model()


GROUPS = {"sync": sync, "more": more}


def main(group: str) -> None:
    GROUPS[group]()


if __name__ == "__main__":
    main(sys.argv[1])
