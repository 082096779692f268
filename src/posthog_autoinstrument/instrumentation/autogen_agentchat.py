"""AutoGen AgentChat adapter (``autogen-agentchat`` 0.4+, with ``autogen-ext``'s OpenAI client).

What is hooked:

* ``BaseGroupChat.run_stream`` (``run`` goes through it): a team run (``RoundRobinGroupChat``,
  ``SelectorGroupChat``, ``Swarm`` ...) as an ``invoke_workflow`` step named after the team.
* ``BaseChatAgent.run`` / ``run_stream``: a run of any agent on its own, as ``invoke_agent``.
* ``AssistantAgent.on_messages_stream`` (``on_messages`` goes through it): an assistant's turn,
  which is how a team invokes its agents, as ``invoke_agent`` (not twice inside its own run).
* ``BaseTool.run_json``: a tool call (``FunctionTool`` and every other tool) as ``execute_tool``
  with the arguments, the result as AutoGen shows it to the model, and the call id;
  ``FunctionTool.run`` makes that step current again while the function runs, so a model call
  made in a tool's body nests under it.
* ``BaseOpenAIChatCompletionClient.create`` / ``create_stream``: the model call, at
  ``Layer.FRAMEWORK``. The openai SDK's request beneath it is the one generation; this step
  carries no tokens then (it keeps AutoGen's own token counts only if nothing below records the
  request, e.g. with the openai adapter switched off).

AutoGen's own OpenTelemetry spans. autogen-core records ``create_agent``, ``invoke_agent`` and
``execute_tool`` spans (scope ``autogen-core``) and its runtime's message spans into the global
tracer provider. They carry no inputs or outputs, and a team's agents run in the runtime's
message handlers, beneath its spans. They are left as they are for the app's own exporters and
kept out of PostHog's copy (registered below as not AI events); our steps never take them as
parents: each step is started under the step of ours it belongs to (kept in a context variable,
which the runtime's tasks inherit from the team run that started them), so the tree PostHog
receives holds nothing it will not also receive.

Not covered: agents other than ``AssistantAgent`` are steps only when run on their own (in a
team, their work nests under the team); model clients other than the OpenAI/Azure OpenAI one
(their provider SDK's calls are still recorded where we instrument it); a model call made in a
``BaseTool`` subclass's own ``run`` (not a ``FunctionTool``) nests under AutoGen's tool span,
which PostHog does not receive, and so starts a trace of its own.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ..genai import InferenceRequest, Layer, self_tracing
from ..genai import semconv
from ..genai import InferenceCall, StepRequest, Usage
from .base import LLMInstrumentor, Target, items_in_call, start_step

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "autogen_agentchat"
# autogen-core's own spans: kept from PostHog (see the module docstring).
AUTOGEN_CORE_SCOPE = "autogen-core"
self_tracing.register(AUTOGEN_CORE_SCOPE, lambda attributes: self_tracing.NOT_AI)

# The step of ours in progress in this context, and what it records (the agent or team object):
# the parent of every step started inside it, whichever AutoGen span is current.
_STEP: contextvars.ContextVar = contextvars.ContextVar("posthog_autoinstrument_autogen_step", default=None)


# -- what is recorded ------------------------------------------------------------------------


def _text(message: Any) -> Any:
    """A chat message or event as text (``to_text`` on every AgentChat message), else as is."""
    to_text = getattr(message, "to_text", None)
    if callable(to_text):
        return to_text()
    return message


def _task_state(task: Any) -> Any:
    if task is None or isinstance(task, str):
        return task
    if isinstance(task, (list, tuple)):
        return [_text(message) for message in task]
    return _text(task)


def _final_message(item: Any) -> Any:
    """The answer of a run or turn: a ``TaskResult``'s last message, a ``Response``'s message."""
    messages = getattr(item, "messages", None)
    if isinstance(messages, (list, tuple)):
        return _text(messages[-1]) if messages else None
    chat_message = getattr(item, "chat_message", None)
    return _text(chat_message) if chat_message is not None else None


def _agent_step(agent: Any) -> StepRequest:
    return StepRequest(
        semconv.Operation.INVOKE_AGENT,
        name=getattr(agent, "name", None) or type(agent).__name__,
        framework=FRAMEWORK,
        attributes={"gen_ai.agent.description": getattr(agent, "description", None) or None},
    )


def _team_step(team: Any) -> StepRequest:
    return StepRequest(
        semconv.Operation.INVOKE_WORKFLOW, name=getattr(team, "name", None) or type(team).__name__, framework=FRAMEWORK
    )


def _tool_step(tool: Any, call_id: Optional[str]) -> StepRequest:
    return StepRequest(
        semconv.Operation.EXECUTE_TOOL,
        name=getattr(tool, "name", None) or type(tool).__name__,
        framework=FRAMEWORK,
        tool_call_id=call_id,
        tool_type="function",
        attributes={semconv.TOOL_DESCRIPTION: getattr(tool, "description", None) or None},
    )


def _model_request(client: Any) -> InferenceRequest:
    create_args = getattr(client, "_create_args", None)
    model = create_args.get("model") if isinstance(create_args, dict) else None
    return InferenceRequest(
        provider=semconv.Provider.OPENAI,
        model=model if isinstance(model, str) else None,
        layer=Layer.FRAMEWORK,
        attributes={semconv.FRAMEWORK: FRAMEWORK},
    )


def _record_model_result(call: Any, result: Any) -> None:
    """AutoGen's ``CreateResult``: its token counts (they count only where this step is the
    generation: the core drops them from a delegated step) and finish reason."""
    usage = getattr(result, "usage", None)
    reason = getattr(result, "finish_reason", None)
    call.set_response(
        finish_reasons=[reason] if isinstance(reason, str) else None,
        usage=None
        if usage is None or call.delegated
        else Usage(
            input_tokens=getattr(usage, "prompt_tokens", None), output_tokens=getattr(usage, "completion_tokens", None)
        ),
    )


# -- running a step --------------------------------------------------------------------------


def _parent() -> otel_context.Context:
    """The context a new step or model call starts in: under our innermost step if there is one
    (not under whatever AutoGen span is current), else the current context (the app's)."""
    current = _STEP.get()
    if current is None:
        return otel_context.get_current()
    return trace.set_span_in_context(current[0].span, otel_context.get_current())


call_detach = InferenceCall.detach


class _Running:
    """A step or model call made current (in OpenTelemetry's context and ours) for a while."""

    def __init__(self, call: Any, owner: Any):
        self.call = call
        self.owner = owner

    def enter(self) -> tuple:
        return self.call.attach(), _STEP.set((self.call, self.owner))

    @staticmethod
    def leave(tokens: tuple) -> None:
        otel_token, step_token = tokens
        try:
            _STEP.reset(step_token)
        except Exception:  # a token from another context: nothing of ours to undo there
            logger.debug("posthog-instrument: could not reset the AutoGen step", exc_info=True)
        call_detach(otel_token)


class _Hooks:
    """The wrapt wrappers, bound to one instrumentor's recorder. None of them lets an error of
    ours reach the application, and each returns or yields exactly what AutoGen did."""

    def __init__(self, instrumentor: LLMInstrumentor):
        self.instrumentor = instrumentor

    # starting ------------------------------------------------------------------------------
    def _start_step(self, describe, read_input) -> Any:
        return start_step(self.instrumentor, describe, read_input, _parent)

    def _start_model_call(self, client: Any) -> Any:
        try:
            return self.instrumentor.recorder.start(_model_request(client), _parent())
        except Exception:
            logger.debug("posthog-instrument: could not start an AutoGen model call", exc_info=True)
            return None

    # running -------------------------------------------------------------------------------
    @staticmethod
    async def _await(call: Any, owner: Any, awaitable_factory, finish) -> Any:
        running = _Running(call, owner)
        tokens = running.enter()
        try:
            result = await awaitable_factory()
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            running.leave(tokens)
        try:
            finish(call, result)
        except Exception:
            logger.debug("posthog-instrument: could not record an AutoGen result", exc_info=True)
        call.end()
        return result

    @staticmethod
    def _iterate(call: Any, owner: Any, stream: Any, finish):
        """``stream``'s items, with ``call`` current while each is produced; ``finish`` sees the
        last item (AutoGen ends its streams with the run's result)."""
        running = _Running(call, owner)
        return items_in_call(call, stream, running.enter, running.leave, finish=lambda last: finish(call, last))

    # wrappers ------------------------------------------------------------------------------
    def team_run_stream(self, wrapped, instance, args, kwargs):
        step = (
            self._start_step(lambda: _team_step(instance), lambda: _task_state(kwargs.get("task")))
            if is_instrumentation_enabled()
            else None
        )
        if step is None:
            return wrapped(*args, **kwargs)
        return self._iterate(step, instance, wrapped(*args, **kwargs), _output_state)

    def agent_run(self, wrapped, instance, args, kwargs):
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)

        async def traced():
            step = self._start_step(lambda: _agent_step(instance), lambda: _task_state(kwargs.get("task")))
            if step is None:
                return await wrapped(*args, **kwargs)
            return await self._await(step, instance, lambda: wrapped(*args, **kwargs), _output_state)

        return traced()

    def agent_run_stream(self, wrapped, instance, args, kwargs):
        step = (
            self._start_step(lambda: _agent_step(instance), lambda: _task_state(kwargs.get("task")))
            if is_instrumentation_enabled()
            else None
        )
        if step is None:
            return wrapped(*args, **kwargs)
        return self._iterate(step, instance, wrapped(*args, **kwargs), _output_state)

    def agent_turn(self, wrapped, instance, args, kwargs):
        current = _STEP.get()
        if not is_instrumentation_enabled() or (current is not None and current[1] is instance):
            return wrapped(*args, **kwargs)  # the turn of an agent's own run: its run is the step
        step = self._start_step(
            lambda: _agent_step(instance), lambda: _task_state(args[0] if args else kwargs.get("messages"))
        )
        if step is None:
            return wrapped(*args, **kwargs)
        return self._iterate(step, instance, wrapped(*args, **kwargs), _output_state)

    def tool_run_json(self, wrapped, instance, args, kwargs):
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        arguments = args[0] if args else kwargs.get("args")
        call_id = args[2] if len(args) > 2 else kwargs.get("call_id")

        async def traced():
            step = self._start_step(
                lambda: _tool_step(instance, call_id if isinstance(call_id, str) else None),
                lambda: dict(arguments) if arguments is not None else None,
            )
            if step is None:
                return await wrapped(*args, **kwargs)
            return await self._await(
                step,
                instance,
                lambda: wrapped(*args, **kwargs),
                lambda s, result: s.set_output_state(instance.return_value_as_string(result)),
            )

        return traced()

    def function_tool_run(self, wrapped, instance, args, kwargs):
        current = _STEP.get()
        if current is None or current[1] is not instance:
            return wrapped(*args, **kwargs)

        async def in_step():
            # Between run_json and here AutoGen opened its own tool span: make ours current again.
            token = otel_context.attach(trace.set_span_in_context(current[0].span))
            try:
                return await wrapped(*args, **kwargs)
            finally:
                otel_context.detach(token)

        return in_step()

    def model_create(self, wrapped, instance, args, kwargs):
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)

        async def traced():
            call = self._start_model_call(instance)
            if call is None:
                return await wrapped(*args, **kwargs)
            return await self._await(call, instance, lambda: wrapped(*args, **kwargs), _record_model_result)

        return traced()

    def model_create_stream(self, wrapped, instance, args, kwargs):
        call = self._start_model_call(instance) if is_instrumentation_enabled() else None
        if call is None:
            return wrapped(*args, **kwargs)
        return self._iterate(call, instance, wrapped(*args, **kwargs), _record_model_result)


def _output_state(step: Any, result: Any) -> None:
    step.set_output_state(_final_message(result))


class AutoGenAgentChatInstrumentor(LLMInstrumentor):
    requirements = ("autogen-agentchat >= 0.4, < 1",)

    def targets(self) -> list:
        hooks = _Hooks(self)
        group_chat = "autogen_agentchat.teams._group_chat._base_group_chat"
        agent = "autogen_agentchat.agents._base_chat_agent"
        client = "autogen_ext.models.openai._openai_client"
        return [
            Target(group_chat, "BaseGroupChat.run_stream", wrapper=hooks.team_run_stream, required_since="0.4"),
            Target(agent, "BaseChatAgent.run", wrapper=hooks.agent_run, required_since="0.4"),
            Target(agent, "BaseChatAgent.run_stream", wrapper=hooks.agent_run_stream, required_since="0.4"),
            Target(
                "autogen_agentchat.agents._assistant_agent",
                "AssistantAgent.on_messages_stream",
                wrapper=hooks.agent_turn,
                required_since="0.4",
            ),
            Target("autogen_core.tools._base", "BaseTool.run_json", wrapper=hooks.tool_run_json),
            Target("autogen_core.tools._function_tool", "FunctionTool.run", wrapper=hooks.function_tool_run),
            Target(client, "BaseOpenAIChatCompletionClient.create", wrapper=hooks.model_create),
            Target(client, "BaseOpenAIChatCompletionClient.create_stream", wrapper=hooks.model_create_stream),
        ]
