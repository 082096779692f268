"""LlamaIndex adapter: ``llama-index-core``'s instrumentation dispatcher, translated into spans.

Hooked. When ``llama_index.core`` is imported, one span handler and one event handler are
added to LlamaIndex's root dispatcher (``llama_index.core.instrumentation.get_dispatcher()``),
which every LlamaIndex component reports to. The span handler sees each ``@dispatcher.span``
method enter and exit (with its bound arguments, instance and result) and LlamaIndex's own
parent span id; the event handler is only needed for LLM streams, which end after their method
has returned. Of all LlamaIndex spans, these become ours:

* ``BaseQueryEngine.query/aquery`` and ``BaseChatEngine.chat/achat``: ``invoke_workflow``
  steps named after the engine class, with the query and the answer as state;
* ``BaseRetriever.retrieve/aretrieve``: ``retrieval`` steps with the query as input and the
  retrieved nodes (id, score, text) as output state;
* ``BaseLLM.chat/complete`` (sync, async, stream): model calls at ``Layer.FRAMEWORK``;
* ``BaseEmbedding.get_*_embedding*``: embedding calls at ``Layer.FRAMEWORK``;
* ``Workflow.run``'s span (``llama-index-workflows`` opens it in the run's task; every
  ``FunctionAgent``, ``ReActAgent`` and ``AgentWorkflow`` is a workflow): an agent's run as an
  ``invoke_agent`` step named after the agent, any other run as ``invoke_workflow`` named after
  its class, with the user message or start event as input and the result as output state;
* the spans of a run's ``@step`` methods (plain functions whose parent is the run's span): a
  custom workflow's as ``step <name>`` steps with their input and output events as state; an
  agent's loop (``setup_agent``, ``run_agent_step``, ``call_tool``...) is transparent, and in an
  ``AgentWorkflow`` each agent's turn is an ``invoke_agent`` step of ours, started by the first
  step whose event names the agent (``current_agent_name``) and ended by a hand-off or the end
  of the run;
* ``BaseTool.call/acall``: ``execute_tool`` steps with arguments (the workflow ``Context`` a
  tool may take left out), result and the agent's tool-call id; a ``ToolOutput`` marked as an
  error, or the tool's exception, fails the step.

Every other LlamaIndex span (splitters, synthesizers, ``predict``...) is transparent: its
children nest under its nearest recorded ancestor. Parents come from LlamaIndex's parent span
id, passed as ``parent=`` (never by attaching the OpenTelemetry context from a callback).

Layering. When the LLM is ``llama-index-llms-openai`` (or anything else over an instrumented
SDK), the provider adapter's span must be the one generation and ours a step. That needs our
call to be the active one while the SDK is called, so the context is attached around model
calls (and workflow steps and tools, below): in ``span_enter`` and detached in
``span_exit``/``span_drop``. That is in order in LlamaIndex's design: its span wrapper calls
enter and exit in the same frame (sync) or the same coroutine (async), exactly as it sets and
resets its own ``active_span_id`` contextvar, and those methods return plain values, not
futures (a span whose method returns a future exits from a done-callback in another context;
none of these is such a span, and query, retrieval and run steps never attach). A detach is
still only done when our context is the current one.

Streams. ``stream_chat`` & co. return a generator whose body calls the provider only when the
application iterates, after the span has exited. So LlamaIndex's ``llm_chat_callback`` /
``llm_completion_callback`` decorators are wrapped (they are patched when
``llama_index.core.llms.callbacks`` is imported, before any LLM class is defined, including
integration packages imported later): a stream they return is handed back inside a transparent
proxy that attaches the model call's context around each step of the iteration. The call ends
on LlamaIndex's own end / exception event for that span (an abandoned, garbage-collected
generator raises GeneratorExit there, recorded as a normal end), or when the generator is
collected unstarted. A streaming query engine returns before its LLM is even called (the
synthesizer's generator calls it lazily): its ``response_gen`` is replaced by the same kind of
proxy, attaching the query step's context, and the step ends when the stream does.

Workflow steps and tool calls run in tasks (and executor threads) of their own, and LlamaIndex
enters and exits their spans in the same one: their context is attached for their duration, so
an SDK call a step or a tool makes directly nests under it. Runs and agent turns are never
attached (their children name them as parent), so two concurrent runs never meet.

Not covered: streaming chat engines (recorded when their LLM is), rerankers and synthesizers as
steps of their own, and a model the app calls itself from inside a custom retriever (it nests
under the app's context, not the retrieval).
State is kept per open LlamaIndex span and dropped at its exit or drop; streams and streaming
queries hold theirs until they end or are collected.
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
import weakref
from typing import Any, Optional

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace

from ..genai import InferenceCall, InferenceRequest, Layer, StepCall, StepRequest, Usage
from ..genai import messages as m
from ..genai import semconv
from .base import LLMInstrumentor, Target, number

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "llama_index"

_LLM_METHODS = frozenset(
    {"chat", "achat", "stream_chat", "astream_chat", "complete", "acomplete", "stream_complete", "astream_complete"}
)
_EMBEDDING_METHODS = frozenset(
    {
        "get_query_embedding",
        "aget_query_embedding",
        "get_text_embedding",
        "aget_text_embedding",
        "get_text_embedding_batch",
        "aget_text_embedding_batch",
    }
)
_RETRIEVER_METHODS = frozenset({"retrieve", "aretrieve"})
_QUERY_METHODS = frozenset({"query", "aquery"})
_CHAT_ENGINE_METHODS = frozenset({"chat", "achat"})

# LlamaIndex integration packages -> the conventions' provider names.
_PROVIDERS = {
    "openai": semconv.Provider.OPENAI,
    "azure_openai": semconv.Provider.AZURE_OPENAI,
    "anthropic": semconv.Provider.ANTHROPIC,
    "gemini": semconv.Provider.GCP_GEMINI,
    "google_genai": semconv.Provider.GCP_GEMINI,
    "vertex": semconv.Provider.GCP_VERTEX_AI,
    "bedrock": semconv.Provider.AWS_BEDROCK,
    "bedrock_converse": semconv.Provider.AWS_BEDROCK,
    "mistralai": semconv.Provider.MISTRAL_AI,
    "cohere": semconv.Provider.COHERE,
    "groq": semconv.Provider.GROQ,
    "ollama": semconv.Provider.OLLAMA,
    "together": semconv.Provider.TOGETHER,
}

_UUID_SUFFIX = 37  # LlamaIndex span ids are "Class.method-<uuid4>"


def _method_name(span_id: str) -> str:
    qualified = span_id[:-_UUID_SUFFIX] if len(span_id) > _UUID_SUFFIX else span_id
    return qualified.rpartition(".")[2]


def _provider(instance: Any) -> str:
    """From the integration package (``llama_index.llms.openai`` -> ``openai``); ``llama_index``
    for LlamaIndex's own models (MockLLM, a user's CustomLLM)."""
    parts = type(instance).__module__.split(".")
    if len(parts) > 2 and parts[0] == "llama_index" and parts[1] in ("llms", "embeddings"):
        return _PROVIDERS.get(parts[2], parts[2])
    return FRAMEWORK


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _query_text(query: Any) -> Any:
    """A query as the app gave it: a string, or a QueryBundle's ``query_str``."""
    return query if isinstance(query, str) else getattr(query, "query_str", None)


# -- contexts ------------------------------------------------------------------------------


def _attach(context: Optional[otel_context.Context]) -> Optional[object]:
    if context is None:
        return None
    try:
        return otel_context.attach(context)
    except Exception:
        return None


def _detach(token: Optional[object]) -> None:
    if token is not None:
        InferenceCall.detach(token)


class _Record:
    """One open LlamaIndex span: our call (None for a transparent span) and the context its
    children nest in."""

    __slots__ = ("call", "context", "token", "kind", "last", "run", "tool_call_id", "tool_name")

    def __init__(self, call: Optional[InferenceCall], context: Optional[otel_context.Context], kind: str):
        self.call = call
        self.context = context
        self.token: Optional[object] = None
        self.kind = kind
        self.last: Any = None  # the latest streamed response (LlamaIndex's are cumulative)
        self.run: Optional[_Run] = None  # a workflow run's, and its steps'
        self.tool_call_id: Optional[str] = None  # an agent's tool-call step's, for the tool below it
        self.tool_name: Optional[str] = None


class LlamaIndexToolError(Exception):
    """A tool call whose ``ToolOutput`` says it failed, without the exception behind it."""


class _Run:
    """One workflow run. For a multi-agent ``AgentWorkflow``, also the agent whose turn it is:
    its ``invoke_agent`` step starts at the first workflow step that names it (the events of
    LlamaIndex's agent steps carry ``current_agent_name``) and ends when another agent takes
    over (a hand-off) or the run ends."""

    __slots__ = ("record", "agent_plumbing", "multi_agent", "agent", "agent_name", "agent_context", "output", "lock")

    def __init__(self, record: _Record, agent_plumbing: bool, multi_agent: bool):
        self.record = record
        self.agent_plumbing = agent_plumbing  # the run's steps are LlamaIndex's agent loop
        self.multi_agent = multi_agent
        self.agent: Optional[StepCall] = None
        self.agent_name: Optional[str] = None
        self.agent_context: Optional[otel_context.Context] = None
        self.output: Optional[str] = None  # the current agent's latest answer
        self.lock = threading.Lock()

    def context_for(self, recorder: Any, agent_name: Any) -> Optional[otel_context.Context]:
        """The context a step of this run nests in: the turn of the agent its event names."""
        if not self.multi_agent:
            return self.record.context
        with self.lock:
            if isinstance(agent_name, str) and agent_name != self.agent_name:
                self._end_turn(None)
                step = recorder.start_step(
                    StepRequest(semconv.Operation.INVOKE_AGENT, agent_name, framework=FRAMEWORK),
                    parent=self.record.context,
                )
                self.agent, self.agent_name = step, agent_name
                self.agent_context = (
                    trace.set_span_in_context(step.span, self.record.context) if step is not None else None
                )
            return self.agent_context or self.record.context

    def answered(self, text: Optional[str]) -> None:
        if text:  # a turn that only called tools answers nothing
            self.output = text

    def finish(self, error: Optional[BaseException]) -> None:
        with self.lock:
            self._end_turn(error)

    def _end_turn(self, error: Optional[BaseException]) -> None:
        agent, self.agent = self.agent, None
        self.agent_context = None
        output, self.output = self.output, None
        if agent is None:
            return
        agent.set_output_state(output)
        if error is None:
            agent.end()
        else:
            agent.fail(error)


# -- translation ---------------------------------------------------------------------------


def _chat_messages(messages: Any) -> tuple:
    inputs, system = [], []
    for message in messages or ():
        role = getattr(getattr(message, "role", None), "value", None) or str(getattr(message, "role", "user"))
        content = getattr(message, "content", None)
        if role == "system":
            system.append(m.text(content or ""))
        else:
            inputs.append(m.message(role, [m.text(content)] if content else []))
    return inputs, system


def _response_text(response: Any) -> Optional[str]:
    message = getattr(response, "message", None)
    if message is not None:
        return _text(getattr(message, "content", None))
    return _text(getattr(response, "text", None))


def _usage(response: Any) -> Optional[Usage]:
    """The provider's usage from the raw response, else LlamaIndex's ``additional_kwargs``."""
    raw = getattr(response, "raw", None)
    usage = raw.get("usage") if isinstance(raw, dict) else getattr(raw, "usage", None)
    if usage is not None:

        def read(obj, key):
            return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)

        details = read(usage, "prompt_tokens_details")
        completion = read(usage, "completion_tokens_details")
        return Usage(
            input_tokens=read(usage, "prompt_tokens"),
            output_tokens=read(usage, "completion_tokens"),
            cache_read_input_tokens=read(details, "cached_tokens") if details is not None else None,
            reasoning_tokens=read(completion, "reasoning_tokens") if completion is not None else None,
        )
    extra = getattr(response, "additional_kwargs", None)
    if isinstance(extra, dict) and ("prompt_tokens" in extra or "completion_tokens" in extra):
        return Usage(input_tokens=extra.get("prompt_tokens"), output_tokens=extra.get("completion_tokens"))
    return None


def _record_response(call: InferenceCall, response: Any) -> None:
    raw = getattr(response, "raw", None)
    model = raw.get("model") if isinstance(raw, dict) else getattr(raw, "model", None)
    response_id = raw.get("id") if isinstance(raw, dict) else getattr(raw, "id", None)
    choices = raw.get("choices") if isinstance(raw, dict) else getattr(raw, "choices", None)
    first = choices[0] if isinstance(choices, list) and choices else None
    reason = first.get("finish_reason") if isinstance(first, dict) else getattr(first, "finish_reason", None)
    reason = _text(reason)
    call.set_response(
        model=_text(model),
        response_id=_text(response_id),
        usage=_usage(response),
        finish_reasons=[reason] if reason else None,
    )
    if call.capture_content:
        text = _response_text(response)
        if text is not None:
            call.set_output([m.output_message([m.text(text)], reason)])


def _node(node_with_score: Any, capture: bool) -> dict:
    node = getattr(node_with_score, "node", node_with_score)
    entry = {"id": getattr(node, "node_id", None), "score": number(getattr(node_with_score, "score", None))}
    if capture:
        try:
            entry["text"] = node.get_content()
        except Exception:
            pass
    return entry


# -- workflows, agents and tools -----------------------------------------------------------

# Classes are looked up only in modules the app has already imported (an instance of a class
# whose module is not loaded cannot exist), so that hooking LlamaIndex imports nothing more.
# ``workflows`` is llama-index-workflows (llama-index-core 0.13+); older cores had their own.
_WORKFLOW = ("workflows.workflow:Workflow", "llama_index.core.workflow.workflow:Workflow")
_EVENT = ("workflows.events:Event", "llama_index.core.workflow.events:Event")
_STOP_EVENT = ("workflows.events:StopEvent", "llama_index.core.workflow.events:StopEvent")
_AGENT = ("llama_index.core.agent.workflow.base_agent:BaseWorkflowAgent",)
_MULTI_AGENT = ("llama_index.core.agent.workflow.multi_agent_workflow:AgentWorkflow",)
_TOOL = ("llama_index.core.tools.types:BaseTool",)
_TOOL_METHODS = frozenset({"call", "acall"})
STEP_OPERATION = "step"  # LlamaIndex's word for a workflow's @step method


def _is(value: Any, paths: tuple) -> bool:
    if value is None:
        return False
    for path in paths:
        module_name, _, name = path.partition(":")
        module = sys.modules.get(module_name)
        cls = getattr(module, name, None) if module is not None else None
        if isinstance(cls, type) and isinstance(value, cls):
            return True
    return False


def _message_text(message: Any) -> Optional[str]:
    """A user message as an agent gets it: a string, or a ChatMessage's text."""
    return message if isinstance(message, str) else _text(getattr(message, "content", None))


def _event_state(event: Any) -> Any:
    """A workflow event's fields; a plain StopEvent's result."""
    if not _is(event, _EVENT):
        return event
    if _is(event, _STOP_EVENT) and type(event).__name__ == "StopEvent":
        return getattr(event, "result", None)
    state = {name: getattr(event, name, None) for name in getattr(type(event), "model_fields", {})}
    try:
        state.update(event.to_dict())  # the fields given as keyword arguments
    except Exception:
        pass
    return state or None  # a bare StartEvent says nothing


def _run_output(result: Any) -> Any:
    value = _event_state(result)
    if getattr(value, "current_agent_name", None) is not None:  # an agent's AgentOutput
        return _text(getattr(getattr(value, "response", None), "content", None))
    return value


def _tool_arguments(tool: Any, arguments: dict) -> Any:
    kwargs = dict(arguments.get("kwargs") or {})
    context_parameter = getattr(tool, "ctx_param_name", None)
    if isinstance(context_parameter, str):
        kwargs.pop(context_parameter, None)  # the workflow Context LlamaIndex passes a tool
    positional = arguments.get("args") or ()
    return {"args": list(positional), **kwargs} if positional else kwargs


# -- the handlers --------------------------------------------------------------------------


class _Recording:
    """What both LlamaIndex handlers share: the open spans, and how to start and end ours."""

    def __init__(self, instrumentor: "LlamaIndexInstrumentor", classes: dict):
        self.instrumentor = instrumentor
        self.classes = classes
        self.open: dict = {}
        self.streams: dict = {}  # span id -> record, for LLM streams that outlive their span
        self.lock = threading.Lock()

    def active(self) -> bool:
        return getattr(self.instrumentor, "_active", False)

    # -- enter -----------------------------------------------------------------------------
    def enter(self, span_id: str, bound_args: Any, instance: Any, parent_id: Optional[str]) -> None:
        parent = self.open.get(parent_id) if parent_id else None
        parent_context = parent.context if parent is not None else None
        record = self._start(span_id, bound_args, instance, parent)
        if record is None:
            record = _Record(None, parent_context, "")
        with self.lock:
            self.open[span_id] = record

    def _start(self, span_id: str, bound_args: Any, instance: Any, parent_record: Optional[_Record]):
        parent = parent_record.context if parent_record is not None else None
        method = _method_name(span_id)
        arguments = getattr(bound_args, "arguments", {}) or {}
        recorder = self.instrumentor.recorder
        if instance is None:
            # A workflow's steps are spans of plain functions, their parent the run's span.
            if parent_record is not None and parent_record.kind == "run":
                return self._workflow_step(recorder, method, arguments, parent_record)
            return None
        if method == "run" and _is(instance, _WORKFLOW):
            return self._workflow_run(recorder, instance, arguments, parent)
        if method in _TOOL_METHODS and _is(instance, _TOOL):
            return self._tool_call(recorder, instance, arguments, parent_record)
        classes = self.classes
        if method in _LLM_METHODS and isinstance(instance, classes["llm"]):
            return self._model_call(recorder, instance, method, arguments, parent)
        if method in _EMBEDDING_METHODS and isinstance(instance, classes["embedding"]):
            request = InferenceRequest(
                provider=_provider(instance),
                model=_text(getattr(instance, "model_name", None)),
                operation=semconv.Operation.EMBEDDINGS,
                layer=Layer.FRAMEWORK,
                attributes={semconv.FRAMEWORK: FRAMEWORK},
            )
            return self._attached(recorder.start(request, parent=parent), "embedding")
        if method in _RETRIEVER_METHODS and isinstance(instance, classes["retriever"]):
            step = recorder.start_step(
                StepRequest(semconv.Operation.RETRIEVAL, type(instance).__name__, framework=FRAMEWORK), parent=parent
            )
            if step is not None:
                step.set_input_state(_query_text(arguments.get("str_or_query_bundle")))
            return self._step(step, parent, "retrieval")
        if (method in _QUERY_METHODS and isinstance(instance, classes["query_engine"])) or (
            method in _CHAT_ENGINE_METHODS
            and classes["chat_engine"] is not None
            and isinstance(instance, classes["chat_engine"])
        ):
            step = recorder.start_step(
                StepRequest(semconv.Operation.INVOKE_WORKFLOW, type(instance).__name__, framework=FRAMEWORK),
                parent=parent,
            )
            if step is not None:
                query = arguments.get("str_or_query_bundle", arguments.get("message"))
                step.set_input_state(_query_text(query))
            return self._step(step, parent, "workflow")
        return None

    def _workflow_run(self, recorder, workflow: Any, arguments: dict, parent) -> Optional[_Record]:
        """``Workflow.run``'s span (llama-index-workflows opens it in the run's task): an agent's
        run is its ``invoke_agent`` step, any other workflow's an ``invoke_workflow`` one."""
        start_event = arguments.get("start_event")
        single_agent = _is(workflow, _AGENT)
        multi_agent = not single_agent and _is(workflow, _MULTI_AGENT)
        if single_agent:
            name = _text(getattr(workflow, "name", None)) or type(workflow).__name__
            request = StepRequest(semconv.Operation.INVOKE_AGENT, name, framework=FRAMEWORK)
        else:
            request = StepRequest(semconv.Operation.INVOKE_WORKFLOW, type(workflow).__name__, framework=FRAMEWORK)
        step = recorder.start_step(request, parent=parent)
        if step is None:
            return None
        if single_agent or multi_agent:
            getter = getattr(start_event, "get", None)
            step.set_input_state(_message_text(getter("user_msg")) if callable(getter) else None)
        else:
            step.set_input_state(_event_state(start_event))
        record = self._step(step, parent, "run")
        record.run = _Run(record, single_agent or multi_agent, multi_agent)
        return record

    def _workflow_step(self, recorder, name: str, arguments: dict, parent: _Record) -> _Record:
        """A step of a run. An agent's loop (``setup_agent``, ``run_agent_step``, ``call_tool``...)
        is plumbing: its model and tool calls nest straight under the agent. Other workflows'
        steps are ``step <name>`` steps. Steps run in tasks of their own, LlamaIndex's span
        entered and exited in the same one, so their context is attached for their duration:
        an SDK call made directly in a step nests under it."""
        run = parent.run
        event = next((value for value in arguments.values() if _is(value, _EVENT)), None)
        record = None
        if run is not None and run.agent_plumbing:
            context = run.context_for(recorder, getattr(event, "current_agent_name", None))
            record = _Record(None, context, "agent_step")
            tool_call_id = getattr(event, "tool_id", None)
            record.tool_call_id = tool_call_id if isinstance(tool_call_id, str) else None
        else:
            step = recorder.start_step(StepRequest(STEP_OPERATION, name, framework=FRAMEWORK), parent=parent.context)
            if step is not None:
                step.set_input_state(_event_state(event))
                record = self._step(step, parent.context, "step")
        if record is None:
            record = _Record(None, parent.context, "")
        record.run = run
        record.token = _attach(record.context)
        return record

    def _tool_call(self, recorder, tool: Any, arguments: dict, parent_record: Optional[_Record]):
        """``BaseTool.call`` / ``acall``: an ``execute_tool`` step, current while the tool runs
        (its span is entered and exited in one call). A tool that calls itself through an
        adapter (``acall`` running ``call``) is one step."""
        metadata = getattr(tool, "metadata", None)
        name = _text(getattr(metadata, "name", None)) or type(tool).__name__
        if parent_record is not None and parent_record.kind == "tool" and parent_record.tool_name == name:
            return None
        parent = parent_record.context if parent_record is not None else None
        description = _text(getattr(metadata, "description", None))
        step = recorder.start_step(
            StepRequest(
                semconv.Operation.EXECUTE_TOOL,
                name,
                framework=FRAMEWORK,
                tool_type="function",
                tool_call_id=parent_record.tool_call_id if parent_record is not None else None,
                attributes={semconv.TOOL_DESCRIPTION: description},
            ),
            parent=parent,
        )
        if step is None:
            return None
        step.set_input_state(_tool_arguments(tool, arguments))
        record = self._step(step, parent, "tool")
        record.tool_name = name
        record.token = _attach(record.context)
        return record

    def _model_call(self, recorder, instance: Any, method: str, arguments: dict, parent):
        stream = "stream" in method
        request = InferenceRequest(
            provider=_provider(instance),
            model=_text(getattr(instance, "model", None)) or _text(getattr(instance, "model_name", None)),
            operation=semconv.Operation.CHAT,
            stream=stream,
            layer=Layer.FRAMEWORK,
            temperature=number(getattr(instance, "temperature", None)),
            max_tokens=number(getattr(instance, "max_tokens", None)),
            attributes={semconv.FRAMEWORK: FRAMEWORK},
        )
        call = recorder.start(request, parent=parent)
        if call is not None and call.capture_content:
            if "messages" in arguments:
                inputs, system = _chat_messages(arguments.get("messages"))
                call.set_input(messages=inputs, system_instructions=system or None)
            else:
                # LlamaIndex's completion decorator takes ``(self, *args, **kwargs)``.
                prompt = arguments.get("prompt")
                positional = arguments.get("args")
                if prompt is None and isinstance(positional, tuple) and positional:
                    prompt = positional[0]
                if isinstance(prompt, str):
                    call.set_input(messages=[m.message("user", [m.text(prompt)])])
        return self._attached(call, "stream" if stream else "model")

    def _attached(self, call: Optional[InferenceCall], kind: str) -> Optional[_Record]:
        if call is None:
            return None
        record = _Record(call, None, kind)
        record.token = call.attach()
        # The context with our call active: nested model calls see it (and delegate to it).
        record.context = otel_context.get_current() if record.token is not None else None
        return record

    @staticmethod
    def _step(step: Optional[StepCall], parent, kind: str) -> Optional[_Record]:
        if step is None:
            return None
        return _Record(step, trace.set_span_in_context(step.span, parent), kind)

    # -- exit and drop ---------------------------------------------------------------------
    def _pop(self, span_id: str) -> Optional[_Record]:
        with self.lock:
            record = self.open.pop(span_id, None)
        if record is not None and record.token is not None:
            token, record.token = record.token, None
            if otel_context.get_current() is record.context:
                _detach(token)
            else:  # never detach out of order; LlamaIndex called us in another context
                logger.debug("posthog-instrument: llama_index span %s exited in another context", span_id)
        return record

    def exit(self, span_id: str, result: Any) -> None:
        record = self._pop(span_id)
        if record is not None and record.kind == "agent_step" and record.run is not None:
            if getattr(result, "current_agent_name", None) is not None:  # an AgentOutput
                record.run.answered(_text(getattr(getattr(result, "response", None), "content", None)))
            return
        if record is None or record.call is None:
            return
        call = record.call
        kind = record.kind
        if kind == "stream" and (inspect.isgenerator(result) or inspect.isasyncgen(result)):
            self._await_stream_end(span_id, record, result)
            return
        if kind in ("model", "stream"):
            _record_response(call, result)
        elif kind == "embedding":
            if isinstance(result, list) and result and isinstance(result[0], list):
                call.set_attribute(semconv.EMBEDDINGS_DIMENSION_COUNT, len(result[0]))
            elif isinstance(result, list) and result and isinstance(result[0], (int, float)):
                call.set_attribute(semconv.EMBEDDINGS_DIMENSION_COUNT, len(result))
        elif kind == "retrieval":
            if isinstance(result, list):
                call.set_output_state([_node(n, call.capture_content) for n in result])
        elif kind == "run":
            record.run.finish(None)
            call.set_output_state(_run_output(result))
        elif kind == "step":
            call.set_output_state(_event_state(result))
        elif kind == "tool":
            if getattr(result, "is_error", False) is True:
                error = getattr(result, "exception", None)
                call.fail(error if isinstance(error, BaseException) else LlamaIndexToolError(str(result)))
                return
            call.set_output_state(_text(getattr(result, "content", None)))
        elif kind == "workflow":
            gen = getattr(result, "response_gen", None)
            if inspect.isgenerator(gen) or inspect.isasyncgen(gen):
                self._defer_to_stream(result, gen, record)
                return
            answer = getattr(result, "response", None)
            call.set_output_state(answer if isinstance(answer, str) else None)
        call.end()

    def drop(self, span_id: str, err: Optional[BaseException]) -> None:
        record = self._pop(span_id)
        if record is not None and record.kind == "run" and record.run is not None:
            record.run.finish(err)
        if record is not None and record.call is not None:
            if err is None:
                record.call.end()
            else:
                record.call.fail(err)

    # -- streams ---------------------------------------------------------------------------
    def _await_stream_end(self, span_id: str, record: _Record, stream: Any) -> None:
        with self.lock:
            self.streams[span_id] = record
        try:
            weakref.finalize(stream, self.stream_ended, span_id, None, None)
        except TypeError:
            self.stream_ended(span_id, None, None)

    def stream_ended(self, span_id: str, response: Any, error: Optional[BaseException]) -> None:
        with self.lock:
            record = self.streams.pop(span_id, None)
        if record is None or record.call.ended:
            return
        response = response if response is not None else record.last
        if response is not None:
            _record_response(record.call, response)
        if error is None or isinstance(error, GeneratorExit):
            record.call.end()
        else:
            record.call.fail(error)

    def stream_progress(self, span_id: str, response: Any) -> None:
        record = self.streams.get(span_id)
        if record is not None:
            record.last = response
            record.call.chunk_received()

    def stream_context(self, span_id: Any) -> Optional[otel_context.Context]:
        record = self.open.get(span_id) if isinstance(span_id, str) else None
        return record.context if record is not None and record.kind == "stream" else None

    def _defer_to_stream(self, result: Any, gen: Any, record: _Record) -> None:
        """A streaming query's answer is produced while the app iterates: the step lives on,
        and its LLM call (made lazily) nests under it."""
        step = record.call
        parts: list = []

        def finished(error: Optional[BaseException]) -> None:
            if step.capture_content and parts:
                step.set_output_state("".join(parts))
            if error is None or isinstance(error, GeneratorExit):
                step.end()
            else:
                step.fail(error)

        proxy_class = _SyncStream if inspect.isgenerator(gen) else _AsyncStream
        try:
            result.response_gen = proxy_class(gen, record.context, finished, parts)
        except Exception:
            step.end()


# -- stream proxies ------------------------------------------------------------------------


class _SyncStream(wrapt.ObjectProxy):
    """A generator that runs with our context attached while it steps; optionally reports its
    end once (exhaustion, error, close or collection) and the text pieces it yielded."""

    def __init__(self, wrapped: Any, context: Any, on_end: Any = None, parts: Optional[list] = None):
        super().__init__(wrapped)
        self._self_context = context
        self._self_on_end = on_end
        self._self_parts = parts

    def __iter__(self):
        return self

    def __next__(self):
        return self._self_step(self.__wrapped__.__next__)

    def send(self, value):
        return self._self_step(self.__wrapped__.send, value)

    def throw(self, *args):
        return self._self_step(self.__wrapped__.throw, *args)

    def close(self):
        try:
            return self.__wrapped__.close()
        finally:
            self._self_end(None)

    def _self_step(self, step, *args):
        token = _attach(self._self_context)
        try:
            item = step(*args)
        except StopIteration:
            self._self_end(None)
            raise
        except BaseException as exc:
            self._self_end(exc)
            raise
        finally:
            _detach(token)
        if self._self_parts is not None and isinstance(item, str):
            self._self_parts.append(item)
        return item

    def _self_end(self, error: Optional[BaseException]) -> None:
        on_end, self._self_on_end = self._self_on_end, None
        if on_end is not None:
            try:
                on_end(error)
            except Exception:
                logger.debug("posthog-instrument: llama_index stream end not recorded", exc_info=True)

    def __del__(self):
        self._self_end(None)


class _AsyncStream(_SyncStream):
    """The same for an async generator: the context is attached inside each awaited step, so
    it is attached and detached in the task that iterates."""

    def __aiter__(self):
        return self

    async def __anext__(self):
        return await self._self_astep(self.__wrapped__.__anext__)

    async def asend(self, value):
        return await self._self_astep(self.__wrapped__.asend, value)

    async def athrow(self, *args):
        return await self._self_astep(self.__wrapped__.athrow, *args)

    async def aclose(self):
        try:
            return await self.__wrapped__.aclose()
        finally:
            self._self_end(None)

    async def _self_astep(self, step, *args):
        token = _attach(self._self_context)
        try:
            item = await step(*args)
        except StopAsyncIteration:
            self._self_end(None)
            raise
        except BaseException as exc:
            self._self_end(exc)
            raise
        finally:
            _detach(token)
        if self._self_parts is not None and isinstance(item, str):
            self._self_parts.append(item)
        return item


class _SpanHandlerMixin:
    """Methods of our LlamaIndex span handler; the class itself is built on import (it must
    subclass LlamaIndex's pydantic ``BaseSpanHandler``)."""

    def span_enter(self, id_, bound_args, instance=None, parent_id=None, tags=None, **kwargs):
        recording = self._posthog
        if recording.active():
            try:
                recording.enter(id_, bound_args, instance, parent_id)
            except Exception:
                logger.debug("posthog-instrument: llama_index span enter not recorded", exc_info=True)

    def span_exit(self, id_, bound_args, instance=None, result=None, **kwargs):
        try:
            self._posthog.exit(id_, result)
        except Exception:
            logger.debug("posthog-instrument: llama_index span exit not recorded", exc_info=True)

    def span_drop(self, id_, bound_args, instance=None, err=None, **kwargs):
        try:
            self._posthog.drop(id_, err)
        except Exception:
            logger.debug("posthog-instrument: llama_index span drop not recorded", exc_info=True)

    # Abstract in BaseSpanHandler; the three methods above do the work.
    def new_span(self, *args, **kwargs):
        return None

    def prepare_to_exit_span(self, *args, **kwargs):
        return None

    def prepare_to_drop_span(self, *args, **kwargs):
        return None


_END_EVENTS = frozenset({"LLMChatEndEvent", "LLMCompletionEndEvent"})
_PROGRESS_EVENTS = frozenset({"LLMChatInProgressEvent", "LLMCompletionInProgressEvent"})


class _EventHandlerMixin:
    def handle(self, event, **kwargs):
        try:
            name = type(event).__name__
            recording = self._posthog
            span_id = getattr(event, "span_id", None)
            if not recording.streams or span_id not in recording.streams:
                return
            if name in _PROGRESS_EVENTS:
                recording.stream_progress(span_id, event.response)
            elif name in _END_EVENTS:
                recording.stream_ended(span_id, event.response, None)
            elif name == "ExceptionEvent":
                recording.stream_ended(span_id, None, event.exception)
        except Exception:
            logger.debug("posthog-instrument: llama_index event not recorded", exc_info=True)

    @classmethod
    def class_name(cls):
        return "PostHogEventHandler"


def _stream_callback_wrapper(recording_of: Any):
    """Wraps ``llm_chat_callback()`` / ``llm_completion_callback()``: the decorator they return
    gives back streams that run in the model call's context (see the module docstring)."""

    def wrapper(wrapped, instance, args, kwargs):
        decorate = wrapped(*args, **kwargs)
        if not callable(decorate):
            return decorate  # not the decorator this release is known to return: leave it alone

        def decorator(f):
            decorated = decorate(f)
            try:
                return _in_stream_context(decorated, recording_of)
            except Exception:
                return decorated

        return decorator

    return wrapper


def _in_stream_context(decorated: Any, recording_of: Any) -> Any:
    from functools import wraps

    def wrap_stream(result: Any) -> Any:
        recording = recording_of()
        if recording is None or not (inspect.isgenerator(result) or inspect.isasyncgen(result)):
            return result
        try:
            from llama_index.core.instrumentation.span import active_span_id

            context = recording.stream_context(active_span_id.get())
        except Exception:
            return result
        if context is None:
            return result
        return (_SyncStream if inspect.isgenerator(result) else _AsyncStream)(result, context)

    if inspect.iscoroutinefunction(decorated):

        async def method(*args, **kwargs):
            return wrap_stream(await decorated(*args, **kwargs))
    else:

        def method(*args, **kwargs):
            return wrap_stream(decorated(*args, **kwargs))

    wraps(decorated)(method)
    # The decorated method's own signature (LlamaIndex binds it for every span), without the
    # ``__wrapped__`` that ``wraps`` adds: LlamaIndex's decorators read that as "already wrapped".
    method.__signature__ = inspect.signature(decorated)
    del method.__wrapped__
    return method


class LlamaIndexInstrumentor(LLMInstrumentor):
    requirements = ("llama-index-core >= 0.10.41",)

    def targets(self) -> list:
        wrapper = _stream_callback_wrapper(lambda: getattr(self, "_recording", None))
        return [
            Target("llama_index.core.llms.callbacks", "llm_chat_callback", wrapper=wrapper),
            Target("llama_index.core.llms.callbacks", "llm_completion_callback", wrapper=wrapper),
        ]

    def _instrument(self, **kwargs) -> None:
        super()._instrument(**kwargs)
        self._recording = None
        self._handlers: tuple = ()
        wrapt.register_post_import_hook(self._register_handlers, "llama_index.core")

    def _uninstrument(self, **kwargs) -> None:
        super()._uninstrument(**kwargs)
        try:
            from llama_index.core.instrumentation import get_dispatcher

            dispatcher = get_dispatcher()
            span_handler, event_handler = self._handlers or (None, None)
            dispatcher.span_handlers = [h for h in dispatcher.span_handlers if h is not span_handler]
            dispatcher.event_handlers = [h for h in dispatcher.event_handlers if h is not event_handler]
        except Exception:
            logger.debug("posthog-instrument: llama_index handlers not removed", exc_info=True)
        self._handlers = ()

    def _register_handlers(self, module: Any) -> None:
        if not getattr(self, "_active", False) or self._handlers:
            return
        try:
            from llama_index.core.base.base_query_engine import BaseQueryEngine
            from llama_index.core.base.base_retriever import BaseRetriever
            from llama_index.core.base.embeddings.base import BaseEmbedding
            from llama_index.core.base.llms.base import BaseLLM
            from llama_index.core.instrumentation import get_dispatcher
            from llama_index.core.instrumentation.event_handlers import BaseEventHandler
            from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
            from pydantic import PrivateAttr

            try:
                from llama_index.core.chat_engine.types import BaseChatEngine
            except ImportError:
                BaseChatEngine = None

            recording = _Recording(
                self,
                {
                    "llm": BaseLLM,
                    "embedding": BaseEmbedding,
                    "retriever": BaseRetriever,
                    "query_engine": BaseQueryEngine,
                    "chat_engine": BaseChatEngine,
                },
            )

            class PostHogSpanHandler(_SpanHandlerMixin, BaseSpanHandler):
                _posthog: Any = PrivateAttr(default=None)  # handlers are pydantic models

                @classmethod
                def class_name(cls):
                    return "PostHogSpanHandler"

            class PostHogEventHandler(_EventHandlerMixin, BaseEventHandler):
                _posthog: Any = PrivateAttr(default=None)

            span_handler = PostHogSpanHandler()
            event_handler = PostHogEventHandler()
            span_handler._posthog = recording
            event_handler._posthog = recording
            dispatcher = get_dispatcher()
            dispatcher.add_span_handler(span_handler)
            dispatcher.add_event_handler(event_handler)
            self._recording = recording
            self._handlers = (span_handler, event_handler)
        except Exception:
            logger.debug("posthog-instrument: could not hook LlamaIndex's dispatcher", exc_info=True)
