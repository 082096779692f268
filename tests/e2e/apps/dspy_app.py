"""An ordinary DSPy application, run unmodified by the end-to-end tests.

It reads the model server's address from ``DSPY_APP_API_BASE`` and the key from
``OPENAI_API_KEY``, runs the scenario group named on the command line ("sync" or "async"),
and prints what it got. The tests run it with and without ``posthog-instrument`` and compare:
the output must be identical.

Every question starts with a label ("[cot] ...") so the tests can find its spans, and ends
with the fake server's ``reply="..."`` directive: the answer, in the field format DSPy's
ChatAdapter reads (``[[ ## field ## ]]`` sections). A reply may hold more fields than a
predictor asks for (ReAct's step and its final extraction read different ones); DSPy ignores
the others.
"""

import asyncio
import os
import sys
import threading

import dspy

API_BASE = os.environ["DSPY_APP_API_BASE"]
API_KEY = os.environ["OPENAI_API_KEY"]


def lm(**options):
    return dspy.LM("openai/gpt-4o-mini", api_base=API_BASE, api_key=API_KEY, **options)


def question(label, text, **fields):
    sections = "\n\n".join(f"[[ ## {name} ## ]]\n{value}" for name, value in fields.items())
    return f'[{label}] {text} reply="{sections}\n\n[[ ## completed ## ]]"'


def cot_question(label, answer="Paris"):
    return question(label, "What is the capital of France?", reasoning=f"It is {answer}.", answer=answer)


def react_question(label):
    return question(
        label,
        "What is the weather in Paris?",
        next_thought="I should look up the weather.",
        next_tool_name="get_weather",
        next_tool_args="{'city': 'Paris'}",
        reasoning="The tool said it is sunny.",
        answer="Sunny in Paris",
    )


def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"It is sunny in {city}."


async def aget_weather(city: str) -> str:
    """Weather for a city."""
    await asyncio.sleep(0)
    return f"It is sunny in {city}."


class Summarize(dspy.Module):
    """A user-defined module with its own forward: two predictors in a row."""

    def __init__(self):
        super().__init__()
        self.answer = dspy.ChainOfThought("question -> answer")
        self.shorten = dspy.Predict("text -> summary")

    def forward(self, question):
        answered = self.answer(question=question)
        label = question.split("]")[0] + "]"
        short = self.shorten(text=question_for_summary(label, answered.answer))
        return dspy.Prediction(answer=answered.answer, summary=short.summary)


def question_for_summary(label, text):
    return f'{label} {text} reply="[[ ## summary ## ]]\nshort\n\n[[ ## completed ## ]]"'


def show(*values):
    print(*values, flush=True)


def sync_group():
    dspy.configure(lm=lm(cache=False))
    cot = dspy.ChainOfThought("question -> answer")

    result = cot(question=cot_question("cot"))
    show("cot", result.reasoning, "|", result.answer)

    # The same program with DSPy's LiteLLM engine: LiteLLM below DSPy records the request.
    with dspy.context(lm=lm(cache=False, engine="litellm")):
        result = cot(question=cot_question("cot-litellm", "Lyon"))
    show("cot-litellm", result.answer)

    result = Summarize()(question=cot_question("custom", "Marseille"))
    show("custom", result.answer, result.summary)

    react = dspy.ReAct("question -> answer", tools=[get_weather], max_iters=1)
    result = react(question=react_question("react"))
    show("react", result.answer, result.trajectory)

    # Two runs on two threads at once: two traces that must not mix.
    outcomes = {}

    def run(label):
        outcomes[label] = cot(question=cot_question(label, label.upper())).answer

    threads = [threading.Thread(target=run, args=(label,)) for label in ("thread-a", "thread-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    show("threads", sorted(outcomes.items()))

    # DSPy's response cache (a fresh directory per run: DSPY_CACHEDIR): the second, identical
    # call is answered from the cache without a request.
    cached = dspy.ChainOfThought("question -> answer")
    with dspy.context(lm=lm(cache=True)):
        first = cached(question=cot_question("cache", "Nice"))
        second = cached(question=cot_question("cache", "Nice"))
    show("cache", first.answer, second.answer)


async def async_group():
    dspy.configure(lm=lm(cache=False))
    cot = dspy.ChainOfThought("question -> answer")

    result = await cot.acall(question=cot_question("acot", "Bordeaux"))
    show("acot", result.answer)

    with dspy.context(lm=lm(cache=False, engine="litellm")):
        result = await cot.acall(question=cot_question("acot-litellm", "Lille"))
    show("acot-litellm", result.answer)

    react = dspy.ReAct("question -> answer", tools=[dspy.Tool(aget_weather, name="get_weather")], max_iters=1)
    result = await react.acall(question=react_question("areact"))
    show("areact", result.answer, result.trajectory)

    first, second = await asyncio.gather(
        cot.acall(question=cot_question("gather-a", "GATHER-A")),
        cot.acall(question=cot_question("gather-b", "GATHER-B")),
    )
    show("gather", first.answer, second.answer)


if __name__ == "__main__":
    group = sys.argv[1]
    if group == "sync":
        sync_group()
    else:
        asyncio.run(async_group())
    show("done")
