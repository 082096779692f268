"""OpenAI Agents SDK adapter (``openai-agents``, imported as ``agents``): runs as PostHog traces.

What is hooked. The SDK traces itself through its own interface: a trace per run (or per
``with trace(...)`` block) holding spans for agents, tools, handoffs, guardrails and model
calls, delivered to every registered ``TracingProcessor``. This adapter adds one processor,
:class:`PostHogTracingProcessor`, that translates those callbacks into the core's steps and
calls. The app's own processors, the SDK's default OpenAI exporter included, are kept as they
are: ours is added to the SDK's processor list when the SDK creates that list (lazily, with its
trace provider on first use; we do not create it earlier, so importing ``agents`` still opens no
client), and it is put back when the app replaces the list with ``set_trace_processors([...])``,
which apps do to send their traces elsewhere, not to switch PostHog off
(``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=posthog_openai_agents`` does that).

Mapping (the SDK's span type -> what PostHog shows):

* trace -> the root step, ``invoke_workflow`` named after the trace's workflow name (an
  ``$ai_trace``); its ``group_id`` becomes ``gen_ai.conversation.id`` ($ai_session_id). The
  SDK's trace holds no input or output, so the root's state is the first model call's input
  (without the agent's instructions) and the last model call's output: for a run, the user's
  input and the final answer;
* agent -> ``invoke_agent`` with the agent's name (its tools, handoffs and output type as
  attributes); function -> ``execute_tool`` with the arguments and the result; handoff,
  guardrail, MCP tool listing and the app's own ``custom_span`` -> steps named after them;
* response (Responses API) and generation (chat completions, LiteLLM) -> a framework-layer
  model call (``Layer.FRAMEWORK``). The SDK calls the openai SDK inside it, so the openai
  adapter's span nests under it and is the one ``$ai_generation``; ours stays a step without
  tokens. When no instrumented SDK records the request inside (a model we do not instrument,
  or the openai adapter switched off), ours is the generation, with the SDK's usage, model,
  input and output;
* the SDK's task span (one per ``Runner`` run) and turn spans (one per agent-loop turn) add
  no information PostHog can show beyond the trace and the agent step: they are folded, their
  children attach to the nearest recorded ancestor. Voice spans are folded likewise.

Parents come from the SDK's own parent ids (per-span state keyed by its span ids), never from
whatever context is current when a callback runs, so concurrent runs (``asyncio.gather``,
threads) never mix. The SDK's ``run_sync`` and ``run_streamed`` go through the same spans.

Context. A provider call made while an SDK span is current (the model request inside a
response span, an OpenAI call inside a tool) must nest under our span for that SDK span and,
for model spans, see it as the active call. The SDK keeps its current span in a contextvar
that it sets and resets in one place, ``Scope.set_current_span`` / ``reset_current_span``
(and ``..._trace``). Those two are wrapped: our span's context is attached right after the SDK
sets its own and detached right after the SDK resets its own, in the same context, so ours
follows the SDK's exactly, through tasks and async generators alike. Where the SDK's reset
fails (an abandoned async generator finalised from another task), it raises before ours is
touched, and ours is left as the SDK leaves its own. Nothing is attached from the processor's
callbacks, which may run in another task than the span's body. (Wrapping the model classes'
``get_response`` / ``stream_response`` instead would be too early: those methods open the
SDK's model-call span themselves, so at their entry there is no span of ours to attach yet.
Following the SDK's scope covers every model class that reports its calls as spans, Responses,
chat completions, LiteLLM and the app's own, and the tools too.)

State. Per span: its call, until the SDK ends it; per trace: its root and the ids of its open
spans, so whatever the SDK never ended is ended and dropped when the trace ends. Contexts we
attached are remembered until the SDK resets its own, bounded in number. Spans of a trace we
never saw start (a run resumed from a ``RunState`` reattaches its old trace without telling
processors) nest under the current context instead; their state is dropped when they end.

Not covered: runs with the SDK's tracing disabled (``OPENAI_AGENTS_DISABLE_TRACING``,
``RunConfig(tracing_disabled=True)``, ``set_tracing_disabled(True)``): the SDK then creates no
spans, so only the provider calls are recorded, each as its own trace. Content the app keeps
out of the SDK's traces (``RunConfig(trace_include_sensitive_data=False)``,
``OPENAI_AGENTS_TRACE_INCLUDE_SENSITIVE_DATA=false``) is missing here too; the openai adapter's
generations still follow our own privacy settings. The realtime and voice pipelines. A
``TraceProvider`` of the app's own that does not use the SDK's ``SynchronousMultiTracingProcessor``
must register :class:`PostHogTracingProcessor` itself.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
from typing import Any, Optional

from opentelemetry import trace as otel_trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Status, StatusCode

from ..formats import openai_chat, openai_responses
from ..formats.endpoints import host_and_port, openai_compatible_provider
from ..genai import InferenceCall, InferenceRequest, Layer, StepRequest, Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Operation, Provider
from .base import LLMInstrumentor, Target, get, number

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "openai_agents"

# The SDK's span types that carry nothing PostHog can show beyond their parent (see above).
_FOLDED = frozenset({"task", "turn", "speech_group", "speech", "transcription"})

# Attribute keys of our own (PostHog shows them as event properties).
TRACE_ID = "openai_agents.trace_id"
AGENT_TOOLS = "openai_agents.agent.tools"
AGENT_HANDOFFS = "openai_agents.agent.handoffs"
AGENT_OUTPUT_TYPE = "openai_agents.agent.output_type"
HANDOFF_FROM = "openai_agents.handoff.from_agent"
HANDOFF_TO = "openai_agents.handoff.to_agent"
GUARDRAIL_TRIGGERED = "openai_agents.guardrail.triggered"
MCP_SERVER = "openai_agents.mcp.server"

# Bound on spans in flight and on attached contexts whose reset never came.
_MAX_SPANS = 10_000
_MAX_ATTACHED = 4096


class _SpanState:
    __slots__ = ("call", "parent", "trace_id", "kind")

    def __init__(self, call: Optional[InferenceCall], parent: Optional[InferenceCall], trace_id: str, kind: str):
        self.call = call  # None for a folded span: its children nest under ``parent``
        self.parent = parent
        self.trace_id = trace_id
        self.kind = kind

    @property
    def nearest(self) -> Optional[InferenceCall]:
        return self.call if self.call is not None else self.parent


class _TraceState:
    __slots__ = ("root", "span_ids", "group_id", "input", "output")

    def __init__(self, root: Optional[InferenceCall], group_id: Optional[str]):
        self.root = root
        self.span_ids: set = set()
        self.group_id = group_id
        # The run's input and final output as PostHog shows them on the trace: the first model
        # call's input and the last one's output (the SDK's trace itself carries neither).
        self.input: Optional[list] = None
        self.output: Optional[list] = None


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


class PostHogTracingProcessor:
    """The Agents SDK ``TracingProcessor`` that records the SDK's traces through the core.

    Duck-typed (the SDK calls these six methods), so that this module imports without the SDK.
    Every method is guarded: nothing of ours reaches the SDK, which would log it as a
    processor error.
    """

    def __init__(self, instrumentor: "OpenAIAgentsInstrumentor"):
        self._instrumentor = instrumentor
        self._lock = threading.Lock()
        self._spans: dict = {}
        self._traces: dict = {}
        # id(SDK token) -> (SDK token, our context token): what to detach when the SDK resets.
        self._attached: collections.OrderedDict = collections.OrderedDict()

    @property
    def _recorder(self):
        return self._instrumentor.recorder if getattr(self._instrumentor, "_active", False) else None

    # -- the SDK's TracingProcessor interface ---------------------------------------------
    def on_trace_start(self, trace: Any) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        if not is_instrumentation_enabled():
            # Suppressed: a trace without a root, whose spans are not recorded either.
            with self._lock:
                self._traces[trace.trace_id] = _TraceState(None, None)
            return
        try:
            group_id = _text(getattr(trace, "group_id", None))
            # Parent: the app's current context, so a run inside a web request nests under it
            # (the export pipeline re-roots it for PostHog).
            root = recorder.start_step(
                StepRequest(
                    Operation.INVOKE_WORKFLOW,
                    name=_text(getattr(trace, "name", None)),
                    framework=FRAMEWORK,
                    attributes={TRACE_ID: trace.trace_id, semconv.CONVERSATION_ID: group_id},
                )
            )
            with self._lock:
                self._traces[trace.trace_id] = _TraceState(root, group_id)
        except Exception:
            logger.debug("posthog-instrument: openai-agents trace start not recorded", exc_info=True)

    def on_trace_end(self, trace: Any) -> None:
        try:
            with self._lock:
                state = self._traces.pop(trace.trace_id, None)
                leftovers = [self._spans.pop(i, None) for i in state.span_ids] if state is not None else []
            # Spans the SDK never ended (a run cut short) end with their trace.
            for span_state in leftovers:
                if span_state is not None and span_state.call is not None:
                    span_state.call.end()
            if state is not None and state.root is not None:
                state.root.set_input_state(state.input)
                state.root.set_output_state(state.output)
                state.root.end()
        except Exception:
            logger.debug("posthog-instrument: openai-agents trace end not recorded", exc_info=True)

    def on_span_start(self, span: Any) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        try:
            data = span.span_data
            kind = data.type
            trace_id = span.trace_id
            with self._lock:
                trace_state = self._traces.get(trace_id)
                parent_state = self._spans.get(span.parent_id) if span.parent_id else None
                too_many = len(self._spans) >= _MAX_SPANS
            if too_many or (trace_state is not None and trace_state.root is None):
                return
            if parent_state is not None:
                parent = parent_state.nearest
            else:
                parent = trace_state.root if trace_state is not None else None
            if kind in _FOLDED:
                call = None
            else:
                context = otel_trace.set_span_in_context(parent.span) if parent is not None else None
                call = _start(recorder, data, kind, context, trace_state.group_id if trace_state else None)
            with self._lock:
                self._spans[span.span_id] = _SpanState(call, parent, trace_id, kind)
                if trace_state is not None:
                    trace_state.span_ids.add(span.span_id)
        except Exception:
            logger.debug("posthog-instrument: openai-agents span start not recorded", exc_info=True)

    def on_span_end(self, span: Any) -> None:
        try:
            with self._lock:
                state = self._spans.pop(span.span_id, None)
                trace_state = self._traces.get(state.trace_id) if state is not None else None
                if trace_state is not None:
                    trace_state.span_ids.discard(span.span_id)
            if state is None or state.call is None:
                return
            call = state.call
            try:
                if state.kind in ("response", "generation") and trace_state is not None:
                    _remember_conversation(trace_state, span.span_data, state.kind)
                _finish(call, span.span_data, state.kind)
            finally:
                error = getattr(span, "error", None)
                if error:
                    _mark_failed(call, error)
                call.end()
        except Exception:
            logger.debug("posthog-instrument: openai-agents span end not recorded", exc_info=True)

    def shutdown(self, timeout: Optional[float] = None) -> None:
        """Nothing to flush: ended spans are already in the OpenTelemetry pipeline."""

    def force_flush(self) -> None:
        """As for ``shutdown``: the export pipeline flushes itself."""

    # -- following the SDK's current span --------------------------------------------------
    def entered(self, sdk_object: Any, sdk_token: Any, is_trace: bool) -> None:
        """The SDK made ``sdk_object`` current: make our span for it current too."""
        if sdk_token is None or sdk_object is None:
            return
        with self._lock:
            if is_trace:
                state = self._traces.get(getattr(sdk_object, "trace_id", None))
                call = state.root if state is not None else None
            else:
                state = self._spans.get(getattr(sdk_object, "span_id", None))
                call = state.call if state is not None else None
        if call is None or call.ended:
            return
        token = call.attach()
        if token is None:
            return
        with self._lock:
            attached = self._attached
            attached[id(sdk_token)] = (sdk_token, token)
            while len(attached) > _MAX_ATTACHED:
                attached.popitem(last=False)

    def left(self, sdk_token: Any) -> None:
        """The SDK reset its current span (successfully, in this context): reset ours."""
        with self._lock:
            entry = self._attached.get(id(sdk_token))
            if entry is None or entry[0] is not sdk_token:
                return
            del self._attached[id(sdk_token)]
        InferenceCall.detach(entry[1])


# -- translating the SDK's span data ---------------------------------------------------------


def _start(recorder, data: Any, kind: str, context, group_id: Optional[str]) -> Optional[InferenceCall]:
    common = {semconv.CONVERSATION_ID: group_id}
    if kind == "response":
        return recorder.start(
            InferenceRequest(
                provider=Provider.OPENAI,
                model=None,
                layer=Layer.FRAMEWORK,
                attributes=dict(common, **{semconv.FRAMEWORK: FRAMEWORK}),
            ),
            parent=context,
        )
    if kind == "generation":
        return recorder.start(_generation_request(data, common), parent=context)
    if kind == "agent":
        step = StepRequest(Operation.INVOKE_AGENT, name=_text(data.name), framework=FRAMEWORK, attributes=common)
    elif kind == "function":
        step = StepRequest(
            Operation.EXECUTE_TOOL, name=_text(data.name), framework=FRAMEWORK, tool_type="function", attributes=common
        )
    elif kind == "handoff":
        step = StepRequest(
            "handoff",
            name=_text(getattr(data, "from_agent", None)),
            framework=FRAMEWORK,
            attributes=dict(common, **{HANDOFF_FROM: _text(getattr(data, "from_agent", None))}),
        )
    elif kind == "guardrail":
        step = StepRequest("guardrail", name=_text(data.name), framework=FRAMEWORK, attributes=common)
    elif kind == "mcp_tools":
        step = StepRequest(
            "mcp_list_tools",
            name=_text(getattr(data, "server", None)),
            framework=FRAMEWORK,
            attributes=dict(common, **{MCP_SERVER: _text(getattr(data, "server", None))}),
        )
    else:  # the app's custom_span(...) and span types newer than this adapter
        step = StepRequest(
            kind or "custom", name=_text(getattr(data, "name", None)), framework=FRAMEWORK, attributes=common
        )
    return recorder.start_step(step, parent=context)


def _generation_request(data: Any, common: dict) -> InferenceRequest:
    config = getattr(data, "model_config", None) or {}
    provider, address, port = _endpoint(config.get("base_url") if isinstance(config, dict) else None)
    config = config if isinstance(config, dict) else {}
    return InferenceRequest(
        provider=provider,
        model=_text(getattr(data, "model", None)),
        server_address=address,
        server_port=port,
        temperature=number(config.get("temperature")),
        top_p=number(config.get("top_p")),
        max_tokens=number(config.get("max_tokens")),
        frequency_penalty=number(config.get("frequency_penalty")),
        presence_penalty=number(config.get("presence_penalty")),
        layer=Layer.FRAMEWORK,
        attributes=dict(common, **{semconv.FRAMEWORK: FRAMEWORK}),
    )


def _endpoint(base_url: Any) -> tuple:
    """(provider, address, port) of the base URL the SDK reports for a chat-completions model."""
    host, port = host_and_port(base_url)
    return openai_compatible_provider(host) or Provider.OPENAI, host, port


def _finish(call: InferenceCall, data: Any, kind: str) -> None:
    if kind == "response":
        _finish_response(call, data)
    elif kind == "generation":
        _finish_generation(call, data)
    elif kind == "agent":
        call.set_attribute(AGENT_TOOLS, _names(getattr(data, "tools", None)))
        call.set_attribute(AGENT_HANDOFFS, _names(getattr(data, "handoffs", None)))
        call.set_attribute(AGENT_OUTPUT_TYPE, _text(getattr(data, "output_type", None)))
    elif kind == "function":
        call.set_input_state(getattr(data, "input", None))
        output = getattr(data, "output", None)
        call.set_output_state(output if output is None or isinstance(output, str) else _jsonable(output))
        mcp = getattr(data, "mcp_data", None)
        if isinstance(mcp, dict) and mcp:
            call.set_attribute(MCP_SERVER, _text(mcp.get("server")))
    elif kind == "handoff":
        source, target = _text(getattr(data, "from_agent", None)), _text(getattr(data, "to_agent", None))
        call.set_attribute(HANDOFF_TO, target)
        if target:
            call.span.update_name(f"handoff {source} -> {target}" if source else f"handoff -> {target}")
    elif kind == "guardrail":
        call.set_attribute(GUARDRAIL_TRIGGERED, bool(getattr(data, "triggered", False)))
    elif kind == "mcp_tools":
        call.set_output_state(getattr(data, "result", None))
    elif isinstance(getattr(data, "data", None), dict):
        call.set_output_state(data.data)


def _names(value: Any) -> Optional[list]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return None


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump()
        except Exception:
            return str(value)
    return value if isinstance(value, (dict, list, int, float, bool)) else str(value)


def _span_usage(usage: Any) -> Optional[Usage]:
    """The SDK's span usage: Responses-style names, input tokens including cached ones."""
    if not isinstance(usage, dict):
        return None
    input_details = usage.get("input_tokens_details") or {}
    output_details = usage.get("output_tokens_details") or {}
    return Usage(
        input_tokens=usage.get("input_tokens"),
        output_tokens=usage.get("output_tokens"),
        cache_read_input_tokens=get(input_details, "cached_tokens"),
        cache_creation_input_tokens=get(input_details, "cache_write_tokens") or None,
        reasoning_tokens=get(output_details, "reasoning_tokens"),
    )


def _finish_response(call: InferenceCall, data: Any) -> None:
    response = getattr(data, "response", None)
    model = get(response, "model") if response is not None else None
    if model:
        call.span.update_name(f"{Operation.CHAT} {model}")
    if call.delegated:
        # The openai adapter's span below is the generation and holds the request, response
        # and usage: the step only names the model, so PostHog does not store them twice.
        call.set_response(model=model, response_id=get(response, "id") if response is not None else None)
        return
    if response is not None:
        _record_response(call, response)
    call.set_response(usage=_span_usage(getattr(data, "usage", None)))
    if call.capture_content:
        call.set_input(messages=openai_responses.input_messages(getattr(data, "input", None)))


def _finish_generation(call: InferenceCall, data: Any) -> None:
    if call.delegated:
        return
    call.set_response(usage=_span_usage(getattr(data, "usage", None)))
    if not call.capture_content:
        return
    messages = getattr(data, "input", None)
    if isinstance(messages, (list, tuple)):
        call.set_input(messages=[openai_chat.input_message(message) for message in messages])
    outputs = []
    for output in getattr(data, "output", None) or ():
        if get(output, "object") == "response" or get(output, "output") is not None:
            # A streamed chat completion is reported as the Responses object it was assembled into.
            _record_response(call, output)
            return
        outputs.append(_chat_output(output))
    call.set_output(outputs)


def _remember_conversation(trace_state: _TraceState, data: Any, kind: str) -> None:
    root = trace_state.root
    if root is None or not root.capture_content:
        return
    if trace_state.input is None:
        value = getattr(data, "input", None)
        if kind == "response":
            messages = openai_responses.input_messages(value)
        else:
            messages = (
                [openai_chat.input_message(message) for message in value] if isinstance(value, (list, tuple)) else []
            )
        # Instructions are the agent's, not the run's input.
        trace_state.input = [message for message in messages if message.get("role") != "system"] or None
    output = _model_output(data, kind)
    if output is not None:
        trace_state.output = [output]


def _model_output(data: Any, kind: str) -> Optional[dict]:
    """The output message of a model call, from the SDK's span data (None when it has none)."""
    outputs = [getattr(data, "response", None)] if kind == "response" else list(getattr(data, "output", None) or ())
    for output in outputs:
        if output is None:
            continue
        if kind == "generation" and get(output, "output") is None:
            return _chat_output(output)
        parts = []
        for item in get(output, "output") or ():
            item_type = get(item, "type")
            if item_type == "message":
                parts.extend(m.text(get(c, "text")) for c in get(item, "content") or () if get(c, "text"))
            elif item_type == "function_call":
                parts.append(m.tool_call(get(item, "call_id"), get(item, "name"), get(item, "arguments")))
        reason = "tool_call" if any(p["type"] == "tool_call" for p in parts) else "stop"
        return m.output_message(parts, reason)
    return None


def _record_response(call: InferenceCall, response: Any) -> None:
    call.set_response(**openai_responses.response_details(response))
    if call.capture_content:
        call.set_output([openai_responses.output_message(response)])


def _chat_output(message: Any) -> dict:
    converted = openai_chat.input_message(message)
    reason = "tool_call" if any(p.get("type") == "tool_call" for p in converted["parts"]) else "stop"
    return m.output_message(converted["parts"], reason)


def _mark_failed(call: InferenceCall, error: Any) -> None:
    """The SDK reports a span's failure as data (message and details), not as an exception."""
    message = _text(get(error, "message")) or "error"
    details = get(error, "data")
    detail = _text(get(details, "error")) if isinstance(details, dict) else None
    description = f"{message}: {detail}" if detail else message
    try:
        call.span.set_status(Status(StatusCode.ERROR, description))
    except Exception:
        pass
    # A low-cardinality error.type from the SDK's own words ("Error running tool (non-fatal)").
    call.set_attribute(semconv.ERROR_TYPE, message)


# -- instrumentation ------------------------------------------------------------------------


class OpenAIAgentsInstrumentor(LLMInstrumentor):
    requirements = ("openai-agents >= 0.1.0, < 1",)

    processor: Optional[PostHogTracingProcessor] = None

    def _instrument(self, **kwargs) -> None:
        # One processor for the instrumentor's lifetime (instrumentors are singletons, and the
        # SDK keeps whichever processor it was given).
        if self.processor is None:
            self.processor = PostHogTracingProcessor(self)
        super()._instrument(**kwargs)

    def targets(self) -> list:
        scope, provider = "agents.tracing.scope", "agents.tracing.provider"
        return [
            Target(scope, "Scope.set_current_span", wrapper=self._entered(is_trace=False)),
            Target(scope, "Scope.reset_current_span", wrapper=self._left),
            Target(scope, "Scope.set_current_trace", wrapper=self._entered(is_trace=True)),
            Target(scope, "Scope.reset_current_trace", wrapper=self._left),
            Target(provider, "SynchronousMultiTracingProcessor.__init__", wrapper=self._registered),
            Target(provider, "SynchronousMultiTracingProcessor.set_processors", wrapper=self._kept),
        ]

    def _on_package_import(self, module: Any) -> None:
        super()._on_package_import(module)
        if not getattr(self, "_active", False):
            return
        # The SDK's provider may exist already (agents imported before instrumentation
        # started); normally it does not, and the __init__ hook adds us when it is created.
        try:
            setup = sys.modules.get("agents.tracing.setup")
            provider = getattr(setup, "GLOBAL_TRACE_PROVIDER", None)
            multi = getattr(provider, "_multi_processor", None)
            if provider is not None and self.processor not in getattr(multi, "_processors", ()):
                provider.register_processor(self.processor)
        except Exception:
            logger.debug("posthog-instrument: could not add the openai-agents processor", exc_info=True)

    def _uninstrument(self, **kwargs) -> None:
        super()._uninstrument(**kwargs)
        # Take our processor out of the SDK's list again (it would be inert, but not gone).
        try:
            setup = sys.modules.get("agents.tracing.setup")
            provider = getattr(setup, "GLOBAL_TRACE_PROVIDER", None)
            processors = getattr(getattr(provider, "_multi_processor", None), "_processors", ())
            if self.processor in processors:
                provider.set_processors([p for p in processors if p is not self.processor])
        except Exception:
            logger.debug("posthog-instrument: could not remove the openai-agents processor", exc_info=True)

    # wrapt wrappers ---------------------------------------------------------------------
    def _entered(self, is_trace: bool):
        processor = self.processor

        def wrapper(wrapped, instance, args, kwargs):
            token = wrapped(*args, **kwargs)
            try:
                processor.entered(args[0] if args else next(iter(kwargs.values()), None), token, is_trace)
            except Exception:
                logger.debug("posthog-instrument: could not follow the openai-agents span", exc_info=True)
            return token

        return wrapper

    def _left(self, wrapped, instance, args, kwargs):
        # The SDK resets first; if its token belongs to another context it raises, and ours,
        # attached in that same other context, is left alone as well.
        result = wrapped(*args, **kwargs)
        try:
            self.processor.left(args[0] if args else next(iter(kwargs.values()), None))
        except Exception:
            logger.debug("posthog-instrument: could not follow the openai-agents span", exc_info=True)
        return result

    def _registered(self, wrapped, instance, args, kwargs):
        result = wrapped(*args, **kwargs)
        try:
            if self.processor is not None:
                instance.add_tracing_processor(self.processor)
        except Exception:
            logger.debug("posthog-instrument: could not add the openai-agents processor", exc_info=True)
        return result

    def _kept(self, wrapped, instance, args, kwargs):
        try:
            processors = args[0] if args else kwargs.get("processors")
            if (
                self.processor is not None
                and isinstance(processors, (list, tuple))
                and self.processor not in processors
            ):
                # The app replaces its processors; ours is not one of them, so it stays.
                kept = [*processors, self.processor]
                if args:
                    args = (kept, *args[1:])
                else:
                    kwargs = dict(kwargs, processors=kept)
        except Exception:
            logger.debug("posthog-instrument: could not keep the openai-agents processor", exc_info=True)
        return wrapped(*args, **kwargs)
