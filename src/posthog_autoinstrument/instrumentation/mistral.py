"""Mistral AI adapter (``mistralai``): chat completions and embeddings, sync and async, streaming.

Covers ``chat.complete`` / ``complete_async`` / ``stream`` / ``stream_async`` and
``embeddings.create`` / ``create_async`` in both module layouts the SDK has had:
``mistralai.chat.Chat`` (1.x) and ``mistralai.client.chat.Chat`` (2.x and later, where the
client is ``from mistralai.client import Mistral``). ``chat.parse`` / ``parse_stream`` call
``complete`` / ``stream`` and are covered through them. The same Speakeasy-generated classes
serve Mistral models hosted on Azure AI (``mistralai.azure.client``, provider
``azure.ai.inference``) and on Vertex AI (``mistralai.gcp.client``, provider ``gcp.vertex_ai``).

Mistral's SDK can trace itself with OpenTelemetry. 1.x and early 2.x releases did so whenever a
global tracer provider existed, which under ``posthog-instrument`` is always; later ones only when
asked (``MISTRAL_SDK_TELEMETRY=global``, ``Mistral(telemetry=...)`` or
``configure_telemetry``). Its spans would reach PostHog next to ours and count every call
twice, so while this adapter is active the SDK's tracing into the *global* provider is
switched off, at the one function it uses to decide (``get_or_create_otel_tracer``). We keep
our span rather than the SDK's because it follows the same message, usage and stream contract
as every other library here (finish reasons, time to first chunk, ``request.stream``), and the
SDK's would also inject a ``traceparent`` into every request sent to Mistral. Tracing the app
set up with its own tracer provider (``configure_telemetry(client, provider=...)`` or the
SDK's dedicated exporter) never reaches PostHog and is left alone.
"""

from __future__ import annotations

from typing import Any, Optional

from ..formats.generated_sdk import ChatArguments, Fields
from ..formats.openai_chat import tool_call_buffer, tool_call_parts_of
from ..genai import InferenceCall, InferenceRequest, Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Provider
from .base import (
    CallHandler,
    ChoicesAccumulator,
    LLMInstrumentor,
    ResponseOrStream,
    Target,
    host_and_port,
    optional_field,
    with_list,
)

_FINISH_REASONS = {"tool_calls": "tool_call", "model_length": "length"}
# Speakeasy's "argument omitted" sentinel (``UNSET``).
_UNSET = frozenset({"Unset"})


def _given(value: Any) -> bool:
    return value is not None and type(value).__name__ not in _UNSET


_fields = Fields(_given)
_value = _fields.value
_CHAT_ARGUMENTS = ChatArguments(
    {"seed": "random_seed", "choice_count": "n"}, stop="stop", reasoning_effort="reasoning_effort"
)


def _optional(obj: Any, key: str) -> Any:
    value = optional_field(obj, key)
    return value if _given(value) else None


def _finish_reason(reason: Any) -> Optional[str]:
    if not _given(reason) or not reason:
        return None
    reason = str(reason)
    return _FINISH_REASONS.get(reason, reason)


def _provider(instance: Any) -> str:
    module = type(instance).__module__
    if module.startswith("mistralai.azure"):
        return Provider.AZURE_AI_INFERENCE
    if module.startswith("mistralai.gcp"):
        return Provider.GCP_VERTEX_AI
    return Provider.MISTRAL_AI


def _endpoint(instance: Any, kwargs: dict) -> tuple:
    url = kwargs.get("server_url")
    if not isinstance(url, str) or not url:
        try:
            url = instance.sdk_configuration.get_server_details()[0]
        except Exception:
            url = None
    return host_and_port(url)


# -- content translation ------------------------------------------------------------------


def _thinking_text(chunk: Any) -> str:
    return "".join(_value(piece, "text") or "" for piece in _value(chunk, "thinking") or ())


def _chunk_part(chunk: Any, kind: Any) -> Optional[dict]:
    """Mistral's own content chunks (strings, text and image URLs: ``Fields.content_parts``)."""
    if kind == "thinking":
        return m.reasoning(_thinking_text(chunk))
    if kind == "document_url":
        return m.uri("document", _value(chunk, "document_url") or "")
    if kind == "input_audio":
        return m.blob("audio", None, _value(chunk, "input_audio") or "")
    if kind == "file":
        return m.file("document", _value(chunk, "file_id") or "")
    return None


def _content_parts(content: Any) -> list:
    return _fields.content_parts(content, _chunk_part)


def _message(message: Any) -> dict:
    role = _value(message, "role") or "user"
    if role == "tool":
        content = _value(message, "content")
        if not isinstance(content, str):
            content = "".join(p.get("content", "") for p in _content_parts(content) if p.get("type") == "text")
        return m.message(
            "tool", [m.tool_call_response(_value(message, "tool_call_id"), content)], _value(message, "name")
        )
    parts = _content_parts(_value(message, "content")) + _fields.tool_call_parts(_value(message, "tool_calls"))
    return m.message(role, parts)


# -- response translation -----------------------------------------------------------------


def _usage(usage: Any) -> Optional[Usage]:
    if not _given(usage):
        return None
    # Extra fields arrive as plain dicts on the SDK's usage model, when they come at all.
    prompt_details = _optional(usage, "prompt_tokens_details")
    cached = _value(prompt_details, "cached_tokens") if prompt_details is not None else None
    if cached is None:
        cached = _optional(usage, "num_cached_tokens")
    completion_details = _optional(usage, "completion_tokens_details")
    return Usage(
        input_tokens=_value(usage, "prompt_tokens"),
        output_tokens=_value(usage, "completion_tokens"),
        cache_read_input_tokens=cached,
        reasoning_tokens=_value(completion_details, "reasoning_tokens") if completion_details is not None else None,
    )


def _record_completion(call: InferenceCall, response: Any) -> None:
    choices = _value(response, "choices") or ()
    reasons = [_finish_reason(_value(choice, "finish_reason")) for choice in choices]
    call.set_response(
        model=_value(response, "model"),
        response_id=_value(response, "id"),
        finish_reasons=[r for r in reasons if r],
        usage=_usage(_value(response, "usage")),
    )
    if call.capture_content:
        outputs = []
        for choice, reason in zip(choices, reasons):
            message = _value(choice, "message")
            parts = _content_parts(_value(message, "content")) + _fields.tool_call_parts(_value(message, "tool_calls"))
            outputs.append(m.output_message(parts, reason))
        call.set_output(outputs)


class _ChoiceState(m.PartRuns):
    __slots__ = ("tool_calls", "finish_reason")

    def __init__(self):
        super().__init__()
        self.tool_calls: dict = {}  # index -> ToolCallBuffer
        self.finish_reason: Optional[str] = None

    def parts(self) -> list:
        # A text run that stayed empty (the first delta's "" before a tool call) is no part of the answer.
        return super().parts(empty_text=False) + tool_call_parts_of(self.tool_calls)


class ChatStreamAccumulator(ChoicesAccumulator):
    """Folds ``CompletionEvent`` chunks; Mistral sends the usage on the last chunk."""

    __slots__ = ()

    def on_chunk(self, event: Any) -> bool:
        chunk = getattr(event, "data", event)
        if self.response_id is None:
            self.response_id = _value(chunk, "id")
            self.model = _value(chunk, "model")
        usage = _usage(_value(chunk, "usage"))
        if usage is not None:
            self.usage = usage
        for choice in _value(chunk, "choices") or ():
            index = _value(choice, "index") or 0
            state = self.choices.get(index)
            if state is None:
                state = self.choices[index] = _ChoiceState()
            reason = _finish_reason(_value(choice, "finish_reason"))
            if reason:
                state.finish_reason = reason
            delta = _value(choice, "delta")
            if not self.capture or delta is None:
                continue
            for part in _content_parts(_value(delta, "content")):
                state.add(part)
            calls = _value(delta, "tool_calls")
            for position, fragment in enumerate(calls or () if _given(calls) else ()):
                index_ = _value(fragment, "index")
                entry = tool_call_buffer(state.tool_calls, position if index_ is None else index_)
                call_id = _value(fragment, "id")
                if call_id and call_id != "null":
                    entry.id = call_id
                function = _value(fragment, "function")
                if _value(function, "name"):
                    entry.name = _value(function, "name")
                entry.add_arguments(_value(function, "arguments"))
        return False


# -- handlers -----------------------------------------------------------------------------


class ChatCompletion(ResponseOrStream):
    record = staticmethod(_record_completion)
    stream_accumulator = ChatStreamAccumulator

    def request(self, instance, args, kwargs):
        address, port = _endpoint(instance, kwargs)
        request = _fields.chat_request(kwargs, _CHAT_ARGUMENTS, _provider(instance), address, port, self.stream)
        return request, with_list(kwargs, "messages")

    def record_input(self, call, instance, args, kwargs):
        call.set_input(
            messages=[_message(message) for message in kwargs.get("messages") or ()],
            tool_definitions=_fields.tool_definitions(kwargs.get("tools")),
        )


class EmbeddingsCreate(CallHandler):
    def request(self, instance, args, kwargs):
        address, port = _endpoint(instance, kwargs)
        formats = [
            str(getattr(f, "value", f))
            for f in (_value(kwargs, "encoding_format"), _value(kwargs, "output_dtype"))
            if f
        ]
        return InferenceRequest(
            provider=_provider(instance),
            model=_value(kwargs, "model"),
            operation=semconv.Operation.EMBEDDINGS,
            server_address=address,
            server_port=port,
            encoding_formats=formats or None,
        ), None

    def record_input(self, call, instance, args, kwargs):
        inputs = _value(kwargs, "inputs")
        # Only lists are read: an iterator would be consumed before the SDK sees it.
        texts = (
            [inputs]
            if isinstance(inputs, str)
            else [t for t in inputs if isinstance(t, str)]
            if isinstance(inputs, (list, tuple))
            else []
        )
        call.set_input(messages=[m.message("user", [m.text(t)]) for t in texts])

    def result(self, call, result, kwargs):
        data = _value(result, "data") or ()
        first = _value(data[0], "embedding") if data else None
        usage = _value(result, "usage")
        call.set_response(
            model=_value(result, "model"),
            response_id=_value(result, "id"),
            usage=Usage(input_tokens=_value(usage, "prompt_tokens")) if usage is not None else None,
            attributes={semconv.EMBEDDINGS_DIMENSION_COUNT: len(first) if isinstance(first, list) else None},
        )
        call.end()
        return result


def _without_global_tracing(wrapped, instance, args, kwargs):
    """``get_or_create_otel_tracer``: report tracing as off when it would use the global provider."""
    result = wrapped(*args, **kwargs)
    provider = kwargs.get("provider", args[0] if args else None)
    if provider is None and isinstance(result, tuple) and len(result) == 2:
        return False, result[1]
    return result


class MistralInstrumentor(LLMInstrumentor):
    requirements = ("mistralai >= 1.0.0, < 4",)

    def targets(self) -> list:
        complete, stream, embed = ChatCompletion(stream=False), ChatCompletion(stream=True), EmbeddingsCreate()
        targets = []
        for chat_module in (
            "mistralai.client.chat",
            "mistralai.chat",
            "mistralai.azure.client.chat",
            "mistralai.gcp.client.chat",
        ):
            targets += [
                Target(chat_module, "Chat.complete", complete),
                Target(chat_module, "Chat.complete_async", complete, is_async=True),
                Target(chat_module, "Chat.stream", stream),
                Target(chat_module, "Chat.stream_async", stream, is_async=True),
            ]
        for embeddings_module in ("mistralai.client.embeddings", "mistralai.embeddings"):
            targets += [
                Target(embeddings_module, "Embeddings.create", embed),
                Target(embeddings_module, "Embeddings.create_async", embed, is_async=True),
            ]
        # The SDK's own tracing hook (2.x and later; 1.x), see the module docstring.
        for hook_module in ("mistralai.client._hooks.tracing", "mistralai._hooks.tracing"):
            targets.append(Target(hook_module, "get_or_create_otel_tracer", wrapper=_without_global_tracing))
        return targets
