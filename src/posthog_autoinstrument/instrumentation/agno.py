"""Agno adapter: agent and team runs, and tool calls.

What is hooked:

* ``Agent.run`` / ``Agent.arun``: an ``invoke_agent`` step named after the agent (its ``name``,
  else ``Agent``), the input as input state and the run's content as output state.
* ``Team.run`` / ``Team.arun``: the same for a team (``agno.team`` as its type); the members
  it delegates to run below it.
* ``FunctionCall.execute`` / ``aexecute``: ``execute_tool`` steps with arguments and result;
  a call Agno reports as failed (its ``FunctionExecutionResult`` status) is an error, with the
  tool's exception as Agno logs it (``log_exception`` in ``agno.tools.function``), else
  ``AgnoToolError`` with Agno's message.

The model calls go through the provider SDK (``OpenAIChat`` over ``openai``), whose adapter
records them: one generation per model call, under its run. A streamed run (``stream=True``,
sync or async) returns an iterator that does the work as it is read: the run's step is current
only while it runs, and ends with it (its content put together from the streamed events). ``arun``
returns a coroutine: the step starts at the call and is current while it is awaited.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from typing import Any, Optional


from ..genai import semconv
from ..genai import StepCall, StepRequest
from .base import (
    AsyncStepGenerator,
    LLMInstrumentor,
    StepGenerator,
    Target,
    await_in_step,
    call_in_step,
    end_step,
    start_step,
)

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "agno"
RUN_TYPE = "agno.run.type"


class AgnoToolError(Exception):
    """A tool call Agno reports as failed, where its exception was not seen."""


# The exception of the tool call in progress in this context, as Agno logs it (it catches the
# tool's exception and reports only its text).
_TOOL_FAILURE: contextvars.ContextVar = contextvars.ContextVar("posthog_autoinstrument_agno_tool_failure", default=None)


def _run_step(owner: Any, kind: str) -> StepRequest:
    name = getattr(owner, "name", None)
    model = getattr(getattr(owner, "model", None), "id", None)
    return StepRequest(
        semconv.Operation.INVOKE_AGENT,
        name=name if isinstance(name, str) and name else kind,
        framework=FRAMEWORK,
        model=model if isinstance(model, str) else None,
        attributes={RUN_TYPE: kind.lower()},
    )


def _tool_step(call: Any) -> StepRequest:
    function = getattr(call, "function", None)
    description = getattr(function, "description", None)
    return StepRequest(
        semconv.Operation.EXECUTE_TOOL,
        name=str(getattr(function, "name", None) or "tool"),
        framework=FRAMEWORK,
        tool_type="function",
        tool_call_id=getattr(call, "call_id", None),
        attributes={semconv.TOOL_DESCRIPTION: description if isinstance(description, str) else None},
    )


def _run_input(args: tuple, kwargs: dict) -> Any:
    value = args[0] if args else kwargs.get("input")
    if isinstance(value, (str, int, float, bool, list, dict)) or value is None:
        return value
    return str(value)


def _content(output: Any) -> Any:
    try:
        return _content_of(output)
    except Exception:
        logger.debug("posthog-instrument: could not read an Agno run's content", exc_info=True)
        return None


def _content_of(output: Any) -> Any:
    content = getattr(output, "content", None)
    if content is None or isinstance(content, (str, int, float, bool, list, dict)):
        return content
    dump = getattr(content, "model_dump", None)
    return dump(mode="json") if callable(dump) else str(content)


class _StreamedContent:
    """A streamed run's content: its completion event's (when Agno streams its events), else
    the text of its content events put together."""

    __slots__ = ("pieces", "completed")

    def __init__(self):
        self.pieces: list = []
        self.completed: Any = None

    def observe(self, event: Any) -> None:
        name = type(event).__name__
        if name == "RunContentEvent" and isinstance(getattr(event, "content", None), str):
            self.pieces.append(event.content)
        elif name in ("RunCompletedEvent", "RunOutput", "TeamRunOutput"):
            self.completed = event

    def output(self, last: Any) -> Any:
        if self.completed is not None:
            return _content(self.completed)
        return "".join(self.pieces) if self.pieces else None


def _is_stream(value: Any) -> bool:
    return hasattr(value, "__next__") or hasattr(value, "__anext__")


class _Hooks:
    """The wrapt wrappers. None of them lets an error of ours reach the application, and each
    returns exactly what Agno returned."""

    def __init__(self, instrumentor: LLMInstrumentor):
        self.instrumentor = instrumentor

    def _start(self, describe, read_input) -> Optional[StepCall]:
        return start_step(self.instrumentor, describe, read_input)

    @staticmethod
    def _finish(step: StepCall, output: Any, error: Optional[BaseException] = None) -> None:
        if error is not None:
            try:
                step.set_output_state(output)
            except Exception:
                logger.debug("posthog-instrument: could not record an Agno step's output", exc_info=True)
            step.fail(error)
        else:
            end_step(step, lambda _: output)

    # runs ---------------------------------------------------------------------------------
    def _run(self, kind: str, wrapped, instance, args, kwargs):
        step = self._start(lambda: _run_step(instance, kind), lambda: _run_input(args, kwargs))
        if step is None:
            return wrapped(*args, **kwargs)
        # A plain run does its work here; a streamed one returns an iterator that does it as it
        # is read, and an ``arun`` a coroutine that does it when awaited.
        result = call_in_step(step, wrapped, args, kwargs)
        if inspect.iscoroutine(result):
            return self._awaited(step, result)
        if hasattr(result, "__anext__"):
            content = _StreamedContent()
            return AsyncStepGenerator(step, result, content.output, content.observe)
        if hasattr(result, "__next__"):
            content = _StreamedContent()
            return StepGenerator(step, result, content.output, content.observe)
        self._finish(step, _content(result))
        return result

    async def _awaited(self, step: StepCall, coroutine: Any) -> Any:
        result = await await_in_step(step, lambda: coroutine)
        if hasattr(result, "__anext__"):  # (should an awaited run resolve to a stream)
            content = _StreamedContent()
            return AsyncStepGenerator(step, result, content.output, content.observe)
        self._finish(step, _content(result))
        return result

    def agent_run(self, wrapped, instance, args, kwargs):
        return self._run("Agent", wrapped, instance, args, kwargs)

    def agent_arun(self, wrapped, instance, args, kwargs):
        return self._run("Agent", wrapped, instance, args, kwargs)

    def team_run(self, wrapped, instance, args, kwargs):
        return self._run("Team", wrapped, instance, args, kwargs)

    def team_arun(self, wrapped, instance, args, kwargs):
        return self._run("Team", wrapped, instance, args, kwargs)

    # tools ----------------------------------------------------------------------------------
    def tool_execute(self, wrapped, instance, args, kwargs):
        step = self._start(lambda: _tool_step(instance), lambda: getattr(instance, "arguments", None) or {})
        if step is None:
            return wrapped(*args, **kwargs)
        token = step.attach()
        failure = _ToolFailure()
        failure_token = _TOOL_FAILURE.set(failure)
        try:
            outcome = wrapped(*args, **kwargs)
        except BaseException as exc:
            step.fail(exc)
            raise
        finally:
            _reset(failure_token)
            step.detach(token)
        self._tool_outcome(step, outcome, failure)
        return outcome

    def tool_aexecute(self, wrapped, instance, args, kwargs):
        async def traced():
            step = self._start(lambda: _tool_step(instance), lambda: getattr(instance, "arguments", None) or {})
            if step is None:
                return await wrapped(*args, **kwargs)
            token = step.attach()
            failure = _ToolFailure()
            failure_token = _TOOL_FAILURE.set(failure)
            try:
                outcome = await wrapped(*args, **kwargs)
            except BaseException as exc:
                step.fail(exc)
                raise
            finally:
                _reset(failure_token)
                step.detach(token)
            self._tool_outcome(step, outcome, failure)
            return outcome

        return traced()

    @staticmethod
    def log_exception(wrapped, instance, args, kwargs):
        failure = _TOOL_FAILURE.get()
        if failure is not None and args and isinstance(args[0], BaseException):
            failure.exception = args[0]
        return wrapped(*args, **kwargs)

    def _tool_outcome(self, step: StepCall, outcome: Any, failure: "_ToolFailure") -> None:
        failed = getattr(outcome, "status", None) == "failure"
        result = getattr(outcome, "result", None)
        if _is_stream(result):  # (a team's delegation streams the member's run: read by Agno later)
            result = None
        if result is not None and not isinstance(result, (str, int, float, bool, list, dict)):
            result = str(result)
        error = None
        if failed:
            error = failure.exception or AgnoToolError(str(getattr(outcome, "error", None) or "tool call failed"))
        self._finish(step, result, error)


class _ToolFailure:
    __slots__ = ("exception",)

    def __init__(self):
        self.exception: Optional[BaseException] = None


def _reset(token: Any) -> None:
    try:
        _TOOL_FAILURE.reset(token)
    except Exception:  # a token from another context: nothing of ours to undo there
        logger.debug("posthog-instrument: could not reset the Agno tool call", exc_info=True)


class AgnoInstrumentor(LLMInstrumentor):
    requirements = ("agno >= 3.0, < 4",)

    def targets(self) -> list:
        hooks = _Hooks(self)
        return [
            Target("agno.agent.agent", "Agent.run", wrapper=hooks.agent_run, required_since="3.0"),
            Target("agno.agent.agent", "Agent.arun", wrapper=hooks.agent_arun, required_since="3.0"),
            Target("agno.team.team", "Team.run", wrapper=hooks.team_run, required_since="3.0"),
            Target("agno.team.team", "Team.arun", wrapper=hooks.team_arun, required_since="3.0"),
            Target("agno.tools.function", "FunctionCall.execute", wrapper=hooks.tool_execute, required_since="3.0"),
            Target("agno.tools.function", "FunctionCall.aexecute", wrapper=hooks.tool_aexecute, required_since="3.0"),
            # Where a failed tool call's exception is seen (Agno reports only its text).
            Target("agno.tools.function", "log_exception", wrapper=hooks.log_exception),
        ]
