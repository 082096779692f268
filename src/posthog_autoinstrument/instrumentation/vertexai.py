"""Vertex AI SDK adapter (``vertexai`` in google-cloud-aiplatform): ``GenerativeModel``'s
``generate_content`` and ``generate_content_async`` (streaming or not) and ``ChatSession``'s
``send_message`` / ``send_message_async`` (both go through the model's ``_generate_content*``
methods, patched here), and ``TextEmbeddingModel.get_embeddings`` / ``get_embeddings_async``.

Recorded as sent: the SDK builds its ``GenerateContentRequest`` in ``_prepare_request`` (the chat
history, system instruction, tools and generation config merged); that request is handed to the
call in progress and read on the export thread, as are the answer's protobufs, in their JSON
form, by ``formats.gemini`` (the wire format is Gemini's, whichever SDK sends it).
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from ..formats import gemini
from ..formats.endpoints import host_and_port
from ..genai import InferenceCall, InferenceRequest, StreamAccumulator, Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Provider
from ..genai.attributes import request_attributes
from ..genai.streams import observe_stream
from .base import CallHandler, LLMInstrumentor, RequestHandOver, Target, active_call, is_stream, steps_within_call

_MODEL_PREFIX = "publishers/google/models/"


def _as_dict(message: Any, field_names: bool = True) -> dict:
    """A proto-plus message (or a raw protobuf) as its JSON form: only the fields that are set,
    bytes as base64, enums by name; with the proto's field names (what ``formats.gemini`` reads),
    or the JSON names (a schema, as the API documents it)."""
    from google.protobuf import json_format

    raw = type(message).pb(message) if hasattr(type(message), "pb") else message
    return json_format.MessageToDict(raw, preserving_proto_field_name=field_names)


def _json_schema(schema: Any) -> Any:
    """An OpenAPI ``Schema`` in its JSON form, its types in JSON Schema's lower case and without the
    SDK's added ``propertyOrdering``: the schema the app wrote."""
    if isinstance(schema, list):
        return [_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: value.lower() if key == "type" and isinstance(value, str) else _json_schema(value)
        for key, value in schema.items()
        if key != "propertyOrdering"
    }


def _tools(request: Any) -> list:
    """The request's tools in the form ``formats.gemini`` reads, their parameters as JSON schemas."""
    tools = []
    for tool in request.tools:
        translated = _as_dict(tool)
        for declaration, given in zip(translated.get("function_declarations") or (), tool.function_declarations):
            if "parameters" in declaration:
                declaration["parameters"] = _json_schema(_as_dict(given.parameters, field_names=False))
        tools.append(translated)
    return tools


def _model_name(name: Any) -> Optional[str]:
    if not isinstance(name, str) or not name:
        return None
    return name.rsplit("/models/", 1)[-1] if "/models/" in name else name


def _described(location: Any, **fields: Any) -> InferenceRequest:
    """A Vertex AI request to the API endpoint the SDK sends to: the one given to ``vertexai.init``,
    else the location's."""
    initializer = sys.modules.get("google.cloud.aiplatform.initializer")
    endpoint = getattr(getattr(initializer, "global_config", None), "api_endpoint", None)
    if not isinstance(endpoint, str) or not endpoint:
        endpoint = f"{location or 'us-central1'}-aiplatform.googleapis.com"
    base_url = endpoint if "://" in endpoint else f"https://{endpoint}"
    address, port = host_and_port(base_url)
    request = InferenceRequest(provider=Provider.GCP_VERTEX_AI, server_address=address, server_port=port, **fields)
    request.attributes[semconv.BASE_URL] = base_url
    return request


def _status(exc: BaseException) -> Optional[int]:
    """google-api-core's errors carry the HTTP status as ``code``."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _record_request(call: InferenceCall, request: Any) -> None:
    sent = _as_dict(request)
    described = gemini.request_parameters(
        InferenceRequest(provider=Provider.GCP_VERTEX_AI, model=None), sent.get("generation_config") or {}
    )
    for key, value in request_attributes(described).items():
        if key not in (semconv.OPERATION_NAME, semconv.PROVIDER_NAME):
            call.set_attribute(key, value)
    call.set_input(
        messages=gemini.contents(sent.get("contents")),
        system_instructions=gemini.system_instructions(sent.get("system_instruction")),
        tool_definitions=gemini.tool_definitions(_tools(request)),
    )


# The request of each call as the SDK builds it (a fresh protobuf, not changed after it is sent).
_sent = RequestHandOver(keep=lambda request: request, record=_record_request)


def _record_answer(call: InferenceCall, response: Any) -> None:
    answer = _as_dict(response)
    outputs, reasons = gemini.response_outputs(answer, call.capture_content)
    call.set_response(
        model=answer.get("model_version"),
        response_id=answer.get("response_id"),
        finish_reasons=reasons,
        usage=gemini.usage(answer.get("usage_metadata")),
    )
    call.set_output(outputs)


def _record_chunks(call: InferenceCall, chunks: list) -> None:
    streamed = gemini.StreamedResponse(call.capture_content)
    for chunk in chunks:
        streamed.add(_as_dict(chunk))
    outputs, reasons = streamed.outputs()
    call.set_response(
        model=streamed.model, response_id=streamed.response_id, finish_reasons=reasons, usage=streamed.usage
    )
    call.set_output(outputs)


class _Chunks(StreamAccumulator):
    """Keeps each chunk's protobuf (the SDK's own, not copied); read on the export thread."""

    __slots__ = ("chunks",)
    finish_can_wait = True

    def __init__(self):
        self.chunks: list = []

    def on_chunk(self, chunk: Any) -> bool:
        raw = getattr(chunk, "_raw_response", None)
        if raw is not None:
            self.chunks.append(raw)
        return False

    def finish(self, call: InferenceCall) -> None:
        _sent.forget(call)
        _record_chunks(call, self.chunks)


class GenerateContent(CallHandler):
    """``_GenerativeModel._generate_content*``: one model request (a chat message is one too)."""

    def __init__(self, stream: bool):
        self.stream = stream

    def request(self, instance, args, kwargs):
        return _described(
            getattr(instance, "_location", None),
            model=_model_name(getattr(instance, "_model_name", None)),
            operation=semconv.Operation.GENERATE_CONTENT,
            stream=self.stream,
        ), None

    def record_input(self, call, instance, args, kwargs):
        _sent.expect(call)

    def result(self, call, result, kwargs):
        if self.stream and is_stream(result):  # (sync: the request is built at the first chunk)
            return observe_stream(steps_within_call(result, call, _status), call, _Chunks())
        _sent.forget(call)
        raw = getattr(result, "_raw_response", None)
        if raw is not None:
            call.later(_record_answer, call, raw)
        call.end()
        return result

    def error_status(self, exc):
        _sent.forget(active_call())
        return _status(exc)


class GetEmbeddings(CallHandler):
    """``_TextEmbeddingModel.get_embeddings`` / ``get_embeddings_async``."""

    def request(self, instance, args, kwargs):
        request = _described(
            getattr(getattr(instance, "_endpoint", None), "location", None),
            model=_model_name(getattr(instance, "_model_id", None)),
            operation=semconv.Operation.EMBEDDINGS,
        )
        return request, None

    def record_input(self, call, instance, args, kwargs):
        texts = args[0] if args else kwargs.get("texts")
        if isinstance(texts, (list, tuple)):
            texts = [t if isinstance(t, str) else getattr(t, "text", None) for t in texts]
            call.set_input(messages=[m.message("user", [m.text(t)]) for t in texts if isinstance(t, str)])

    def result(self, call, result, kwargs):
        counts = [getattr(getattr(e, "statistics", None), "token_count", None) for e in result or ()]
        values = getattr(result[0], "values", None) if result else None
        call.set_response(
            usage=Usage(input_tokens=int(sum(counts))) if counts and None not in counts else None,
            attributes={semconv.EMBEDDINGS_DIMENSION_COUNT: len(values) if values else None},
        )
        call.end()
        return result

    def error_status(self, exc):
        return _status(exc)


class VertexAIInstrumentor(LLMInstrumentor):
    requirements = ("google-cloud-aiplatform >= 1.60.0, < 3",)

    def targets(self) -> list:
        module = "vertexai.generative_models._generative_models"
        embeddings_module = "vertexai.language_models._language_models"
        generate, stream, embed = GenerateContent(stream=False), GenerateContent(stream=True), GetEmbeddings()
        return [
            Target(module, "_GenerativeModel._prepare_request", wrapper=_sent.wrapper),
            Target(module, "_GenerativeModel._generate_content", generate, required_since="1.60.0"),
            Target(
                module, "_GenerativeModel._generate_content_async", generate, is_async=True, required_since="1.60.0"
            ),
            # A generator function: calling it returns the stream at once.
            Target(module, "_GenerativeModel._generate_content_streaming", stream, required_since="1.60.0"),
            # A coroutine that returns an async generator.
            Target(
                module,
                "_GenerativeModel._generate_content_streaming_async",
                stream,
                is_async=True,
                required_since="1.60.0",
            ),
            Target(embeddings_module, "_TextEmbeddingModel.get_embeddings", embed, required_since="1.60.0"),
            Target(
                embeddings_module,
                "_TextEmbeddingModel.get_embeddings_async",
                embed,
                is_async=True,
                required_since="1.60.0",
            ),
        ]
