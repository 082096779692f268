"""A script that says who its LLM calls belong to in every way the identity feature supports.

Each scenario is a function; the scenarios to run are named on the command line (all of them
by default). Every call's prompt carries ``case=<name>`` so a test can find its span among
the others. The optional API (``posthog_autoinstrument.context``) and PostHog's own SDK
context are used exactly as an application would use them; everything else (OpenAI ``user``,
baggage, ``POSTHOG_DISTINCT_ID``) is plain application code with no knowledge of us.
"""

import asyncio
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import openai

import posthog_autoinstrument as pai

MODEL = "gpt-4o-mini"
client = openai.OpenAI(max_retries=0)


def show(*values):
    print(*values, flush=True)


def ask(case, **kwargs):
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"case={case}"}], **kwargs)
    return r.choices[0].message.content


async def aask(aclient, case, **kwargs):
    r = await aclient.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": f"case={case}"}], **kwargs
    )
    return r.choices[0].message.content


# -- no identity at all, and identifiers the app already puts in the request -------------------


def anonymous():
    show("anonymous", ask("anonymous"))


def openai_user():
    show("openai_user", ask("openai_user", user="openai-user"))


def safety_identifier():
    show("safety_identifier", ask("safety_identifier", safety_identifier="safety-user"))


# -- the optional API -------------------------------------------------------------------------


def explicit():
    with pai.context(
        distinct_id="ctx-user",
        session_id="ctx-session",
        properties={"plan": "pro", "env": "ctx-env", "seats": 3, "tags": ["a", "b"]},
        groups={"company": "acme"},
        feature_flags={"checkout": "v2"},
    ):
        show("explicit", ask("explicit", user="openai-user"))


def session_only():
    with pai.context(session_id="only-session"):
        show("session_only", ask("session_only"))


def nested():
    with pai.context(
        distinct_id="outer",
        session_id="outer-session",
        properties={"a": 1, "shared": "outer"},
        groups={"company": "acme"},
    ):
        ask("nested_outer_before")
        with pai.context(distinct_id="inner", properties={"b": 2, "shared": "inner"}, groups={"project": "p1"}):
            ask("nested_inner")
        ask("nested_outer_after")
    ask("nested_after_all")
    show("nested done")


async def _one_task(aclient, i):
    async with pai.context(distinct_id=f"task-{i}", session_id=f"task-session-{i}"):
        await asyncio.sleep(0.01 * (4 - i))  # interleave the tasks
        await aask(aclient, f"task_{i}_a")
        await asyncio.sleep(0.01 * i)
        await aask(aclient, f"task_{i}_b")


def async_tasks():
    async def main():
        aclient = openai.AsyncOpenAI(max_retries=0)
        await asyncio.gather(*(_one_task(aclient, i) for i in range(4)))
        await aask(aclient, "after_tasks")

    asyncio.run(main())
    show("async_tasks done")


def threads():
    barrier = threading.Barrier(4)

    def work(i):
        with pai.context(distinct_id=f"thread-{i}"):
            barrier.wait(timeout=10)  # all four contexts are open at once
            return ask(f"thread_{i}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    ask("after_threads")
    show("threads done")


@pai.context(distinct_id="deco-sync", trace_name="deco-sync-trace")
def decorated_sync(n):
    return ask(f"deco_sync_{n}")


@pai.context(distinct_id="deco-async", session_id="deco-async-session")
async def decorated_async(aclient, n):
    await asyncio.sleep(0.01 * n)
    return await aask(aclient, f"deco_async_{n}")


def decorators():
    decorated_sync(1)
    decorated_sync(2)

    async def main():
        aclient = openai.AsyncOpenAI(max_retries=0)
        return await asyncio.gather(decorated_async(aclient, 1), decorated_async(aclient, 2))

    asyncio.run(main())
    show("decorators", decorated_sync.__name__, decorated_async.__name__, asyncio.iscoroutinefunction(decorated_async))


@pai.context(distinct_id="deco-generator")
def decorated_generator():
    yield ask("deco_generator")


@pai.context(distinct_id="deco-async-generator")
async def decorated_async_generator(aclient):
    yield await aask(aclient, "deco_async_generator")


def generator_decorators():
    replies = list(decorated_generator())

    async def main():
        aclient = openai.AsyncOpenAI(max_retries=0)
        return [reply async for reply in decorated_async_generator(aclient)]

    replies += asyncio.run(main())
    show("generator_decorators", replies)


SHARED = pai.context(properties={"feature": "shared-instance"})


def shared_instance():
    """One context object entered by two threads at once (as a module-level constant would be)."""
    a_entered, b_entered, a_exited = threading.Event(), threading.Event(), threading.Event()

    def a():
        with SHARED:
            a_entered.set()
            b_entered.wait(10)
        a_exited.set()
        ask("shared_after_a")

    def b():
        a_entered.wait(10)
        with SHARED:
            b_entered.set()
            a_exited.wait(10)
        ask("shared_after_b")

    workers = [threading.Thread(target=a), threading.Thread(target=b)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    show("shared_instance done")


def trace_name():
    with pai.context(distinct_id="trace-user", trace_name="summarize-ticket"):
        ask("trace_first")
        ask("trace_second")
    try:
        with pai.context(trace_name="failing-work"):
            ask("trace_failing")
            raise ValueError("the app's own failure")
    except ValueError as exc:
        show("trace_name saw", repr(exc))


def summarize_without_trace_name():
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "case=code_function"}])
    show("code_function done")


# -- PostHog's own SDK --------------------------------------------------------------------------


def posthog_sdk():
    import warnings

    import posthog

    warnings.simplefilter("ignore", DeprecationWarning)
    posthog.api_key = "phc_app_own_token"
    posthog.host = os.environ["POSTHOG_HOST"]
    with posthog.new_context():
        posthog.identify_context("sdk-user")
        posthog.set_context_session("sdk-session")
        posthog.tag("tier", "gold")
        variant = posthog.get_feature_flag("prompt-v2", "sdk-user")
        enabled = posthog.feature_enabled("beta-model", "sdk-user")
        other = posthog.get_feature_flag("prompt-v2", "someone-else")  # another person's variant
        ask("sdk")
        with pai.context(distinct_id="ctx-over-sdk"):
            ask("ctx_over_sdk")
        show("posthog_sdk flags", variant, enabled, other)
    ask("after_sdk_context")
    with posthog.new_context():
        posthog.identify_context("sdk-new-api")
        flags = posthog.evaluate_flags("sdk-new-api")  # the SDK's recommended flag API
        show("posthog_sdk evaluate_flags", flags.get_flag("new-flow"))
        ask("sdk_evaluate_flags")
    posthog.shutdown()


# -- W3C baggage from an upstream service (propagated by the app's own OpenTelemetry code) ------


def otel_baggage():
    from opentelemetry import context, propagate

    carrier = {"baggage": "posthog.distinct_id=bag-user,posthog.session_id=bag-session,other=x"}
    token = context.attach(propagate.extract(carrier))
    try:
        ask("baggage", user="openai-user")
        with pai.context(distinct_id="ctx-over-bag"):
            ask("ctx_over_baggage")
    finally:
        context.detach(token)
    show("otel_baggage done")


# -- a conversation id ---------------------------------------------------------------------------


def conversation():
    r = client.responses.create(model=MODEL, input="case=conversation", conversation="conv_abc123")
    show("conversation", r.output_text)


SCENARIOS = [
    anonymous,
    openai_user,
    safety_identifier,
    explicit,
    session_only,
    nested,
    async_tasks,
    threads,
    decorators,
    generator_decorators,
    shared_instance,
    trace_name,
    summarize_without_trace_name,
    posthog_sdk,
    otel_baggage,
    conversation,
]


def main(names):
    chosen = {f.__name__: f for f in SCENARIOS}
    for name in names or list(chosen):
        chosen[name]()
    show("done")


if __name__ == "__main__":
    main(sys.argv[1:])
