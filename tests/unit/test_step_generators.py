"""StepGenerator / AsyncStepGenerator (instrumentation/base.py): a framework's generator with
its step current only while it runs, ended with it."""

from __future__ import annotations

import asyncio

import pytest

from posthog_autoinstrument.instrumentation.base import AsyncStepGenerator, StepGenerator


class Step:
    def __init__(self, capture_content=True):
        self.capture_content = capture_content
        self.current = False
        self.ended = False
        self.output = None
        self.failure = None

    def attach(self):
        self.current = True
        return "token"

    def detach(self, token):
        assert token == "token"
        self.current = False

    def set_output_state(self, value):
        self.output = value

    def end(self):
        assert not self.ended
        self.ended = True

    def fail(self, exc):
        self.failure = exc
        self.ended = True


def test_the_step_is_current_only_while_the_generator_runs():
    step = Step()
    seen = []

    def generator():
        for item in (1, 2):
            seen.append(step.current)
            yield item

    wrapped = StepGenerator(step, generator(), output=lambda last: f"last {last}", observe=seen.append)
    assert next(wrapped) == 1 and not step.current
    assert list(wrapped) == [2]
    assert seen == [True, 1, True, 2]
    assert step.ended and step.output == "last 2" and step.failure is None


def test_a_failure_fails_the_step_and_reaches_the_app():
    step = Step()

    def generator():
        yield 1
        raise ValueError("boom")

    wrapped = StepGenerator(step, generator())
    next(wrapped)
    with pytest.raises(ValueError):
        next(wrapped)
    assert isinstance(step.failure, ValueError)


def test_closing_early_ends_the_step_without_output():
    step = Step()
    wrapped = StepGenerator(step, (i for i in (1, 2, 3)), output=str)
    next(wrapped)
    wrapped.close()
    assert step.ended and step.output is None


def test_an_async_generator():
    step = Step()

    async def generator():
        for item in (1, 2):
            assert step.current
            yield item

    async def read():
        return [item async for item in AsyncStepGenerator(step, generator(), output=lambda last: last * 10)]

    assert asyncio.run(read()) == [1, 2]
    assert step.ended and step.output == 20 and not step.current


def test_no_output_is_read_when_content_is_not_recorded():
    from posthog_autoinstrument.instrumentation.base import end_step

    read = []
    step = Step(capture_content=False)
    end_step(step, read.append, "answer")
    assert step.ended and step.output is None and read == []


def _items_in_call(step, stream, seen, finished):
    from posthog_autoinstrument.instrumentation.base import items_in_call

    def enter():
        return step.attach()

    return items_in_call(step, stream, enter, step.detach, seen.append, finished.append)


def test_items_in_call_makes_the_call_current_per_item_and_records_the_last():
    step, seen, finished, current = Step(), [], [], []

    async def stream():
        for n in (1, 2):
            current.append(step.current)
            yield n

    async def consume():
        return [item async for item in _items_in_call(step, stream(), seen, finished)]

    assert asyncio.run(consume()) == [1, 2]
    assert current == [True, True] and not step.current
    assert seen == [1, 2] and finished == [2] and step.ended and step.failure is None


def test_items_in_call_fails_the_call_and_closes_a_stream_left_early():
    step, seen, finished = Step(), [], []

    async def broken():
        yield 1
        raise ValueError("boom")

    async def consume():
        with pytest.raises(ValueError):
            async for _ in _items_in_call(step, broken(), seen, finished):
                pass

    asyncio.run(consume())
    assert isinstance(step.failure, ValueError) and finished == []

    step, closed = Step(), []

    async def endless():
        try:
            while True:
                yield 0
        finally:
            closed.append(True)

    async def leave_early():
        items = _items_in_call(step, endless(), [], finished)
        await items.__anext__()
        await items.aclose()

    asyncio.run(leave_early())
    assert closed == [True] and step.ended and step.failure is None and finished == []
