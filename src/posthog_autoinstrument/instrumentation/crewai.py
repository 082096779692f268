"""CrewAI adapter: crews, tasks, agents, tools and CrewAI's model calls.

What is hooked, and why wrappers rather than CrewAI's event bus. CrewAI announces everything
on its event bus (``CrewKickoffStartedEvent``, ``TaskStartedEvent``, ``ToolUsageStartedEvent``,
``LLMCallStartedEvent`` ...), but a listener only sees a step from the outside: it cannot make
a span the *current* one while the step runs, so the openai SDK's request made inside would
not nest under it nor see CrewAI's model call as the active call (which the core's
one-generation rule needs), and start/end events would have to be paired through dicts keyed
by event ids, across the bus's worker threads. Wrapping CrewAI's own methods gives
context-managed spans: right parents under CrewAI's threads (``kickoff_async`` runs ``kickoff``
through ``asyncio.to_thread``, async tasks run on threads of their own, both copying the
context), under asyncio, and nothing kept once a step ends. The methods:

* ``Crew.kickoff`` / ``Crew.akickoff``: the run, an ``invoke_workflow`` step named after the
  crew, with the kickoff inputs as input state and the crew's final output as output state.
  ``kickoff_async`` and ``kickoff_for_each`` go through ``kickoff`` and are covered by it; a
  streaming kickoff (``stream=True``) returns at once and runs ``kickoff`` again on the thread
  that feeds the stream, which is the call recorded.
* ``Task._execute_core`` / ``Task._aexecute_core``: every task, however it was started
  (``execute_sync``, ``execute_async``'s thread, ``aexecute_sync``): a ``task`` step (CrewAI's
  own word: the conventions have none for it), with description, expected output and the
  context handed over from earlier tasks as input state, the task's output as output state.
  It is named after the task's ``name``, or else its description, which is prompt text: under
  privacy settings such a task's span is plain ``task``.
* ``Agent.execute_task`` / ``Agent.aexecute_task``: an agent working on a task, an
  ``invoke_agent`` step named after the agent's role; ``Agent.kickoff`` / ``kickoff_async``
  (an agent used without a crew) likewise. CrewAI retries a failed execution by calling
  ``execute_task`` again from its error handler, so a retry nests under the failed attempt.
* Tools: ``BaseTool.run`` / ``arun`` and ``Tool.run`` / ``arun`` (native function calling
  calls the tool's ``run``), and ``CrewStructuredTool.invoke`` / ``ainvoke`` (the ReAct text
  path calls these; they run the tool's ``_run``, not ``run``, so nothing is recorded twice).
  ``execute_tool`` steps with the arguments and the result; a tool's exception is recorded
  and re-raised untouched for CrewAI to handle.
* The model call: ``call`` / ``acall`` of every ``BaseLLM`` subclass (CrewAI's native
  provider classes, its LiteLLM-backed ``LLM``, and an application's own), wrapped when the
  class is created (``BaseLLM.__init_subclass__``, where CrewAI itself wraps them with its
  retry policy) or when instrumentation starts, for classes that exist already. Recorded at
  ``Layer.FRAMEWORK``: CrewAI 1.x reaches OpenAI, Anthropic, Gemini, Azure and Bedrock
  through their SDKs, whose adapters record the request, so that span is the one
  ``$ai_generation`` and CrewAI's becomes a token-less step; models reached through LiteLLM
  get the LiteLLM adapter's span below it instead. A model nothing below records (an
  application's own ``BaseLLM``) keeps CrewAI's span as the generation, with the usage CrewAI
  counts: ``BaseLLM._track_token_usage_internal``, which every CrewAI provider class calls with
  the provider's usage of each request (summed over the requests of one call; normalised by
  CrewAI's own ``UsageMetrics.from_provider_dict``, so input tokens include cached ones), and
  the finish reason and response id from ``BaseLLM._emit_call_completed_event`` (on the
  LiteLLM path ``LLM._handle_emit_call_events``). These are matched to the call in progress on
  the same LLM object through a context variable, so nothing outlives the call.

CrewAI's own telemetry. CrewAI sends anonymous usage telemetry over OpenTelemetry to its own
collector, from a ``TracerProvider`` of its own that it deliberately does not install as the
global one (``Telemetry.set_tracer``; its opt-in run tracing, ``CREWAI_TRACING_ENABLED``, keeps
its own provider too): our spans come from the global provider and never reach its exporter,
and its spans never reach our pipeline. Nothing needs to change for it. Its exporter does hold
process exit for up to ten seconds when its collector is unreachable (CrewAI's own flush
deadline); ``CREWAI_DISABLE_TELEMETRY=true`` turns it off. Not ``OTEL_SDK_DISABLED``: CrewAI
honours that too, but it is the standard OpenTelemetry switch and turns our export off as well.

Not covered: CrewAI Flows as such (crews and agents run inside a flow are recorded), agents
that are not ``crewai.Agent`` (``LiteAgent``, the LangGraph / OpenAI Agents adapters: their
model calls are still recorded), memory and knowledge retrieval (embedding calls through an
instrumented SDK are recorded by that SDK's adapter), tool results answered from CrewAI's tool
cache (no tool runs, so no span), the tool call id (CrewAI runs a tool without it), and usage
of an application's ``BaseLLM`` that does not report it through CrewAI.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any, Optional

import wrapt
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ..formats import openai_chat
from ..formats.endpoints import host_and_port
from ..formats.litellm import provider_name
from ..genai import InferenceCall, InferenceRequest, Layer, Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai import StepCall, StepRequest
from ..identity import privacy_requested
from .base import LLMInstrumentor, Target, await_in_step, call_in_step, end_step, get, number

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "crewai"
TASK_OPERATION = "task"  # CrewAI's own word; the conventions have no operation for a task

# What is being recorded in this context, so that a method reached again inside itself (a
# subclass calling ``super().call``, a tool run calling its own ``run``) is recorded once.
_LLM_CALL: contextvars.ContextVar = contextvars.ContextVar("posthog_autoinstrument_crewai_llm", default=None)
_TOOL_RUN: contextvars.ContextVar = contextvars.ContextVar("posthog_autoinstrument_crewai_tool", default=None)

_NAME_LENGTH = 80


def _short(text: Any) -> Optional[str]:
    if not isinstance(text, str):
        return None
    text = " ".join(text.split())
    return text if len(text) <= _NAME_LENGTH else text[: _NAME_LENGTH - 3].rstrip() + "..."


def _text(value: Any) -> Any:
    """The readable form of a CrewAI output (``CrewOutput``, ``TaskOutput``, ``LiteAgentOutput``:
    their ``raw`` text), or the value itself."""
    raw = getattr(value, "raw", None)
    return raw if isinstance(raw, str) else value


def _without_none(values: dict) -> dict:
    return {k: v for k, v in values.items() if v is not None and v != ""}


# -- crews, tasks, agents, tools ----------------------------------------------------------------


def _crew_step(crew: Any, args: tuple, kwargs: dict, capture: bool) -> tuple:
    name = getattr(crew, "name", None) or "crew"
    inputs = args[0] if args else kwargs.get("inputs")
    return StepRequest(semconv.Operation.INVOKE_WORKFLOW, name=str(name), framework=FRAMEWORK), (
        {"inputs": inputs} if inputs else None
    )


def _task_step(task: Any, args: tuple, kwargs: dict, capture: bool) -> tuple:
    agent = args[0] if args else kwargs.get("agent")
    agent = agent or getattr(task, "agent", None)
    context = args[1] if len(args) > 1 else kwargs.get("context")
    # Without a name of its own, a task is named after its description: prompt text, which
    # is content, so not under privacy settings (the span name is no attribute they remove).
    name = getattr(task, "name", None) or (_short(getattr(task, "description", None)) if capture else None)
    step = StepRequest(
        TASK_OPERATION, name=name, framework=FRAMEWORK, attributes={semconv.AGENT_NAME: getattr(agent, "role", None)}
    )
    return step, _without_none(
        {
            "description": getattr(task, "description", None),
            "expected_output": getattr(task, "expected_output", None),
            "context": context,
        }
    )


def _agent_model(agent: Any) -> Optional[str]:
    model = getattr(getattr(agent, "llm", None), "model", None)
    return model if isinstance(model, str) else None


def _agent_step(agent: Any, state: dict) -> tuple:
    role = getattr(agent, "role", None)
    agent_id = getattr(agent, "id", None)
    step = StepRequest(
        semconv.Operation.INVOKE_AGENT,
        name=str(role) if role else type(agent).__name__,
        framework=FRAMEWORK,
        model=_agent_model(agent),
        attributes={semconv.AGENT_ID: str(agent_id) if agent_id is not None else None},
    )
    return step, _without_none(state)


def _agent_task_step(agent: Any, args: tuple, kwargs: dict, capture: bool) -> tuple:
    task = args[0] if args else kwargs.get("task")
    context = args[1] if len(args) > 1 else kwargs.get("context")
    return _agent_step(agent, {"task": getattr(task, "description", None), "context": context})


def _agent_kickoff_step(agent: Any, args: tuple, kwargs: dict, capture: bool) -> tuple:
    messages = args[0] if args else kwargs.get("messages")
    return _agent_step(agent, {"messages": messages})


def _tool_step(tool: Any, args: tuple, kwargs: dict, capture: bool = True) -> tuple:
    description = getattr(tool, "description", None)
    step = StepRequest(
        semconv.Operation.EXECUTE_TOOL,
        name=str(getattr(tool, "name", None) or type(tool).__name__),
        framework=FRAMEWORK,
        tool_type="function",
        attributes={semconv.TOOL_DESCRIPTION: description if isinstance(description, str) else None},
    )
    if args:
        arguments = {"args": list(args), **kwargs} if kwargs else (args[0] if len(args) == 1 else list(args))
    else:
        arguments = kwargs
    return step, arguments


def _invoke_step(tool: Any, args: tuple, kwargs: dict, capture: bool) -> tuple:
    """``CrewStructuredTool.invoke(input, config=None, **kwargs)``: the arguments are ``input``."""
    step, _ = _tool_step(tool, (), {})
    return step, args[0] if args else kwargs.get("input")


def _same_tool(active: Any, tool: Any) -> bool:
    """Whether ``tool`` is the tool already running (itself, or its structured form's original)."""
    if active is None:
        return False
    return (
        active is tool
        or getattr(tool, "_original_tool", None) is active
        or getattr(active, "_original_tool", None) is tool
    )


# -- the model call -------------------------------------------------------------------------------


def _llm_request(llm: Any) -> InferenceRequest:
    crewai_provider = getattr(llm, "provider", None)
    model = getattr(llm, "model", None)
    if not isinstance(model, str):
        model = None
    elif isinstance(crewai_provider, str) and model.startswith(crewai_provider + "/"):
        model = model[len(crewai_provider) + 1 :]
    address, port = host_and_port(getattr(llm, "base_url", None) or getattr(llm, "api_base", None))
    stop = getattr(llm, "stop", None)
    return InferenceRequest(
        provider=provider_name(crewai_provider) or FRAMEWORK,
        model=model,
        operation=semconv.Operation.CHAT,
        server_address=address,
        server_port=port,
        stream=getattr(llm, "stream", None) is True,
        temperature=number(getattr(llm, "temperature", None)),
        top_p=number(getattr(llm, "top_p", None)),
        max_tokens=number(getattr(llm, "max_tokens", None) or getattr(llm, "max_completion_tokens", None)),
        stop_sequences=list(stop) if isinstance(stop, (list, tuple)) and stop else None,
        seed=number(getattr(llm, "seed", None)),
        frequency_penalty=number(getattr(llm, "frequency_penalty", None)),
        presence_penalty=number(getattr(llm, "presence_penalty", None)),
        layer=Layer.FRAMEWORK,
        attributes={semconv.FRAMEWORK: FRAMEWORK},
    )


def _llm_input(call: InferenceCall, args: tuple, kwargs: dict) -> None:
    messages = args[0] if args else kwargs.get("messages")
    tools = args[1] if len(args) > 1 else kwargs.get("tools")
    converted = None
    if call.capture_content:
        if isinstance(messages, str):
            converted = [m.message("user", [m.text(messages)])]
        elif isinstance(messages, (list, tuple)):
            converted = [openai_chat.input_message(message) for message in messages]
    # CrewAI hands tools over in the OpenAI function format.
    call.set_input(
        messages=converted, tool_definitions=openai_chat.tool_definitions(tools) if isinstance(tools, list) else None
    )


def _llm_output(call: InferenceCall, result: Any, finish_reason: Optional[str]) -> None:
    """What ``call`` returned: text, the tool calls it leaves to the executor, or a model."""
    if not call.capture_content or result is None:
        return
    if isinstance(result, str):
        parts = [m.text(result)]
    elif isinstance(result, list):
        parts = []
        for tool_call in result:
            function = get(tool_call, "function")
            if function is not None:
                parts.append(m.tool_call(get(tool_call, "id"), get(function, "name"), get(function, "arguments")))
            else:  # other providers' shapes (Anthropic's tool_use blocks, ...)
                parts.append(
                    m.tool_call(
                        get(tool_call, "id"),
                        get(tool_call, "name"),
                        get(tool_call, "input") or get(tool_call, "arguments"),
                    )
                )
    else:
        dump = getattr(result, "model_dump_json", None)
        parts = [m.text(dump() if callable(dump) else result)]
    call.set_output([m.output_message(parts, finish_reason)])


def _crewai_usage(usage: Any) -> Optional[Usage]:
    """A provider's usage dict, read as CrewAI reads it (its prompt tokens include cached ones)."""
    if not isinstance(usage, dict) or not usage:
        return None
    try:
        from crewai.types.usage_metrics import UsageMetrics

        metrics = UsageMetrics.from_provider_dict(usage)
    except Exception:
        metrics = None
    if metrics is None:
        return None
    return Usage(
        input_tokens=metrics.prompt_tokens,
        output_tokens=metrics.completion_tokens,
        cache_read_input_tokens=metrics.cached_prompt_tokens or None,
        cache_creation_input_tokens=metrics.cache_creation_tokens or None,
        reasoning_tokens=metrics.reasoning_tokens or None,
    )


class _LLMRun:
    """A CrewAI model call in progress: which LLM runs it, and what CrewAI reported about it."""

    __slots__ = ("llm", "call", "finish_reason", "usage")

    def __init__(self, llm: Any, call: InferenceCall):
        self.llm = llm
        self.call = call
        self.finish_reason: Optional[str] = None
        self.usage: Optional[Usage] = None


def _add(first: Usage, second: Usage) -> Usage:
    def total(name: str) -> Optional[int]:
        a, b = getattr(first, name), getattr(second, name)
        return a if b is None else b if a is None else a + b

    return Usage(
        *(
            total(name)
            for name in (
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
                "reasoning_tokens",
            )
        )
    )


# -- wrappers -------------------------------------------------------------------------------------


class _Hooks:
    """The wrapt wrappers, bound to one instrumentor's recorder. None of them lets an error of
    ours reach the application, and each returns exactly what CrewAI returned."""

    def __init__(self, instrumentor: "CrewAIInstrumentor"):
        self.instrumentor = instrumentor

    # steps ----------------------------------------------------------------------------------
    def _start(self, describe, owner: Any, args: tuple, kwargs: dict) -> Optional[StepCall]:
        if not is_instrumentation_enabled():
            return None
        try:
            recorder = self.instrumentor.recorder
            request, state = describe(owner, args, kwargs, recorder.capture_content and not privacy_requested())
            step = recorder.start_step(request)
            if step is not None:
                step.set_input_state(state)
            return step
        except Exception:
            logger.debug("posthog-instrument: could not start a CrewAI step", exc_info=True)
            return None

    def _step(self, describe, wrapped, instance, args, kwargs, marker: Optional[contextvars.ContextVar] = None):
        step = self._start(describe, instance, args, kwargs)
        if step is None:
            return wrapped(*args, **kwargs)
        mark = marker.set(instance) if marker is not None else None
        try:
            result = call_in_step(step, wrapped, args, kwargs)
        finally:
            if mark is not None:
                marker.reset(mark)
        end_step(step, _text, result)
        return result

    def _astep(self, describe, wrapped, instance, args, kwargs, marker: Optional[contextvars.ContextVar] = None):
        async def traced():
            step = self._start(describe, instance, args, kwargs)
            if step is None:
                return await wrapped(*args, **kwargs)
            mark = marker.set(instance) if marker is not None else None
            try:
                result = await await_in_step(step, wrapped, args, kwargs)
            finally:
                if mark is not None:
                    marker.reset(mark)
            end_step(step, _text, result)
            return result

        return traced()

    def crew_kickoff(self, wrapped, instance, args, kwargs):
        if getattr(instance, "stream", False):
            return wrapped(*args, **kwargs)  # returns at once; the run is the kickoff it starts
        return self._step(_crew_step, wrapped, instance, args, kwargs)

    def crew_akickoff(self, wrapped, instance, args, kwargs):
        if getattr(instance, "stream", False):
            return wrapped(*args, **kwargs)
        return self._astep(_crew_step, wrapped, instance, args, kwargs)

    def task_execute(self, wrapped, instance, args, kwargs):
        return self._step(_task_step, wrapped, instance, args, kwargs)

    def task_aexecute(self, wrapped, instance, args, kwargs):
        return self._astep(_task_step, wrapped, instance, args, kwargs)

    def agent_execute(self, wrapped, instance, args, kwargs):
        return self._step(_agent_task_step, wrapped, instance, args, kwargs)

    def agent_aexecute(self, wrapped, instance, args, kwargs):
        return self._astep(_agent_task_step, wrapped, instance, args, kwargs)

    def agent_kickoff(self, wrapped, instance, args, kwargs):
        if _loop_running():
            # Inside an event loop ``kickoff`` hands back ``kickoff_async(...)`` unawaited;
            # that call records the run when it is awaited.
            return wrapped(*args, **kwargs)
        return self._step(_agent_kickoff_step, wrapped, instance, args, kwargs)

    def agent_kickoff_async(self, wrapped, instance, args, kwargs):
        return self._astep(_agent_kickoff_step, wrapped, instance, args, kwargs)

    def tool_run(self, wrapped, instance, args, kwargs):
        if _same_tool(_TOOL_RUN.get(), instance):
            return wrapped(*args, **kwargs)
        return self._step(_tool_step, wrapped, instance, args, kwargs, _TOOL_RUN)

    def tool_arun(self, wrapped, instance, args, kwargs):
        if _same_tool(_TOOL_RUN.get(), instance):
            return wrapped(*args, **kwargs)
        return self._astep(_tool_step, wrapped, instance, args, kwargs, _TOOL_RUN)

    def tool_invoke(self, wrapped, instance, args, kwargs):
        if _same_tool(_TOOL_RUN.get(), instance):
            return wrapped(*args, **kwargs)
        return self._step(_invoke_step, wrapped, instance, args, kwargs, _TOOL_RUN)

    def tool_ainvoke(self, wrapped, instance, args, kwargs):
        if _same_tool(_TOOL_RUN.get(), instance):
            return wrapped(*args, **kwargs)
        return self._astep(_invoke_step, wrapped, instance, args, kwargs, _TOOL_RUN)

    # the model call ----------------------------------------------------------------------------
    def _start_llm(self, llm: Any, args: tuple, kwargs: dict) -> Optional[_LLMRun]:
        if not getattr(self.instrumentor, "_active", False) or not is_instrumentation_enabled():
            return None
        active = _LLM_CALL.get()
        if active is not None and active.llm is llm and not active.call.ended:
            return None  # the same call reached again (a subclass's ``call`` running ``super().call``)
        try:
            call = self.instrumentor.recorder.start(_llm_request(llm))
        except Exception:
            logger.debug("posthog-instrument: could not describe the CrewAI model call", exc_info=True)
            return None
        if call is None:
            return None
        try:
            _llm_input(call, args, kwargs)
        except Exception:
            logger.debug("posthog-instrument: could not record the CrewAI model input", exc_info=True)
        return _LLMRun(llm, call)

    @staticmethod
    def _end_llm(run: _LLMRun, result: Any) -> None:
        try:
            _llm_output(run.call, result, run.finish_reason)
        except Exception:
            logger.debug("posthog-instrument: could not record the CrewAI model output", exc_info=True)
        run.call.end()

    def llm_call(self, wrapped, instance, args, kwargs):
        run = self._start_llm(instance, args, kwargs)
        if run is None:
            return wrapped(*args, **kwargs)
        token = run.call.attach()
        mark = _LLM_CALL.set(run)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            run.call.fail(exc)
            raise
        finally:
            _LLM_CALL.reset(mark)
            run.call.detach(token)
        self._end_llm(run, result)
        return result

    def llm_acall(self, wrapped, instance, args, kwargs):
        async def traced():
            run = self._start_llm(instance, args, kwargs)
            if run is None:
                return await wrapped(*args, **kwargs)
            token = run.call.attach()
            mark = _LLM_CALL.set(run)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                run.call.fail(exc)
                raise
            finally:
                _LLM_CALL.reset(mark)
                run.call.detach(token)
            self._end_llm(run, result)
            return result

        return traced()

    def llm_completed(self, wrapped, instance, args, kwargs):
        """``BaseLLM._emit_call_completed_event`` (``LLM._handle_emit_call_events`` on the
        LiteLLM path): CrewAI's report of the response (usage, finish reason, id), handed to the
        model call in progress on the same LLM."""
        result = wrapped(*args, **kwargs)
        try:
            run = _LLM_CALL.get()
            if run is not None and run.llm is instance and not run.call.ended:
                # (response, call_type, from_task, from_agent, messages, usage, finish_reason, response_id)
                run.finish_reason = openai_chat.finish_reason(_param(args, kwargs, 6, "finish_reason"))
                run.call.set_response(
                    response_id=_param(args, kwargs, 7, "response_id"),
                    finish_reasons=[run.finish_reason] if run.finish_reason else None,
                )
        except Exception:
            logger.debug("posthog-instrument: could not record the CrewAI model result", exc_info=True)
        return result

    def llm_usage(self, wrapped, instance, args, kwargs):
        """``BaseLLM._track_token_usage_internal``: the provider's usage of one request, as
        CrewAI counts it; summed over the requests one model call makes (a provider class that
        runs tools itself asks the model again)."""
        result = wrapped(*args, **kwargs)
        try:
            run = _LLM_CALL.get()
            if run is not None and run.llm is instance and not run.call.ended:
                usage = _crewai_usage(_param(args, kwargs, 0, "usage_data"))
                if usage is not None:
                    run.usage = usage if run.usage is None else _add(run.usage, usage)
                    run.call.set_response(usage=run.usage)
        except Exception:
            logger.debug("posthog-instrument: could not record the CrewAI model usage", exc_info=True)
        return result

    def llm_subclass(self, wrapped, instance, args, kwargs):
        """``BaseLLM.__init_subclass__``: wrap the new class's own ``call``/``acall`` (after
        CrewAI has wrapped them with its retry policy, so that retries are one call)."""
        result = wrapped(*args, **kwargs)
        if isinstance(instance, type):
            self.instrumentor.instrument_llm_class(instance)
        return result


def _param(args: tuple, kwargs: dict, index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


# Early 1.x releases (1.0 to 1.2 at least) keep ``Agent`` in the module ``crewai.agent``, later
# ones in the package of that name (``agent.core``).
_AGENT_EARLY_1X = ("crewai.agent",)


class CrewAIInstrumentor(LLMInstrumentor):
    requirements = ("crewai >= 1.0, < 2",)

    def targets(self) -> list:
        hooks = self._hooks = _Hooks(self)
        return [
            Target("crewai.crew", "Crew.kickoff", wrapper=hooks.crew_kickoff),
            Target("crewai.crew", "Crew.akickoff", wrapper=hooks.crew_akickoff),
            Target("crewai.task", "Task._execute_core", wrapper=hooks.task_execute),
            Target("crewai.task", "Task._aexecute_core", wrapper=hooks.task_aexecute),
            Target(
                "crewai.agent.core", "Agent.execute_task", wrapper=hooks.agent_execute, older_modules=_AGENT_EARLY_1X
            ),
            Target(
                "crewai.agent.core", "Agent.aexecute_task", wrapper=hooks.agent_aexecute, older_modules=_AGENT_EARLY_1X
            ),
            Target("crewai.agent.core", "Agent.kickoff", wrapper=hooks.agent_kickoff, older_modules=_AGENT_EARLY_1X),
            Target(
                "crewai.agent.core",
                "Agent.kickoff_async",
                wrapper=hooks.agent_kickoff_async,
                older_modules=_AGENT_EARLY_1X,
            ),
            Target("crewai.tools.base_tool", "BaseTool.run", wrapper=hooks.tool_run),
            Target("crewai.tools.base_tool", "BaseTool.arun", wrapper=hooks.tool_arun),
            Target("crewai.tools.base_tool", "Tool.run", wrapper=hooks.tool_run),
            Target("crewai.tools.base_tool", "Tool.arun", wrapper=hooks.tool_arun),
            Target("crewai.tools.structured_tool", "CrewStructuredTool.invoke", wrapper=hooks.tool_invoke),
            Target("crewai.tools.structured_tool", "CrewStructuredTool.ainvoke", wrapper=hooks.tool_ainvoke),
            Target("crewai.llms.base_llm", "BaseLLM.__init_subclass__", wrapper=hooks.llm_subclass),
            Target("crewai.llms.base_llm", "BaseLLM._track_token_usage_internal", wrapper=hooks.llm_usage),
            Target("crewai.llms.base_llm", "BaseLLM._emit_call_completed_event", wrapper=hooks.llm_completed),
            Target("crewai.llm", "LLM._handle_emit_call_events", wrapper=hooks.llm_completed),
        ]

    def _on_import(self, module: Any) -> None:
        super()._on_import(module)
        if module.__name__ == "crewai.llms.base_llm" and getattr(self, "_active", False):
            # Classes defined before instrumentation started (instrumenting a running app).
            try:
                pending = list(module.BaseLLM.__subclasses__())
                while pending:
                    cls = pending.pop()
                    self.instrument_llm_class(cls)
                    pending.extend(cls.__subclasses__())
            except Exception:
                logger.debug("posthog-instrument: could not walk CrewAI's LLM classes", exc_info=True)

    def instrument_llm_class(self, cls: type) -> None:
        """Wrap the ``call``/``acall`` a ``BaseLLM`` subclass defines itself (inherited ones are
        already wrapped where they are defined)."""
        hooks = self._hooks
        for name, hook in (("call", hooks.llm_call), ("acall", hooks.llm_acall)):
            try:
                original = cls.__dict__.get(name)
                if original is None or getattr(original, "__isabstractmethod__", False):
                    continue
                if isinstance(original, wrapt.FunctionWrapper) and getattr(original, "_self_posthog", False):
                    continue
                wrapper = wrapt.FunctionWrapper(original, hook)
                wrapper._self_posthog = True
                setattr(cls, name, wrapper)
                self._patched.append((cls, name, original))
            except Exception:
                logger.debug(
                    "posthog-instrument: could not wrap %s.%s", getattr(cls, "__qualname__", cls), name, exc_info=True
                )
