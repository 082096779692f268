"""LangChain and LangGraph adapter: every run of ``langchain-core`` runnables as one PostHog trace.

What is hooked, and why.

* **One callback handler, attached to every run.** LangChain reports every run (chains,
  LangGraph graphs and nodes, chat models, LLMs, tools, retrievers) to the callback handlers of
  its callback manager, with the run's id and its parent's id. Our handler is registered with
  ``langchain_core.tracers.context.register_configure_hook`` (a context variable whose default
  is our handler, inheritable): LangChain's ``_configure`` then adds it to every callback
  manager it builds, including runs started without a ``callbacks`` argument and LangGraph's
  graph runs, and adds it once (it compares by identity with the handlers already inherited).
  The handler supplies names, inputs, outputs, errors and parent links; it runs inline
  (``run_inline``) so that async runs call it in the caller's task, and it never raises.

* **Context, attached only around code we wrap.** Callbacks say who the parent is, but they
  cannot make a span current for the code that runs inside the run (a start callback has no
  matching place to detach). So spans are nested explicitly with ``parent=`` from the parent
  run's span, and a span is made current only inside wrappers of our own, which detach it on
  every exit path, in the same context that attached it:

  - ``set_config_context`` (langchain-core's, and LangGraph's own copy): LangChain runs the body
    of every chain, graph node, lambda and tool inside the private context copy this context
    manager yields, with the run's child callbacks in the config. The wrapper attaches the run's
    span inside that copy (and detaches it there). So an OpenAI call made directly in a LangGraph
    node or a tool function nests under that node or tool, in the same trace.
  - ``BaseChatModel._generate_with_cache`` / ``_agenerate_with_cache`` (and ``BaseLLM``'s
    ``_generate_helper``): they receive the run manager, so the model step's call is attached
    (as the active call) around the actual model request.
  - ``BaseChatModel.stream`` / ``astream`` (and ``BaseLLM``'s): LangChain starts the run inside
    the generator, without passing the run manager on. The wrapper opens a *window* (a context
    variable) around each step of the generator until the run is known; the start callback of
    the first model run inside the window attaches that run there, and the wrapper detaches it
    when the step returns. Later steps attach the known call themselves.
  - ``BaseRetriever.invoke`` / ``ainvoke``: the retriever's body runs right after its start
    callback, which attaches the retrieval step in a window the same way; so a vector-store
    query made by the retriever nests under its step.

Layering: one model call is one ``$ai_generation``. The LangChain model step is recorded at
``Layer.FRAMEWORK``. When the model is reached through an SDK we instrument (``ChatOpenAI`` ->
``openai``), the provider adapter's span starts inside the step's context, so the core marks the
step delegated: PostHog gets it as an ``$ai_span`` (no tokens) with the provider's generation
nested under it. A model we do not instrument (LangChain's fake chat models, or one reached over
plain HTTP) leaves the step as the generation, with usage from the message's ``usage_metadata``.

What becomes a span (PostHog users want the graph they built, not LangChain's plumbing):

* every root run (the trace), every LangGraph node, every chain started from inside a function
  (a sub-chain a tool or node invokes), every model, tool and retriever run;
* **skipped** (their children re-parented to the nearest kept ancestor): runs tagged
  ``langsmith:hidden`` (LangGraph's internal writers/readers) and the composition steps of LCEL
  (runs tagged ``seq:step:N`` inside a ``RunnableSequence`` and ``map:key:K`` inside a
  ``RunnableParallel``: prompt templates, output parsers, lambdas, LangGraph's ``call_model`` /
  ``should_continue`` glue). Their data shows in their parent's input/output and in the model,
  tool and retriever steps they lead to.

Operations: a root chain, and a LangGraph graph run anywhere (a sub-agent invoked from a tool or a
node; told apart from the graph's nodes by LangGraph's run metadata, so a sub-chain a node invokes
counts too), is ``invoke_workflow``; it becomes ``invoke_agent`` when a model and a tool both ran under
it and under no nearer such workflow (a ReAct-style graph, a legacy ``AgentExecutor``). Other kept
chains (LangGraph nodes, sub-chains) are ``chain`` steps; tools ``execute_tool`` (arguments and result);
retrievers ``retrieval`` (query and documents). ``$ai_framework`` is ``langchain`` (LangGraph is
LangChain's runtime; graph runs are told apart by their names).

State is kept per run id in one bounded dict and removed when the run ends or fails. LangGraph's
control-flow exceptions (``GraphInterrupt`` and other ``GraphBubbleUp``) and ``GeneratorExit`` (a
stream the application stopped reading) end a run normally, not as an error.

PostHog's own ``posthog.ai.langchain.CallbackHandler``: the app chose it to record the runs it is
given (their ``$ai_generation``, ``$ai_span`` and ``$ai_trace`` events, with its distinct id and
properties). Every callback manager that includes it (those runs and their children) is left
without our handler, so we record no step and no generation for them, and the model request such a
run makes runs with the core's ``RECORDED_ELSEWHERE`` marker, so our provider adapters beneath do
not record it either. A model call made directly in such a run's body (an OpenAI call inside a
tool) is not a LangChain model run, the handler does not see it, and we record it as usual.

Not covered: runs of LangChain versions before 0.3; embeddings called through LangChain are not
steps of their own (the provider adapter records them); ``on_custom_event`` is ignored.
"""

from __future__ import annotations

import json
import logging
import threading
from contextvars import ContextVar
from typing import Any, Optional

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace

from ..formats import openai_chat
from ..genai import InferenceCall, InferenceRequest, Layer, StepRequest, Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Provider
from ..genai.one_generation import RECORDED_ELSEWHERE
from .base import LLMInstrumentor, Target, get, number

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "langchain"
CHAIN = "chain"  # LangChain's own word for an inner runnable step (LangSmith's run_type)

_HIDDEN_TAG = "langsmith:hidden"
_COMPOSITION_TAG_PREFIXES = ("seq:step:", "map:key:")
# Bound on runs in flight (a run that never reports its end must not make a service grow).
_MAX_RUNS = 10_000
_STATE_DEPTH = 6

# LangChain's ``ls_provider`` values -> the conventions' provider names.
_PROVIDERS = {
    "openai": Provider.OPENAI,
    "azure": Provider.AZURE_OPENAI,
    "azure_openai": Provider.AZURE_OPENAI,
    "anthropic": Provider.ANTHROPIC,
    "google_genai": Provider.GCP_GEMINI,
    "google_vertexai": Provider.GCP_VERTEX_AI,
    "google_anthropic_vertex": Provider.GCP_VERTEX_AI,
    "amazon_bedrock": Provider.AWS_BEDROCK,
    "bedrock": Provider.AWS_BEDROCK,
    "bedrock_converse": Provider.AWS_BEDROCK,
    "mistral": Provider.MISTRAL_AI,
    "mistralai": Provider.MISTRAL_AI,
    "groq": Provider.GROQ,
    "cohere": Provider.COHERE,
    "ollama": Provider.OLLAMA,
    "together": Provider.TOGETHER,
    "deepseek": Provider.DEEPSEEK,
    "xai": Provider.XAI,
    "perplexity": Provider.PERPLEXITY,
    "openrouter": Provider.OPENROUTER,
}

_FINISH_REASONS = {
    "tool_calls": "tool_call",
    "tool_use": "tool_call",
    "function_call": "tool_call",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "STOP": "stop",
    "max_tokens": "length",
    "MAX_TOKENS": "length",
}


# -- run state -----------------------------------------------------------------------------


class _Run:
    """What we keep for one LangChain run until it ends.

    ``call`` is the span's call, or None for a skipped run (``parent`` then stands in for it).
    ``scope``: the nearest workflow run (a root, a graph) at or above it, whose operation may
    become invoke_agent.
    """

    __slots__ = ("call", "parent", "scope", "saw_model", "saw_tool", "is_agent", "name")

    def __init__(
        self,
        call: Optional[InferenceCall],
        parent: Optional["_Run"],
        name: Optional[str] = None,
        workflow: bool = False,
    ):
        self.call = call
        self.parent = parent
        self.scope: "_Run" = self if workflow or parent is None else parent.scope
        self.saw_model = False
        self.saw_tool = False
        self.is_agent = False
        self.name = name

    def kept(self) -> Optional["_Run"]:
        """This run if it has a span, else its nearest ancestor that has one."""
        run: Optional[_Run] = self
        while run is not None and run.call is None:
            run = run.parent
        return run


class _Window:
    """A model stream's step in progress: the first model run started inside attaches here."""

    __slots__ = ("call", "token")

    def __init__(self):
        self.call: Optional[InferenceCall] = None
        self.token: Optional[object] = None


_WINDOW: ContextVar[Optional[_Window]] = ContextVar("posthog_autoinstrument_langchain_window", default=None)


class Tracker:
    """Turns LangChain's run events into spans. Knows nothing of LangChain's classes, so it is
    driven the same way by the callback handler and by unit tests. Never raises."""

    def __init__(self, instrumentor: "LangChainInstrumentor"):
        self.instrumentor = instrumentor
        self._runs: dict = {}
        self._lock = threading.Lock()

    # -- bookkeeping ------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return getattr(self.instrumentor, "_active", False)

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, run_id: Any) -> Optional[_Run]:
        return self._runs.get(run_id) if run_id is not None else None

    def _remember(self, run_id: Any, run: _Run) -> None:
        with self._lock:
            if len(self._runs) >= _MAX_RUNS:
                # The oldest run never reported its end: forget it (its span is never exported).
                self._runs.pop(next(iter(self._runs)), None)
            self._runs[run_id] = run

    def _forget(self, run_id: Any) -> Optional[_Run]:
        with self._lock:
            return self._runs.pop(run_id, None)

    def _parent_context(self, parent: Optional[_Run]) -> Optional[otel_context.Context]:
        kept = parent.kept() if parent is not None else None
        if kept is None:
            return None  # a root run nests under whatever is current (the app's own span)
        return trace.set_span_in_context(kept.call.span, otel_context.get_current())

    # -- chains ----------------------------------------------------------------------------
    def chain_start(
        self, serialized: Any, inputs: Any, run_id: Any, parent_run_id: Any, tags: Any, metadata: Any, name: Any
    ) -> None:
        if not self.active or run_id is None:
            return
        parent = self.get(parent_run_id)
        name = _run_name(serialized, name)
        if parent is not None and _is_plumbing(tags):
            self._remember(run_id, _Run(None, parent, name))
            return
        workflow = parent is None or _is_graph(metadata, name)
        operation = semconv.Operation.INVOKE_WORKFLOW if workflow else CHAIN
        call = self.instrumentor.recorder.start_step(
            StepRequest(operation, name=name, framework=FRAMEWORK), parent=self._parent_context(parent)
        )
        if call is None:
            return
        if call.capture_content:
            call.set_input_state(_state(inputs))
        self._remember(run_id, _Run(call, parent, name, workflow))

    def chain_end(self, outputs: Any, run_id: Any, inputs: Any = None) -> None:
        run = self._forget(run_id)
        if run is None or run.call is None:
            return
        call = run.call
        _maybe_agent(run)
        if call.capture_content:
            if inputs is not None:
                # A streamed run starts with a placeholder input; LangChain reports the real one
                # (the input stream, assembled) at its end.
                call.set_input_state(_state(inputs))
            call.set_output_state(_state(outputs))
        call.end()

    def agent_action(self, run_id: Any) -> None:
        run = self.get(run_id)
        if run is not None:
            run.scope.is_agent = True

    # -- models ----------------------------------------------------------------------------
    def model_start(
        self,
        serialized: Any,
        messages: Optional[list],
        prompts: Optional[list],
        run_id: Any,
        parent_run_id: Any,
        metadata: Any,
        invocation_params: Any,
        name: Any,
    ) -> None:
        if not self.active or run_id is None:
            return
        parent = self.get(parent_run_id)
        request = _model_request(serialized, metadata, invocation_params, chat=messages is not None)
        call = self.instrumentor.recorder.start(request, parent=self._parent_context(parent))
        if call is None:
            return
        try:
            tools = _tool_definitions(get(invocation_params, "tools") if isinstance(invocation_params, dict) else None)
            if call.capture_content:
                if messages is not None:
                    batch = messages[0] if messages and isinstance(messages[0], (list, tuple)) else messages
                    call.set_input(messages=[_message(message) for message in batch or ()], tool_definitions=tools)
                else:
                    call.set_input(
                        messages=[m.message("user", [m.text(p)]) for p in prompts or () if isinstance(p, str)],
                        tool_definitions=tools,
                    )
            else:
                call.set_input(tool_definitions=tools)
        except Exception:
            logger.debug("posthog-instrument: could not record LangChain model input", exc_info=True)
        run = _Run(call, parent, name)
        run.scope.saw_model = True
        self._remember(run_id, run)
        window = _WINDOW.get()
        if window is not None and window.call is None:
            # A model stream's first step is running in this very context: attach the call here,
            # the stream wrapper detaches it when the step returns.
            window.call = call
            window.token = call.attach()

    def model_token(self, run_id: Any) -> None:
        run = self.get(run_id)
        if run is not None and run.call is not None:
            run.call.chunk_received()
            run.call.set_attribute(semconv.REQUEST_STREAM, True)

    def model_end(self, response: Any, run_id: Any) -> None:
        run = self._forget(run_id)
        if run is None or run.call is None:
            return
        try:
            _record_model_result(run.call, response)
        except Exception:
            logger.debug("posthog-instrument: could not record LangChain model result", exc_info=True)
        run.call.end()

    # -- tools and retrievers --------------------------------------------------------------
    def tool_start(
        self,
        serialized: Any,
        input_str: Any,
        inputs: Any,
        run_id: Any,
        parent_run_id: Any,
        name: Any,
        tool_call_id: Any,
    ) -> None:
        if not self.active or run_id is None:
            return
        parent = self.get(parent_run_id)
        tool_name = _run_name(serialized, name)
        call = self.instrumentor.recorder.start_step(
            StepRequest(
                semconv.Operation.EXECUTE_TOOL,
                name=tool_name,
                framework=FRAMEWORK,
                tool_call_id=tool_call_id if isinstance(tool_call_id, str) else None,
                tool_type="function",
                attributes={semconv.TOOL_DESCRIPTION: _description(serialized)},
            ),
            parent=self._parent_context(parent),
        )
        if call is None:
            return
        if call.capture_content:
            call.set_input_state(_state(inputs) if inputs is not None else _tool_input(input_str))
        run = _Run(call, parent, tool_name)
        run.scope.saw_tool = True
        self._remember(run_id, run)

    def tool_end(self, output: Any, run_id: Any) -> None:
        run = self._forget(run_id)
        if run is None or run.call is None:
            return
        if run.call.capture_content:
            run.call.set_output_state(_tool_output(output))
        run.call.end()

    def retriever_start(self, serialized: Any, query: Any, run_id: Any, parent_run_id: Any, name: Any) -> None:
        if not self.active or run_id is None:
            return
        parent = self.get(parent_run_id)
        retriever = _run_name(serialized, name)
        call = self.instrumentor.recorder.start_step(
            StepRequest(semconv.Operation.RETRIEVAL, name=retriever, framework=FRAMEWORK),
            parent=self._parent_context(parent),
        )
        if call is None:
            return
        if call.capture_content:
            call.set_input_state(query)
        self._remember(run_id, _Run(call, parent, retriever))
        window = _WINDOW.get()
        if window is not None and window.call is None:
            # The retriever's body runs next, in this very context: make the step current for it
            # (a vector-store query nests under it); the invoke wrapper detaches it.
            window.call = call
            window.token = call.attach()

    def retriever_end(self, documents: Any, run_id: Any) -> None:
        run = self._forget(run_id)
        if run is None or run.call is None:
            return
        if run.call.capture_content:
            run.call.set_output_state([_document(d) for d in documents or ()])
        run.call.end()

    # -- any run ---------------------------------------------------------------------------
    def run_error(self, error: BaseException, run_id: Any) -> None:
        run = self._forget(run_id)
        if run is None or run.call is None:
            return
        _maybe_agent(run)
        if _is_control_flow(error):
            run.call.end()
        else:
            run.call.fail(error)

    def call_for(self, run_id: Any) -> Optional[InferenceCall]:
        """The span to make current for the body of run ``run_id`` (its own, or the nearest kept
        ancestor's for a skipped run)."""
        run = self.get(run_id)
        kept = run.kept() if run is not None else None
        return kept.call if kept is not None else None


def _maybe_agent(run: _Run) -> None:
    """A workflow under which a model and a tool both ran is an agent (a ReAct graph, an
    AgentExecutor), whatever LangChain class it is."""
    if run.scope is run and (run.is_agent or (run.saw_model and run.saw_tool)):
        _become_agent(run.call, run.name)


def _become_agent(call: InferenceCall, name: Optional[str]) -> None:
    call.set_attribute(semconv.OPERATION_NAME, semconv.Operation.INVOKE_AGENT)
    if name:
        call.set_attribute(semconv.AGENT_NAME, name)
    try:
        call.span.update_name(f"{semconv.Operation.INVOKE_AGENT} {name}" if name else semconv.Operation.INVOKE_AGENT)
    except Exception:
        pass


def _is_plumbing(tags: Any) -> bool:
    for tag in tags or ():
        if tag == _HIDDEN_TAG or (isinstance(tag, str) and tag.startswith(_COMPOSITION_TAG_PREFIXES)):
            return True
    return False


def _is_graph(metadata: Any, name: Any) -> bool:
    """A LangGraph graph's own run (not one of its nodes: a node's run is named after the node)."""
    return (
        isinstance(metadata, dict)
        and metadata.get("ls_integration") == "langgraph"
        and metadata.get("langgraph_node") != name
    )


def _is_control_flow(error: BaseException) -> bool:
    """Not a failure: LangGraph's interrupts and hand-offs (``GraphBubbleUp``), and a stream the
    application stopped reading (``GeneratorExit``)."""
    return isinstance(error, GeneratorExit) or any(cls.__name__ == "GraphBubbleUp" for cls in type(error).__mro__)


def _run_name(serialized: Any, name: Any) -> Optional[str]:
    if isinstance(name, str) and name:
        return name
    if isinstance(serialized, dict):
        value = serialized.get("name")
        if isinstance(value, str) and value:
            return value
        ids = serialized.get("id")
        if isinstance(ids, list) and ids:
            return str(ids[-1])
    return None


def _description(serialized: Any) -> Optional[str]:
    value = serialized.get("description") if isinstance(serialized, dict) else None
    return value if isinstance(value, str) and value else None


# -- translation ---------------------------------------------------------------------------


def _model_request(serialized: Any, metadata: Any, params: Any, chat: bool) -> InferenceRequest:
    metadata = metadata if isinstance(metadata, dict) else {}
    params = params if isinstance(params, dict) else {}
    ls_provider = metadata.get("ls_provider")
    provider = _PROVIDERS.get(ls_provider, ls_provider) if isinstance(ls_provider, str) and ls_provider else FRAMEWORK
    model = metadata.get("ls_model_name") or params.get("model") or params.get("model_name") or params.get("model_id")
    stop = metadata.get("ls_stop") or params.get("stop")
    return InferenceRequest(
        provider=provider,
        model=str(model) if model else None,
        operation=semconv.Operation.CHAT if chat else semconv.Operation.TEXT_COMPLETION,
        stream=params.get("stream") is True or params.get("streaming") is True,
        temperature=number(metadata.get("ls_temperature", params.get("temperature"))),
        max_tokens=number(
            metadata.get("ls_max_tokens") or params.get("max_tokens") or params.get("max_completion_tokens")
        ),
        top_p=number(params.get("top_p")),
        stop_sequences=[stop] if isinstance(stop, str) else (list(stop) if isinstance(stop, (list, tuple)) else None),
        layer=Layer.FRAMEWORK,
        attributes={semconv.FRAMEWORK: FRAMEWORK},
    )


def _tool_definitions(tools: Any) -> Optional[list]:
    if not isinstance(tools, (list, tuple)):
        return None
    definitions = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        if isinstance(function, dict):  # OpenAI's shape
            definitions.append(
                m.function_tool(function.get("name"), function.get("description"), function.get("parameters"))
            )
        elif "input_schema" in tool:  # Anthropic's
            definitions.append(m.function_tool(tool.get("name"), tool.get("description"), tool.get("input_schema")))
        elif tool.get("name"):
            definitions.append(m.function_tool(tool.get("name"), tool.get("description"), tool.get("parameters")))
    return definitions or None


_ROLES = {
    "human": "user",
    "ai": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}


def _content_parts(content: Any) -> list:
    if not isinstance(content, (list, tuple)):
        return openai_chat.content_parts(content)
    parts = []
    for block in content:
        kind = get(block, "type") if not isinstance(block, str) else "text"
        if kind in ("tool_call", "tool_call_chunk", "tool_use", "function_call"):
            continue  # the message's tool_calls say it once, parsed
        if kind in ("reasoning", "thinking"):
            text = get(block, "reasoning") or get(block, "thinking") or ""
            if text:
                parts.append(m.reasoning(text))
        elif kind in ("image", "audio", "video", "file") and isinstance(block, dict) and "url" in block:
            parts.append(m.media_from_data_url("document" if kind == "file" else kind, str(block["url"])))
        elif kind in ("image", "audio", "video", "file") and isinstance(block, dict) and "base64" in block:
            parts.append(m.blob("document" if kind == "file" else kind, block.get("mime_type"), str(block["base64"])))
        else:
            parts.extend(openai_chat.content_parts([block]))
    return parts


def _message(message: Any) -> dict:
    kind = getattr(message, "type", None)
    if kind is None and isinstance(message, dict):  # already a plain dict
        kind = message.get("role")
    role = (getattr(message, "role", None) or "user") if kind == "chat" else _ROLES.get(kind, kind or "user")
    content = get(message, "content")
    if role == "tool":
        return m.message("tool", [m.tool_call_response(get(message, "tool_call_id"), content)])
    parts = _content_parts(content)
    for tool_call in get(message, "tool_calls") or ():
        parts.append(m.tool_call(get(tool_call, "id"), get(tool_call, "name"), get(tool_call, "args")))
    name = get(message, "name")
    return m.message(role, parts, name if isinstance(name, str) else None)


def _output(generation: Any) -> dict:
    message = getattr(generation, "message", None)
    reason = _finish_reason(generation, message)
    if message is None:
        return m.output_message([m.text(getattr(generation, "text", "") or "")], reason)
    parts = _content_parts(getattr(message, "content", None))
    parts = [p for p in parts if p.get("type") != "text" or p.get("content")]
    for tool_call in getattr(message, "tool_calls", None) or ():
        parts.append(m.tool_call(get(tool_call, "id"), get(tool_call, "name"), get(tool_call, "args")))
    return m.output_message(parts, reason)


def _finish_reason(generation: Any, message: Any) -> Optional[str]:
    info = getattr(generation, "generation_info", None) or {}
    metadata = getattr(message, "response_metadata", None) or {}
    reason = (
        info.get("finish_reason")
        or metadata.get("finish_reason")
        or metadata.get("stop_reason")
        or metadata.get("done_reason")
    )
    if not reason:
        return None
    reason = str(reason)
    return _FINISH_REASONS.get(reason, reason)


def _usage(message: Any, llm_output: Any) -> Optional[Usage]:
    usage = getattr(message, "usage_metadata", None)
    if isinstance(usage, dict) and (usage.get("input_tokens") is not None or usage.get("output_tokens") is not None):
        input_details = usage.get("input_token_details") or {}
        output_details = usage.get("output_token_details") or {}
        return Usage(
            input_tokens=usage.get("input_tokens"),
            output_tokens=usage.get("output_tokens"),
            cache_read_input_tokens=input_details.get("cache_read"),
            cache_creation_input_tokens=input_details.get("cache_creation"),
            reasoning_tokens=output_details.get("reasoning"),
        )
    token_usage = (
        (llm_output or {}).get("token_usage") or (llm_output or {}).get("usage")
        if isinstance(llm_output, dict)
        else None
    )
    if isinstance(token_usage, dict):  # LLMs (text completion) report OpenAI-style counts here
        return Usage(
            input_tokens=token_usage.get("prompt_tokens", token_usage.get("input_tokens")),
            output_tokens=token_usage.get("completion_tokens", token_usage.get("output_tokens")),
        )
    return None


def _record_model_result(call: InferenceCall, response: Any) -> None:
    generations = getattr(response, "generations", None) or []
    first = generations[0] if generations and isinstance(generations[0], list) else []
    llm_output = getattr(response, "llm_output", None)
    message = getattr(first[0], "message", None) if first else None
    metadata = getattr(message, "response_metadata", None) or {}
    model = (
        metadata.get("model_name")
        or metadata.get("model")
        or (llm_output.get("model_name") if isinstance(llm_output, dict) else None)
    )
    response_id = metadata.get("id")
    if not response_id and isinstance(getattr(message, "id", None), str) and not message.id.startswith("lc_"):
        response_id = message.id
    reasons = [r for r in (_finish_reason(g, getattr(g, "message", None)) for g in first) if r]
    call.set_response(
        model=model if isinstance(model, str) else None,
        response_id=response_id if isinstance(response_id, str) else None,
        finish_reasons=reasons,
        usage=_usage(message, llm_output),
    )
    if call.capture_content and first:
        call.set_output([_output(g) for g in first])


def _tool_input(input_str: Any) -> Any:
    if isinstance(input_str, str):
        try:
            return json.loads(input_str)
        except ValueError:
            return input_str
    return _state(input_str)


def _tool_output(output: Any) -> Any:
    if getattr(output, "type", None) == "tool":  # a ToolMessage
        content = getattr(output, "content", None)
        return content if isinstance(content, str) else _state(content)
    return output if isinstance(output, str) else _state(output)


def _document(document: Any) -> dict:
    entry = {"content": getattr(document, "page_content", None)}
    metadata = getattr(document, "metadata", None)
    if metadata:
        entry["metadata"] = _state(metadata)
    if getattr(document, "id", None):
        entry["id"] = str(document.id)
    return entry


def _state(value: Any, depth: int = 0) -> Any:
    """Run inputs/outputs as plain JSON values: messages as role + content, documents as content,
    other objects by their own dump, nested no deeper than is readable."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if depth >= _STATE_DEPTH:
        return str(value)
    if isinstance(value, dict):
        return {str(k): _state(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_state(v, depth + 1) for v in value]
    if getattr(value, "type", None) in _ROLES or getattr(value, "type", None) == "chat":
        if hasattr(value, "content"):  # a LangChain message
            message = _message(value)
            state = {"role": message["role"], "content": _state(getattr(value, "content", None), depth + 1)}
            tool_calls = getattr(value, "tool_calls", None)
            if tool_calls:
                state["tool_calls"] = _state(tool_calls, depth + 1)
            return state
    if hasattr(value, "page_content"):
        return _document(value)
    if hasattr(value, "to_messages") and callable(value.to_messages):  # a PromptValue
        try:
            return [_state(message, depth + 1) for message in value.to_messages()]
        except Exception:
            return str(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return _state(dump(), depth + 1)
        except Exception:
            pass
    return str(value)


# -- the callback handler -------------------------------------------------------------------


def _guard(method):
    def guarded(self, *args, **kwargs):
        try:
            method(self, *args, **kwargs)
        except Exception:
            logger.debug("posthog-instrument: LangChain callback %s failed", method.__name__, exc_info=True)
        return None

    guarded.__name__ = method.__name__
    return guarded


def _handler_class():
    """Built on first use: ``BaseCallbackHandler`` is imported only once LangChain is."""
    from langchain_core.callbacks import BaseCallbackHandler

    class PostHogCallbackHandler(BaseCallbackHandler):
        """Reports LangChain runs to posthog-autoinstrument. Never raises into LangChain."""

        run_inline = True  # async managers call it in the caller's task, in order
        raise_error = False

        def __init__(self, tracker: Tracker):
            super().__init__()
            self.tracker = tracker

        def __repr__(self) -> str:
            return "PostHogCallbackHandler()"

        def __deepcopy__(self, memo):  # configs are sometimes deep-copied; the handler is shared
            return self

        def __copy__(self):
            return self

        @_guard
        def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs):
            self.tracker.chain_start(serialized, inputs, run_id, parent_run_id, tags, metadata, kwargs.get("name"))

        @_guard
        def on_chain_end(self, outputs, *, run_id, **kwargs):
            self.tracker.chain_end(outputs, run_id, kwargs.get("inputs"))

        @_guard
        def on_chain_error(self, error, *, run_id, **kwargs):
            self.tracker.run_error(error, run_id)

        @_guard
        def on_agent_action(self, action, *, run_id, **kwargs):
            self.tracker.agent_action(run_id)

        @_guard
        def on_chat_model_start(
            self, serialized, messages, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs
        ):
            self.tracker.model_start(
                serialized,
                messages,
                None,
                run_id,
                parent_run_id,
                metadata,
                kwargs.get("invocation_params"),
                kwargs.get("name"),
            )

        @_guard
        def on_llm_start(self, serialized, prompts, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs):
            self.tracker.model_start(
                serialized,
                None,
                prompts,
                run_id,
                parent_run_id,
                metadata,
                kwargs.get("invocation_params"),
                kwargs.get("name"),
            )

        @_guard
        def on_llm_new_token(self, token, *, run_id, **kwargs):
            self.tracker.model_token(run_id)

        @_guard
        def on_llm_end(self, response, *, run_id, **kwargs):
            self.tracker.model_end(response, run_id)

        @_guard
        def on_llm_error(self, error, *, run_id, **kwargs):
            self.tracker.run_error(error, run_id)

        @_guard
        def on_tool_start(
            self, serialized, input_str, *, run_id, parent_run_id=None, tags=None, metadata=None, inputs=None, **kwargs
        ):
            self.tracker.tool_start(
                serialized, input_str, inputs, run_id, parent_run_id, kwargs.get("name"), kwargs.get("tool_call_id")
            )

        @_guard
        def on_tool_end(self, output, *, run_id, **kwargs):
            self.tracker.tool_end(output, run_id)

        @_guard
        def on_tool_error(self, error, *, run_id, **kwargs):
            self.tracker.run_error(error, run_id)

        @_guard
        def on_retriever_start(
            self, serialized, query, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs
        ):
            self.tracker.retriever_start(serialized, query, run_id, parent_run_id, kwargs.get("name"))

        @_guard
        def on_retriever_end(self, documents, *, run_id, **kwargs):
            self.tracker.retriever_end(documents, run_id)

        @_guard
        def on_retriever_error(self, error, *, run_id, **kwargs):
            self.tracker.run_error(error, run_id)

    return PostHogCallbackHandler


# -- wrappers that make a run's span current around the code LangChain runs for it ----------------


def _run_id_of_config(config: Any) -> Any:
    callbacks = config.get("callbacks") if isinstance(config, dict) else None
    return getattr(callbacks, "parent_run_id", None)


class _ConfigContext:
    """Proxy of ``set_config_context(config)``'s context manager: inside the private context it
    yields, the span of the run whose child config this is is made current, and undone there."""

    __slots__ = ("_manager", "_call", "_ctx", "_token")

    def __init__(self, manager: Any, call: Optional[InferenceCall]):
        self._manager = manager
        self._call = call
        self._ctx = None
        self._token = None

    def __enter__(self):
        ctx = self._manager.__enter__()
        try:
            if self._call is not None and hasattr(ctx, "run"):
                self._token = ctx.run(self._call.attach)
                self._ctx = ctx
        except Exception:
            logger.debug("posthog-instrument: could not attach a LangChain run", exc_info=True)
        return ctx

    def __exit__(self, *exc_info):
        if self._token is not None:
            try:
                self._ctx.run(InferenceCall.detach, self._token)
            except Exception:
                logger.debug("posthog-instrument: could not detach a LangChain run", exc_info=True)
            self._token = None
        return self._manager.__exit__(*exc_info)


def _config_context_wrapper(tracker: Tracker):
    def config_context(wrapped, instance, args, kwargs):
        manager = wrapped(*args, **kwargs)
        try:
            config = args[0] if args else kwargs.get("config")
            call = tracker.call_for(_run_id_of_config(config))
            if call is None or call.ended:
                return manager
            # A model call made directly in a node or tool nests under its step, which is no
            # model call itself: only the span is made current (StepCall.attach).
            return _ConfigContext(manager, call)
        except Exception:
            logger.debug("posthog-instrument: set_config_context wrapper failed", exc_info=True)
            return manager

    return config_context


# Callback handlers that record the runs they see as PostHog events themselves.
_SELF_RECORDING_HANDLER_MODULES = ("posthog.ai.langchain",)
_self_recording_types: dict = {}


def _records_runs_itself(handler: Any) -> bool:
    kind = type(handler)
    answer = _self_recording_types.get(kind)
    if answer is None:
        answer = any(getattr(cls, "__module__", "").startswith(_SELF_RECORDING_HANDLER_MODULES) for cls in kind.__mro__)
        if len(_self_recording_types) < 256:
            _self_recording_types[kind] = answer
    return answer


def _run_recorded_by_handler(manager: Any) -> bool:
    """Whether a handler the app chose records this manager's runs (see the module docstring)."""
    handlers = getattr(manager, "handlers", None)
    return bool(handlers) and any(_records_runs_itself(handler) for handler in handlers)


def _configure_wrapper(tracker: Tracker):
    """``_configure`` builds every callback manager: one with a self-recording handler loses ours."""

    def configure(wrapped, instance, args, kwargs):
        manager = wrapped(*args, **kwargs)
        try:
            if _run_recorded_by_handler(manager):
                for handler in [
                    h for h in manager.handlers + manager.inheritable_handlers if getattr(h, "tracker", None) is tracker
                ]:
                    manager.remove_handler(handler)
                window = _WINDOW.get()
                if window is not None and window.call is None:
                    # A model stream's first step configures its run here: its request is theirs.
                    window.call = RECORDED_ELSEWHERE
                    window.token = RECORDED_ELSEWHERE.attach()
        except Exception:
            logger.debug("posthog-instrument: could not check the LangChain handlers", exc_info=True)
        return manager

    return configure


def _model_call(tracker: Tracker, run_manager: Any) -> Optional[InferenceCall]:
    """The call to attach around a model run's request: ours, or the stand-in that keeps a
    request which a self-recording handler records from being recorded again beneath."""
    try:
        run = tracker.get(getattr(run_manager, "run_id", None))
        call = run.call if run is not None else None
        if call is None and run is None and _run_recorded_by_handler(run_manager):
            return RECORDED_ELSEWHERE
        return call if call is not None and not call.ended else None
    except Exception:
        return None


def _generate_wrapper(tracker: Tracker):
    """``_generate_with_cache(messages, stop, run_manager, **kw)``: the model request, attached."""

    def generate_with_cache(wrapped, instance, args, kwargs):
        call = _model_call(tracker, kwargs.get("run_manager", args[2] if len(args) > 2 else None))
        if call is None:
            return wrapped(*args, **kwargs)
        token = call.attach()
        try:
            return wrapped(*args, **kwargs)
        finally:
            call.detach(token)

    return generate_with_cache


def _agenerate_wrapper(tracker: Tracker):
    def agenerate_with_cache(wrapped, instance, args, kwargs):
        call = _model_call(tracker, kwargs.get("run_manager", args[2] if len(args) > 2 else None))
        if call is None:
            return wrapped(*args, **kwargs)

        async def attached():
            token = call.attach()
            try:
                return await wrapped(*args, **kwargs)
            finally:
                call.detach(token)

        return attached()

    return agenerate_with_cache


def _batch_calls(tracker: Tracker, run_managers: Any) -> list:
    try:
        return [c for c in (_model_call(tracker, r) for r in run_managers or ()) if c is not None]
    except Exception:
        return []


def _shares_delegation(calls: list) -> None:
    """An LLM batch is one provider request for all prompts: if it was recorded below, every
    prompt's step is a step, not a generation of its own."""
    if calls and calls[0].delegated:
        for call in calls[1:]:
            call.delegated = True


def _llm_generate_wrapper(tracker: Tracker):
    """``BaseLLM._generate_helper(prompts, stop, run_managers, ...)``."""

    def llm_generate(wrapped, instance, args, kwargs):
        calls = _batch_calls(tracker, kwargs.get("run_managers", args[2] if len(args) > 2 else None))
        if not calls:
            return wrapped(*args, **kwargs)
        token = calls[0].attach()
        try:
            return wrapped(*args, **kwargs)
        finally:
            calls[0].detach(token)
            _shares_delegation(calls)

    return llm_generate


def _llm_agenerate_wrapper(tracker: Tracker):
    def llm_agenerate(wrapped, instance, args, kwargs):
        calls = _batch_calls(tracker, kwargs.get("run_managers", args[2] if len(args) > 2 else None))
        if not calls:
            return wrapped(*args, **kwargs)

        async def attached():
            token = calls[0].attach()
            try:
                return await wrapped(*args, **kwargs)
            finally:
                calls[0].detach(token)
                _shares_delegation(calls)

        return attached()

    return llm_agenerate


def _retriever_invoke(wrapped, instance, args, kwargs):
    """``BaseRetriever.invoke``: LangChain runs the retriever's body right after its start
    callback without making the run current, so the start callback attaches the retrieval step
    in this window, and it is detached here when the body has run."""
    window = _Window()
    reset = _WINDOW.set(window)
    try:
        return wrapped(*args, **kwargs)
    finally:
        InferenceCall.detach(window.token)
        _WINDOW.reset(reset)


def _retriever_ainvoke(wrapped, instance, args, kwargs):
    async def windowed():
        window = _Window()
        reset = _WINDOW.set(window)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            InferenceCall.detach(window.token)
            _WINDOW.reset(reset)

    return windowed()


class _ModelStream(wrapt.ObjectProxy):
    """A model's ``stream()`` generator; each step runs with the model run's call current."""

    def __init__(self, wrapped: Any, call: Optional[InferenceCall] = None):
        super().__init__(wrapped)
        self._self_call = call

    def __iter__(self):
        return self

    def __next__(self):
        call = self._self_call
        if call is None:
            window = _Window()
            reset = _WINDOW.set(window)
            try:
                return self.__wrapped__.__next__()
            finally:
                InferenceCall.detach(window.token)
                _WINDOW.reset(reset)
                self._self_call = window.call
        token = call.attach() if not call.ended else None
        try:
            return self.__wrapped__.__next__()
        finally:
            InferenceCall.detach(token)


class _AsyncModelStream(wrapt.ObjectProxy):
    """A model's ``astream()`` async generator, stepped like :class:`_ModelStream`."""

    def __init__(self, wrapped: Any, call: Optional[InferenceCall] = None):
        super().__init__(wrapped)
        self._self_call = call

    def __aiter__(self):
        return self

    async def __anext__(self):
        call = self._self_call
        if call is None:
            window = _Window()
            reset = _WINDOW.set(window)
            try:
                return await self.__wrapped__.__anext__()
            finally:
                InferenceCall.detach(window.token)
                _WINDOW.reset(reset)
                self._self_call = window.call
        token = call.attach() if not call.ended else None
        try:
            return await self.__wrapped__.__anext__()
        finally:
            InferenceCall.detach(token)


def _stream_wrapper(wrapped, instance, args, kwargs):
    stream = wrapped(*args, **kwargs)
    return _ModelStream(stream) if hasattr(type(stream), "__next__") else stream


def _astream_wrapper(wrapped, instance, args, kwargs):
    stream = wrapped(*args, **kwargs)
    return _AsyncModelStream(stream) if hasattr(type(stream), "__anext__") else stream


def _events_wrapper(tracker: Tracker):
    """``_iter_v2_events(messages, *, run_manager, ...)``: the protocol stream of a known run."""

    def chat_model_events(wrapped, instance, args, kwargs):
        stream = wrapped(*args, **kwargs)
        call = _model_call(tracker, kwargs.get("run_manager"))
        return _ModelStream(stream, call) if call is not None and hasattr(type(stream), "__next__") else stream

    return chat_model_events


def _aevents_wrapper(tracker: Tracker):
    def chat_model_aevents(wrapped, instance, args, kwargs):
        stream = wrapped(*args, **kwargs)
        call = _model_call(tracker, kwargs.get("run_manager"))
        return _AsyncModelStream(stream, call) if call is not None and hasattr(type(stream), "__anext__") else stream

    return chat_model_aevents


# -- the instrumentor -----------------------------------------------------------------------

_CHAT = "langchain_core.language_models.chat_models"
_LLMS = "langchain_core.language_models.llms"
_HOOKS_MODULE = "langchain_core.tracers.context"


class LangChainInstrumentor(LLMInstrumentor):
    requirements = ("langchain-core >= 0.3",)

    def targets(self) -> list:
        tracker = self._tracker()
        return [
            Target("langchain_core.runnables.config", "set_config_context", wrapper=_config_context_wrapper(tracker)),
            Target("langchain_core.callbacks.manager", "_configure", wrapper=_configure_wrapper(tracker)),
            Target("langgraph._internal._runnable", "set_config_context", wrapper=_config_context_wrapper(tracker)),
            Target("langgraph.utils.runnable", "set_config_context", wrapper=_config_context_wrapper(tracker)),
            Target(_CHAT, "BaseChatModel._generate_with_cache", wrapper=_generate_wrapper(tracker)),
            Target(_CHAT, "BaseChatModel._agenerate_with_cache", wrapper=_agenerate_wrapper(tracker)),
            Target(_CHAT, "BaseChatModel.stream", wrapper=_stream_wrapper),
            Target(_CHAT, "BaseChatModel.astream", wrapper=_astream_wrapper),
            Target(_CHAT, "BaseChatModel._iter_v2_events", wrapper=_events_wrapper(tracker)),
            Target(_CHAT, "BaseChatModel._aiter_v2_events", wrapper=_aevents_wrapper(tracker)),
            Target("langchain_core.retrievers", "BaseRetriever.invoke", wrapper=_retriever_invoke),
            Target("langchain_core.retrievers", "BaseRetriever.ainvoke", wrapper=_retriever_ainvoke),
            Target(_LLMS, "BaseLLM._generate_helper", wrapper=_llm_generate_wrapper(tracker)),
            Target(_LLMS, "BaseLLM._agenerate_helper", wrapper=_llm_agenerate_wrapper(tracker)),
            Target(_LLMS, "BaseLLM.stream", wrapper=_stream_wrapper),
            Target(_LLMS, "BaseLLM.astream", wrapper=_astream_wrapper),
        ]

    def _tracker(self) -> Tracker:
        tracker = getattr(self, "_tracker_instance", None)
        if tracker is None:
            tracker = self._tracker_instance = Tracker(self)
        return tracker

    def _instrument(self, **kwargs) -> None:
        super()._instrument(**kwargs)
        self._hook = None
        wrapt.register_post_import_hook(self._register_handler, _HOOKS_MODULE)

    def _uninstrument(self, **kwargs) -> None:
        super()._uninstrument(**kwargs)
        hook = getattr(self, "_hook", None)
        if hook is not None:
            try:
                from langchain_core.tracers import context as hooks

                hooks._configure_hooks[:] = [h for h in hooks._configure_hooks if h is not hook]
            except Exception:
                logger.debug("posthog-instrument: could not remove the LangChain handler", exc_info=True)
            self._hook = None

    def _register_handler(self, module: Any) -> None:
        """Make our handler part of every callback manager LangChain configures."""
        if not getattr(self, "_active", False) or getattr(self, "_hook", None) is not None:
            return
        try:
            handler = _handler_class()(self._tracker())
            variable: ContextVar = ContextVar("posthog_autoinstrument_langchain_handler", default=handler)
            before = len(module._configure_hooks)
            module.register_configure_hook(variable, True)
            self._hook = module._configure_hooks[before] if len(module._configure_hooks) > before else None
            self.handler = handler
        except Exception:
            logger.debug("posthog-instrument: could not register the LangChain callback handler", exc_info=True)
