"""Cohere adapter (``cohere``): the v2 API's chat, chat stream and embed, sync and async, and
rerank (v1 and v2) as a ``rerank`` step.

Patched on ``cohere.v2.client.V2Client`` / ``AsyncV2Client``, which ``ClientV2`` /
``AsyncClientV2`` inherit and ``Client().v2`` returns, so every way of reaching the v2 API is
covered; calls through ``BedrockClientV2`` are named ``aws.bedrock``. The v1 API
(``Client.chat`` with ``message=``, ``generate``) is not.

``chat_stream`` is a generator function, and the async one an *async* generator function:
calling either sends nothing until the first chunk is asked for, so both are wrapped as plain
calls whose result, the (async) generator, is proxied.

Usage: Cohere reports two counts. ``billed_units`` are the tokens it charges for;
``tokens`` also count the system preamble Cohere adds on its side, which is not billed (71
tokens read for a 5-token prompt is typical). Cost is what PostHog computes from the tokens,
so the billed units are reported, and the raw counts only when no billed units came.
Rerank is billed in search units, reported as ``cohere.billed_units.search_units`` on the step
(not tokens: PostHog prices none). ``cached_tokens`` is not reported as cache reads: it counts mostly that unbilled preamble,
and Cohere publishes no discounted cache price, so subtracting it from billed input would be
wrong.
"""

from __future__ import annotations

from typing import Any, Optional

from ..formats.generated_sdk import ChatArguments, Fields
from ..formats.openai_chat import tool_call_buffer, tool_call_parts_of
from ..genai import InferenceCall, InferenceRequest, StreamAccumulator, Usage
from ..genai import messages as m
from ..genai import semconv
from ..genai.semconv import Provider
from ._retrieval import Retrieval, RetrievalHandler, ranked, retrieval_wrapper
from .base import CallHandler, LLMInstrumentor, ResponseOrStream, Target, host_and_port, integer, number, with_list

_FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_call",
    "ERROR": "error",
    "TIMEOUT": "error",
}


def _given(value: Any) -> bool:
    # Fern-generated SDKs mark an omitted argument with ``...``.
    return value is not None and value is not Ellipsis


_fields = Fields(_given)
_value = _fields.value
_CHAT_ARGUMENTS = ChatArguments({"top_p": "p", "top_k": "k"}, stop="stop_sequences")


def _finish_reason(reason: Any) -> Optional[str]:
    if not reason:
        return None
    text = str(reason)
    return _FINISH_REASONS.get(text, text.lower())


def _endpoint(client: Any) -> tuple:
    """(provider, server address, server port) of a ``V2Client`` or a ``ClientV2``."""
    name = type(client).__name__
    provider = Provider.AWS_BEDROCK if name.startswith("Bedrock") else Provider.COHERE
    wrapper = getattr(client, "_client_wrapper", None) or getattr(
        getattr(client, "_raw_client", None), "_client_wrapper", None
    )
    try:
        url = wrapper.get_base_url()
    except Exception:
        url = None
    host, port = host_and_port(url)
    return provider, host, port


# -- content translation ------------------------------------------------------------------


def _block_part(block: Any, kind: Any) -> Optional[dict]:
    """Cohere's own block kinds (strings, text and image URLs: ``Fields.content_parts``)."""
    if kind == "thinking":
        return m.reasoning(_value(block, "thinking") or "")
    if kind == "document":
        return m.generic("document", data=_value(_value(block, "document"), "data"))
    return None


def _content_parts(content: Any) -> list:
    return _fields.content_parts(content, _block_part)


def _assistant_parts(message: Any) -> list:
    plan = _value(message, "tool_plan")
    parts = [m.reasoning(plan)] if isinstance(plan, str) and plan else []
    return parts + _content_parts(_value(message, "content")) + _fields.tool_call_parts(_value(message, "tool_calls"))


def _message(message: Any) -> dict:
    role = _value(message, "role") or "user"
    if role == "tool":
        content = _value(message, "content")
        if not isinstance(content, str):
            content = [p.get("content", p.get("data")) for p in _content_parts(content)]
            content = content[0] if len(content) == 1 else content
        return m.message("tool", [m.tool_call_response(_value(message, "tool_call_id"), content)])
    if role == "assistant":
        return m.message(role, _assistant_parts(message))
    return m.message(role, _content_parts(_value(message, "content")))


# -- response translation -----------------------------------------------------------------


def _usage(usage: Any) -> Optional[Usage]:
    if usage is None:
        return None
    billed = _value(usage, "billed_units")
    tokens = _value(usage, "tokens")
    input_tokens = integer(_value(billed, "input_tokens")) if billed is not None else None
    output_tokens = integer(_value(billed, "output_tokens")) if billed is not None else None
    if input_tokens is None and output_tokens is None and tokens is not None:
        input_tokens = integer(_value(tokens, "input_tokens"))
        output_tokens = integer(_value(tokens, "output_tokens"))
    return Usage(input_tokens=input_tokens, output_tokens=output_tokens)


def _record_chat(call: InferenceCall, response: Any) -> None:
    reason = _finish_reason(_value(response, "finish_reason"))
    call.set_response(
        response_id=_value(response, "id"),
        finish_reasons=[reason] if reason else None,
        usage=_usage(_value(response, "usage")),
    )
    if call.capture_content:
        call.set_output([m.output_message(_assistant_parts(_value(response, "message")), reason)])


class ChatStreamAccumulator(StreamAccumulator):
    """Folds v2 stream events: content blocks by index, the tool plan, tool calls by index."""

    __slots__ = ("capture", "response_id", "plan", "blocks", "tool_calls", "finish_reason", "usage")

    def __init__(self, capture: bool):
        self.capture = capture
        self.response_id = None
        self.plan: list = []
        self.blocks: dict = {}  # index -> ["text" | "thinking", [pieces]]
        self.tool_calls: dict = {}  # index -> ToolCallBuffer
        self.finish_reason: Optional[str] = None
        self.usage: Optional[Usage] = None

    def on_chunk(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        delta = getattr(event, "delta", None)
        if kind == "message-start":
            self.response_id = getattr(event, "id", None)
        elif kind == "message-end":
            self.finish_reason = _finish_reason(_value(delta, "finish_reason"))
            self.usage = _usage(_value(delta, "usage"))
        elif not self.capture:
            return False
        message = _value(delta, "message") if delta is not None else None
        index = getattr(event, "index", None) or 0
        if kind in ("content-start", "content-delta"):
            content = _value(message, "content")
            block = self.blocks.setdefault(index, [_value(content, "type") or "text", []])
            thinking, text = _value(content, "thinking"), _value(content, "text")
            if thinking:
                block[0] = "thinking"
                block[1].append(thinking)
            if text:
                block[1].append(text)
        elif kind == "tool-plan-delta":
            plan = _value(message, "tool_plan")
            if plan:
                self.plan.append(plan)
        elif kind in ("tool-call-start", "tool-call-delta"):
            fragment = _value(message, "tool_calls")
            entry = tool_call_buffer(self.tool_calls, index)
            if _value(fragment, "id"):
                entry.id = _value(fragment, "id")
            function = _value(fragment, "function")
            if _value(function, "name"):
                entry.name = _value(function, "name")
            entry.add_arguments(_value(function, "arguments"))
        return False

    def finish(self, call: InferenceCall) -> None:
        call.set_response(
            response_id=self.response_id,
            finish_reasons=[self.finish_reason] if self.finish_reason else None,
            usage=self.usage,
        )
        if self.capture:
            parts = [m.reasoning("".join(self.plan))] if self.plan else []
            for index in sorted(self.blocks):
                kind, pieces = self.blocks[index]
                parts.append(m.reasoning("".join(pieces)) if kind == "thinking" else m.text("".join(pieces)))
            parts += tool_call_parts_of(self.tool_calls)
            call.set_output([m.output_message(parts, self.finish_reason)])


# -- handlers -----------------------------------------------------------------------------


class Chat(ResponseOrStream):
    record = staticmethod(_record_chat)
    stream_accumulator = ChatStreamAccumulator

    def request(self, instance, args, kwargs):
        provider, address, port = _endpoint(instance)
        request = _fields.chat_request(kwargs, _CHAT_ARGUMENTS, provider, address, port, self.stream)
        return request, with_list(kwargs, "messages")

    def record_input(self, call, instance, args, kwargs):
        call.set_input(
            messages=[_message(message) for message in _value(kwargs, "messages") or ()],
            tool_definitions=_fields.tool_definitions(kwargs.get("tools")),
        )


class Embed(CallHandler):
    def request(self, instance, args, kwargs):
        provider, address, port = _endpoint(instance)
        formats = _value(kwargs, "embedding_types")
        return InferenceRequest(
            provider=provider,
            model=_value(kwargs, "model"),
            operation=semconv.Operation.EMBEDDINGS,
            server_address=address,
            server_port=port,
            encoding_formats=[str(f) for f in formats] if formats else None,
        ), None

    def record_input(self, call, instance, args, kwargs):
        texts = _value(kwargs, "texts")
        texts = [t for t in texts if isinstance(t, str)] if isinstance(texts, (list, tuple)) else []
        call.set_input(messages=[m.message("user", [m.text(t)]) for t in texts])

    def result(self, call, result, kwargs):
        embeddings = _value(result, "embeddings")
        first = None
        for kind in ("float_", "int8", "uint8", "binary", "ubinary"):
            vectors = _value(embeddings, kind) if embeddings is not None else None
            if vectors:
                first = vectors[0]
                break
        meta = _value(result, "meta")
        billed = _value(meta, "billed_units") if meta is not None else None
        tokens = integer(_value(billed, "input_tokens")) if billed is not None else None
        call.set_response(
            response_id=_value(result, "id"),
            usage=Usage(input_tokens=tokens) if tokens is not None else None,
            attributes={semconv.EMBEDDINGS_DIMENSION_COUNT: len(first) if isinstance(first, list) else None},
        )
        call.end()
        return result


class Rerank(RetrievalHandler):
    """``rerank`` of the v2 API and of the v1 client (whose documents may be ``{"text": ...}``)."""

    def describe(self, instance, args, kwargs):
        provider, address, port = _endpoint(instance)
        documents = _value(kwargs, "documents")
        retrieval = Retrieval(
            provider,
            operation="rerank",
            model=_value(kwargs, "model"),
            texts=[_value(kwargs, "query")] if isinstance(_value(kwargs, "query"), str) else None,
            top_k=integer(_value(kwargs, "top_n")),
            server_address=address,
            server_port=port,
        )
        retrieval.details["document_count"] = len(documents) if isinstance(documents, (list, tuple)) else None
        return retrieval

    def documents(self, result, retrieval, args, kwargs):
        pairs = [(_value(r, "index"), number(_value(r, "relevance_score"))) for r in _value(result, "results") or ()]
        return ranked(pairs, _value(kwargs, "documents"))

    def response_attributes(self, result):
        billed = _value(_value(result, "meta"), "billed_units")
        return {
            semconv.RESPONSE_ID: _value(result, "id"),
            "cohere.billed_units.search_units": number(_value(billed, "search_units")),
        }


class CohereInstrumentor(LLMInstrumentor):
    requirements = ("cohere >= 5.11.0, < 8",)

    def targets(self) -> list:
        module = "cohere.v2.client"
        chat, stream, embed = Chat(stream=False), Chat(stream=True), Embed()
        return [
            Target(module, "V2Client.chat", chat),
            Target(module, "V2Client.chat_stream", stream),
            Target(module, "V2Client.embed", embed),
            Target(module, "AsyncV2Client.chat", chat, is_async=True),
            # An async generator function: calling it returns the stream without awaiting anything.
            Target(module, "AsyncV2Client.chat_stream", stream),
            Target(module, "AsyncV2Client.embed", embed, is_async=True),
            Target(module, "V2Client.rerank", wrapper=retrieval_wrapper(self, Rerank())),
            Target(module, "AsyncV2Client.rerank", wrapper=retrieval_wrapper(self, Rerank(), is_async=True)),
            Target("cohere.base_client", "BaseCohere.rerank", wrapper=retrieval_wrapper(self, Rerank())),
            Target(
                "cohere.base_client", "AsyncBaseCohere.rerank", wrapper=retrieval_wrapper(self, Rerank(), is_async=True)
            ),
        ]
