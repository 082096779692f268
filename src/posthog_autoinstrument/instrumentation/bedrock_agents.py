"""Agents for Amazon Bedrock (the ``bedrock-agent-runtime`` client of boto3 or aiobotocore).

Every boto3 call goes through ``botocore.client.BaseClient._make_api_call``, which the Bedrock
adapter (:mod:`.bedrock`) patches once, and every aiobotocore call through the coroutine
``AioBaseClient._make_api_call``, which :mod:`.aiobotocore` patches once; each hands this module
the calls :func:`handles` claims, to :func:`call` or :func:`async_call`. Both record the same
way; an async client's event streams are iterated with ``async for``, through an async proxy.

* ``invoke_agent``: an ``invoke_agent`` step named after the agent id (input text as input
  state, the session as ``gen_ai.conversation.id``); ``invoke_inline_agent`` the same, named
  after its ``agentName`` (else ``inline_agent``), its foundation model as the step's model. The answer arrives in the ``completion``
  event stream, which the app gets back unchanged, proxied: the step ends with the stream, its
  output the text of the ``chunk`` events (and the calls a ``returnControl`` event hands back).
  With ``enableTrace=True`` the stream also carries the agent's trace, which is what the agent
  did on AWS's side, and it becomes children of the step: each model invocation a generation
  (model, settings, prompt, raw response, the tokens Bedrock reports: they are billed to the
  app's account and nothing else records them), each action group or code interpreter call an
  ``execute_tool`` step, each knowledge-base lookup a ``retrieval`` step, each collaborator
  agent an ``invoke_agent`` step with its own trace's events below it. Their times are when
  the app read the events.
* ``retrieve``: a ``retrieval`` step, as the vector stores' (:mod:`._retrieval`): the query text,
  top-k and filter; each result's document id or location, score, text and metadata.
* ``retrieve_and_generate`` and ``retrieve_and_generate_stream``: one ``retrieve_and_generate``
  step, the model ARN as its model, the query as input state, the generated text and the
  references its citations name as output state (the API reports no tokens, so there is no
  generation).

Errors are recorded with their HTTP status; content (input and output state, prompts, outputs)
follows the privacy settings, as every step's does.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ..formats import bedrock_agents as agents
from ..formats.endpoints import host_and_port
from ..genai import AsyncStreamProxy, InferenceRequest, StepRequest, StreamAccumulator, SyncStreamProxy, semconv
from ..genai import messages as m
from ..genai.one_generation import detach
from ..genai.semconv import Operation, Provider
from ._retrieval import Retrieval, RetrievalHandler, document, retrieval_wrapper

logger = logging.getLogger("posthog_autoinstrument")

SERVICE = "bedrock-agent-runtime"
INVOKE_AGENT = "InvokeAgent"
INVOKE_INLINE_AGENT = "InvokeInlineAgent"
RETRIEVE = "Retrieve"
RETRIEVE_AND_GENERATE = "RetrieveAndGenerate"
RETRIEVE_AND_GENERATE_STREAM = "RetrieveAndGenerateStream"
AGENT_OPERATIONS = (INVOKE_AGENT, INVOKE_INLINE_AGENT)
OPERATIONS = frozenset({*AGENT_OPERATIONS, RETRIEVE, RETRIEVE_AND_GENERATE, RETRIEVE_AND_GENERATE_STREAM})

FRAMEWORK = "bedrock_agents"
RETRIEVE_AND_GENERATE_STEP = "retrieve_and_generate"  # no GenAI convention names this operation
ALIAS_ID = "aws.bedrock.agent.alias_id"
STAGE = "aws.bedrock.agent.stage"  # which of the agent's steps a model invocation served
FAILURE_REASON = "aws.bedrock.agent.failure_reason"
GUARDRAIL_ACTION = "aws.bedrock.guardrail.action"


def handles(instance: Any, args: tuple) -> bool:
    """Whether this ``_make_api_call`` is one of the calls recorded here; never raises (an
    operation name of any type just passes through)."""
    try:
        return bool(args) and args[0] in OPERATIONS and instance.meta.service_model.service_name == SERVICE
    except Exception:
        return False


def call(instrumentor: Any, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Make the call, recorded; the app gets exactly what botocore returns or raises."""
    if args[0] == RETRIEVE:
        return retrieval_wrapper(instrumentor, RETRIEVE_QUERY)(wrapped, instance, args, kwargs)
    params, step = _begin(instrumentor, instance, args, kwargs)
    if step is None:
        return wrapped(*args, **kwargs)
    token = step.attach()
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        step.fail(exc, error_status(exc))
        raise
    finally:
        detach(token)
    return _end(instrumentor, args[0], step, params, result, SyncStreamProxy)


def async_call(instrumentor: Any, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """The same for an async client (aiobotocore's coroutine ``_make_api_call``): a coroutine,
    recorded when awaited; the event streams it returns are iterated with ``async for``."""
    if args[0] == RETRIEVE:
        return retrieval_wrapper(instrumentor, RETRIEVE_QUERY, is_async=True)(wrapped, instance, args, kwargs)

    async def recorded():
        params, step = _begin(instrumentor, instance, args, kwargs)
        if step is None:
            return await wrapped(*args, **kwargs)
        token = step.attach()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            step.fail(exc, error_status(exc))
            raise
        finally:
            detach(token)
        return _end(instrumentor, args[0], step, params, result, AsyncStreamProxy)

    return recorded()


def _begin(instrumentor: Any, instance: Any, args: tuple, kwargs: dict) -> tuple:
    """(the call's parameters, its step or None when it is not recorded)."""
    params = args[1] if len(args) > 1 else kwargs.get("api_params")
    params = params if isinstance(params, dict) else {}
    return params, _start(instrumentor, args[0], params, instance) if is_instrumentation_enabled() else None


def _end(instrumentor: Any, operation: str, step: Any, params: dict, result: Any, stream_proxy: type) -> Any:
    """The result, its event stream (if any) wrapped in ``stream_proxy``, which ends the step."""
    try:
        return _finish(instrumentor, operation, step, params, result, stream_proxy)
    except Exception:
        logger.debug("posthog-instrument: could not record the Bedrock agent's answer", exc_info=True)
        step.end()
        return result


def error_status(exc: BaseException) -> Optional[int]:
    # botocore's ClientError keeps the HTTP status in its parsed error response.
    response = getattr(exc, "response", None)
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    status = metadata.get("HTTPStatusCode") if isinstance(metadata, dict) else None
    return status if isinstance(status, int) else None


def _endpoint(client: Any) -> tuple:
    return host_and_port(getattr(getattr(client, "meta", None), "endpoint_url", None))


def _start(instrumentor: Any, operation: str, params: dict, instance: Any) -> Any:
    try:
        address, port = _endpoint(instance)
        where = {semconv.SERVER_ADDRESS: address, semconv.SERVER_PORT: port}
        if operation in AGENT_OPERATIONS:
            agent_id = params.get("agentId")
            step = instrumentor.recorder.start_step(
                StepRequest(
                    Operation.INVOKE_AGENT,
                    name=agent_id or params.get("agentName") or "inline_agent",
                    framework=FRAMEWORK,
                    provider=Provider.AWS_BEDROCK,
                    model=params.get("foundationModel"),  # an inline agent's
                    attributes={
                        semconv.AGENT_ID: agent_id,
                        ALIAS_ID: params.get("agentAliasId"),
                        semconv.CONVERSATION_ID: params.get("sessionId"),
                        **where,
                    },
                )
            )
            if step is not None:
                step.set_input_state(params.get("inputText"))
            return step
        described = agents.retrieve_and_generate(params)
        query = described.query
        request = described.request
        step = instrumentor.recorder.start_step(
            StepRequest(
                RETRIEVE_AND_GENERATE_STEP,
                name=query.knowledge_base_id or described.source,
                framework=FRAMEWORK,
                provider=Provider.AWS_BEDROCK,
                model=described.model,
                attributes={
                    semconv.DATA_SOURCE_ID: query.knowledge_base_id,
                    semconv.REQUEST_TOP_K: query.top_k,
                    semconv.REQUEST_MAX_TOKENS: request.max_tokens,
                    semconv.REQUEST_TEMPERATURE: request.temperature,
                    semconv.REQUEST_TOP_P: request.top_p,
                    semconv.CONVERSATION_ID: params.get("sessionId"),
                    **where,
                },
            )
        )
        if step is not None:
            state = {"query": query.text, **query.details}
            if described.sources:
                state["sources"] = described.sources
            step.set_input_state(state)
        return step
    except Exception:
        logger.debug("posthog-instrument: could not describe the Bedrock agent call", exc_info=True)
        return None


def _finish(instrumentor: Any, operation: str, step: Any, params: dict, result: Any, stream_proxy: type) -> Any:
    if not isinstance(result, dict):
        step.end()
        return result
    step.set_attribute(semconv.AWS_REQUEST_ID, (result.get("ResponseMetadata") or {}).get("RequestId"))
    if operation in AGENT_OPERATIONS and result.get("completion") is not None:
        parent = trace.set_span_in_context(step.span, otel_context.get_current())
        run = AgentRun(instrumentor, step, parent, params.get("sessionId"))
        result["completion"] = stream_proxy(result["completion"], step, run)
        return result
    if operation == RETRIEVE_AND_GENERATE_STREAM and result.get("stream") is not None:
        step.set_attribute(semconv.CONVERSATION_ID, result.get("sessionId"))
        result["stream"] = stream_proxy(result["stream"], step, GeneratedAnswer())
        return result
    if operation == RETRIEVE_AND_GENERATE:
        step.set_attribute(semconv.CONVERSATION_ID, result.get("sessionId"))
        answer = GeneratedAnswer()
        answer.text.append((result.get("output") or {}).get("text") or "")
        answer.citations.extend(result.get("citations") or ())
        answer.guardrail = result.get("guardrailAction")
        answer.finish(step)
    step.end()
    return result


def _documents(references: list) -> list:
    entries = []
    for reference in references:
        entry = document(reference.doc_id or reference.location, reference.score, reference.text, reference.metadata)
        if reference.location and reference.doc_id:
            entry["location"] = reference.location
        entries.append(entry)
    return entries


# -- retrieve ------------------------------------------------------------------------------


class RetrieveQuery(RetrievalHandler):
    """``retrieve``: a knowledge-base query, recorded as the vector stores' queries are."""

    def describe(self, instance, args, kwargs):
        params = args[1] if len(args) > 1 else kwargs.get("api_params")
        query = agents.retrieve_query(params if isinstance(params, dict) else {})
        address, port = _endpoint(instance)
        return Retrieval(
            store=Provider.AWS_BEDROCK,
            collection=query.knowledge_base_id,
            texts=[query.text] if query.text is not None else None,
            top_k=query.top_k,
            details=query.details,
            server_address=address,
            server_port=port,
        )

    def documents(self, result, retrieval, args, kwargs):
        return _documents(agents.references(result.get("retrievalResults"))) if isinstance(result, dict) else None

    def response_attributes(self, result):
        if not isinstance(result, dict):
            return None
        return {
            GUARDRAIL_ACTION: result.get("guardrailAction"),
            semconv.AWS_REQUEST_ID: (result.get("ResponseMetadata") or {}).get("RequestId"),
        }

    def error_status(self, exc):
        return error_status(exc)


RETRIEVE_QUERY = RetrieveQuery()


# -- retrieve_and_generate -----------------------------------------------------------------


class GeneratedAnswer(StreamAccumulator):
    """The generated text and citations of ``retrieve_and_generate`` (or its stream's events)."""

    def __init__(self):
        self.text: list = []
        self.citations: list = []
        self.guardrail: Optional[str] = None

    def on_chunk(self, event: Any) -> bool:
        if isinstance(event, dict):
            output = event.get("output")
            if isinstance(output, dict) and isinstance(output.get("text"), str):
                self.text.append(output["text"])
            citation = event.get("citation")
            if isinstance(citation, dict):
                self.citations.append(citation.get("citation") or citation)
            guardrail = event.get("guardrail")
            if isinstance(guardrail, dict):
                self.guardrail = guardrail.get("action")
        return False

    def finish(self, call: Any) -> None:
        call.set_attribute(GUARDRAIL_ACTION, self.guardrail)
        call.set_output_state(
            {"text": "".join(self.text), "references": _documents(agents.citation_references(self.citations))}
        )


# -- invoke_agent --------------------------------------------------------------------------


class AgentRun(StreamAccumulator):
    """Folds an InvokeAgent ``completion`` stream: the answer, and the trace as child spans."""

    def __init__(self, instrumentor: Any, step: Any, parent: Any, session_id: Any):
        self.recorder = instrumentor.recorder
        self.step = step
        self.parent = parent  # the context the agent's children start in
        self.session_id = session_id if isinstance(session_id, str) else None
        self.text: list = []
        self.handed_back: list = []  # returnControl's calls
        self.open: dict = {}  # (kind, trace id) -> the generation or step it started
        self.collaborators: dict = {}  # name -> the context of its open step
        self.models: dict = {}  # stage -> the model its last invocation named

    def on_chunk(self, event: Any) -> bool:
        text = agents.decode_chunk(event)
        if text:
            self.text.append(text)
        calls = agents.return_control(event)
        if calls:
            self.handed_back.extend(calls)
        for item in agents.trace_events(event):
            try:
                self._record(item)
            except Exception:
                logger.debug("posthog-instrument: Bedrock agent trace event not recorded", exc_info=True)
        return False

    def finish(self, call: Any) -> None:
        for child in self.open.values():
            child.end()
        self.open.clear()
        text = "".join(self.text)
        if self.handed_back:
            call.set_output_state({"text": text, "return_control": self.handed_back} if text else self.handed_back)
        else:
            call.set_output_state(text)

    # -- the trace -------------------------------------------------------------------------

    def _parent(self, item: Any) -> Any:
        return self.collaborators.get(item.collaborator, self.parent) if item.collaborator else self.parent

    def _start_step(self, item: Any, request: StepRequest) -> Any:
        step = self.recorder.start_step(request, parent=self._parent(item))
        if step is not None:
            step.capture_content = step.capture_content and self.step.capture_content
            self.open[("invocation", item.trace_id)] = step
        return step

    def _start_generation(self, item: Any, request: Any) -> Any:
        request.conversation_id = self.session_id
        request.attributes.update({semconv.FRAMEWORK: FRAMEWORK, STAGE: item.stage})
        generation = self.recorder.start(request, parent=self._parent(item))
        if generation is not None:
            generation.capture_content = generation.capture_content and self.step.capture_content
        return generation

    def _record(self, item: Any) -> None:
        kind = item.kind
        if kind == agents.MODEL_INPUT:
            self.models[item.stage] = item.request.model
            generation = self._start_generation(item, item.request)
            if generation is not None:
                generation.set_input(messages=item.messages, system_instructions=item.system)
                self.open[("model", item.trace_id)] = generation
        elif kind == agents.MODEL_OUTPUT:
            generation = self.open.pop(("model", item.trace_id), None)
            if generation is None:  # the output without its input: what it says is still worth having
                request = InferenceRequest(provider=Provider.AWS_BEDROCK, model=self.models.get(item.stage))
                generation = self._start_generation(item, request)
                if generation is None:
                    return
            result = item.result
            generation.set_response(
                model=result.model,
                response_id=result.response_id,
                finish_reasons=[result.finish_reason] if result.finish_reason else None,
                usage=result.usage,
            )
            if result.parts:
                generation.set_output([m.output_message(result.parts, result.finish_reason)])
            generation.end()
        elif kind == agents.TOOL_INPUT:
            step = self._start_step(
                item,
                StepRequest(Operation.EXECUTE_TOOL, name=item.name, framework=FRAMEWORK, tool_type="function"),
            )
            if step is not None:
                step.set_input_state(item.value)
        elif kind == agents.KNOWLEDGE_BASE_INPUT:
            step = self._start_step(
                item,
                StepRequest(Operation.RETRIEVAL, name=item.name, framework=FRAMEWORK, provider=Provider.AWS_BEDROCK),
            )
            if step is not None:
                step.set_input_state({"query": item.value})
        elif kind == agents.COLLABORATOR_INPUT:
            step = self._start_step(
                item,
                StepRequest(Operation.INVOKE_AGENT, name=item.name, framework=FRAMEWORK, provider=Provider.AWS_BEDROCK),
            )
            if step is not None:
                step.set_input_state(item.value)
                self.collaborators[item.name] = trace.set_span_in_context(step.span, self._parent(item))
        elif kind == agents.OBSERVATION:
            step = self.open.pop(("invocation", item.trace_id), None)
            if step is not None:
                value = item.value
                step.set_output_state(_documents(value) if isinstance(value, list) else value)
                step.end()
                for name, context in list(self.collaborators.items()):
                    if trace.get_current_span(context) is step.span:
                        del self.collaborators[name]
        elif kind == agents.FAILURE and not item.collaborator:
            self.step.set_attribute(FAILURE_REASON, item.value)
        elif kind == agents.GUARDRAIL and not item.collaborator:
            self.step.set_attribute(GUARDRAIL_ACTION, item.value)
