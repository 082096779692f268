"""Haystack adapter (``haystack-ai``): pipeline runs, component runs, agents and tools.

What is hooked:

* ``Pipeline.run`` and ``Pipeline.run_async_generator`` (which ``run_async`` and ``stream``
  read; in 2.x ``AsyncPipeline.run_async_generator``, which its ``run`` and ``run_async`` read):
  one ``invoke_workflow`` step per run, named after the pipeline (its ``metadata["name"]``, else
  its class), the run's data as input state and its result as output state. A run started
  inside a component (a ``SuperComponent``'s) nests under that component's step. An async
  run's step is current only while the pipeline's generator runs, and the tasks it creates for
  its components inherit it.
* ``Pipeline._run_component`` / ``_run_component_async`` (2.x: ``AsyncPipeline``'s): one step per
  component run, named after the component in the pipeline, with its inputs and outputs as
  state. Retrievers (components whose class name ends in ``Retriever``) are ``retrieval`` steps
  shaped like the vector-store adapters' (query or the query vector's dimensions, filters,
  ``top_k``; each document's id, score, text and metadata; never vectors); an ``Agent`` is an
  ``invoke_agent`` step; every other component is a ``component`` step. A generator's model
  call is recorded by the provider SDK's adapter (OpenAIChatGenerator over ``openai``): one
  generation, below its component step, which holds no tokens. Embedders likewise: the SDK's
  embedding below the component step, whose state shows vectors by their dimensions only.
* ``Agent.run`` / ``run_async``: ``invoke_agent`` (messages in, last message out), where the
  agent is not a pipeline component already recorded as one; 2.x agents run their chat
  generator and tool invoker as components (steps below the agent), 3.x agents call them
  directly (the generation and the tools right below the agent).
* ``Tool.invoke`` / ``invoke_async``: ``execute_tool`` with arguments, result and errors (3.x
  runs tools in a thread pool with the caller's context copied, so they nest under their agent).

Why these hooks and not Haystack's tracer: Haystack traces through one global slot
(``haystack.tracing.enable_tracing``), which the app may have filled with its own tracer
(Langfuse, Datadog, OpenTelemetry); taking the slot would cut the app's tracing off, and
wrapping whatever fills it would break when the app sets it after us. Its spans also carry
content only when ``HAYSTACK_CONTENT_TRACING_ENABLED`` is set. The methods above are where the
tracer itself is called, so the steps are the same ones Haystack's spans describe, and the
app's tracing is never touched.

Haystack 2.x turns its own OpenTelemetry tracer on when it is imported after a tracer provider
is set, which under ``posthog-instrument`` is always (3.x has no OpenTelemetry tracer of its
own). Where nothing but PostHog would receive those spans (the app has no OpenTelemetry export
of its own), that would change the app for nothing (Haystack warns on stderr that the tracer is
deprecated) and put spans that PostHog never receives between our steps. So, in that case
only, Haystack's import reads ``HAYSTACK_AUTO_TRACE_ENABLED`` as false (unless the app set it),
and Haystack behaves as without us. Where the app exports its own telemetry, Haystack's tracer
is on as under ``opentelemetry-instrument``: its spans (``haystack.pipeline.run``,
``haystack.component.run``, ...) carry no GenAI attributes, so they go to the app's exporters
and not to PostHog. They then sit between our steps, and PostHog, which only receives AI
spans, shows each step below one of them as a root of the same trace (README: the app can set
``HAYSTACK_AUTO_TRACE_ENABLED=false``). The same holds for any OpenTelemetry tracer the app
puts in Haystack's slot (3.x's ``opentelemetry-haystack`` connector).
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import os
import sys
from typing import Any, Optional

import wrapt

from .. import otel_internals
from ..genai import StepCall, StepRequest, semconv
from ._retrieval import MAX_TEXT, document, vector_dimensions
from .base import (
    AsyncStepGenerator,
    LLMInstrumentor,
    Target,
    await_in_step,
    call_in_step,
    end_step,
    integer,
    start_step,
)

logger = logging.getLogger("posthog_autoinstrument")

FRAMEWORK = "haystack"
COMPONENT = "component"  # Haystack's word for a step of a pipeline; the conventions have none
COMPONENT_NAME = "haystack.component.name"
COMPONENT_TYPE = "haystack.component.type"
DOCUMENT_STORE_TYPE = "haystack.document_store.type"

_MAX_DEPTH = 6
_MAX_ITEMS = 50

# The component (its instance) whose step is running in this context: an Agent run as a
# component is recorded once, by its component step.
_running_component: contextvars.ContextVar = contextvars.ContextVar("posthog_haystack_component", default=None)
# The pipeline whose run step is open in this context (2.x ``AsyncPipeline.run`` reads
# ``run_async_generator``: one run), and the tool being invoked (``invoke_async`` falls back to
# ``invoke`` in a thread: one call).
_running_pipeline: contextvars.ContextVar = contextvars.ContextVar("posthog_haystack_pipeline", default=None)
_running_tool: contextvars.ContextVar = contextvars.ContextVar("posthog_haystack_tool", default=None)


# -- what is recorded --------------------------------------------------------------------------
def state(value: Any, depth: int = 0) -> Any:
    """A component's inputs or outputs as JSON values: documents and chat messages by their
    content, vectors by their dimensions, other objects by their type (and name); texts cut to
    ``MAX_TEXT`` characters."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return _short(value)
    if depth > _MAX_DEPTH:
        return f"<{type(value).__name__}>"
    kind = type(value).__name__
    if kind == "Document":
        return _document(value)
    if kind == "ChatMessage":
        return _chat_message(value)
    if isinstance(value, dict):
        return {str(key): state(item, depth + 1) for key, item in list(value.items())[:_MAX_ITEMS]}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if items and all(isinstance(item, float) for item in items):
            return {"dimensions": len(items)}  # an embedding: never the vector
        return [state(item, depth + 1) for item in items[:_MAX_ITEMS]]
    if kind in ("ToolCall", "ToolCallResult", "GeneratedAnswer", "ExtractedAnswer", "SparseEmbedding"):
        return _dataclass(value, depth)
    name = getattr(value, "name", None)
    return f"<{kind} {name}>" if isinstance(name, str) else f"<{kind}>"


def _short(text: str) -> str:
    return text[:MAX_TEXT] + "...[truncated]" if len(text) > MAX_TEXT else text


def _document(doc: Any) -> dict:
    entry = document(getattr(doc, "id", None), getattr(doc, "score", None), getattr(doc, "content", None))
    meta = getattr(doc, "meta", None)
    if isinstance(meta, dict) and meta:
        entry["metadata"] = state(meta, _MAX_DEPTH - 1)
    return entry


def _chat_message(message: Any) -> dict:
    role = getattr(message, "role", None)
    entry: dict = {"role": getattr(role, "value", role) if role is not None else None}
    text = getattr(message, "text", None)
    if isinstance(text, str):
        entry["text"] = _short(text)
    calls = getattr(message, "tool_calls", None) or []
    if calls:
        entry["tool_calls"] = [
            {"id": getattr(c, "id", None), "name": getattr(c, "tool_name", None), "arguments": state(c.arguments, 3)}
            for c in calls
        ]
    results = getattr(message, "tool_call_results", None) or []
    if results:
        entry["tool_results"] = [{"result": state(getattr(r, "result", None), 3), "error": r.error} for r in results]
    return entry


def _dataclass(value: Any, depth: int) -> Any:
    if not dataclasses.is_dataclass(value):
        return f"<{type(value).__name__}>"
    return {
        f.name: state(getattr(value, f.name, None), depth + 1)
        for f in dataclasses.fields(value)
        if f.name != "embedding"
    }


def _pipeline_name(pipeline: Any) -> str:
    metadata = getattr(pipeline, "metadata", None)
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) and name else type(pipeline).__name__


def _is_agent(instance: Any) -> bool:
    return any(
        cls.__name__ == "Agent" and cls.__module__.startswith("haystack.components.agents")
        for cls in type(instance).__mro__
    )


def _is_retriever(instance: Any) -> bool:
    return type(instance).__name__.endswith("Retriever")


def _model_of(instance: Any) -> Optional[str]:
    model = getattr(instance, "model", None)
    return model if isinstance(model, str) else None


def _component_step(name: str, instance: Any) -> StepRequest:
    attributes: dict = {COMPONENT_NAME: name, COMPONENT_TYPE: type(instance).__name__}
    if _is_agent(instance):
        return StepRequest(
            semconv.Operation.INVOKE_AGENT,
            name=name,
            framework=FRAMEWORK,
            model=_model_of(getattr(instance, "chat_generator", None)),
            attributes=attributes,
        )
    if _is_retriever(instance):
        store = getattr(instance, "document_store", None)
        attributes[DOCUMENT_STORE_TYPE] = type(store).__name__ if store is not None else None
        return StepRequest(semconv.Operation.RETRIEVAL, name=name, framework=FRAMEWORK, attributes=attributes)
    return StepRequest(COMPONENT, name=name, framework=FRAMEWORK, model=_model_of(instance), attributes=attributes)


def _retrieval_input(instance: Any, inputs: dict) -> dict:
    query: dict = {}
    if isinstance(inputs.get("query"), str):
        query["query"] = _short(inputs["query"])
    else:
        dimensions, _ = vector_dimensions(inputs.get("query_embedding"))
        if dimensions is not None:
            query["query_vector"] = {"dimensions": dimensions}
    if inputs.get("filters"):
        query["filters"] = state(inputs["filters"], 1)
    return query


def _retrieval_output(outputs: Any) -> Any:
    documents = outputs.get("documents") if isinstance(outputs, dict) else None
    return [_document(d) for d in documents] if isinstance(documents, list) else state(outputs)


def _top_k(instance: Any, inputs: dict) -> Optional[int]:
    top_k = inputs.get("top_k")
    return integer(top_k if top_k is not None else getattr(instance, "top_k", None))


def _component_arguments(args: tuple, kwargs: dict) -> tuple:
    """(name, instance, inputs) of a ``_run_component`` call: the name, the component's
    metadata (with its ``instance``), then its inputs, by position or by name."""
    name = args[0] if args else kwargs.get("component_name")
    component = args[1] if len(args) > 1 else kwargs.get("component")
    inputs = args[2] if len(args) > 2 else kwargs.get("inputs", kwargs.get("component_inputs"))
    instance = component.get("instance") if isinstance(component, dict) else None
    return str(name), instance, inputs if isinstance(inputs, dict) else {}


def _given(inputs: dict) -> Any:
    """A component's inputs without those left unset (Haystack passes every socket)."""
    return state({name: value for name, value in inputs.items() if value is not None})


def _agent_output(result: Any) -> Any:
    if isinstance(result, dict) and "last_message" in result:
        return state(result["last_message"])
    messages = result.get("messages") if isinstance(result, dict) else None
    return state(messages[-1]) if isinstance(messages, list) and messages else None


# -- the hooks ----------------------------------------------------------------------------------
class _Hooks:
    """The wrapt wrappers. None of them lets an error of ours reach the application, and each
    returns exactly what Haystack returned."""

    def __init__(self, instrumentor: LLMInstrumentor):
        self.instrumentor = instrumentor

    def _start(self, describe, input_state=None) -> Optional[StepCall]:
        return start_step(self.instrumentor, describe, input_state)

    @staticmethod
    def _run(step: StepCall, wrapped, args, kwargs, output, marker: contextvars.ContextVar, marked: Any):
        """Haystack's call with ``step`` current and ``marker`` set to ``marked`` meanwhile; the
        step then ends with ``output(result)`` as its output."""
        running = marker.set(marked)
        try:
            result = call_in_step(step, wrapped, args, kwargs)
        finally:
            marker.reset(running)
        end_step(step, output, result)
        return result

    @staticmethod
    async def _run_async(step: StepCall, wrapped, args, kwargs, output, marker: contextvars.ContextVar, marked: Any):
        running = marker.set(marked)
        try:
            result = await await_in_step(step, wrapped, args, kwargs)
        finally:
            marker.reset(running)
        end_step(step, output, result)
        return result

    # pipelines ------------------------------------------------------------------------------
    def _workflow(self, pipeline: Any, args: tuple, kwargs: dict) -> Optional[StepCall]:
        if _running_pipeline.get() is pipeline:
            return None
        data = args[0] if args else kwargs.get("data")
        return self._start(
            lambda: StepRequest(semconv.Operation.INVOKE_WORKFLOW, name=_pipeline_name(pipeline), framework=FRAMEWORK),
            lambda: state(data),
        )

    def run(self, wrapped, instance, args, kwargs):
        step = self._workflow(instance, args, kwargs)
        if step is None:
            return wrapped(*args, **kwargs)
        return self._run(step, wrapped, args, kwargs, state, _running_pipeline, instance)

    def run_async_generator(self, wrapped, instance, args, kwargs):
        step = self._workflow(instance, args, kwargs)
        if step is None:
            return wrapped(*args, **kwargs)
        try:
            generator = wrapped(*args, **kwargs)  # (an async generator: nothing runs yet)
        except BaseException as exc:
            step.fail(exc)
            raise
        collected = _Collected()
        return AsyncStepGenerator(
            _PipelineStep(step, instance), generator, collected.output if step.capture_content else None, collected.add
        )

    # components -----------------------------------------------------------------------------
    def _component(self, args: tuple, kwargs: dict) -> tuple:
        try:
            name, instance, inputs = _component_arguments(args, kwargs)
        except Exception:
            return None, None, None
        if instance is None:
            return None, None, None
        retriever = _is_retriever(instance)
        step = self._start(
            lambda: _component_step(name, instance),
            (lambda: _retrieval_input(instance, inputs)) if retriever else (lambda: _given(inputs)),
        )
        if step is not None and retriever:
            try:
                step.set_attribute(semconv.REQUEST_TOP_K, _top_k(instance, inputs))
            except Exception:
                pass
        output = _retrieval_output if retriever else state
        return step, instance, output

    def run_component(self, wrapped, instance, args, kwargs):
        step, component, output = self._component(args, kwargs)
        if step is None:
            return wrapped(*args, **kwargs)
        return self._run(step, wrapped, args, kwargs, output, _running_component, component)

    def run_component_async(self, wrapped, instance, args, kwargs):
        async def traced():
            step, component, output = self._component(args, kwargs)
            if step is None:
                return await wrapped(*args, **kwargs)
            return await self._run_async(step, wrapped, args, kwargs, output, _running_component, component)

        return traced()

    # agents ---------------------------------------------------------------------------------
    def _agent(self, agent: Any, args: tuple, kwargs: dict) -> Optional[StepCall]:
        if _running_component.get() is agent:
            return None  # its component step is the agent's step
        messages = args[0] if args else kwargs.get("messages")
        return self._start(
            lambda: StepRequest(
                semconv.Operation.INVOKE_AGENT,
                name=type(agent).__name__,
                framework=FRAMEWORK,
                model=_model_of(getattr(agent, "chat_generator", None)),
            ),
            lambda: state(messages),
        )

    def agent_run(self, wrapped, instance, args, kwargs):
        step = self._agent(instance, args, kwargs)
        if step is None:
            return wrapped(*args, **kwargs)
        result = call_in_step(step, wrapped, args, kwargs)
        end_step(step, _agent_output, result)
        return result

    def agent_run_async(self, wrapped, instance, args, kwargs):
        async def traced():
            step = self._agent(instance, args, kwargs)
            if step is None:
                return await wrapped(*args, **kwargs)
            result = await await_in_step(step, wrapped, args, kwargs)
            end_step(step, _agent_output, result)
            return result

        return traced()

    # tools ----------------------------------------------------------------------------------
    def _tool(self, tool: Any, kwargs: dict) -> Optional[StepCall]:
        if _running_tool.get() is tool:
            return None
        description = getattr(tool, "description", None)
        return self._start(
            lambda: StepRequest(
                semconv.Operation.EXECUTE_TOOL,
                name=str(getattr(tool, "name", None) or type(tool).__name__),
                framework=FRAMEWORK,
                tool_type="function",
                attributes={semconv.TOOL_DESCRIPTION: description if isinstance(description, str) else None},
            ),
            lambda: state(kwargs),
        )

    def tool_invoke(self, wrapped, instance, args, kwargs):
        step = self._tool(instance, kwargs)
        if step is None:
            return wrapped(*args, **kwargs)
        return self._run(step, wrapped, args, kwargs, state, _running_tool, instance)

    def tool_invoke_async(self, wrapped, instance, args, kwargs):
        async def traced():
            step = self._tool(instance, kwargs)
            if step is None:
                return await wrapped(*args, **kwargs)
            return await self._run_async(step, wrapped, args, kwargs, state, _running_tool, instance)

        return traced()


class _PipelineStep:
    """An async pipeline run's step, which also marks its pipeline as running whenever the step
    is current (see ``_running_pipeline``)."""

    def __init__(self, step: StepCall, pipeline: Any):
        self.step = step
        self.pipeline = pipeline

    def attach(self):
        return self.step.attach(), _running_pipeline.set(self.pipeline)

    def detach(self, tokens):
        token, running = tokens
        try:
            _running_pipeline.reset(running)
        except Exception:
            pass
        self.step.detach(token)

    def __getattr__(self, name):
        return getattr(self.step, name)


class _Collected:
    """An async run's result, put together from the partial outputs its generator yields (as
    ``run_async`` does: each is the outputs so far)."""

    def __init__(self):
        self.last: Any = None

    def add(self, partial: Any) -> None:
        self.last = partial

    def output(self, last: Any) -> Any:
        return state(self.last) if self.last is not None else None


AUTO_TRACE = "HAYSTACK_AUTO_TRACE_ENABLED"


def _only_posthog_receives(tracer: Any) -> bool:
    """Whether the spans of ``tracer`` (the global provider's) go to PostHog's processor alone."""
    processors = otel_internals.enabled_tracer_span_processors(tracer)
    return processors is not None and len(processors) == 1 and hasattr(processors[0], "on_direct_end")


class HaystackInstrumentor(LLMInstrumentor):
    requirements = ("haystack-ai >= 2.0, < 4",)

    def _instrument(self, **kwargs) -> None:
        super()._instrument(**kwargs)
        try:
            self._keep_haystack_tracing_off()
        except Exception:
            logger.debug("posthog-instrument: could not check Haystack's tracing", exc_info=True)

    def _keep_haystack_tracing_off(self) -> None:
        """Haystack 2.x's import turns its OpenTelemetry tracer on if a provider records spans:
        keep it off while importing when only PostHog would receive them (module docstring)."""
        if AUTO_TRACE in os.environ or "haystack" in sys.modules or not _only_posthog_receives(self.recorder.tracer):
            return
        version = self.installed_version()
        if version is None or not version.startswith("2."):
            return  # (3.x has no tracer of its own to turn on)
        os.environ[AUTO_TRACE] = "false"

        def imported(module: Any) -> None:
            if os.environ.get(AUTO_TRACE) == "false":
                del os.environ[AUTO_TRACE]

        wrapt.register_post_import_hook(imported, "haystack")

    def targets(self) -> list:
        hooks = _Hooks(self)
        pipeline = "haystack.core.pipeline.pipeline"
        async_pipeline = "haystack.core.pipeline.async_pipeline"  # 2.x
        return [
            Target(pipeline, "Pipeline.run", wrapper=hooks.run, required_since="2.0"),
            Target(pipeline, "Pipeline._run_component", wrapper=hooks.run_component, required_since="2.0"),
            # 3.x: the async paths are Pipeline's own
            Target(pipeline, "Pipeline.run_async_generator", wrapper=hooks.run_async_generator, required_since="3.0"),
            Target(pipeline, "Pipeline._run_component_async", wrapper=hooks.run_component_async, required_since="3.0"),
            Target(async_pipeline, "AsyncPipeline.run_async_generator", wrapper=hooks.run_async_generator),
            Target(async_pipeline, "AsyncPipeline._run_component_async", wrapper=hooks.run_component_async),
            Target("haystack.components.agents.agent", "Agent.run", wrapper=hooks.agent_run),
            Target("haystack.components.agents.agent", "Agent.run_async", wrapper=hooks.agent_run_async),
            Target("haystack.tools.tool", "Tool.invoke", wrapper=hooks.tool_invoke),
            Target("haystack.tools.tool", "Tool.invoke_async", wrapper=hooks.tool_invoke_async),
        ]
