"""MCP adapter (the ``mcp`` Python SDK, 2.x): tool calls, resource reads and prompts as steps,
on both sides of the protocol, in one trace.

Client side. ``ClientSession.call_tool``, ``list_tools``, ``read_resource`` and ``get_prompt``
(which the SDK's ``Client``, the OpenAI Agents SDK's MCP servers and LangChain's MCP adapters
all go through) are steps: a tool call is ``execute_tool <tool>`` with its arguments and result
(``gen_ai.tool.call.arguments`` / ``.result``); a result that says ``isError`` and an exception
both fail the step (``error.type`` ``tool_error`` for the former, as the MCP conventions say).
The others are ``tools/list``, ``resources/read`` (the URI as ``mcp.resource.uri``, never in the
name) and ``prompts/get <name>``, with their input and output as state.

One tool step per call. Where a framework records the tool call itself (the OpenAI Agents SDK's
function span for an MCP tool, Google ADK's tool step for an ``McpToolset``'s tool, a LangChain
tool over ``langchain-mcp-adapters``, Pydantic AI's own ``execute_tool`` span), its step is the
current span when the session is asked: we then record nothing more but the MCP attributes on
the framework's step (as the MCP conventions ask), and it is what the server's steps nest under. The same holds for a listing inside the OpenAI
Agents SDK's ``mcp_list_tools`` step.

Trace context. The request carries the caller's step in its ``params._meta`` as W3C
``traceparent`` / ``tracestate`` (the MCP conventions' carrier). The SDK injects the context of
its own client span there (through the global propagator, so baggage goes too); right after, we
replace ``traceparent`` / ``tracestate`` with the caller step's, marked as one PostHog receives
(``genai.remote_parent.with_ai_parent_mark``). The SDK's span is not an AI span and never reaches
PostHog; a server span under it would have no parent there. ``_meta`` is open by the protocol's
definition, and these keys are the ones the SDK itself sends: a server that does not read them
is unaffected.

Server side. Every request handler a ``Server`` (the low-level server, and ``MCPServer``, the
former ``FastMCP``, which registers its handlers with one) runs for ``tools/call``,
``resources/read`` and ``prompts/get`` is a step in the server's process, whatever transport
(stdio, streamable HTTP). Its parent is the caller's step, read from the request's ``_meta``:
the server's steps (and any model call a tool makes, nested under it) join the caller's trace.
A request from a caller that did not mark its context (not run under ``posthog-instrument``)
starts its own trace. The step starts with the caller's context current, so a person the caller
names in W3C baggage (``posthog.distinct_id``) is the step's too. The SDK records a span of its own for each request (``tools/call
<tool>``, with the conventions' ``gen_ai.operation.name``): ours replaces it in PostHog's copy
(``formats/mcp.py``), and the app's own exporters still get it.

Not covered: ``mcp`` 1.x (``mcp.server.fastmcp.FastMCP`` and its ``ClientSession``); listings
of resources and prompts, completions, sampling and elicitation requests a server sends back,
notifications.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import NonRecordingSpan, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..formats import mcp as mcp_format
from ..genai import StepCall, StepRequest, self_tracing, semconv
from ..genai.remote_parent import with_ai_parent_mark
from .base import LLMInstrumentor, Target

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "mcp"

# The SDK's spans record only once it is imported, which loads this adapter first.
self_tracing.register(mcp_format.SDK_SCOPE, mcp_format.complete_sdk_span)

# The span whose trace context an outbound MCP request carries: our client step, or the
# framework's tool step that stands for it.
_CALLER = otel_context.create_key("posthog_autoinstrument.mcp_caller")

# The operations of a framework's step that already records a request of each method.
_RECORDED_BY_FRAMEWORK = {
    mcp_format.TOOLS_CALL: frozenset({semconv.Operation.EXECUTE_TOOL}),
    mcp_format.TOOLS_LIST: frozenset({"mcp_list_tools", mcp_format.TOOLS_LIST}),
}

_W3C = TraceContextTextMapPropagator()

_SERVED = (mcp_format.TOOLS_CALL, mcp_format.RESOURCES_READ, mcp_format.PROMPTS_GET)


class MCPInstrumentor(LLMInstrumentor):
    requirements = ("mcp >= 2.0, < 3",)

    def targets(self) -> list:
        session = "mcp.client.session"
        return [
            Target(
                session, "ClientSession.call_tool", wrapper=self._client(mcp_format.TOOLS_CALL), required_since="2.0"
            ),
            Target(
                session, "ClientSession.list_tools", wrapper=self._client(mcp_format.TOOLS_LIST), required_since="2.0"
            ),
            Target(
                session,
                "ClientSession.read_resource",
                wrapper=self._client(mcp_format.RESOURCES_READ),
                required_since="2.0",
            ),
            Target(
                session, "ClientSession.get_prompt", wrapper=self._client(mcp_format.PROMPTS_GET), required_since="2.0"
            ),
            Target(
                "mcp.shared.jsonrpc_dispatcher", "inject_trace_context", wrapper=_carry_caller, required_since="2.0"
            ),
            Target(
                "mcp.server.lowlevel.server", "Server.get_request_handler", wrapper=self._served, required_since="2.0"
            ),
        ]

    # -- client ----------------------------------------------------------------------------
    def _client(self, method: str):
        def wrapper(wrapped, instance, args, kwargs):
            async def traced():
                step, token = self._start_client_step(method, instance, args, kwargs)
                if token is None:
                    return await wrapped(*args, **kwargs)
                try:
                    result = await wrapped(*args, **kwargs)
                except BaseException as exc:
                    if step is not None:
                        step.fail(exc)
                    raise
                finally:
                    _detach(token)
                if step is not None:
                    _finish(step, method, result)
                return result

            return traced()

        return wrapper

    def _start_client_step(self, method: str, session: Any, args: tuple, kwargs: dict):
        """(our step or None, the token to detach), (None, None) when nothing is recorded."""
        try:
            if not is_instrumentation_enabled():
                return None, None
            current = otel_context.get_current()
            enclosing = trace.get_current_span(current)
            if _records_request(enclosing, method):
                # The framework's step is the tool step: it gets the MCP attributes (as the MCP
                # conventions ask), and the server nests under it.
                enclosing.set_attributes(_mcp_attributes(method, None, _protocol_version(session)))
                return None, otel_context.attach(otel_context.set_value(_CALLER, enclosing, current))
            target, state = _client_request(method, args, kwargs)
            step = self.recorder.start_step(_step_request(method, target, _protocol_version(session)), current)
            if step is None:
                return None, None
            step.set_input_state(state)
            context = trace.set_span_in_context(step.span, otel_context.set_value(_CALLER, step.span, current))
            return step, otel_context.attach(context)
        except Exception:
            logger.debug("posthog-instrument: could not start an MCP client step", exc_info=True)
            return None, None

    # -- server ----------------------------------------------------------------------------
    def _served(self, wrapped, instance, args, kwargs):
        entry = wrapped(*args, **kwargs)
        try:
            method = _argument(args, kwargs, 0, "method")
            if entry is None or method not in _SERVED:
                return entry
            from dataclasses import replace

            return replace(entry, handler=self._server_handler(entry.handler, method))
        except Exception:
            logger.debug("posthog-instrument: could not wrap an MCP request handler", exc_info=True)
            return entry

    def _server_handler(self, handler: Any, method: str):
        async def traced(ctx, params):
            step, token = self._start_server_step(method, ctx, params)
            if token is None:
                return await handler(ctx, params)
            try:
                result = await handler(ctx, params)
            except BaseException as exc:
                step.fail(exc)
                raise
            finally:
                _detach(token)
            _finish(step, method, result)
            return result

        return traced

    def _start_server_step(self, method: str, ctx: Any, params: Any):
        try:
            if not getattr(self, "_active", False) or not is_instrumentation_enabled():
                return None, None
            current = otel_context.get_current()
            parent = _caller_context(getattr(ctx, "meta", None) or getattr(params, "meta", None), current)
            target, state = _served_request(method, params)
            request = _step_request(method, target, getattr(ctx, "protocol_version", None))
            # Started with the caller's context current: the person it names in its baggage
            # (posthog.distinct_id) is read as the step starts.
            outer = otel_context.attach(parent)
            try:
                step = self.recorder.start_step(request, parent)
            finally:
                _detach(outer)
            if step is None:
                return None, None
            step.set_input_state(state)
            return step, otel_context.attach(trace.set_span_in_context(step.span, parent))
        except Exception:
            logger.debug("posthog-instrument: could not start an MCP server step", exc_info=True)
            return None, None


def _carry_caller(wrapped, instance, args, kwargs):
    """After the SDK injects its client span's context into ``_meta``: the caller's step instead."""
    result = wrapped(*args, **kwargs)
    try:
        caller = otel_context.get_value(_CALLER)
        meta = _argument(args, kwargs, 0, "meta")
        if caller is not None and isinstance(meta, dict):
            marked = NonRecordingSpan(with_ai_parent_mark(caller.get_span_context()))
            _W3C.inject(meta, context=trace.set_span_in_context(marked))
    except Exception:
        logger.debug("posthog-instrument: could not carry the trace context over MCP", exc_info=True)
    return result


def _caller_context(meta: Any, current: otel_context.Context) -> otel_context.Context:
    """The context to nest a server step in: the caller's, from ``_meta``, if it sent one."""
    if not isinstance(meta, dict) or "traceparent" not in meta:
        return current
    extracted = propagate.extract(meta, context=current)
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        return current
    return extracted


def _records_request(span: Any, method: str) -> bool:
    """Whether ``span`` is a framework's step that records this request itself."""
    operations = _RECORDED_BY_FRAMEWORK.get(method)
    if operations is None or not span.is_recording():
        return False
    attributes = getattr(span, "attributes", None) or {}
    return attributes.get(semconv.OPERATION_NAME) in operations


def _client_request(method: str, args: tuple, kwargs: dict):
    """(target, input state) of a ``ClientSession`` call, from its arguments."""
    if method == mcp_format.TOOLS_CALL:
        return _argument(args, kwargs, 0, "name"), _argument(args, kwargs, 1, "arguments")
    if method == mcp_format.RESOURCES_READ:
        uri = _argument(args, kwargs, 0, "uri")
        return (str(uri) if uri is not None else None), None
    if method == mcp_format.PROMPTS_GET:
        return _argument(args, kwargs, 0, "name"), _argument(args, kwargs, 1, "arguments")
    return None, None


def _served_request(method: str, params: Any):
    """(target, input state) of a request a server handles, from its params."""
    if method == mcp_format.RESOURCES_READ:
        uri = getattr(params, "uri", None)
        return (str(uri) if uri is not None else None), None
    return getattr(params, "name", None), getattr(params, "arguments", None)


def _step_request(method: str, target: Optional[str], protocol_version: Any) -> StepRequest:
    # Named after the tool or prompt (a tool step's is gen_ai.tool.name as well).
    return StepRequest(
        mcp_format.OPERATIONS[method],
        name=mcp_format.step_target(method, target),
        framework=FRAMEWORK,
        attributes=_mcp_attributes(method, target, protocol_version),
    )


def _mcp_attributes(method: str, target: Optional[str], protocol_version: Any) -> dict:
    """The MCP conventions' attributes of a request."""
    attributes = {mcp_format.METHOD_NAME: method}
    if isinstance(protocol_version, str):
        attributes[mcp_format.PROTOCOL_VERSION] = protocol_version
    if target is not None and method == mcp_format.RESOURCES_READ:
        attributes[mcp_format.RESOURCE_URI] = target
    elif target is not None and method == mcp_format.PROMPTS_GET:
        attributes[mcp_format.PROMPT_NAME] = target
    return attributes


def _argument(args: tuple, kwargs: dict, index: int, name: str) -> Any:
    """An argument given by position or by name."""
    return args[index] if len(args) > index else kwargs.get(name)


def _protocol_version(session: Any) -> Any:
    try:
        return session.protocol_version
    except Exception:
        return None


def _finish(step: StepCall, method: str, result: Any) -> None:
    try:
        if method == mcp_format.TOOLS_CALL:
            outcome = mcp_format.tool_result(result)
            step.set_output_state(outcome.output)
            if outcome.is_error:
                step.set_attribute(semconv.ERROR_TYPE, mcp_format.TOOL_ERROR)
                step.span.set_status(Status(StatusCode.ERROR, outcome.error or mcp_format.TOOL_ERROR))
        elif method == mcp_format.TOOLS_LIST:
            step.set_output_state(mcp_format.tool_names(result))
        elif method == mcp_format.RESOURCES_READ:
            step.set_output_state(mcp_format.resource_contents(result))
        elif method == mcp_format.PROMPTS_GET:
            step.set_output_state(mcp_format.prompt_messages(result))
    except Exception:
        logger.debug("posthog-instrument: could not record an MCP result", exc_info=True)
    step.end()


def _detach(token: Any) -> None:
    try:
        otel_context.detach(token)
    except Exception:
        pass
