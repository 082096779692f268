"""Semantic Kernel adapter (``semantic-kernel`` 1.45 to 1.x, Python).

What is hooked:

* ``KernelFunction.invoke`` / ``invoke_stream`` (``Kernel.invoke``, ``invoke_stream``,
  ``invoke_prompt`` and auto function calling's ``Kernel.invoke_function_call`` all go through
  them): a function the model called (SK passes the model's tool call as the invocation's
  metadata) is an ``execute_tool`` step named after the function as the model saw it
  (``plugin-function``), with the model's arguments, the result as SK gives it back to the
  model and the call id (a function that raises fails its step); a native (method) function
  invoked by the app is an ``execute_tool`` step too (the arguments as input), a prompt
  function invoked by the app an ``invoke_workflow`` step (arguments as input, result as output).
* ``ChatCompletionAgent.get_response`` / ``invoke`` / ``invoke_stream``: ``invoke_agent``
  named after the agent, the messages as input and its answer as output.
* ``OpenAIChatCompletionBase._inner_get_chat_message_contents`` and its streaming twin (the
  ``OpenAIChatCompletion`` and ``AzureChatCompletion`` services, one call per model request,
  the auto function calling loop being above them): SK's model call, at ``Layer.FRAMEWORK``.
  The openai SDK's request beneath it is the one generation; this step carries no tokens then
  (it keeps SK's own token counts only if nothing below records the request).

Semantic Kernel's own OpenTelemetry spans. SK always records an ``execute_tool`` span for every
function invocation, and with its diagnostics switched on
(``SEMANTICKERNEL_EXPERIMENTAL_GENAI_ENABLE_OTEL_DIAGNOSTICS`` or ``..._SENSITIVE``) a ``chat``
span around each model request and an ``invoke_agent`` span around each agent call, all in the
global tracer provider (instrumentation scopes ``semantic_kernel.*``). They are left as they are
for the app's own exporters and kept out of PostHog's copy (registered below as not AI events),
so that a model call is one generation and a tool one step however SK's diagnostics are set.
Our steps and model calls never take them as parents: each is started under the step of ours
it belongs to (kept in the OpenTelemetry context, under ``_STEP``, which SK's spans inherit),
and where SK makes its own span current around code that records something (the request to
the openai SDK, a native function's body), ours is made current again. PostHog's tree therefore
holds nothing it will not also receive; the app's exporters get SK's spans and ours, each with
its parent.

Not covered: agents other than ``ChatCompletionAgent`` (their model calls are recorded where
we instrument their SDK), agent group chats and orchestrations as steps, model services other
than the OpenAI / Azure OpenAI ones as SK steps (their provider SDK's generation is still
recorded where we instrument it, but with SK's diagnostics on it nests under SK's chat span,
which PostHog does not receive); a model call made in a native function's streamed body.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ..genai import InferenceRequest, Layer, StepCall, StepRequest, Usage, self_tracing, semconv
from .base import LLMInstrumentor, Target, items_in_call, start_step

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "semantic_kernel"
# SK's own spans (semantic_kernel.functions.kernel_function, ...): kept from PostHog (see above).
self_tracing.register("semantic_kernel", lambda attributes: self_tracing.NOT_AI, sub_scopes=True)

# Our innermost step or model call in this context: the parent of every step started inside it,
# whichever SK span is current. In the OpenTelemetry context, which SK's spans inherit.
_STEP = otel_context.create_key("posthog_autoinstrument.semantic_kernel_step")


# -- what is recorded ------------------------------------------------------------------------


def _tool_call(metadata: Any) -> Optional[dict]:
    """The model's tool call that SK passes as an invocation's metadata, if it is one."""
    if isinstance(metadata, dict) and metadata.get("id") and isinstance(metadata.get("function"), dict):
        return metadata
    return None


def _function_step(function: Any, tool_call: Optional[dict]) -> StepRequest:
    name = getattr(function, "fully_qualified_name", None) or getattr(function, "name", None)
    native = not getattr(function, "is_prompt", False)
    tool = tool_call is not None or native
    return StepRequest(
        semconv.Operation.EXECUTE_TOOL if tool else semconv.Operation.INVOKE_WORKFLOW,
        name=str(name or type(function).__name__),
        framework=FRAMEWORK,
        tool_call_id=str(tool_call["id"]) if tool_call else None,
        tool_type="function" if tool else None,
        attributes={semconv.TOOL_DESCRIPTION: getattr(function, "description", None) or None} if tool else {},
    )


def _function_input(arguments: Any, tool_call: Optional[dict]) -> Any:
    if tool_call is not None:
        return tool_call["function"].get("arguments")
    if not isinstance(arguments, dict):
        return None
    return {
        key: value if isinstance(value, (str, int, float, bool)) else str(value) for key, value in arguments.items()
    }


def _result_text(result: Any) -> Optional[str]:
    """A ``FunctionResult`` as SK shows it (to the model, for a tool)."""
    return None if result is None else str(result)


def _agent_step(agent: Any) -> StepRequest:
    service = getattr(agent, "service", None)
    model = getattr(service, "ai_model_id", None)
    return StepRequest(
        semconv.Operation.INVOKE_AGENT,
        name=getattr(agent, "name", None) or type(agent).__name__,
        framework=FRAMEWORK,
        model=model if isinstance(model, str) else None,
        attributes={"gen_ai.agent.description": getattr(agent, "description", None) or None},
    )


def _message_text(message: Any) -> Any:
    if message is None or isinstance(message, str):
        return message
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else str(message)


def _messages_state(args: tuple, kwargs: dict) -> Any:
    messages = args[0] if args else kwargs.get("messages")
    if isinstance(messages, (list, tuple)):
        return [_message_text(m) for m in messages]
    return _message_text(messages)


def _model_request(service: Any, settings: Any, stream: bool) -> InferenceRequest:
    model = getattr(settings, "ai_model_id", None) or getattr(service, "ai_model_id", None)
    client = type(getattr(service, "client", None)).__name__
    return InferenceRequest(
        provider=semconv.Provider.AZURE_OPENAI if "Azure" in client else semconv.Provider.OPENAI,
        model=model if isinstance(model, str) else None,
        stream=stream,
        layer=Layer.FRAMEWORK,
        attributes={semconv.FRAMEWORK: FRAMEWORK},
    )


class _ModelResult:
    """SK's answer to one model request (``ChatMessageContent`` lists, or the streamed chunk
    lists): its token counts (they count only where this call is the generation: the core drops
    them from a delegated step) and finish reason."""

    __slots__ = ("usage", "finish_reason")

    def __init__(self):
        self.usage: Any = None
        self.finish_reason: Any = None

    def observe(self, messages: Any) -> None:
        for message in messages if isinstance(messages, list) else ():
            usage = (getattr(message, "metadata", None) or {}).get("usage")
            if usage is not None:
                self.usage = usage
            reason = getattr(message, "finish_reason", None)
            if reason is not None:
                self.finish_reason = getattr(reason, "value", reason)

    def record(self, call: Any) -> None:
        usage = self.usage
        call.set_response(
            finish_reasons=[self.finish_reason] if isinstance(self.finish_reason, str) else None,
            usage=None
            if usage is None or call.delegated
            else Usage(
                input_tokens=getattr(usage, "prompt_tokens", None),
                output_tokens=getattr(usage, "completion_tokens", None),
            ),
        )


class _StreamedText:
    """The text of a stream of SK content (lists of chunks, or agent response items), put together."""

    __slots__ = ("pieces",)

    def __init__(self):
        self.pieces: list = []

    def observe(self, item: Any) -> None:
        message = getattr(item, "message", None)  # an agent's response item
        if message is None and isinstance(item, list) and item:
            message = item[0]
        content = getattr(message, "content", None)
        if isinstance(content, str):
            self.pieces.append(content)

    def text(self) -> Optional[str]:
        return "".join(self.pieces) if self.pieces else None


# -- running a step --------------------------------------------------------------------------


def _parent() -> otel_context.Context:
    """The context a new step or model call starts in: under our innermost step if there is one
    (not under whatever SK span is current), else the current context (the app's)."""
    current = otel_context.get_current()
    ours = otel_context.get_value(_STEP, current)
    if ours is None:
        return current
    return trace.set_span_in_context(ours.span, current)


def _enter(call: Any) -> object:
    """Make ``call`` current, in OpenTelemetry's context and as our innermost step."""
    try:
        if isinstance(call, StepCall):
            # As StepCall.attach: a step is no model call (no part in one-generation checks).
            return otel_context.attach(otel_context.set_value(_STEP, call, trace.set_span_in_context(call.span)))
        return call.attach(otel_context.set_value(_STEP, call))
    except Exception:
        logger.debug("posthog-instrument: could not enter a Semantic Kernel step", exc_info=True)
        return None


def _leave(token: object) -> None:
    StepCall.detach(token)


def _finish(call: Any, record: Callable[[], None]) -> None:
    try:
        record()
    except Exception:
        logger.debug("posthog-instrument: could not record a Semantic Kernel result", exc_info=True)
    call.end()


async def _awaited(call: Any, awaitable: Any, record: Callable[[Any], None]) -> Any:
    token = _enter(call)
    try:
        result = await awaitable
    except BaseException as exc:
        call.fail(exc)
        raise
    finally:
        _leave(token)
    _finish(call, lambda: record(result))
    return result


def _iterated(call: Any, stream: Any, observe: Callable[[Any], None], record: Callable[[], None]):
    """``stream``'s items, with ``call`` current while each is produced; ``observe`` sees each
    item, ``record`` runs at the end."""
    return items_in_call(call, stream, lambda: _enter(call), _leave, observe, lambda _last: record())


class _Hooks:
    """The wrapt wrappers, bound to one instrumentor's recorder. None of them lets an error of
    ours reach the application, and each returns or yields exactly what SK did."""

    def __init__(self, instrumentor: LLMInstrumentor):
        self.instrumentor = instrumentor

    def _start_step(self, describe: Callable[[], StepRequest], read_input: Callable[[], Any]) -> Optional[StepCall]:
        return start_step(self.instrumentor, describe, read_input, _parent)

    def _start_function_step(self, function: Any, args: tuple, kwargs: dict) -> Optional[StepCall]:
        arguments = args[1] if len(args) > 1 else kwargs.get("arguments")
        if arguments is None:  # (the arguments given as keywords)
            arguments = {k: v for k, v in kwargs.items() if k not in ("kernel", "arguments", "metadata")}
        metadata = args[2] if len(args) > 2 else kwargs.get("metadata")
        tool_call = _tool_call(metadata)
        return self._start_step(
            lambda: _function_step(function, tool_call), lambda: _function_input(arguments, tool_call)
        )

    # kernel functions --------------------------------------------------------------------------
    def function_invoke(self, wrapped, instance, args, kwargs):
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)

        async def traced():
            step = self._start_function_step(instance, args, kwargs)
            if step is None:
                return await wrapped(*args, **kwargs)
            return await _awaited(step, wrapped(*args, **kwargs), lambda r: step.set_output_state(_result_text(r)))

        return traced()

    def function_invoke_stream(self, wrapped, instance, args, kwargs):
        step = self._start_function_step(instance, args, kwargs) if is_instrumentation_enabled() else None
        if step is None:
            return wrapped(*args, **kwargs)
        text = _StreamedText()
        return _iterated(step, wrapped(*args, **kwargs), text.observe, lambda: step.set_output_state(text.text()))

    @staticmethod
    def function_body(wrapped, instance, args, kwargs):
        """A native function's body: SK made its own span current; make our step current again,
        so that what the body records nests under it."""
        step = otel_context.get_value(_STEP)
        if not isinstance(step, StepCall) or step.ended:
            return wrapped(*args, **kwargs)

        async def within():
            token = _enter(step)
            try:
                return await wrapped(*args, **kwargs)
            finally:
                _leave(token)

        return within()

    # agents ------------------------------------------------------------------------------------
    def agent_get_response(self, wrapped, instance, args, kwargs):
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)

        async def traced():
            step = self._start_step(lambda: _agent_step(instance), lambda: _messages_state(args, kwargs))
            if step is None:
                return await wrapped(*args, **kwargs)
            return await _awaited(
                step,
                wrapped(*args, **kwargs),
                lambda item: step.set_output_state(_message_text(getattr(item, "message", None))),
            )

        return traced()

    def agent_invoke(self, wrapped, instance, args, kwargs):
        step = (
            self._start_step(lambda: _agent_step(instance), lambda: _messages_state(args, kwargs))
            if is_instrumentation_enabled()
            else None
        )
        if step is None:
            return wrapped(*args, **kwargs)
        last: list = []

        def observe(item: Any) -> None:
            last[:] = [item]

        return _iterated(
            step,
            wrapped(*args, **kwargs),
            observe,
            lambda: step.set_output_state(_message_text(getattr(last[0], "message", None)) if last else None),
        )

    def agent_invoke_stream(self, wrapped, instance, args, kwargs):
        step = (
            self._start_step(lambda: _agent_step(instance), lambda: _messages_state(args, kwargs))
            if is_instrumentation_enabled()
            else None
        )
        if step is None:
            return wrapped(*args, **kwargs)
        text = _StreamedText()
        return _iterated(step, wrapped(*args, **kwargs), text.observe, lambda: step.set_output_state(text.text()))

    # model calls -------------------------------------------------------------------------------
    def _start_model_call(self, service: Any, args: tuple, kwargs: dict, stream: bool) -> Any:
        settings = args[1] if len(args) > 1 else kwargs.get("settings")
        try:
            return self.instrumentor.recorder.start(_model_request(service, settings, stream), _parent())
        except Exception:
            logger.debug("posthog-instrument: could not start a Semantic Kernel model call", exc_info=True)
            return None

    def model_call(self, wrapped, instance, args, kwargs):
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)

        async def traced():
            call = self._start_model_call(instance, args, kwargs, stream=False)
            if call is None:
                return await wrapped(*args, **kwargs)
            result = _ModelResult()

            def record(messages: Any) -> None:
                result.observe(messages)
                result.record(call)

            return await _awaited(call, wrapped(*args, **kwargs), record)

        return traced()

    def model_call_stream(self, wrapped, instance, args, kwargs):
        call = self._start_model_call(instance, args, kwargs, stream=True) if is_instrumentation_enabled() else None
        if call is None:
            return wrapped(*args, **kwargs)
        result = _ModelResult()
        return _iterated(call, wrapped(*args, **kwargs), result.observe, lambda: result.record(call))

    @staticmethod
    def send_request(wrapped, instance, args, kwargs):
        """The request to the openai SDK: with SK's diagnostics on, SK's chat span is current
        here; make our model call current again, so the SDK's generation nests under it."""
        call = otel_context.get_value(_STEP)
        if call is None or isinstance(call, StepCall) or call.ended:
            return wrapped(*args, **kwargs)

        async def within():
            # SK's chat span, started around this request, marked our call as a framework's view
            # of a model request below it: only a request recorded below makes it one.
            call.delegated = False
            token = call.attach()
            try:
                return await wrapped(*args, **kwargs)
            finally:
                call.detach(token)

        return within()


class SemanticKernelInstrumentor(LLMInstrumentor):
    requirements = ("semantic-kernel >= 1.45, < 2",)

    def targets(self) -> list:
        hooks = _Hooks(self)
        function = "semantic_kernel.functions.kernel_function"
        agent = "semantic_kernel.agents.chat_completion.chat_completion_agent"
        chat = "semantic_kernel.connectors.ai.open_ai.services.open_ai_chat_completion_base"
        return [
            Target(function, "KernelFunction.invoke", wrapper=hooks.function_invoke, required_since="1.45"),
            Target(
                function, "KernelFunction.invoke_stream", wrapper=hooks.function_invoke_stream, required_since="1.45"
            ),
            Target(
                "semantic_kernel.functions.kernel_function_from_method",
                "KernelFunctionFromMethod._invoke_internal",
                wrapper=hooks.function_body,
            ),
            Target(agent, "ChatCompletionAgent.get_response", wrapper=hooks.agent_get_response, required_since="1.45"),
            Target(agent, "ChatCompletionAgent.invoke", wrapper=hooks.agent_invoke, required_since="1.45"),
            Target(
                agent, "ChatCompletionAgent.invoke_stream", wrapper=hooks.agent_invoke_stream, required_since="1.45"
            ),
            Target(
                chat,
                "OpenAIChatCompletionBase._inner_get_chat_message_contents",
                wrapper=hooks.model_call,
                required_since="1.45",
            ),
            Target(
                chat,
                "OpenAIChatCompletionBase._inner_get_streaming_chat_message_contents",
                wrapper=hooks.model_call_stream,
                required_since="1.45",
            ),
            Target(
                "semantic_kernel.connectors.ai.open_ai.services.open_ai_handler",
                "OpenAIHandler._send_request",
                wrapper=hooks.send_request,
            ),
        ]
