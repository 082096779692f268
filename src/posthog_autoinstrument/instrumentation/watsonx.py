"""IBM watsonx.ai adapter (``ibm-watsonx-ai``): ``ModelInference.chat`` / ``chat_stream`` /
``achat`` / ``achat_stream``, ``generate`` / ``generate_text`` / ``generate_text_stream``, and
``Embeddings.generate`` / ``agenerate`` (which ``embed_documents`` and ``embed_query`` call).

Chat is recorded as sent: the SDK merges the app's messages, parameters (the call's, else the
model's defaults) and tools into one payload in ``_prepare_chat_payload``; that payload, in
OpenAI's chat shape, is handed to the call in progress (a copy of its lists: the app owns the
messages) and translated on the export thread by ``formats.openai_chat``, as are the answers.
Text generation is recorded from the prompt and parameters the app passed.
"""

from __future__ import annotations

from typing import Any, Optional

from ..formats import openai_chat
from ..formats.endpoints import host_and_port
from ..formats.fields import get, integer
from ..genai import InferenceCall, InferenceRequest, StreamAccumulator, Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Provider
from ..genai.attributes import request_attributes
from ..genai.streams import observe_stream
from .base import (
    CallHandler,
    LLMInstrumentor,
    RequestHandOver,
    Target,
    active_call,
    is_stream,
    arguments_now,
    steps_within_call,
)

# Text generation's stop reasons in the conventions' terms.
_STOP_REASONS = {
    "eos_token": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "token_limit": "length",
    "time_limit": "time_limit",
    "cancelled": "cancelled",
    "error": "error",
}
_GENERATION_PARAMETERS = (
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("top_k", "top_k"),
    ("max_new_tokens", "max_tokens"),
    ("random_seed", "seed"),
    ("repetition_penalty", "frequency_penalty"),
)


def _status(exc: BaseException) -> Optional[int]:
    """The SDK's ``ApiRequestFailure`` keeps the HTTP response."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _described(instance: Any, operation: str, stream: bool = False) -> InferenceRequest:
    client = getattr(instance, "_client", None)
    url = getattr(getattr(client, "credentials", None), "url", None)
    address, port = host_and_port(url)
    model = getattr(instance, "model_id", None) or getattr(instance, "deployment_id", None)
    request = InferenceRequest(
        provider=Provider.IBM_WATSONX_AI,
        model=model,
        operation=operation,
        server_address=address,
        server_port=port,
        stream=stream,
    )
    if isinstance(url, str):
        request.attributes[semconv.BASE_URL] = url
    return request


def _parameters(params: Any) -> dict:
    if params is None:
        return {}
    to_dict = getattr(params, "to_dict", None)
    return to_dict() if callable(to_dict) else params if isinstance(params, dict) else {}


# -- chat -----------------------------------------------------------------------------------


def _record_payload(call: InferenceCall, payload: dict) -> None:
    described = openai_chat.request_parameters(InferenceRequest(provider=Provider.IBM_WATSONX_AI, model=None), payload)
    for key, value in request_attributes(described).items():
        if key not in (semconv.OPERATION_NAME, semconv.PROVIDER_NAME):
            call.set_attribute(key, value)
    call.set_input(
        messages=[openai_chat.input_message(message) for message in payload.get("messages") or ()],
        tool_definitions=openai_chat.tool_definitions(payload.get("tools")),
    )


# The chat payload of each call as the SDK builds it; its lists copied (the app owns the messages).
_sent = RequestHandOver(keep=arguments_now, record=_record_payload)


def _record_chat_answer(call: InferenceCall, answer: dict) -> None:
    choices = answer.get("choices") or ()
    reasons = [openai_chat.finish_reason(get(choice, "finish_reason")) for choice in choices]
    call.set_response(
        model=answer.get("model_id") or answer.get("model"),
        response_id=answer.get("id"),
        finish_reasons=[r for r in reasons if r],
        usage=openai_chat.usage(answer.get("usage")),
    )
    call.set_output(
        [openai_chat.output_message(get(choice, "message"), reason) for choice, reason in zip(choices, reasons)]
    )


class _ChatChunks(StreamAccumulator):
    """Streamed chat chunks are OpenAI's (dicts); the last one carries the usage."""

    __slots__ = ("capture", "choices", "model", "response_id", "usage")

    def __init__(self, capture: bool):
        self.capture = capture
        self.choices: dict = {}
        self.model = self.response_id = self.usage = None

    def on_chunk(self, chunk: Any) -> bool:
        if isinstance(chunk, dict):
            self.model = self.model or chunk.get("model_id")
            self.response_id = self.response_id or chunk.get("id")
            if chunk.get("usage"):
                self.usage = chunk["usage"]
            openai_chat.add_chunk_choices(
                self.choices, chunk.get("choices"), self.capture, lambda delta: get(delta, "reasoning_content")
            )
        return False

    def finish(self, call: InferenceCall) -> None:
        _sent.forget(call)
        ordered = openai_chat.ordered_choices(self.choices)
        reasons = [openai_chat.finish_reason(choice.finish_reason) for choice in ordered]
        call.set_response(
            model=self.model,
            response_id=self.response_id,
            finish_reasons=[r for r in reasons if r],
            usage=openai_chat.usage(self.usage),
        )
        if self.capture:
            call.set_output([m.output_message(choice.parts(), reason) for choice, reason in zip(ordered, reasons)])


class Chat(CallHandler):
    """``ModelInference.chat`` / ``achat`` (``stream=False``) and ``chat_stream`` / ``achat_stream``."""

    def __init__(self, stream: bool):
        self.stream = stream

    def request(self, instance, args, kwargs):
        return _described(instance, semconv.Operation.CHAT, self.stream), None

    def record_input(self, call, instance, args, kwargs):
        _sent.expect(call)

    def result(self, call, result, kwargs):
        if self.stream and is_stream(result):  # the payload is built at the first chunk
            return observe_stream(steps_within_call(result, call, _status), call, _ChatChunks(call.capture_content))
        _sent.forget(call)
        if isinstance(result, dict):
            call.later(_record_chat_answer, call, result)
        call.end()
        return result

    def error_status(self, exc):
        _sent.forget(active_call())
        return _status(exc)


# -- text generation ------------------------------------------------------------------------


def _generation_usage(result: dict) -> Optional[Usage]:
    results = result.get("results") or ()
    if not results:
        return None
    first = results[0]
    return Usage(
        input_tokens=integer(get(first, "input_token_count")),
        output_tokens=integer(get(first, "generated_token_count")),
    )


class Generate(CallHandler):
    """``ModelInference.generate`` (the whole response), ``generate_text`` (its text, or the
    response with ``raw_response=True``) and ``generate_text_stream`` (text pieces)."""

    def __init__(self, stream: bool = False):
        self.stream = stream

    def request(self, instance, args, kwargs):
        request = _described(instance, semconv.Operation.TEXT_COMPLETION, self.stream)
        params = _parameters(
            kwargs.get("params", args[1] if len(args) > 1 else None) or getattr(instance, "params", None)
        )
        for name, field in _GENERATION_PARAMETERS:
            value = params.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                setattr(request, field, value)
        stops = params.get("stop_sequences")
        if stops:
            request.stop_sequences = stops
        return request, None

    def record_input(self, call, instance, args, kwargs):
        prompt = kwargs.get("prompt", args[0] if args else None)
        prompts = (
            [prompt]
            if isinstance(prompt, str)
            else [p for p in prompt or () if isinstance(p, str)]
            if isinstance(prompt, list)
            else []
        )
        call.set_input(messages=[m.message("user", [m.text(p)]) for p in prompts])

    def result(self, call, result, kwargs):
        if self.stream and is_stream(result):
            return observe_stream(result, call, _TextPieces(call.capture_content))
        answers = result if isinstance(result, list) else [result]
        outputs, reasons, usage = [], [], None
        for answer in answers:
            if isinstance(answer, str):
                outputs.append(m.output_message([m.text(answer)], None))
                continue
            if isinstance(answer, dict):
                usage = usage or _generation_usage(answer)
                for one in answer.get("results") or ():
                    reason = _STOP_REASONS.get(one.get("stop_reason"), one.get("stop_reason"))
                    reasons.append(reason)
                    outputs.append(m.output_message([m.text(one.get("generated_text") or "")], reason))
        model = answers[0].get("model_id") if answers and isinstance(answers[0], dict) else None
        call.set_response(model=model, finish_reasons=[r for r in reasons if r], usage=usage)
        call.set_output(outputs)
        call.end()
        return result


class _TextPieces(StreamAccumulator):
    __slots__ = ("capture", "pieces")

    def __init__(self, capture: bool):
        self.capture = capture
        self.pieces: list = []

    def on_chunk(self, chunk: Any) -> bool:
        if self.capture and isinstance(chunk, str):
            self.pieces.append(chunk)
        return False

    def finish(self, call: InferenceCall) -> None:
        if self.capture:
            call.set_output([m.output_message([m.text("".join(self.pieces))], None)])


# -- embeddings -----------------------------------------------------------------------------


class Embed(CallHandler):
    """``Embeddings.generate`` / ``agenerate``."""

    def request(self, instance, args, kwargs):
        return _described(instance, semconv.Operation.EMBEDDINGS), None

    def record_input(self, call, instance, args, kwargs):
        inputs = kwargs.get("inputs", args[0] if args else None)
        if isinstance(inputs, list):
            call.set_input(messages=[m.message("user", [m.text(t)]) for t in inputs if isinstance(t, str)])

    def result(self, call, result, kwargs):
        if isinstance(result, dict):
            results = result.get("results") or ()
            vector = get(results[0], "embedding") if results else None
            call.set_response(
                model=result.get("model_id"),
                usage=Usage(input_tokens=integer(result.get("input_token_count"))),
                attributes={semconv.EMBEDDINGS_DIMENSION_COUNT: len(vector) if isinstance(vector, list) else None},
            )
        call.end()
        return result

    def error_status(self, exc):
        return _status(exc)


class WatsonxInstrumentor(LLMInstrumentor):
    requirements = ("ibm-watsonx-ai >= 1.1.0, < 2",)

    def targets(self) -> list:
        module = "ibm_watsonx_ai.foundation_models.inference.model_inference"
        chat, chat_stream, generate = Chat(stream=False), Chat(stream=True), Generate()
        targets = [
            Target(module, "ModelInference.chat", chat, required_since="1.1.0"),
            Target(module, "ModelInference.achat", chat, is_async=True),
            Target(module, "ModelInference.chat_stream", chat_stream, required_since="1.1.0"),
            Target(module, "ModelInference.achat_stream", chat_stream, is_async=True),
            Target(module, "ModelInference.generate", generate, required_since="1.1.0"),
            Target(module, "ModelInference.generate_text", generate, required_since="1.1.0"),
            Target(module, "ModelInference.generate_text_stream", Generate(stream=True), required_since="1.1.0"),
        ]
        for payload_module, kind in (
            ("ibm_watsonx_ai.foundation_models.inference.fm_model_inference", "FMModelInference"),
            ("ibm_watsonx_ai.foundation_models.inference.deployment_model_inference", "DeploymentModelInference"),
        ):
            targets.append(Target(payload_module, f"{kind}._prepare_chat_payload", wrapper=_sent.wrapper))
        embeddings = "ibm_watsonx_ai.foundation_models.embeddings.embeddings"
        targets += [
            Target(embeddings, "Embeddings.generate", Embed(), required_since="1.1.0"),
            Target(embeddings, "Embeddings.agenerate", Embed(), is_async=True),
        ]
        return targets
