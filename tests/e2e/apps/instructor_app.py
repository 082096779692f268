"""An ordinary Instructor application, run unmodified by the end-to-end tests.

Configured only through what the openai client reads (OPENAI_BASE_URL, OPENAI_API_KEY). Each
question starts with a label ("[sync] ...") so the tests can find its trace. The response
model's validator rejects as many answers as the call's validation context asks for
(``context={"rejections": N}``), so a call needs N retries: Instructor appends the error and
asks again. It prints what it got; the tests compare the output with and without
``posthog-instrument``.
"""

import asyncio

import instructor
from instructor.core.exceptions import InstructorRetryException
from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel, ValidationInfo, field_validator

MODEL = "gpt-4o-mini"


class Weather(BaseModel):
    """Where the weather was asked for."""

    city: str

    @field_validator("city")
    @classmethod
    def not_a_draft(cls, value, info: ValidationInfo):
        context = info.context or {}
        if context.get("rejections", 0) > 0:
            context["rejections"] -= 1
            raise ValueError(f"{value} is only a draft, answer again")
        return value


class City(BaseModel):
    city: str


def show(*values):
    print(*values, flush=True)


def ask(label):
    return [{"role": "user", "content": f"[{label}] What is the weather in Paris?"}]


def sync_scenarios():
    client = instructor.from_openai(OpenAI())
    weather = client.chat.completions.create(
        model=MODEL, response_model=Weather, messages=ask("sync"), max_retries=2, context={"rejections": 1}
    )
    show("sync", weather.city)

    try:
        client.chat.completions.create(
            model=MODEL, response_model=Weather, messages=ask("exhausted"), max_retries=1, context={"rejections": 5}
        )
    except InstructorRetryException as exc:
        show("exhausted", type(exc).__name__, exc.n_attempts)

    partials = list(client.chat.completions.create_partial(model=MODEL, response_model=City, messages=ask("partial")))
    show("partial", len(partials) > 1, partials[-1].city)

    city, completion = client.chat.completions.create_with_completion(
        model=MODEL, response_model=City, messages=ask("with-completion")
    )
    show("with completion", city.city, completion.usage.prompt_tokens)

    # The older way: patch the openai client itself (no hooks of Instructor's client).
    patched = instructor.patch(OpenAI())
    weather = patched.chat.completions.create(
        model=MODEL, response_model=Weather, messages=ask("patched"), max_retries=1, context={"rejections": 1}
    )
    show("patched", weather.city)


async def async_scenarios():
    client = instructor.from_openai(AsyncOpenAI())

    async def one(label):
        weather = await client.chat.completions.create(
            model=MODEL, response_model=Weather, messages=ask(label), max_retries=3, context={"rejections": 1}
        )
        return weather.city

    show("async", await one("async"))
    # Two validated calls at once: each its own trace.
    show("concurrent", await asyncio.gather(one("concurrent-a"), one("concurrent-b")))


sync_scenarios()
asyncio.run(async_scenarios())
show("done")
