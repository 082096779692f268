"""AG2 adapter (``ag2`` 0.x, the ``autogen`` package: ``ConversableAgent`` and group chats).

What is hooked:

* ``ConversableAgent.initiate_chat`` / ``a_initiate_chat``: a chat as an ``invoke_workflow``
  step named ``sender -> recipient``, the first message and the chat's summary as state.
* ``ConversableAgent.generate_reply`` / ``a_generate_reply``: an agent's turn as
  ``invoke_agent`` (the last message it answers and its reply as state); a
  ``GroupChatManager``'s turn, which runs the group chat, as ``invoke_workflow``.
* ``ConversableAgent.execute_function`` / ``a_execute_function``: a registered tool's call
  as ``execute_tool`` with its arguments, result and call id.
* ``OpenAIWrapper.create``: AG2's model call, at ``Layer.FRAMEWORK``: the provider SDK's request
  beneath it (openai, anthropic, google-genai ...) is the one generation. An answer AG2 takes
  from its own cache makes no request: the step stays without tokens, never a generation.

AG2 runs an async agent's model call (``a_generate_oai_reply``) in an executor thread, which
does not inherit the caller's context: the context is handed over through the agent (keyed
by the agent object) so that the call still nests under its turn.

AG2's own OpenTelemetry instrumentation (``autogen.opentelemetry``) is opt-in; if the app
switches it on, its spans reach PostHog beside ours (see the README).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ..genai import InferenceRequest, Layer
from ..genai import semconv
from ..genai import InferenceCall, StepRequest
from .base import LLMInstrumentor, Target, start_step

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "ag2"
# The context of an async agent's turn, for its model call in AG2's executor thread: id(agent) -> context.
_CONTEXT_FOR_THREAD: dict = {}


def _content(message: Any) -> Any:
    if isinstance(message, dict):
        if message.get("content") is not None:
            return message["content"]
        return {key: value for key, value in message.items() if key in ("tool_calls", "function_call", "role")}
    return message


def _chat_step(sender: Any, recipient: Any) -> StepRequest:
    return StepRequest(
        semconv.Operation.INVOKE_WORKFLOW,
        name=f"{getattr(sender, 'name', '?')} -> {getattr(recipient, 'name', '?')}",
        framework=FRAMEWORK,
    )


def _turn_step(agent: Any) -> StepRequest:
    is_group = any(cls.__name__ == "GroupChatManager" for cls in type(agent).__mro__)
    operation = semconv.Operation.INVOKE_WORKFLOW if is_group else semconv.Operation.INVOKE_AGENT
    return StepRequest(
        operation,
        name=getattr(agent, "name", None) or type(agent).__name__,
        framework=FRAMEWORK,
        attributes={"gen_ai.agent.description": getattr(agent, "description", None) or None} if not is_group else {},
    )


def _tool_step(func_call: Any, call_id: Any) -> StepRequest:
    name = func_call.get("name") if isinstance(func_call, dict) else None
    return StepRequest(
        semconv.Operation.EXECUTE_TOOL,
        name=name or "function",
        framework=FRAMEWORK,
        tool_call_id=call_id if isinstance(call_id, str) else None,
        tool_type="function",
    )


def _tool_arguments(func_call: Any) -> Any:
    arguments = func_call.get("arguments") if isinstance(func_call, dict) else None
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def _model_request(wrapper: Any, kwargs: dict) -> InferenceRequest:
    model = kwargs.get("model")
    if model is None:
        config_list = getattr(wrapper, "_config_list", None)
        if isinstance(config_list, list) and config_list and isinstance(config_list[0], dict):
            model = config_list[0].get("model")
    return InferenceRequest(
        provider=FRAMEWORK,
        model=model if isinstance(model, str) else None,
        layer=Layer.FRAMEWORK,
        attributes={semconv.FRAMEWORK: FRAMEWORK},
    )


def _last_message(args: tuple, kwargs: dict) -> Any:
    messages = args[0] if args else kwargs.get("messages")
    if isinstance(messages, list) and messages:
        return _content(messages[-1])
    return None


class _Hooks:
    """The wrapt wrappers, bound to one instrumentor's recorder. None of them lets an error of
    ours reach the application, and each returns exactly what AG2 returned."""

    def __init__(self, instrumentor: LLMInstrumentor):
        self.instrumentor = instrumentor

    def _start_step(self, describe, read_input) -> Any:
        return start_step(self.instrumentor, describe, read_input)

    @staticmethod
    def _finish(call: Any, result: Any, record) -> None:
        try:
            record(call, result)
        except Exception:
            logger.debug("posthog-instrument: could not record an AG2 result", exc_info=True)
        call.end()

    def _run(self, call: Any, wrapped, args, kwargs, record) -> Any:
        token = call.attach()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            InferenceCall.detach(token)
        self._finish(call, result, record)
        return result

    async def _arun(self, call: Any, wrapped, args, kwargs, record, owner: Any = None) -> Any:
        token = call.attach()
        if owner is not None:
            _CONTEXT_FOR_THREAD[id(owner)] = otel_context.get_current()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            if owner is not None:
                _CONTEXT_FOR_THREAD.pop(id(owner), None)
            InferenceCall.detach(token)
        self._finish(call, result, record)
        return result

    # chats ---------------------------------------------------------------------------------
    def _chat(self, instance, args, kwargs):
        return self._start_step(
            lambda: _chat_step(instance, args[0] if args else kwargs.get("recipient")),
            lambda: _content(kwargs.get("message")),
        )

    def initiate_chat(self, wrapped, instance, args, kwargs):
        step = self._chat(instance, args, kwargs)
        if step is None:
            return wrapped(*args, **kwargs)
        return self._run(step, wrapped, args, kwargs, _record_summary)

    def a_initiate_chat(self, wrapped, instance, args, kwargs):
        async def traced():
            step = self._chat(instance, args, kwargs)
            if step is None:
                return await wrapped(*args, **kwargs)
            return await self._arun(step, wrapped, args, kwargs, _record_summary)

        return traced()

    # turns ---------------------------------------------------------------------------------
    def generate_reply(self, wrapped, instance, args, kwargs):
        step = self._start_step(lambda: _turn_step(instance), lambda: _last_message(args, kwargs))
        if step is None:
            return wrapped(*args, **kwargs)
        return self._run(step, wrapped, args, kwargs, _record_reply)

    def a_generate_reply(self, wrapped, instance, args, kwargs):
        async def traced():
            step = self._start_step(lambda: _turn_step(instance), lambda: _last_message(args, kwargs))
            if step is None:
                return await wrapped(*args, **kwargs)
            return await self._arun(step, wrapped, args, kwargs, _record_reply, owner=instance)

        return traced()

    def generate_oai_reply(self, wrapped, instance, args, kwargs):
        """In AG2's executor thread (an async turn), nest the model call under its turn."""
        handed_over = _CONTEXT_FOR_THREAD.get(id(instance))
        if handed_over is None or otel_context.get_current():
            return wrapped(*args, **kwargs)
        token = otel_context.attach(handed_over)
        try:
            return wrapped(*args, **kwargs)
        finally:
            otel_context.detach(token)

    # tools ---------------------------------------------------------------------------------
    def _tool(self, args, kwargs):
        func_call = args[0] if args else kwargs.get("func_call")
        call_id = args[1] if len(args) > 1 else kwargs.get("call_id")
        return self._start_step(lambda: _tool_step(func_call, call_id), lambda: _tool_arguments(func_call))

    def execute_function(self, wrapped, instance, args, kwargs):
        step = self._tool(args, kwargs)
        if step is None:
            return wrapped(*args, **kwargs)
        return self._run(step, wrapped, args, kwargs, _record_tool_result)

    def a_execute_function(self, wrapped, instance, args, kwargs):
        async def traced():
            step = self._tool(args, kwargs)
            if step is None:
                return await wrapped(*args, **kwargs)
            return await self._arun(step, wrapped, args, kwargs, _record_tool_result)

        return traced()

    # model calls ---------------------------------------------------------------------------
    def model_create(self, wrapped, instance, args, kwargs):
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        try:
            call = self.instrumentor.recorder.start(_model_request(instance, kwargs))
        except Exception:
            logger.debug("posthog-instrument: could not start an AG2 model call", exc_info=True)
            call = None
        if call is None:
            return wrapped(*args, **kwargs)
        return self._run(call, wrapped, args, kwargs, _record_model_result)


def _record_summary(step: Any, result: Any) -> None:
    step.set_output_state(getattr(result, "summary", None))


def _record_reply(step: Any, reply: Any) -> None:
    step.set_output_state(_content(reply))


def _record_tool_result(step: Any, result: Any) -> None:
    if isinstance(result, tuple) and len(result) == 2:
        succeeded, message = result
        step.set_output_state(_content(message))
        if succeeded is False:
            step.set_attribute(semconv.ERROR_TYPE, "tool_error")


def _record_model_result(call: Any, response: Any) -> None:
    # Token counts come from the provider SDK's generation beneath. With none (an answer from
    # AG2's cache, or a client we do not instrument) this stays a step: nothing was billed, or
    # we cannot tell what was.
    call.delegated = True
    model = getattr(response, "model", None)
    call.set_response(
        model=model if isinstance(model, str) else None,
        response_id=getattr(response, "id", None) if isinstance(getattr(response, "id", None), str) else None,
    )


class AG2Instrumentor(LLMInstrumentor):
    requirements = ("ag2 >= 0.9, < 1",)

    def targets(self) -> list:
        hooks = _Hooks(self)
        agent = "autogen.agentchat.conversable_agent"
        return [
            Target(agent, "ConversableAgent.initiate_chat", wrapper=hooks.initiate_chat, required_since="0.9"),
            Target(agent, "ConversableAgent.a_initiate_chat", wrapper=hooks.a_initiate_chat, required_since="0.9"),
            Target(agent, "ConversableAgent.generate_reply", wrapper=hooks.generate_reply, required_since="0.9"),
            Target(agent, "ConversableAgent.a_generate_reply", wrapper=hooks.a_generate_reply, required_since="0.9"),
            Target(agent, "ConversableAgent.generate_oai_reply", wrapper=hooks.generate_oai_reply),
            Target(agent, "ConversableAgent.execute_function", wrapper=hooks.execute_function, required_since="0.9"),
            Target(
                agent, "ConversableAgent.a_execute_function", wrapper=hooks.a_execute_function, required_since="0.9"
            ),
            Target("autogen.oai.client", "OpenAIWrapper.create", wrapper=hooks.model_create, required_since="0.9"),
        ]
