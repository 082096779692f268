"""Agents for Amazon Bedrock (``bedrock-agent-runtime``): what InvokeAgent, Retrieve and
RetrieveAndGenerate send and return, as plain values.

* A knowledge-base query (``Retrieve``, and the retrieval half of ``RetrieveAndGenerate``) is
  read as its text, the number of results asked for and the filter; each result as a
  :class:`Reference`: the document id or its location (an S3 URI, a web URL...), the score, the
  text (a table row as ``column: value`` pairs, an audio transcription, a video summary; never
  the base64 of an image), the metadata.
* InvokeAgent's event stream carries the answer in ``chunk`` events and, when the app asked for
  ``enableTrace``, ``trace`` events describing what the agent did on AWS's side. Each is read by
  :func:`trace_events` into :class:`TraceEvent` values: a model invocation's input (the prompt,
  the model, its settings) and output (the raw response read as the model family's body, the
  usage Bedrock reports, reasoning), an action group, knowledge-base lookup, code interpreter or
  collaborator agent being invoked and its observation, the final response, a failure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from ..genai import InferenceRequest, Usage
from ..genai import messages as m
from ..genai.semconv import Operation, Provider
from . import bedrock

# What a trace event is about (TraceEvent.kind).
MODEL_INPUT = "model_input"
MODEL_OUTPUT = "model_output"
TOOL_INPUT = "tool_input"  # an action group or the code interpreter
KNOWLEDGE_BASE_INPUT = "knowledge_base_input"
COLLABORATOR_INPUT = "collaborator_input"
OBSERVATION = "observation"  # the output of whichever of the three was invoked
FINAL_RESPONSE = "final_response"
FAILURE = "failure"
GUARDRAIL = "guardrail"

# The trace parts that hold model invocations, by the name of the agent's step they belong to.
_MODEL_STAGES = {
    "preProcessingTrace": "pre_processing",
    "orchestrationTrace": "orchestration",
    "postProcessingTrace": "post_processing",
    "routingClassifierTrace": "routing_classifier",
}


# -- knowledge-base results -------------------------------------------------------------------


@dataclass
class Reference:
    """One retrieved chunk: never its vector (the API returns none) nor inline bytes."""

    doc_id: Optional[str] = None
    location: Optional[str] = None
    score: Optional[float] = None
    text: Optional[str] = None
    metadata: Optional[dict] = None


def location(value: Any) -> Optional[str]:
    """A ``RetrievalResultLocation`` as one string: its URI, URL, id or SQL query."""
    if not isinstance(value, dict):
        return None
    for key, place in value.items():
        if key == "type" or not isinstance(place, dict):
            continue
        for field_name in ("uri", "url", "id", "query"):
            if isinstance(place.get(field_name), str):
                return place[field_name]
    return None


def content_text(content: Any) -> Optional[str]:
    """The readable text of a ``RetrievalResultContent``."""
    if not isinstance(content, dict):
        return None
    if isinstance(content.get("text"), str):
        return content["text"]
    row = content.get("row")
    if isinstance(row, list):
        cells = [
            f"{cell.get('columnName')}: {cell.get('columnValue')}"
            for cell in row
            if isinstance(cell, dict) and cell.get("columnName") is not None
        ]
        return "; ".join(cells) or None
    for media, key in (("audio", "transcription"), ("video", "summary")):
        if isinstance(content.get(media), dict) and isinstance(content[media].get(key), str):
            return content[media][key]
    return None


def references(results: Any) -> list:
    """``retrievalResults`` (Retrieve) or ``retrievedReferences`` (citations, lookups) as references."""
    found = []
    for result in results or ():
        if not isinstance(result, dict):
            continue
        score = result.get("score")
        found.append(
            Reference(
                doc_id=result.get("documentId") if isinstance(result.get("documentId"), str) else None,
                location=location(result.get("location")),
                score=float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
                text=content_text(result.get("content")),
                metadata=result.get("metadata") if isinstance(result.get("metadata"), dict) else None,
            )
        )
    return found


def citation_references(citations: Any) -> list:
    """The distinct references of RetrieveAndGenerate's (or a chunk's) citations, in order."""
    found, seen = [], set()
    for citation in citations or ():
        if not isinstance(citation, dict):
            continue
        for reference in references(citation.get("retrievedReferences")):
            key = (reference.doc_id, reference.location, reference.text)
            if key not in seen:
                seen.add(key)
                found.append(reference)
    return found


# -- queries -----------------------------------------------------------------------------------


@dataclass
class Query:
    """A knowledge-base query as the app asked it."""

    knowledge_base_id: Optional[str] = None
    text: Optional[str] = None
    top_k: Optional[int] = None
    details: dict = field(default_factory=dict)  # filter, search type, an image query's format


def _search_configuration(retrieval_configuration: Any) -> dict:
    if not isinstance(retrieval_configuration, dict):
        return {}
    for key in ("vectorSearchConfiguration", "managedSearchConfiguration"):
        if isinstance(retrieval_configuration.get(key), dict):
            return retrieval_configuration[key]
    return {}


def _query(knowledge_base_id: Any, text: Any, retrieval_configuration: Any) -> Query:
    search = _search_configuration(retrieval_configuration)
    top_k = search.get("numberOfResults")
    details = {"filter": search.get("filter"), "search_type": search.get("overrideSearchType")}
    return Query(
        knowledge_base_id=knowledge_base_id if isinstance(knowledge_base_id, str) else None,
        text=text if isinstance(text, str) else None,
        top_k=top_k if isinstance(top_k, int) and not isinstance(top_k, bool) else None,
        details={k: v for k, v in details.items() if v is not None},
    )


def retrieve_query(params: dict) -> Query:
    """A ``Retrieve`` call's query."""
    question = params.get("retrievalQuery") or {}
    query = _query(params.get("knowledgeBaseId"), question.get("text"), params.get("retrievalConfiguration"))
    image = question.get("image")
    if isinstance(image, dict):  # an image query: its format, never its bytes
        query.details["query_image"] = {"format": image.get("format")}
    return query


@dataclass
class RetrieveAndGenerate:
    """A ``RetrieveAndGenerate`` call as the app asked it."""

    query: Query
    model: Optional[str] = None
    source: str = "knowledge_base"  # or external_sources
    sources: list = field(default_factory=list)  # external sources' S3 URIs or identifiers
    request: Optional[InferenceRequest] = None  # the generation's settings


def retrieve_and_generate(params: dict) -> RetrieveAndGenerate:
    configuration = params.get("retrieveAndGenerateConfiguration") or {}
    text = (params.get("input") or {}).get("text")
    knowledge_base = configuration.get("knowledgeBaseConfiguration")
    external = configuration.get("externalSourcesConfiguration")
    if isinstance(knowledge_base, dict):
        query = _query(knowledge_base.get("knowledgeBaseId"), text, knowledge_base.get("retrievalConfiguration"))
        described = RetrieveAndGenerate(query, model=knowledge_base.get("modelArn"))
        generation = knowledge_base.get("generationConfiguration")
    else:
        external = external if isinstance(external, dict) else {}
        described = RetrieveAndGenerate(_query(None, text, None), model=external.get("modelArn"))
        described.source = "external_sources"
        for source in external.get("sources") or ():
            if isinstance(source, dict):
                s3 = (source.get("s3Location") or {}).get("uri")
                inline = (source.get("byteContent") or {}).get("identifier")
                described.sources.append(s3 or inline or source.get("sourceType"))
        generation = external.get("generationConfiguration")
    settings = ((generation or {}).get("inferenceConfig") or {}).get("textInferenceConfig") or {}
    request = InferenceRequest(provider=Provider.AWS_BEDROCK, model=described.model)
    request.max_tokens = settings.get("maxTokens")
    request.temperature = settings.get("temperature")
    request.top_p = settings.get("topP")
    request.stop_sequences = settings.get("stopSequences") or None
    described.request = request
    return described


# -- InvokeAgent ---------------------------------------------------------------------------


def decode_chunk(event: Any) -> Optional[str]:
    """The answer text of one ``chunk`` event (its bytes, UTF-8)."""
    chunk = event.get("chunk") if isinstance(event, dict) else None
    data = chunk.get("bytes") if isinstance(chunk, dict) else None
    if isinstance(data, (bytes, bytearray)):
        return bytes(data).decode("utf-8", errors="replace")
    if isinstance(data, str):
        return data
    return None


def return_control(event: Any) -> Optional[list]:
    """The calls an agent hands back to the app (``returnControl``), as tool-call parts."""
    payload = event.get("returnControl") if isinstance(event, dict) else None
    if not isinstance(payload, dict):
        return None
    calls = []
    for item in payload.get("invocationInputs") or ():
        if not isinstance(item, dict):
            continue
        function = item.get("functionInvocationInput")
        api = item.get("apiInvocationInput")
        if isinstance(function, dict):
            arguments = _parameters(function.get("parameters"))
            calls.append(m.tool_call(payload.get("invocationId"), function.get("function"), arguments))
        elif isinstance(api, dict):
            name = f"{api.get('httpMethod', '')} {api.get('apiPath', '')}".strip()
            calls.append(m.tool_call(payload.get("invocationId"), name, _parameters(api.get("parameters"))))
    return calls


def _parameters(parameters: Any) -> dict:
    return {
        p.get("name"): p.get("value") for p in parameters or () if isinstance(p, dict) and p.get("name") is not None
    }


@dataclass
class TraceEvent:
    """One thing an agent's trace reports. ``trace_id`` ties an input to its output."""

    kind: str
    trace_id: Optional[str] = None
    stage: Optional[str] = None  # pre_processing, orchestration, post_processing, routing_classifier
    collaborator: Optional[str] = None  # the collaborator agent whose trace this is, if not the caller's
    name: Optional[str] = None  # the tool, knowledge base or collaborator invoked
    request: Optional[InferenceRequest] = None  # MODEL_INPUT
    messages: list = field(default_factory=list)  # MODEL_INPUT: the prompt
    system: list = field(default_factory=list)  # MODEL_INPUT: its system instructions
    result: Optional[bedrock.Result] = None  # MODEL_OUTPUT
    value: Any = None  # a tool's arguments, a query, an observation's output, the final text


def _usage(metadata: Any) -> Optional[Usage]:
    reported = metadata.get("usage") if isinstance(metadata, dict) else None
    if not isinstance(reported, dict):
        return None
    return bedrock.usage(reported.get("inputTokens"), reported.get("outputTokens"))


def prompt(text: Any) -> tuple:
    """(messages, system instructions) of a model invocation's prompt: Bedrock sends the
    model's own JSON (``system`` and ``messages``) for chat models, a plain prompt for others."""
    if not isinstance(text, str):
        return [], []
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if not (isinstance(parsed, dict) and isinstance(parsed.get("messages"), list)):
        return [m.message("user", [m.text(text)])], []
    found = []
    for message in parsed["messages"]:
        if isinstance(message, dict):
            content = message.get("content")
            parts = [m.text(content)] if isinstance(content, str) else bedrock.block_parts(content)
            found.append(m.message(message.get("role") or "user", parts))
    return found, bedrock.system_parts(parsed.get("system"))


def _model_input(stage: str, data: dict) -> TraceEvent:
    settings = data.get("inferenceConfiguration") or {}
    request = InferenceRequest(provider=Provider.AWS_BEDROCK, model=data.get("foundationModel"))
    request.operation = Operation.CHAT
    request.max_tokens = settings.get("maximumLength")
    request.temperature = settings.get("temperature")
    request.top_p = settings.get("topP")
    request.top_k = settings.get("topK")
    request.stop_sequences = settings.get("stopSequences") or None
    messages, system = prompt(data.get("text"))
    return TraceEvent(MODEL_INPUT, data.get("traceId"), stage, request=request, messages=messages, system=system)


def _model_output(stage: str, data: dict) -> TraceEvent:
    raw = (data.get("rawResponse") or {}).get("content")
    parsed = bedrock.parse_body(raw) if isinstance(raw, str) else None
    result = bedrock.read_response_body(parsed) if parsed is not None else None
    if result is None or not result.parts:
        if result is None:
            result = bedrock.Result()
        text = raw if isinstance(raw, str) and parsed is None else None
        parsed_text = (data.get("parsedResponse") or {}).get("text") or (data.get("parsedResponse") or {}).get(
            "rationale"
        )
        if text or isinstance(parsed_text, str):
            result.parts = [m.text(text or parsed_text)]
    reasoning = ((data.get("reasoningContent") or {}).get("reasoningText") or {}).get("text")
    if isinstance(reasoning, str) and reasoning and not any(p.get("type") == "reasoning" for p in result.parts):
        result.parts.insert(0, m.reasoning(reasoning))
    result.usage = bedrock.merge(_usage(data.get("metadata")), result.usage)
    return TraceEvent(MODEL_OUTPUT, data.get("traceId"), stage, result=result)


def _invocation_input(stage: str, data: dict) -> Optional[TraceEvent]:
    trace_id = data.get("traceId")
    action = data.get("actionGroupInvocationInput")
    if isinstance(action, dict):
        name = action.get("function") or f"{action.get('verb', '')} {action.get('apiPath', '')}".strip()
        arguments = _parameters(action.get("parameters"))
        body = ((action.get("requestBody") or {}).get("content") or {}).get("application/json")
        if isinstance(body, dict):
            arguments.update(_parameters(body.get("properties")))
        return TraceEvent(TOOL_INPUT, trace_id, stage, name=name or action.get("actionGroupName"), value=arguments)
    code = data.get("codeInterpreterInvocationInput")
    if isinstance(code, dict):
        return TraceEvent(TOOL_INPUT, trace_id, stage, name="code_interpreter", value={"code": code.get("code")})
    lookup = data.get("knowledgeBaseLookupInput")
    if isinstance(lookup, dict):
        return TraceEvent(
            KNOWLEDGE_BASE_INPUT, trace_id, stage, name=lookup.get("knowledgeBaseId"), value=lookup.get("text")
        )
    collaborator = data.get("agentCollaboratorInvocationInput")
    if isinstance(collaborator, dict):
        text = (collaborator.get("input") or {}).get("text")
        return TraceEvent(
            COLLABORATOR_INPUT, trace_id, stage, name=collaborator.get("agentCollaboratorName"), value=text
        )
    return None


def _observation(stage: str, data: dict) -> Optional[TraceEvent]:
    trace_id = data.get("traceId")
    final = data.get("finalResponse")
    if isinstance(final, dict):
        return TraceEvent(FINAL_RESPONSE, trace_id, stage, value=final.get("text"))
    action = data.get("actionGroupInvocationOutput")
    if isinstance(action, dict):
        return TraceEvent(OBSERVATION, trace_id, stage, value=action.get("text"))
    code = data.get("codeInterpreterInvocationOutput")
    if isinstance(code, dict):
        value = code.get("executionOutput") if code.get("executionError") is None else code.get("executionError")
        return TraceEvent(OBSERVATION, trace_id, stage, value=value)
    lookup = data.get("knowledgeBaseLookupOutput")
    if isinstance(lookup, dict):
        return TraceEvent(OBSERVATION, trace_id, stage, value=references(lookup.get("retrievedReferences")))
    collaborator = data.get("agentCollaboratorInvocationOutput")
    if isinstance(collaborator, dict):
        return TraceEvent(OBSERVATION, trace_id, stage, value=(collaborator.get("output") or {}).get("text"))
    return None


def trace_events(event: Any) -> list:
    """What one InvokeAgent ``trace`` event reports, as :class:`TraceEvent` values (none for
    any other event)."""
    part = event.get("trace") if isinstance(event, dict) else None
    if not isinstance(part, dict):
        return []
    trace = part.get("trace")
    if not isinstance(trace, dict):
        return []
    chain = part.get("callerChain")
    collaborator = part.get("collaboratorName") if isinstance(chain, list) and len(chain) > 1 else None
    found: list = []
    for key, stage in _MODEL_STAGES.items():
        data = trace.get(key)
        if not isinstance(data, dict):
            continue
        if isinstance(data.get("modelInvocationInput"), dict):
            found.append(_model_input(stage, data["modelInvocationInput"]))
        if isinstance(data.get("modelInvocationOutput"), dict):
            found.append(_model_output(stage, data["modelInvocationOutput"]))
        if isinstance(data.get("invocationInput"), dict):
            found.append(_invocation_input(stage, data["invocationInput"]))
        if isinstance(data.get("observation"), dict):
            found.append(_observation(stage, data["observation"]))
    failure = trace.get("failureTrace")
    if isinstance(failure, dict):
        found.append(TraceEvent(FAILURE, failure.get("traceId"), value=failure.get("failureReason")))
    guardrail = trace.get("guardrailTrace")
    if isinstance(guardrail, dict):
        found.append(TraceEvent(GUARDRAIL, guardrail.get("traceId"), value=guardrail.get("action")))
    for item in found:
        if item is not None:
            item.collaborator = collaborator
    return [item for item in found if item is not None]
