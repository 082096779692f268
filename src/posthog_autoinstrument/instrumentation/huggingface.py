"""Hugging Face adapter: ``huggingface_hub.InferenceClient`` and ``AsyncInferenceClient``.

``chat_completion`` (also reached as ``chat.completions.create``, streaming or not) speaks OpenAI's
chat format; ``text_generation`` TGI's; ``feature_extraction`` is an embedding. The provider is
the one the call was routed to: the client's request helper names it (``provider="together"``, or
the one picked from the model's providers), Hugging Face's router says which it chose in a
response header (server-side routing), and a model given as a URL is served by its endpoint
(``huggingface``).
"""

from __future__ import annotations

import contextvars
from typing import Any, Optional

from .. import config
from ..formats import huggingface as hf
from ..formats import openai_chat
from ..formats.openai_chat import ordered_choices
from ..genai import InferenceCall, InferenceRequest, StreamAccumulator
from ..genai import messages as m
from ..genai import semconv
from ..genai.streams import observe_stream
from .base import CallHandler, LLMInstrumentor, Target, active_call, arg, get, host_and_port, is_stream, number

# The Hugging Face call in progress in this context, for the hooks inside the client that learn
# where it goes (compared by identity with the current call, so a stale value never matches).
_current = contextvars.ContextVar("posthog_autoinstrument.huggingface_call", default=None)


def _our_call() -> Optional[InferenceCall]:
    call = active_call()
    return call if call is not None and call is _current.get() and not call.ended else None


class _HFCall(CallHandler):
    operation = semconv.Operation.CHAT

    def request(self, instance, args, kwargs):
        return self.describe(instance, kwargs), None

    def describe(self, instance: Any, kwargs: dict) -> InferenceRequest:
        client_model = getattr(instance, "model", None)
        model = arg(kwargs, "model")
        url = next((value for value in (client_model, model) if hf.is_url(value)), None)
        host, port = host_and_port(url) if url else (None, None)
        provider = hf.ENDPOINT_PROVIDER if url else hf.chosen_provider(getattr(instance, "provider", None))
        return InferenceRequest(
            provider=provider or hf.ENDPOINT_PROVIDER,
            model=next(
                (value for value in (model, client_model) if isinstance(value, str) and not hf.is_url(value)), None
            ),
            operation=self.operation,
            server_address=host,
            server_port=port,
            stream=bool(arg(kwargs, "stream", False)),
            temperature=number(kwargs.get("temperature")),
            top_p=number(kwargs.get("top_p")),
            seed=number(kwargs.get("seed")),
        )

    def record_input(self, call, instance, args, kwargs):
        _current.set(call)
        self.record_request(call, args, kwargs)

    def record_request(self, call: InferenceCall, args: tuple, kwargs: dict) -> None:
        raise NotImplementedError

    def record(self, call: InferenceCall, result: Any) -> None:
        raise NotImplementedError

    def accumulator(self, call: InferenceCall, kwargs: dict) -> StreamAccumulator:
        raise NotImplementedError

    def result(self, call, result, kwargs):
        if is_stream(result):
            return observe_stream(result, call, self.accumulator(call, kwargs))
        call.later(self.record, call, result)
        call.end()
        return result

    def error_status(self, exc):
        response = getattr(exc, "response", None)  # HfHubHTTPError keeps the HTTP response
        return getattr(response, "status_code", None)


def _first(args: tuple, kwargs: dict, name: str) -> Any:
    return args[0] if args else kwargs.get(name)


# -- chat completions ------------------------------------------------------------------------


class _UsageRequest(dict):
    """``stream_options`` we added ourselves: the usage-only chunk is then hidden from the app."""


class ChatStreamAccumulator(StreamAccumulator):
    __slots__ = ("hide_usage_chunk", "capture", "model", "response_id", "usage", "choices")
    finish_can_wait = True

    def __init__(self, hide_usage_chunk: bool, capture: bool):
        self.hide_usage_chunk = hide_usage_chunk
        self.capture = capture
        self.model = None
        self.response_id = None
        self.usage = None
        self.choices: dict = {}

    def on_chunk(self, chunk: Any) -> bool:
        self.model = self.model or get(chunk, "model")
        self.response_id = self.response_id or get(chunk, "id")
        choices = get(chunk, "choices")
        usage = get(chunk, "usage")
        if usage is not None:
            self.usage = usage
            if self.hide_usage_chunk and not choices:
                return True
        openai_chat.add_chunk_choices(self.choices, choices, self.capture, lambda delta: get(delta, "reasoning"))
        return False

    def finish(self, call: InferenceCall) -> None:
        ordered = ordered_choices(self.choices)
        reasons = [openai_chat.finish_reason(buffer.finish_reason) for buffer in ordered]
        call.set_response(
            model=self.model,
            response_id=self.response_id,
            finish_reasons=[r for r in reasons if r],
            usage=openai_chat.usage(self.usage),
        )
        if self.capture:
            call.set_output([m.output_message(buffer.parts(), reason) for buffer, reason in zip(ordered, reasons)])


class ChatCompletion(_HFCall):
    def request(self, instance, args, kwargs):
        new_kwargs = None
        if arg(kwargs, "stream", False) and config.settings().stream_usage and not arg(kwargs, "stream_options"):
            new_kwargs = dict(kwargs, stream_options=_UsageRequest(include_usage=True))
        return self.describe(instance, new_kwargs or kwargs), new_kwargs

    def describe(self, instance, kwargs):
        request = openai_chat.request_parameters(super().describe(instance, kwargs), kwargs)
        response_format = arg(kwargs, "response_format")
        if response_format is not None and get(response_format, "type") in ("json", "regex"):
            request.output_type = "json" if get(response_format, "type") == "json" else "text"
        return request

    def record_request(self, call, args, kwargs):
        messages = _first(args, kwargs, "messages") or ()
        call.set_input(
            messages=[openai_chat.input_message(message) for message in messages],
            tool_definitions=openai_chat.tool_definitions(arg(kwargs, "tools")),
        )

    def record(self, call, result):
        choices = get(result, "choices") or ()
        reasons = [openai_chat.finish_reason(get(choice, "finish_reason")) for choice in choices]
        call.set_response(
            model=get(result, "model"),
            response_id=get(result, "id"),
            finish_reasons=[r for r in reasons if r],
            usage=openai_chat.usage(get(result, "usage")),
        )
        if call.capture_content:
            call.set_output(
                [openai_chat.output_message(get(choice, "message"), reason) for choice, reason in zip(choices, reasons)]
            )

    def accumulator(self, call, kwargs):
        return ChatStreamAccumulator(isinstance(kwargs.get("stream_options"), _UsageRequest), call.capture_content)


# -- text generation -------------------------------------------------------------------------


class TextGenerationStreamAccumulator(StreamAccumulator):
    __slots__ = ("buffer", "capture")
    finish_can_wait = True

    def __init__(self, capture: bool):
        self.buffer = hf.TextGenerationBuffer()
        self.capture = capture

    def on_chunk(self, chunk: Any) -> bool:
        self.buffer.add(chunk, self.capture)
        return False

    def finish(self, call: InferenceCall) -> None:
        buffer = self.buffer
        call.set_response(finish_reasons=[buffer.reason] if buffer.reason else None, usage=buffer.usage)
        if self.capture:
            call.set_output(buffer.output())


class TextGeneration(_HFCall):
    operation = semconv.Operation.TEXT_COMPLETION

    def describe(self, instance, kwargs):
        request = super().describe(instance, kwargs)
        request.max_tokens = number(kwargs.get("max_new_tokens"))
        request.top_k = number(kwargs.get("top_k"))
        request.stop_sequences = arg(kwargs, "stop") or arg(kwargs, "stop_sequences")
        return request

    def record_request(self, call, args, kwargs):
        prompt = _first(args, kwargs, "prompt")
        if isinstance(prompt, str):
            call.set_input(messages=[m.message("user", [m.text(prompt)])])

    def record(self, call, result):
        text, reason, usage = hf.text_generation_result(result)
        call.set_response(finish_reasons=[reason] if reason else None, usage=usage)
        if call.capture_content and isinstance(text, str):
            call.set_output([m.output_message([m.text(text)], reason)])

    def accumulator(self, call, kwargs):
        return TextGenerationStreamAccumulator(call.capture_content)


# -- feature extraction ----------------------------------------------------------------------


class FeatureExtraction(_HFCall):
    operation = semconv.Operation.EMBEDDINGS

    def describe(self, instance, kwargs):
        request = super().describe(instance, kwargs)
        encoding = arg(kwargs, "encoding_format")
        request.encoding_formats = [encoding] if encoding else None
        return request

    def record_request(self, call, args, kwargs):
        texts = hf.embedding_texts(_first(args, kwargs, "text"))
        call.set_input(messages=[m.message("user", [m.text(t)]) for t in texts])

    def record(self, call, result):
        # The vectors themselves are never read: only their length.
        call.set_response(attributes={semconv.EMBEDDINGS_DIMENSION_COUNT: hf.embedding_dimensions(result)})

    def result(self, call, result, kwargs):
        self.record(call, result)  # now: the array is the app's to change
        call.end()
        return result


# -- where the call goes ---------------------------------------------------------------------


def note_provider_helper(wrapped, instance, args, kwargs):
    """Wraps ``get_provider_helper`` where the clients call it: the helper names the provider
    the request is routed to, once a routing policy is resolved."""
    helper = wrapped(*args, **kwargs)
    try:
        call = _our_call()
        if call is not None:
            model = kwargs.get("model", args[2] if len(args) > 2 else None)
            provider = hf.routed_provider(getattr(helper, "provider", None), hf.is_url(model))
            if provider:
                call.set_attribute(semconv.PROVIDER_NAME, provider)
    except Exception:
        pass
    return helper


def note_response(wrapped, instance, args, kwargs):
    """Wraps ``hf_raise_for_status`` where the clients call it on a response: the router names
    the provider it chose in a header; the request's URL says which server answered."""
    try:
        call = _our_call()
        response = args[0] if args else kwargs.get("response")
        if call is not None and response is not None:
            chosen = hf.chosen_provider(response.headers.get(hf.PROVIDER_HEADER))
            if chosen:
                call.set_attribute(semconv.PROVIDER_NAME, chosen)
            host, port = host_and_port(str(response.request.url))
            if host:
                call.set_attribute(semconv.SERVER_ADDRESS, host)
                call.set_attribute(semconv.SERVER_PORT, port)
    except Exception:
        pass
    return wrapped(*args, **kwargs)


class HuggingFaceInstrumentor(LLMInstrumentor):
    requirements = ("huggingface_hub >= 0.28.0",)

    def targets(self) -> list:
        chat, text, features = ChatCompletion(), TextGeneration(), FeatureExtraction()
        sync_module = "huggingface_hub.inference._client"
        async_module = "huggingface_hub.inference._generated._async_client"
        since = dict(required_since="0.28.0")
        targets = []
        for module, owner, is_async in (
            (sync_module, "InferenceClient", False),
            (async_module, "AsyncInferenceClient", True),
        ):
            targets += [
                Target(module, f"{owner}.chat_completion", chat, is_async=is_async, **since),
                Target(module, f"{owner}.text_generation", text, is_async=is_async, **since),
                Target(module, f"{owner}.feature_extraction", features, is_async=is_async, **since),
                Target(module, "get_provider_helper", wrapper=note_provider_helper),
                Target(module, "hf_raise_for_status", wrapper=note_response),
            ]
        return targets
