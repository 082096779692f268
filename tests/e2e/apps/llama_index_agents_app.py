"""An ordinary LlamaIndex agents application, run unmodified by the end-to-end tests.

Agents and workflows from ``llama-index-core`` (over ``llama-index-workflows``) with the
``OpenAI`` LLM, reaching the endpoint in OPENAI_BASE_URL / OPENAI_API_KEY:

* ``FunctionAgent`` with one tool (the model asks for the tool, then answers), and one whose
  tool raises (LlamaIndex hands the error to the model, which answers);
* ``AgentWorkflow`` of two agents, the first handing off to the second;
* ``ReActAgent`` with the same tool (the model's text names the action);
* a custom ``Workflow`` of two ``@step`` methods, the first calling the LLM through LlamaIndex,
  the second the openai SDK directly, and a workflow whose step raises;
* two ``FunctionAgent`` runs at once, one awaited, the other read with ``stream_events()``.

Every user message starts with a label ("[agent] ...") so the tests can find its spans; the
loopback OpenAI stand-in reads the directives in it (``call=``, ``args=``, ``reply=``).
"""

import asyncio
import sys

import openai
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent
from llama_index.core.llms import ChatMessage
from llama_index.core.workflow import Event, StartEvent, StopEvent, Workflow, step
from llama_index.llms.openai import OpenAI


def show(*values):
    print(*values, flush=True)


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"Sunny in {city}"


def broken_forecast(city: str) -> str:
    """Get the forecast for a city."""
    raise ValueError(f"no forecast for {city}")


def llm():
    return OpenAI(model="gpt-4o-mini", temperature=0.1)


async def function_agent():
    agent = FunctionAgent(name="Weather", description="Reports the weather.", tools=[get_weather], llm=llm())
    response = await agent.run(user_msg="[agent] What is the weather in Paris?")
    show("agent:", str(response), [call.tool_name for call in response.tool_calls])


async def failing_tool():
    agent = FunctionAgent(name="Forecaster", tools=[broken_forecast], llm=llm())
    response = await agent.run(user_msg="[broken] What is the forecast for Paris?")
    show("broken:", str(response), [call.tool_output.content for call in response.tool_calls])


async def agent_workflow():
    researcher = FunctionAgent(
        name="Researcher",
        description="Looks things up.",
        system_prompt="You research, then hand off to the Writer.",
        llm=llm(),
        tools=[get_weather],
        can_handoff_to=["Writer"],
    )
    writer = FunctionAgent(name="Writer", description="Writes the answer.", llm=llm())
    workflow = AgentWorkflow(agents=[researcher, writer], root_agent="Researcher")
    message = '[handoff] Write about Paris. call=handoff args={"to_agent":"Writer","reason":"to_write"}'
    response = await workflow.run(user_msg=message)
    show("handoff:", str(response), response.current_agent_name)


async def react_agent():
    agent = ReActAgent(name="Reasoner", tools=[get_weather], llm=llm())
    action = "Thought: I need the weather.\nAction: get_weather\nAction Input: {'city': 'Paris'}"
    response = await agent.run(user_msg=f'[react] What is the weather in Paris? reply="{action}"')
    show("react:", str(response), [call.tool_name for call in response.tool_calls])


class Topic(Event):
    topic: str
    idea: str


class WriteUp(Workflow):
    @step
    async def brainstorm(self, ev: StartEvent) -> Topic:
        reply = await llm().achat([ChatMessage(role="user", content=f"{ev.topic} Give me an idea")])
        return Topic(topic=ev.topic, idea=reply.message.content)

    @step
    async def write(self, ev: Topic) -> StopEvent:
        client = openai.AsyncOpenAI()
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"{ev.topic} Write about: {ev.idea}"}]
        )
        return StopEvent(result=completion.choices[0].message.content)


class Explode(Workflow):
    @step
    async def explode(self, ev: StartEvent) -> StopEvent:
        raise RuntimeError(f"{ev.topic} went wrong")


async def failing_workflow():
    try:
        await Explode(timeout=30).run(topic="[failing] Paris")
    except Exception as exc:
        show("failing:", type(exc).__name__, exc)


async def custom_workflow():
    result = await WriteUp(timeout=30).run(topic="[workflow] Paris")
    show("workflow:", result)


async def concurrent_agents():
    def agent():
        return FunctionAgent(name="Weather", tools=[get_weather], llm=llm())

    async def streamed(message):
        handler = agent().run(user_msg=message)
        kinds = set()
        async for event in handler.stream_events():
            kinds.add(type(event).__name__)
        response = await handler
        return response, "ToolCallResult" in kinds

    first, (second, saw_tool) = await asyncio.gather(
        agent().run(user_msg="[concurrent-1] Weather in Paris?"),
        streamed("[concurrent-2] Weather in Paris?"),
    )
    show("concurrent:", str(first), str(second), saw_tool)


async def scenarios(group):
    if group == "all":
        await function_agent()
        await failing_tool()
        await agent_workflow()
        await react_agent()
        await custom_workflow()
        await failing_workflow()
        await concurrent_agents()
    elif group == "agent":
        await function_agent()
    else:
        raise SystemExit(f"unknown group {group!r}")


def main(group):
    # One event loop for every scenario: LlamaIndex's OpenAI LLM keeps its async client.
    asyncio.run(scenarios(group))


if __name__ == "__main__":
    main(sys.argv[1])
