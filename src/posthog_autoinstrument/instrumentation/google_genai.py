"""Google Gen AI SDK (``google-genai``) adapter: Gemini API and Vertex AI, sync and async.

What is patched, and why there:

* ``Models._generate_content`` / ``_generate_content_stream`` (and ``AsyncModels``): the
  methods that send exactly one model request. The public ``generate_content[_stream]``
  may send several: automatic function calling runs the app's Python tools between model
  requests, and automatic continuation resumes a cut-off answer with a new request. Each
  request has its own prompt, answer and token usage, so each is one generation; a public
  call recorded as one span would count only the last request's tokens. Everything built
  on the public methods is covered through them: ``client.chats`` (``send_message`` /
  ``send_message_stream``, sync and async) and ``client.aio``. These private methods have
  had the same shape since google-genai 1.0; if a release renames them they are skipped
  (see base.py) rather than breaking the app.
* ``Models.embed_content`` / ``AsyncModels.embed_content``: one request per call.

The operation is ``generate_content``, the conventions' name for Gemini's multimodal
generation (the PostHog dialect maps it to ``chat``, which PostHog needs for a generation).
The provider is ``gcp.vertex_ai`` for a client created with ``vertexai=True``, else
``gcp.gemini``.

The translation (contents, config, candidates, usage, streamed chunks) is
:mod:`..formats.gemini`'s.
"""

from __future__ import annotations

from typing import Any, Optional

from ..formats import gemini
from ..formats.endpoints import host_and_port
from ..genai import InferenceCall, InferenceRequest, StreamAccumulator
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Provider
from .base import CallHandler, LLMInstrumentor, ResponseOrStream, Target, get


def _endpoint(models: Any) -> tuple:
    """(provider, server address, server port) of a ``Models`` / ``AsyncModels`` resource."""
    api_client = getattr(models, "_api_client", None)
    provider = Provider.GCP_VERTEX_AI if getattr(api_client, "vertexai", False) else Provider.GCP_GEMINI
    host, port = host_and_port(_base_url(models))
    return provider, host, port


def _base_url(models: Any) -> Optional[str]:
    base_url = getattr(getattr(getattr(models, "_api_client", None), "_http_options", None), "base_url", None)
    return base_url if isinstance(base_url, str) else None


def _record_response(call: InferenceCall, response: Any) -> None:
    outputs, reasons = gemini.response_outputs(response, call.capture_content)
    call.set_response(
        model=get(response, "model_version"),
        response_id=get(response, "response_id"),
        finish_reasons=reasons,
        usage=gemini.usage(get(response, "usage_metadata")),
    )
    if call.capture_content:
        call.set_output(outputs)


class GenerateContentStreamAccumulator(StreamAccumulator):
    """Folds streamed ``GenerateContentResponse`` chunks into one answer (``gemini.StreamedResponse``)."""

    __slots__ = ("response",)

    def __init__(self, capture: bool):
        self.response = gemini.StreamedResponse(capture)

    def on_chunk(self, chunk: Any) -> bool:
        self.response.add(chunk)
        return False

    def finish(self, call: InferenceCall) -> None:
        response = self.response
        outputs, reasons = response.outputs()
        call.set_response(
            model=response.model, response_id=response.response_id, finish_reasons=reasons, usage=response.usage
        )
        if response.capture:
            call.set_output(outputs)


# -- handlers -----------------------------------------------------------------------------------


def _api_error_status(exc: BaseException):
    # google-genai's APIError keeps the HTTP status in `code`.
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


class GenerateContent(ResponseOrStream):
    """One model request: ``_generate_content`` or ``_generate_content_stream``."""

    error_status = staticmethod(_api_error_status)

    record = staticmethod(_record_response)
    stream_accumulator = GenerateContentStreamAccumulator

    def request(self, instance, args, kwargs):
        provider, address, port = _endpoint(instance)
        request = InferenceRequest(
            provider=provider,
            model=kwargs.get("model"),
            operation=semconv.Operation.GENERATE_CONTENT,
            server_address=address,
            server_port=port,
            stream=self.stream,
            attributes={semconv.BASE_URL: _base_url(instance)},
        )
        return gemini.request_parameters(request, kwargs.get("config")), None

    def record_input(self, call, instance, args, kwargs):
        config = kwargs.get("config")
        call.set_input(
            messages=gemini.contents(kwargs.get("contents")),
            system_instructions=gemini.system_instructions(get(config, "system_instruction"))
            if config is not None
            else None,
            tool_definitions=gemini.tool_definitions(get(config, "tools"), getattr(instance, "_api_client", None))
            if config is not None
            else None,
        )


class EmbedContent(CallHandler):
    error_status = staticmethod(_api_error_status)

    def request(self, instance, args, kwargs):
        provider, address, port = _endpoint(instance)
        return InferenceRequest(
            provider=provider,
            model=kwargs.get("model"),
            operation=semconv.Operation.EMBEDDINGS,
            server_address=address,
            server_port=port,
            attributes={semconv.BASE_URL: _base_url(instance)},
        ), None

    def record_input(self, call, instance, args, kwargs):
        texts = gemini.embedding_texts(kwargs.get("contents"))
        call.set_input(messages=[m.message("user", [m.text(t)]) for t in texts])

    def result(self, call, result, kwargs):
        call.set_response(
            usage=gemini.embedding_usage(result),
            attributes={semconv.EMBEDDINGS_DIMENSION_COUNT: gemini.embedding_dimensions(result)},
        )
        call.end()
        return result


class GoogleGenAIInstrumentor(LLMInstrumentor):
    requirements = ("google-genai >= 1.0.0, < 4",)

    def targets(self) -> list:
        module = "google.genai.models"
        generate, stream, embed = GenerateContent(stream=False), GenerateContent(stream=True), EmbedContent()
        return [
            Target(module, "Models._generate_content", generate),
            Target(module, "Models._generate_content_stream", stream),
            Target(module, "Models.embed_content", embed),
            Target(module, "AsyncModels._generate_content", generate, is_async=True),
            # A coroutine that sends the request and returns the async iterator of chunks.
            Target(module, "AsyncModels._generate_content_stream", stream, is_async=True),
            Target(module, "AsyncModels.embed_content", embed, is_async=True),
        ]
