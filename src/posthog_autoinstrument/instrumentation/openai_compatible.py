"""Handlers shared by the SDKs whose chat API is OpenAI's shape under another name (groq, together).

Their messages, tools, completions and chunks are OpenAI's, so the translation is
:mod:`..formats.openai_chat`'s (with :mod:`..formats.openai_compatible` for what differs) and the
handlers are the openai adapter's. What differs here: the provider is the SDK's, not the host's;
streams report usage on their own (the SDKs take no ``stream_options``); and their stream models
lack fields OpenAI's have, so every field is read leniently.
"""

from __future__ import annotations

from typing import Any

from ..formats import openai_chat, openai_compatible
from ..formats.openai_compatible import chat_usage, reasoning_text
from ..genai import InferenceCall, InferenceRequest
from ..genai import semconv
from . import openai as oa
from .base import ChoicesAccumulator, arg, get, number, with_list


def chat_request(instance: Any, kwargs: dict, provider: str) -> tuple:
    """(InferenceRequest, replacement kwargs or None) for ``chat.completions.create``."""
    _, address, port = oa.endpoint_of(getattr(instance, "_client", None))
    request = InferenceRequest(
        provider=provider,
        model=arg(kwargs, "model"),
        operation=semconv.Operation.CHAT,
        server_address=address,
        server_port=port,
        stream=bool(arg(kwargs, "stream", False)),
        top_k=number(kwargs.get("top_k")),
    )
    return openai_chat.request_parameters(request, kwargs), with_list(kwargs, "messages")


def record_completion(call: InferenceCall, completion: Any) -> None:
    outputs, reasons = openai_compatible.completion_outputs(completion)
    call.set_response(
        model=get(completion, "model"),
        response_id=get(completion, "id"),
        finish_reasons=[r for r in reasons if r],
        usage=openai_chat.usage(chat_usage(completion)),
    )
    if call.capture_content:
        call.set_output(outputs)


class ChatStreamAccumulator(ChoicesAccumulator):
    """Assembles OpenAI-shaped chunks; usage from the chunk or the vendor's field on the last one."""

    __slots__ = ()

    def on_chunk(self, chunk: Any) -> bool:
        if self.response_id is None:
            self.response_id = get(chunk, "id")
            self.model = get(chunk, "model")
        usage = chat_usage(chunk)
        if usage is not None:
            self.usage = usage
        openai_chat.add_chunk_choices(self.choices, get(chunk, "choices"), self.capture, reasoning_text)
        return False

    def finish_reason(self, reason: Any) -> Any:
        return openai_compatible.finish_reason(reason)

    def response_usage(self) -> Any:
        return openai_chat.usage(self.usage)


class Chat(oa.ChatCompletions):
    """``chat.completions.create`` of an OpenAI-shaped SDK; inputs are recorded as openai.py does."""

    def __init__(self, provider: str):
        self.provider = provider

    def request(self, instance, args, kwargs):
        return chat_request(instance, kwargs, self.provider)

    def record(self, call, result, usage=None):
        # (the usage read at the call is OpenAI's field; these SDKs' is read where each puts it)
        record_completion(call, result)

    def accumulator(self, call, kwargs):
        return ChatStreamAccumulator(call.capture_content)


class Embeddings(oa.Embeddings):
    """``embeddings.create``: OpenAI's shape, the SDK's provider."""

    def __init__(self, provider: str):
        self.provider = provider

    def request(self, instance, args, kwargs):
        _, address, port = oa.endpoint_of(getattr(instance, "_client", None))
        encoding = arg(kwargs, "encoding_format")
        return InferenceRequest(
            provider=self.provider,
            model=arg(kwargs, "model"),
            operation=semconv.Operation.EMBEDDINGS,
            server_address=address,
            server_port=port,
            encoding_formats=[encoding] if encoding else None,
        ), None
