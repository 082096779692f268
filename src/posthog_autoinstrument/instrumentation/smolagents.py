"""smolagents adapter: agent runs, their steps, and tool calls.

What is hooked:

* ``MultiStepAgent.run``: an ``invoke_agent`` step named after the agent (its ``name``, else
  its class), the task as input state and the final answer as output state. ``run(stream=True)``
  returns a generator: the step lasts until it is exhausted or closed, and is current only while
  the generator runs (each ``next``), so the app's code between steps is not inside it. A managed
  agent is called through ``run`` too: its run nests under the step that called it.
* ``ToolCallingAgent._step_stream`` / ``CodeAgent._step_stream`` (each action step) and
  ``MultiStepAgent._generate_planning_step`` (a planning step): ``step N`` / ``planning N``
  steps, generators traced the same way. The model call each step makes goes through the
  model's provider SDK (``OpenAIServerModel`` over ``openai``, ``LiteLLMModel`` over LiteLLM),
  whose adapter records it: one generation per model call, below its step. smolagents' own
  model classes are not steps, so nothing stands between the two.
* ``Tool.__call__``: ``execute_tool`` steps with arguments, result and errors, whichever agent
  calls the tool (a ``ToolCallingAgent``'s tool calls, or a ``CodeAgent``'s code calling it;
  ``final_answer`` is a tool too).
* ``local_python_executor.timeout``: the local executor runs a ``CodeAgent``'s code in a worker
  thread to enforce its time limit; the step's trace context is carried there, so the tools
  the code calls nest under their step rather than starting traces of their own.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from opentelemetry import context as otel_context

from ..genai import semconv
from ..genai import StepCall, StepRequest
from .base import LLMInstrumentor, StepGenerator, Target, call_in_step, end_step, start_step

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "smolagents"
STEP = "step"
PLANNING = "planning"


def _agent_step(agent: Any, args: tuple, kwargs: dict) -> StepRequest:
    name = getattr(agent, "name", None)
    model = getattr(getattr(agent, "model", None), "model_id", None)
    return StepRequest(
        semconv.Operation.INVOKE_AGENT,
        name=name if isinstance(name, str) and name else type(agent).__name__,
        framework=FRAMEWORK,
        model=model if isinstance(model, str) else None,
        attributes={"smolagents.agent.type": type(agent).__name__},
    )


def _action_step(agent: Any, args: tuple, kwargs: dict) -> StepRequest:
    memory_step = args[0] if args else kwargs.get("memory_step")
    number = getattr(memory_step, "step_number", None)
    return StepRequest(STEP, name=str(number) if number is not None else None, framework=FRAMEWORK)


def _planning_step(agent: Any, args: tuple, kwargs: dict) -> StepRequest:
    number = kwargs.get("step", args[2] if len(args) > 2 else None)
    return StepRequest(PLANNING, name=str(number) if number is not None else None, framework=FRAMEWORK)


def _tool_step(tool: Any, args: tuple, kwargs: dict) -> StepRequest:
    description = getattr(tool, "description", None)
    return StepRequest(
        semconv.Operation.EXECUTE_TOOL,
        name=str(getattr(tool, "name", None) or type(tool).__name__),
        framework=FRAMEWORK,
        tool_type="function",
        attributes={semconv.TOOL_DESCRIPTION: description if isinstance(description, str) else None},
    )


def _tool_arguments(args: tuple, kwargs: dict) -> Any:
    arguments = {k: v for k, v in kwargs.items() if k != "sanitize_inputs_outputs"}
    if len(args) == 1 and not arguments and isinstance(args[0], dict):
        return args[0]
    return {"args": list(args), **arguments} if args else arguments


def _final_answer(result: Any) -> Any:
    output = getattr(result, "output", result)  # a RunResult (return_full_result) or the answer itself
    return output if isinstance(output, (str, int, float, bool, list, dict, type(None))) else str(output)


class _Hooks:
    """The wrapt wrappers. None of them lets an error of ours reach the application, and each
    returns exactly what smolagents returned."""

    def __init__(self, instrumentor: LLMInstrumentor):
        self.instrumentor = instrumentor

    def _start(self, describe, owner: Any, args: tuple, kwargs: dict, input_state: Any = None) -> Optional[StepCall]:
        return start_step(self.instrumentor, lambda: describe(owner, args, kwargs), lambda: input_state)

    # agents -------------------------------------------------------------------------------
    def run(self, wrapped, instance, args, kwargs):
        task = args[0] if args else kwargs.get("task")
        step = self._start(_agent_step, instance, args, kwargs, task)
        if step is None:
            return wrapped(*args, **kwargs)
        result = call_in_step(step, wrapped, args, kwargs)
        if _is_generator(result):
            return StepGenerator(step, result, _run_output)
        end_step(step, _final_answer, result)
        return result

    def step_stream(self, wrapped, instance, args, kwargs):
        return self._generator(_action_step, wrapped, instance, args, kwargs)

    def planning_step(self, wrapped, instance, args, kwargs):
        return self._generator(_planning_step, wrapped, instance, args, kwargs)

    def _generator(self, describe, wrapped, instance, args, kwargs):
        step = self._start(describe, instance, args, kwargs)
        if step is None:
            return wrapped(*args, **kwargs)
        result = call_in_step(step, wrapped, args, kwargs)
        if not _is_generator(result):
            end_step(step)
            return result
        return StepGenerator(step, result)

    # tools ----------------------------------------------------------------------------------
    def tool_call(self, wrapped, instance, args, kwargs):
        try:
            arguments = _tool_arguments(args, kwargs)
        except Exception:
            arguments = None
        step = self._start(_tool_step, instance, args, kwargs, arguments)
        if step is None:
            return wrapped(*args, **kwargs)
        result = call_in_step(step, wrapped, args, kwargs)
        end_step(step, _tool_output, result)
        return result

    # the local executor's worker thread ----------------------------------------------------
    @staticmethod
    def timeout(wrapped, instance, args, kwargs):
        decorate = wrapped(*args, **kwargs)
        if not callable(decorate):
            return decorate

        def carrying_context(function):
            context = otel_context.get_current()

            def in_context(*call_args, **call_kwargs):
                token = otel_context.attach(context)
                try:
                    return function(*call_args, **call_kwargs)
                finally:
                    otel_context.detach(token)

            return decorate(in_context)

        carrying_context.__wrapped__ = decorate
        return carrying_context


def _tool_output(result: Any) -> Any:
    return result if result is None or isinstance(result, (str, int, float, bool, list, dict)) else str(result)


def _run_output(last: Any) -> Any:
    """A streamed run's final answer: its last item, a ``FinalAnswerStep``."""
    return _final_answer(last) if type(last).__name__ == "FinalAnswerStep" else None


def _is_generator(value: Any) -> bool:
    return hasattr(value, "__next__") and hasattr(value, "send") and hasattr(value, "throw")


class SmolagentsInstrumentor(LLMInstrumentor):
    requirements = ("smolagents >= 1.20, < 2",)

    def targets(self) -> list:
        hooks = _Hooks(self)
        return [
            Target("smolagents.agents", "MultiStepAgent.run", wrapper=hooks.run, required_since="1.20"),
            Target(
                "smolagents.agents", "ToolCallingAgent._step_stream", wrapper=hooks.step_stream, required_since="1.20"
            ),
            Target("smolagents.agents", "CodeAgent._step_stream", wrapper=hooks.step_stream, required_since="1.20"),
            Target("smolagents.agents", "MultiStepAgent._generate_planning_step", wrapper=hooks.planning_step),
            Target("smolagents.tools", "Tool.__call__", wrapper=hooks.tool_call, required_since="1.20"),
            Target("smolagents.local_python_executor", "timeout", wrapper=hooks.timeout),
        ]
