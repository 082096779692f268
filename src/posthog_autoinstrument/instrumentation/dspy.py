"""DSPy adapter: modules and predictors, tools, and language-model calls.

What is hooked, and why with wrapt rather than DSPy's callbacks. DSPy has a callback system
(``dspy.settings.callbacks``, ``BaseCallback.on_module_start`` & co.), but callbacks only see
a call's start and end from the outside: they cannot make a span the *current* one while the
call runs, so a model request made inside (LiteLLM, an SDK) would not nest under it, nor see
the DSPy model call as the active call that the core's one-generation rule needs. They would
also have to be registered in the application's settings (which ``dspy.configure(callbacks=
...)`` replaces), and they keep per-call state in dicts keyed by call id. Wrapping DSPy's own
entry points gives context-managed spans (right parents under threads and asyncio, nothing kept
after a call) and needs no change to the application's settings:

* ``Module.__call__`` / ``Module.acall``: every module run (``Predict``, ``ChainOfThought``,
  ``ReAct``, a user's ``dspy.Module`` with ``forward``). ``Predict.__call__`` reaches it
  through ``super()``, so predictors are covered too. ReAct-like modules (``ReAct``,
  ``ReActV2``, ``CodeAct``) are ``invoke_agent`` steps, every other module an
  ``invoke_workflow`` step, named after its class. Keyword inputs and the ``Prediction``'s
  fields are the step's input and output state.
* ``Tool.__call__`` / ``Tool.acall``: ``execute_tool`` steps with arguments and result (the
  tools ReAct runs, including its built-in ``finish``).
* ``BaseLM.__call__`` / ``BaseLM.acall``: the model call, recorded at ``Layer.FRAMEWORK``.
  DSPy 3.4 sends a model call either through its own HTTP engine (lm15, the default; no
  adapter below sees it, so this span is the generation) or through LiteLLM
  (``engine="litellm"``, or settings lm15 cannot carry), whose adapter then records the
  request: the core marks this span delegated (a token-less ``$ai_span``) and LiteLLM's span
  is the one generation. (LiteLLM reaches OpenAI through the openai client's low-level
  ``post``, which no adapter sees, so LiteLLM's span is where it stops.) Whatever the nesting,
  one model call is one ``$ai_generation``.
* ``dspy.clients.execution.execute`` / ``aexecute``: the call's result as DSPy itself sees it
  (``CallResult``: usage, response model, whether it came from DSPy's cache), handed to the
  model-call span in progress. ``__call__`` only returns the outputs, without usage.

DSPy's response cache (on by default, on disk and in memory). A call answered from it makes no
model request, costs nothing and has no token usage. It is still shown in the trace where it
happened (the program's structure and its outputs stay readable), but as a token-less step,
not a generation: like a call some other layer answered, it is marked delegated, and carries
``dspy.cache_hit = true``. PostHog's generation counts, token and cost totals therefore match
what the provider billed.

``LM.forward`` / ``aforward`` are deliberately not wrapped: DSPy tells whether an LM subclass
overrides them by identity (``type(lm).forward is LM.forward``), which a wrapper on the class
would break (every call would take DSPy's legacy path). Direct ``lm.forward(...)`` calls, a
deprecated compatibility door, are therefore not recorded.

Not covered: DSPy's embedder (``dspy.Embedder``; its LiteLLM calls are recorded by the LiteLLM
adapter), retrievers, optimizers as such (their module runs are recorded like any other), LM
subclasses that override ``__call__`` without calling ``BaseLM.__call__``, and an explicit
``dspy.lm15.Request`` passed to the LM (its usage and output are recorded, its input is not).
Work DSPy fans out to its own worker threads (``dspy.Parallel``, ``Module.batch``,
``Evaluate``) does not carry the caller's context there, so each item's module run starts a
trace of its own. In DSPy < 3.4 (no ``dspy.clients.execution``) the model-call span has no
usage or output of its own; every model call then goes through LiteLLM, whose span is the
generation. Streaming (``dspy.streamify``) needs nothing special: DSPy assembles the streamed
answer before the model call returns. Tested with DSPy 3.4.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any, Optional

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ..formats import openai_chat
from ..formats.endpoints import host_and_port
from ..formats.litellm import provider_name
from ..formats.litellm import usage as litellm_usage
from ..genai import InferenceCall, InferenceRequest, Layer
from ..genai import messages as m
from ..genai import semconv
from ..genai import StepCall, StepRequest
from .base import LLMInstrumentor, Target, end_step, get, number, start_step

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "dspy"
# DSPy's own details, in its namespace: a call answered from DSPy's cache, and which predictor a
# step is (its signature, e.g. "question -> reasoning, answer").
CACHE_HIT = "dspy.cache_hit"
SIGNATURE = "dspy.signature"

# Module classes that run an agent loop (the model choosing tools); matched by name on the MRO
# so that subclasses count and no DSPy module has to be imported to check.
_AGENT_CLASSES = frozenset({"ReAct", "ReActV2", "CodeAct"})

# The DSPy model call in progress in this context, for the ``execute`` hook to report to.
_LM_CALL: contextvars.ContextVar = contextvars.ContextVar("posthog_autoinstrument_dspy_lm_call", default=None)


# -- modules -------------------------------------------------------------------------------


def _is_agent(module: Any) -> bool:
    return any(cls.__name__ in _AGENT_CLASSES and cls.__module__.startswith("dspy.") for cls in type(module).__mro__)


def _module_step(module: Any) -> StepRequest:
    operation = semconv.Operation.INVOKE_AGENT if _is_agent(module) else semconv.Operation.INVOKE_WORKFLOW
    attributes = {}
    signature = getattr(getattr(module, "signature", None), "signature", None)
    if isinstance(signature, str):
        attributes[SIGNATURE] = signature
    return StepRequest(operation, name=type(module).__name__, framework=FRAMEWORK, attributes=attributes)


def _inputs(args: tuple, kwargs: dict) -> Any:
    if args:
        return {"args": list(args), **kwargs} if kwargs else list(args)
    return kwargs


def _prediction(result: Any) -> Any:
    """A ``Prediction``'s fields (not its completions); anything else as it is."""
    to_dict = getattr(result, "toDict", None)
    if callable(to_dict):
        try:
            return to_dict()
        except Exception:
            pass
    return result


# -- tools -----------------------------------------------------------------------------------


def _tool_step(tool: Any) -> StepRequest:
    description = getattr(tool, "desc", None)
    return StepRequest(
        semconv.Operation.EXECUTE_TOOL,
        name=str(getattr(tool, "name", None) or type(tool).__name__),
        framework=FRAMEWORK,
        tool_type="function",
        attributes={semconv.TOOL_DESCRIPTION: description if isinstance(description, str) and description else None},
    )


# -- the model call --------------------------------------------------------------------------


def _provider_and_model(model: Any) -> tuple:
    """DSPy names models LiteLLM's way, ``provider/model``; without a prefix it means OpenAI."""
    if not isinstance(model, str) or not model:
        return FRAMEWORK, None
    prefix, slash, rest = model.partition("/")
    if slash and rest:
        return provider_name(prefix) or prefix, rest
    return semconv.Provider.OPENAI, model


def _lm_request(lm: Any, kwargs: dict) -> InferenceRequest:
    defaults = getattr(lm, "kwargs", None)
    options = {**(defaults if isinstance(defaults, dict) else {}), **kwargs}
    provider, model = _provider_and_model(getattr(lm, "model", None))
    address, port = host_and_port(options.get("api_base") or options.get("base_url"))
    return InferenceRequest(
        provider=provider,
        model=model,
        operation=semconv.Operation.CHAT,
        server_address=address,
        server_port=port,
        temperature=number(options.get("temperature")),
        top_p=number(options.get("top_p")),
        max_tokens=number(options.get("max_completion_tokens") or options.get("max_tokens")),
        stop_sequences=options.get("stop") or None,
        seed=number(options.get("seed")),
        choice_count=number(options.get("n")),
        layer=Layer.FRAMEWORK,
        attributes={semconv.FRAMEWORK: FRAMEWORK},
    )


def _lm_input(call: InferenceCall, args: tuple, kwargs: dict) -> None:
    if not call.capture_content:
        return
    messages = kwargs.get("messages")
    prompt = args[0] if args else kwargs.get("prompt")
    if isinstance(messages, (list, tuple)):
        call.set_input(messages=[openai_chat.input_message(message) for message in messages])
    elif isinstance(prompt, str):
        call.set_input(messages=[m.message("user", [m.text(prompt)])])
    # An explicit ``dspy.lm15.Request`` is not translated: a newer, rarer shape.


def _output_message(output: Any, reason: Optional[str]) -> dict:
    if not isinstance(output, dict):
        return m.output_message([m.text(output)] if output is not None else [], reason)
    parts = []
    if output.get("reasoning_content"):
        parts.append(m.reasoning(output["reasoning_content"]))
    if output.get("text"):
        parts.append(m.text(output["text"]))
    for tool_call in output.get("tool_calls") or ():
        function = get(tool_call, "function")
        parts.append(m.tool_call(get(tool_call, "id"), get(function, "name"), get(function, "arguments")))
    return m.output_message(parts, reason)


def _finish_reasons(result: Any) -> list:
    responses = getattr(result, "responses", None) or ()
    if responses:
        reasons = [getattr(r, "finish_reason", None) for r in responses]
    else:
        reasons = [get(choice, "finish_reason") for choice in get(getattr(result, "raw", None), "choices") or ()]
    return [openai_chat.finish_reason(str(getattr(r, "value", r))) for r in reasons if r]


def _response_id(result: Any) -> Optional[str]:
    responses = getattr(result, "responses", None) or ()
    if responses:
        return getattr(responses[0], "id", None)
    return get(getattr(result, "raw", None), "id")


def record_result(call: InferenceCall, result: Any) -> None:
    """Record DSPy's ``CallResult`` on the model call's span."""
    if getattr(result, "cache_hit", False):
        # No model request was made: a step showing the cached answer, never a generation.
        call.delegated = True
        call.set_attribute(CACHE_HIT, True)
    usage = getattr(result, "usage", None)
    reasons = _finish_reasons(result)
    _, model = _provider_and_model(getattr(result, "response_model", None))
    call.set_response(
        model=model,
        response_id=_response_id(result),
        finish_reasons=reasons,
        usage=litellm_usage(usage) if usage and not call.delegated else None,
    )
    if call.capture_content:
        outputs = getattr(result, "outputs", None)
        if isinstance(outputs, list):
            fallback = reasons[0] if reasons else None
            call.set_output(
                [
                    _output_message(output, reasons[i] if i < len(reasons) else fallback)
                    for i, output in enumerate(outputs)
                ]
            )


# -- wrappers --------------------------------------------------------------------------------


def _same(value: Any) -> Any:
    return value


def _reset(token: Any) -> None:
    if token is not None:
        try:
            _LM_CALL.reset(token)
        except Exception:  # a token from another context: nothing of ours to undo there
            logger.debug("posthog-instrument: could not reset the DSPy model call", exc_info=True)


class _Hooks:
    """The wrapt wrappers, bound to one instrumentor's recorder. None of them lets an error
    of ours reach the application, and each returns exactly what DSPy returned."""

    def __init__(self, instrumentor: LLMInstrumentor):
        self.instrumentor = instrumentor

    # starting ---------------------------------------------------------------------------
    def _start_step(self, describe, owner: Any, args: tuple, kwargs: dict) -> Optional[StepCall]:
        return start_step(self.instrumentor, lambda: describe(owner), lambda: _inputs(args, kwargs))

    def _start_lm(self, lm: Any, args: tuple, kwargs: dict) -> Optional[InferenceCall]:
        if not is_instrumentation_enabled():
            return None
        try:
            call = self.instrumentor.recorder.start(_lm_request(lm, kwargs))
        except Exception:
            logger.debug("posthog-instrument: could not describe the DSPy model call", exc_info=True)
            return None
        if call is not None:
            try:
                _lm_input(call, args, kwargs)
            except Exception:
                logger.debug("posthog-instrument: could not record the DSPy model input", exc_info=True)
        return call

    # finishing --------------------------------------------------------------------------
    @staticmethod
    def _end_lm(call: InferenceCall, result: Any) -> None:
        # Output and usage came from the ``CallResult`` (``execute``); the outputs returned here
        # carry no usage.
        call.end()

    # wrappers ---------------------------------------------------------------------------
    def _run(self, call, token_holder, wrapped, args, kwargs, finish):
        """Run ``wrapped`` with ``call`` current; ``finish(call, result)`` records and ends."""
        token = call.attach()
        lm_token = token_holder(call) if token_holder else None
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            _reset(lm_token)
            call.detach(token)
        finish(call, result)
        return result

    async def _arun(self, call, token_holder, wrapped, args, kwargs, finish):
        token = call.attach()
        lm_token = token_holder(call) if token_holder else None
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            _reset(lm_token)
            call.detach(token)
        finish(call, result)
        return result

    def module_call(self, wrapped, instance, args, kwargs):
        step = self._start_step(_module_step, instance, args, kwargs)
        if step is None:
            return wrapped(*args, **kwargs)
        return self._run(step, None, wrapped, args, kwargs, lambda s, r: end_step(s, _prediction, r))

    def module_acall(self, wrapped, instance, args, kwargs):
        async def traced():
            step = self._start_step(_module_step, instance, args, kwargs)
            if step is None:
                return await wrapped(*args, **kwargs)
            return await self._arun(step, None, wrapped, args, kwargs, lambda s, r: end_step(s, _prediction, r))

        return traced()

    def tool_call(self, wrapped, instance, args, kwargs):
        step = self._start_step(_tool_step, instance, args, kwargs)
        if step is None:
            return wrapped(*args, **kwargs)
        return self._run(step, None, wrapped, args, kwargs, lambda s, r: end_step(s, _same, r))

    def tool_acall(self, wrapped, instance, args, kwargs):
        async def traced():
            step = self._start_step(_tool_step, instance, args, kwargs)
            if step is None:
                return await wrapped(*args, **kwargs)
            return await self._arun(step, None, wrapped, args, kwargs, lambda s, r: end_step(s, _same, r))

        return traced()

    def lm_call(self, wrapped, instance, args, kwargs):
        call = self._start_lm(instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        return self._run(call, _LM_CALL.set, wrapped, args, kwargs, self._end_lm)

    def lm_acall(self, wrapped, instance, args, kwargs):
        async def traced():
            call = self._start_lm(instance, args, kwargs)
            if call is None:
                return await wrapped(*args, **kwargs)
            return await self._arun(call, _LM_CALL.set, wrapped, args, kwargs, self._end_lm)

        return traced()

    @staticmethod
    def _report(result: Any) -> None:
        call = _LM_CALL.get()
        if call is not None and not call.ended:
            try:
                record_result(call, result)
            except Exception:
                logger.debug("posthog-instrument: could not record the DSPy model result", exc_info=True)

    def execute(self, wrapped, instance, args, kwargs):
        result = wrapped(*args, **kwargs)
        self._report(result)
        return result

    def aexecute(self, wrapped, instance, args, kwargs):
        async def traced():
            result = await wrapped(*args, **kwargs)
            self._report(result)
            return result

        return traced()


class DSPyInstrumentor(LLMInstrumentor):
    requirements = ("dspy >= 3.0, < 4",)

    def targets(self) -> list:
        hooks = _Hooks(self)
        return [
            Target("dspy.primitives.module", "Module.__call__", wrapper=hooks.module_call),
            Target("dspy.primitives.module", "Module.acall", wrapper=hooks.module_acall),
            Target("dspy.adapters.types.tool", "Tool.__call__", wrapper=hooks.tool_call),
            Target("dspy.adapters.types.tool", "Tool.acall", wrapper=hooks.tool_acall),
            Target("dspy.clients.base_lm", "BaseLM.__call__", wrapper=hooks.lm_call),
            Target("dspy.clients.base_lm", "BaseLM.acall", wrapper=hooks.lm_acall),
            # DSPy >= 3.4: where the call's usage and cache status are known.
            Target("dspy.clients.execution", "execute", wrapper=hooks.execute),
            Target("dspy.clients.execution", "aexecute", wrapper=hooks.aexecute),
        ]
