"""Google ADK adapter (``google-adk`` 2.x): runs, agents and tools as steps.

What is hooked:

* ``Runner.run_async`` (``Runner.run`` and ``InMemoryRunner`` go through it): one run as an
  ``invoke_workflow`` step named after the root agent, as ADK names its own; the new message
  as input state, the last final response as output state, the session id as
  ``gen_ai.conversation.id``.
* ``BaseAgent.run_async``: every agent's run (``LlmAgent``, sub-agents, the workflow agents
  ``SequentialAgent`` / ``ParallelAgent`` / ``LoopAgent``, your own ``BaseAgent``s) as
  ``invoke_agent``, nested under the agent or run that started it, its last final response
  as output state.
* ADK's call of a tool from an agent's flow (``_call_tool_async``, whatever the tool class:
  ``FunctionTool``, ``AgentTool``, ``McpTool``, the app's own ``BaseTool``): ``execute_tool``
  with the arguments, the tool's result and the model's call id; the step is current while the
  tool runs, so what it does nests under it: a model call in a function's body, an
  ``AgentTool``'s runner (whose agents nest directly under the tool step, in the run's
  conversation rather than the session ADK makes for the call: a run started inside one of our
  steps has no run step of its own), an MCP tool's request (the MCP adapter then
  adds its attributes to this step rather than a step of its own, and the server's step nests
  under it). ``FunctionTool.run_async`` is a step only where it runs outside that call (a
  workflow's tool node, a release whose flow calls tools elsewhere), never a second one.
* ``BaseToolset.get_tools_with_prefix``: a toolset lists its tools (an MCP server's
  ``tools/list``) with the agent's step as the current span, so what records the listing nests
  under the agent rather than under ADK's span.
* ``BaseLlmFlow._run_and_handle_error``: where an agent's model request is made (whatever the
  model class, streamed or not). The request's generator is run with the agent's step current, so the provider
  SDK's call (``google-genai`` for Gemini, recorded by that adapter) is the one generation,
  directly under its agent's step.

Each run step and agent step is current only while ADK produces an event (each ``__anext__``),
never in the app's code between events; concurrent runs are separate traces.

ADK's own OpenTelemetry spans (scope ``gcp.vertex.agent``: ``invoke_workflow``,
``invoke_agent``, ``call_llm``, ``generate_content``, ``execute_tool``) are left as they are for
the app's own exporters and kept out of PostHog's copy (registered below as not AI events),
rather than completed for PostHog, because:

* ADK starts them bare and sets their attributes afterwards, so when a child ends the export
  pipeline cannot know that its parent will be an AI span: every span would be exported as a
  root of its own;
* their content (tool arguments and results, messages) depends on ADK's own switches
  (``ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS``, the GenAI content-capture variable, each run's
  ``RunConfig.telemetry``) and their shape on ``ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN`` (the
  legacy schema adds a ``call_llm`` span with the request and token counts): the app's choices
  for its own telemetry, which must not decide what PostHog receives;
* ADK's ``generate_content`` (and ``call_llm``) span is a second view of the request the
  google-genai adapter records: keeping it out is what makes one model call one generation.

Our steps are started under our own innermost step (kept in the OpenTelemetry context, which
ADK's spans inherit), never under ADK's spans, so the tree PostHog receives holds nothing it
will not also receive.

Not covered: ``Runner.run_live`` and live (audio/video) agents; a tool's error result (an MCP
``isError`` result, the ``{"error": ...}`` ADK's MCP tool returns) as a failure; ``Workflow``
graph nodes as steps of their own (the agents and ``FunctionTool``s they run are recorded);
ADK's ``user_id`` is not the PostHog person.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ..genai import StepRequest, semconv, self_tracing
from ..genai.one_generation import detach
from .base import AsyncStepGenerator, LLMInstrumentor, Target, start_step

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "google_adk"
# ADK's own spans: kept from PostHog (see the module docstring).
ADK_SCOPE = "gcp.vertex.agent"
self_tracing.register(ADK_SCOPE, lambda attributes: self_tracing.NOT_AI)

# Our innermost step (a StepCall), in the OpenTelemetry context: ADK's spans, started inside
# it, carry it along, so steps and model calls started beneath them find their parent.
_STEP_KEY = otel_context.create_key("posthog_autoinstrument.google_adk_step")
# The ToolContext of the tool call whose step is current: its FunctionTool.run_async inside is
# the same call, not a second step.
_TOOL_CALL_KEY = otel_context.create_key("posthog_autoinstrument.google_adk_tool_call")
# The session id of the run whose step is outermost: the conversation of every agent in it,
# those of a nested run (an AgentTool's, in a throwaway session of its own) too.
_RUN_SESSION_KEY = otel_context.create_key("posthog_autoinstrument.google_adk_run_session")


# -- what is recorded ------------------------------------------------------------------------


def _text(content: Any) -> Optional[str]:
    """The answer text of a ``types.Content`` (thoughts left out), or None without text."""
    texts = [
        part.text
        for part in getattr(content, "parts", None) or ()
        if isinstance(getattr(part, "text", None), str) and not getattr(part, "thought", None)
    ]
    return "".join(texts) if texts else None


class _FinalResponse:
    """Remembers the text of the last final response among the events a run yields."""

    def __init__(self) -> None:
        self.text: Optional[str] = None

    def observe(self, event: Any) -> None:
        is_final = getattr(event, "is_final_response", None)
        if callable(is_final) and is_final():
            text = _text(getattr(event, "content", None))
            if text is not None:
                self.text = text

    def output(self, _last: Any) -> Optional[str]:
        return self.text


def _name(agent: Any) -> str:
    name = getattr(agent, "name", None)
    return name if isinstance(name, str) and name else type(agent).__name__


def _run_step(runner: Any, kwargs: dict) -> StepRequest:
    session_id = kwargs.get("session_id")
    agent = getattr(runner, "agent", None)
    app_name = getattr(runner, "app_name", None)
    return StepRequest(
        semconv.Operation.INVOKE_WORKFLOW,
        name=_name(agent) if agent is not None or not isinstance(app_name, str) else app_name,
        framework=FRAMEWORK,
        attributes={semconv.CONVERSATION_ID: session_id if isinstance(session_id, str) else None},
    )


def _agent_step(agent: Any, invocation: Any) -> StepRequest:
    description = getattr(agent, "description", None)
    model = getattr(agent, "model", None)  # an LlmAgent's model name, or its BaseLlm
    model = model if isinstance(model, str) else getattr(model, "model", None)
    session_id = otel_context.get_value(_RUN_SESSION_KEY) or getattr(getattr(invocation, "session", None), "id", None)
    return StepRequest(
        semconv.Operation.INVOKE_AGENT,
        name=_name(agent),
        framework=FRAMEWORK,
        model=model if isinstance(model, str) and model else None,
        attributes={
            semconv.AGENT_NAME: _name(agent),
            "gen_ai.agent.description": description if isinstance(description, str) and description else None,
            "google_adk.agent.type": type(agent).__name__,
            semconv.CONVERSATION_ID: session_id if isinstance(session_id, str) else None,
        },
    )


def _tool_step(tool: Any, tool_context: Any) -> StepRequest:
    call_id = getattr(tool_context, "function_call_id", None)
    description = getattr(tool, "description", None)
    return StepRequest(
        semconv.Operation.EXECUTE_TOOL,
        name=_name(tool),
        framework=FRAMEWORK,
        tool_call_id=call_id if isinstance(call_id, str) else None,
        tool_type="function",
        attributes={semconv.TOOL_DESCRIPTION: description if isinstance(description, str) and description else None},
    )


# -- where steps start -----------------------------------------------------------------------


def _current_step() -> Any:
    return otel_context.get_value(_STEP_KEY)


def _parent() -> otel_context.Context:
    """The context a new step starts in: under our innermost step if there is one (not under
    whichever ADK span is current), else the current context (the app's)."""
    current = otel_context.get_current()
    step = otel_context.get_value(_STEP_KEY, current)
    return current if step is None else trace.set_span_in_context(step.span, current)


class _Current:
    """A step that, when attached, is both OpenTelemetry's current span and our innermost step
    (the interface ``AsyncStepGenerator`` drives: attach, detach, ended, fail, end, ...)."""

    def __init__(self, step: Any, values: Optional[dict] = None):
        self.step = step
        self.values = values or {}  # more context values while it is current

    def attach(self) -> object:
        try:
            step = self.step
            context = otel_context.set_value(_STEP_KEY, step, trace.set_span_in_context(step.span))
            for key, value in self.values.items():
                context = otel_context.set_value(key, value, context)
            return otel_context.attach(context)
        except Exception:
            return None

    detach = staticmethod(detach)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.step, name)


def _attach_span(step: Any) -> object:
    """Make ``step``'s span the current span (in place of whichever ADK span is)."""
    try:
        return otel_context.attach(trace.set_span_in_context(step.span))
    except Exception:
        return None


async def _with_step_current(step: Any, responses: Any):
    """Yield what the model's response generator yields, running it with ``step``'s span as the
    current span (in place of ADK's ``generate_content`` span), so the provider SDK's generation
    nests under the step. The app's context is back while it has each response."""
    try:
        while True:
            token = _attach_span(step)
            try:
                response = await responses.__anext__()
            except StopAsyncIteration:
                return
            finally:
                detach(token)
            yield response
    finally:
        close = getattr(responses, "aclose", None)
        if close is not None:
            token = _attach_span(step)
            try:
                await close()
            finally:
                detach(token)


class _Hooks:
    """The wrapt wrappers, bound to one instrumentor's recorder. None of them lets an error of
    ours reach the application, and each returns or yields exactly what ADK did."""

    def __init__(self, instrumentor: LLMInstrumentor):
        self.instrumentor = instrumentor

    def _start_step(self, describe, read_input=None) -> Any:
        return start_step(self.instrumentor, describe, read_input, _parent)

    def _traced_stream(self, step: Any, stream: Any, values: Optional[dict] = None) -> Any:
        final = _FinalResponse()
        return AsyncStepGenerator(_Current(step, values), stream, output=final.output, observe=final.observe)

    def runner_run_async(self, wrapped, instance, args, kwargs):
        # A run started inside one of our steps (an AgentTool's runner, a tool's own) is part of
        # the enclosing run: its agents nest under that step, with no run step of its own.
        step = (
            self._start_step(lambda: _run_step(instance, kwargs), lambda: _text(kwargs.get("new_message")))
            if is_instrumentation_enabled() and _current_step() is None
            else None
        )
        if step is None:
            return wrapped(*args, **kwargs)
        try:
            stream = wrapped(*args, **kwargs)
        except BaseException as exc:
            step.fail(exc)
            raise
        session_id = kwargs.get("session_id")
        return self._traced_stream(
            step, stream, {_RUN_SESSION_KEY: session_id} if isinstance(session_id, str) else None
        )

    def agent_run_async(self, wrapped, instance, args, kwargs):
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        invocation = args[0] if args else kwargs.get("parent_context")
        step = self._start_step(lambda: _agent_step(instance, invocation))
        if step is None:
            return wrapped(*args, **kwargs)
        try:
            stream = wrapped(*args, **kwargs)
        except BaseException as exc:
            step.fail(exc)
            raise
        return self._traced_stream(step, stream)

    def tool_call(self, wrapped, instance, args, kwargs):
        """ADK's call of any tool (``tool.run_async``) from an agent's flow."""
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        tool = args[0] if args else kwargs.get("tool")
        arguments = args[1] if len(args) > 1 else kwargs.get("args")
        tool_context = args[2] if len(args) > 2 else kwargs.get("tool_context")
        return self._tool_step(wrapped(*args, **kwargs), tool, arguments, tool_context)

    def function_tool_run_async(self, wrapped, instance, args, kwargs):
        """A ``FunctionTool`` run outside the flow's tool call (a workflow's tool node, or a
        release whose flow calls tools elsewhere); inside it, the call is already a step."""
        tool_context = kwargs.get("tool_context")
        in_tool_call = tool_context is not None and otel_context.get_value(_TOOL_CALL_KEY) is tool_context
        if in_tool_call or not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        return self._tool_step(wrapped(*args, **kwargs), instance, kwargs.get("args"), tool_context)

    def _tool_step(self, call: Any, tool: Any, arguments: Any, tool_context: Any):
        """``call`` (the tool's coroutine, not started) run as an ``execute_tool`` step, current
        while it runs, so what the tool does (an MCP request, a sub-agent's run, a model call)
        nests under it."""

        async def traced():
            step = self._start_step(
                lambda: _tool_step(tool, tool_context),
                lambda: dict(arguments) if isinstance(arguments, dict) else None,
            )
            if step is None:
                return await call
            current = _Current(step, {_TOOL_CALL_KEY: tool_context})
            token = current.attach()
            try:
                result = await call
            except BaseException as exc:
                step.fail(exc)
                raise
            finally:
                detach(token)
            try:
                step.set_output_state(result)
            except Exception:
                logger.debug("posthog-instrument: could not record an ADK tool's result", exc_info=True)
            step.end()
            return result

        return traced()

    def toolset_listing(self, wrapped, instance, args, kwargs):
        """A toolset lists its tools (an MCP server's ``tools/list``) with the agent's step as the
        current span, in place of ADK's own span, so what records the listing nests under it."""
        step = _current_step() if is_instrumentation_enabled() else None
        if step is None:
            return wrapped(*args, **kwargs)
        listing = wrapped(*args, **kwargs)

        async def listed():
            token = _attach_span(step)
            try:
                return await listing
            finally:
                detach(token)

        return listed()

    def model_request(self, wrapped, instance, args, kwargs):
        step = _current_step() if is_instrumentation_enabled() else None
        if step is None:
            return wrapped(*args, **kwargs)
        if args and hasattr(args[0], "__anext__"):
            args = (_with_step_current(step, args[0]), *args[1:])
        elif hasattr(kwargs.get("response_generator"), "__anext__"):
            kwargs = {**kwargs, "response_generator": _with_step_current(step, kwargs["response_generator"])}
        return wrapped(*args, **kwargs)


class GoogleADKInstrumentor(LLMInstrumentor):
    requirements = ("google-adk >= 2.0, < 3",)

    def targets(self) -> list:
        hooks = _Hooks(self)
        return [
            Target("google.adk.runners", "Runner.run_async", wrapper=hooks.runner_run_async, required_since="2.0"),
            Target(
                "google.adk.agents.base_agent",
                "BaseAgent.run_async",
                wrapper=hooks.agent_run_async,
                required_since="2.0",
            ),
            Target(
                "google.adk.flows.llm_flows.tools._caller",
                "_call_tool_async",
                wrapper=hooks.tool_call,
                required_since="2.15",
            ),
            Target(
                "google.adk.tools.function_tool",
                "FunctionTool.run_async",
                wrapper=hooks.function_tool_run_async,
                required_since="2.0",
            ),
            Target(
                "google.adk.tools.base_toolset",
                "BaseToolset.get_tools_with_prefix",
                wrapper=hooks.toolset_listing,
                required_since="2.0",
            ),
            Target(
                "google.adk.flows.llm_flows.base_llm_flow",
                "BaseLlmFlow._run_and_handle_error",
                wrapper=hooks.model_request,
                required_since="2.0",
            ),
        ]
