"""An ordinary smolagents application, run unmodified by the end-to-end tests.

Its models reach the model server at OPENAI_BASE_URL (``OpenAIServerModel`` over the openai
SDK, ``LiteLLMModel`` over LiteLLM). Each task starts with a label ("[tools] ...") so the tests
can find its trace. The loopback server's directives script the model: a ``ToolCallingAgent``'s
task makes it call ``get_weather``, whose result asks it (``call=final_answer``) to answer
next; a ``CodeAgent``'s task carries the code the model writes (``reply="..."``), run by the
local Python executor. It prints what it got; the tests compare the output with and without
``posthog-instrument``.
"""

import os
import threading

from smolagents import CodeAgent, LiteLLMModel, OpenAIServerModel, ToolCallingAgent, tool

BASE_URL = os.environ["OPENAI_BASE_URL"]
API_KEY = os.environ["OPENAI_API_KEY"]


@tool
def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: the city's name.
    """
    return f"Sunny in {city} call=final_answer"


@tool
def broken_lookup(city: str) -> str:
    """A lookup that always fails.

    Args:
        city: the city's name.
    """
    raise RuntimeError(f"no data for {city}")


def openai_model():
    return OpenAIServerModel(model_id="gpt-4o-mini", api_base=BASE_URL, api_key=API_KEY)


def litellm_model():
    return LiteLLMModel(model_id="openai/gpt-4o-mini", api_base=BASE_URL, api_key=API_KEY)


CODE = "Thought: I look it up.\n<code>\nweather = get_weather(city='Paris')\nfinal_answer(weather)\n</code>"


def show(*values):
    print(*values, flush=True)


def tool_calling(label, model, tools=(get_weather,), max_steps=3):
    agent = ToolCallingAgent(tools=list(tools), model=model, max_steps=max_steps, verbosity_level=0)
    return agent.run(f"[{label}] What is the weather in Paris?")


def code(label, model, **options):
    agent = CodeAgent(tools=[get_weather], model=model, **{"max_steps": 2, "verbosity_level": 0, **options})
    return agent.run(f'[{label}] What is the weather in Paris? reply="{CODE}"')


show("tools", tool_calling("tools", openai_model()))
show("litellm", tool_calling("litellm", litellm_model()))
show("code", code("code", openai_model()))
show("code-litellm", code("code-litellm", litellm_model()))
# A planning step first; the step after it gets no code from the stand-in, and the run ends at
# its one step with the answer smolagents then asks the model for.
show("planning", code("planning", openai_model(), planning_interval=1, max_steps=1).splitlines()[0])
stream_agent = ToolCallingAgent(tools=[get_weather], model=openai_model(), max_steps=3, verbosity_level=0)
steps = list(stream_agent.run("[stream] What is the weather in Paris?", stream=True))
show("stream", type(steps[-1]).__name__, steps[-1].output)
show("failing tool", tool_calling("failing", openai_model(), tools=(broken_lookup,), max_steps=1))

# Two runs at once, in threads: each its own trace.
answers = {}
threads = [
    threading.Thread(target=lambda label=label: answers.update({label: code(label, openai_model())}))
    for label in ("concurrent-a", "concurrent-b")
]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
show("concurrent", sorted(answers.items()))
show("done")
