"""The same LLM calls made two ways, for the parity tests against PostHog's own SDK.

``PARITY_MODE=wrapper``: through the ``posthog`` SDK's wrappers (``posthog.ai.openai.OpenAI``,
``posthog.ai.anthropic.Anthropic``, ``posthog.ai.gemini.Client``), which send their events to
``POSTHOG_HOST``'s ``/batch/``; run without ``posthog-instrument``.
``PARITY_MODE=plain``: the plain SDK clients, as an unmodified app, run under ``posthog-instrument``.

Each scenario of ``SCENARIOS`` makes exactly one call, in the order listed, so the two runs'
events pair up. ``langchain_tools`` (a chain with a tool, through ``posthog.ai.langchain``'s
``CallbackHandler`` in wrapper mode) makes several events and runs only when named:
``parity_app.py langchain_tools``.
"""

import os
import sys

import anthropic
import openai
from google import genai

WRAPPER = os.environ.get("PARITY_MODE") == "wrapper"
USER = "parity-user"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ANTHROPIC_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": TOOL["function"]["parameters"],
}
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]
_posthog = None


def posthog_client():
    global _posthog
    if _posthog is None:
        from posthog import Posthog

        _posthog = Posthog("phc_test_project_token", host=os.environ["POSTHOG_HOST"], sync_mode=True)
    return _posthog


def extra() -> dict:
    """The wrapper's per-call arguments (the person); the plain run is configured instead."""
    return {"posthog_distinct_id": USER} if WRAPPER else {}


def openai_client():
    if WRAPPER:
        from posthog.ai.openai import OpenAI

        return OpenAI(posthog_client=posthog_client(), max_retries=0)
    return openai.OpenAI(max_retries=0)


def anthropic_client():
    if WRAPPER:
        from posthog.ai.anthropic import Anthropic

        return Anthropic(posthog_client=posthog_client(), max_retries=0)
    return anthropic.Anthropic(max_retries=0)


_gemini = []


def gemini_client():
    if WRAPPER:
        from posthog.ai.gemini import Client

        _gemini.append(Client(api_key=os.environ["GEMINI_API_KEY"], posthog_client=posthog_client()))
    else:
        _gemini.append(genai.Client())
    return _gemini[-1]


def openai_chat():
    r = openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.3, max_tokens=50, **extra()
    )
    print(r.choices[0].message.content)


def openai_stream():
    s = openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}, **extra()
    )
    print("".join(c.choices[0].delta.content or "" for c in s if c.choices))


def openai_tools():
    r = openai_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=[TOOL], **extra())
    print(r.choices[0].message.tool_calls[0].function.name)


def openai_responses():
    r = openai_client().responses.create(
        model="gpt-4o-mini", input="Say hello", instructions="Be terse.", max_output_tokens=40, **extra()
    )
    print(r.output_text)


def openai_embeddings():
    r = openai_client().embeddings.create(model="text-embedding-3-small", input=["first text"], **extra())
    print(len(r.data))


def openai_error():
    try:
        openai_client().chat.completions.create(model="error-429", messages=MESSAGES, **extra())
    except openai.RateLimitError as exc:
        print("RateLimitError", exc.status_code)


def anthropic_messages():
    r = anthropic_client().messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        system="You are terse.",
        messages=[{"role": "user", "content": "Say hello"}],
        **extra(),
    )
    print(r.content[0].text)


def anthropic_stream():
    s = anthropic_client().messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        stream=True,
        messages=[{"role": "user", "content": "Say hello"}],
        **extra(),
    )
    print(len(list(s)))


def anthropic_tools():
    r = anthropic_client().messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        tools=[ANTHROPIC_TOOL],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        **extra(),
    )
    print(r.stop_reason)


def anthropic_thinking():
    r = anthropic_client().messages.create(
        model="claude-sonnet-4-5",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Say hello"}],
        **extra(),
    )
    print([block.type for block in r.content])


def gemini_generate():
    r = gemini_client().models.generate_content(
        model="gemini-2.5-flash",
        contents="Say hello",
        config={"system_instruction": "You are terse.", "temperature": 0.3},
        **extra(),
    )
    print(r.text)


def gemini_stream():
    chunks = list(
        gemini_client().models.generate_content_stream(model="gemini-2.5-flash", contents="Stream please", **extra())
    )
    print(len(chunks))


def langchain_tools():
    """A chain (prompt | model with a tool): LangChain reports it as runs, so it makes several
    events, not one; run on its own (not in SCENARIOS)."""
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """Weather for a city"""
        return f"Sunny in {city}"

    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("human", "{question}")])
    model = ChatOpenAI(model="gpt-4o-mini", temperature=0.3, max_tokens=50, max_retries=0)
    chain = prompt | model.bind_tools([get_weather])
    config = {}
    if WRAPPER:
        from posthog.ai.langchain import CallbackHandler

        config = {"callbacks": [CallbackHandler(client=posthog_client(), distinct_id=USER)]}
    r = chain.invoke({"question": "Weather in Paris?"}, config=config)
    print(r.tool_calls[0]["name"], r.tool_calls[0]["args"])


SCENARIOS = [
    openai_chat,
    openai_stream,
    openai_tools,
    openai_responses,
    openai_embeddings,
    openai_error,
    anthropic_messages,
    anthropic_stream,
    anthropic_tools,
    anthropic_thinking,
    gemini_generate,
    gemini_stream,
]
LANGCHAIN = [langchain_tools]  # run only when named

if __name__ == "__main__":
    wanted = sys.argv[1:] or [s.__name__ for s in SCENARIOS]
    for scenario in SCENARIOS + LANGCHAIN:
        if scenario.__name__ in wanted:
            scenario()
    if _posthog is not None:
        _posthog.shutdown()
