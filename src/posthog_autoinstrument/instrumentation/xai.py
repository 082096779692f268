"""xAI adapter (``xai-sdk``, gRPC): ``client.chat.create(...)`` then ``sample()``, ``stream()``
and ``parse()``, sync (``xai_sdk.Client``) and async (``xai_sdk.AsyncClient``).

Recorded as sent: the SDK builds its protobuf request in ``_make_request`` right before the RPC
(``parse`` sets the response format on the chat first). That request, serialised (immutable
bytes, made in C), is handed to the call in progress and translated on the export thread by
``formats.xai``; the answer's protobuf is read there too.

The SDK traces itself into the global tracer provider (a ``chat.sample MODEL`` span). Our call is
current around the SDK's work, a stream's chunks included (each is fetched inside it), so the SDK's
span is beneath ours: the same request, left out of PostHog's copy (one call, one generation) and
kept in your own telemetry. Ours is the generation because it has what the SDK's lacks: content
parts and tool definitions, the server the client really talks to, errors with their status.
"""

from __future__ import annotations

import weakref
from typing import Any

from ..formats import xai as wire
from ..formats.grpc_status import http_status
from ..genai import InferenceCall, InferenceRequest, StreamAccumulator
from ..genai import semconv
from ..genai.semconv import Provider
from ..genai.streams import observe_stream
from .base import CallHandler, LLMInstrumentor, RequestHandOver, Target, active_call, is_stream, steps_within_call

_DEFAULT_ENDPOINT = ("api.x.ai", 443)
# The chat stub of each client -> the (host, port) it was made for (see _remember_host).
_endpoints: "weakref.WeakKeyDictionary[Any, tuple]" = weakref.WeakKeyDictionary()


def _endpoint_of(api_host: Any) -> tuple:
    if not isinstance(api_host, str) or not api_host:
        return _DEFAULT_ENDPOINT
    host, _, port = api_host.rpartition(":")
    if host and port.isdigit():
        return host.strip("[]"), int(port)
    return api_host, 443


def _remember_host(wrapped, instance, args, kwargs):
    """``xai_sdk.client.BaseClient.__init__``: note which server the client's chat stub talks to."""
    result = wrapped(*args, **kwargs)
    try:
        _endpoints[instance.chat._stub] = _endpoint_of(kwargs.get("api_host", "api.x.ai"))
    except Exception:
        pass
    return result


def _record_request(call: InferenceCall, sent: tuple) -> None:
    message_type, data = sent
    request = message_type.FromString(data)
    for key, value in wire.parameters(request).items():
        call.set_attribute(key, value)
    call.set_input(messages=wire.input_messages(request), tool_definitions=wire.tool_definitions(request))


# The protobuf request of each call, serialised as the SDK builds it (in C: immutable bytes).
_sent = RequestHandOver(keep=lambda request: (type(request), request.SerializeToString()), record=_record_request)


def _record_answer(call: InferenceCall, response: Any) -> None:
    finish_reasons, outputs = wire.outputs(response)
    call.set_response(
        model=response.model or None,
        response_id=response.id or None,
        finish_reasons=finish_reasons,
        usage=wire.usage(response),
    )
    call.set_output(outputs)


def _answer_of(result: Any) -> Any:
    """The response protobuf of what ``sample()`` (a Response) or ``parse()`` (a tuple) returned."""
    response = result[0] if isinstance(result, tuple) else result
    return getattr(response, "proto", None)


class _StreamedAnswer(StreamAccumulator):
    """The SDK hands out (response so far, chunk) pairs: the last response is the whole answer."""

    __slots__ = ("response",)

    def __init__(self):
        self.response = None

    def on_chunk(self, pair: Any) -> bool:
        if isinstance(pair, tuple) and pair:
            self.response = pair[0]
        return False

    def finish(self, call: InferenceCall) -> None:
        _sent.forget(call)
        # ``proto``, not ``_proto``: the SDK joins the streamed text into its protobuf on reading it.
        answer = getattr(self.response, "proto", None)
        if answer is not None:
            call.later(_record_answer, call, answer)


class ChatCall(CallHandler):
    """``Chat.sample`` / ``parse`` (``stream=False``) and ``Chat.stream``."""

    def __init__(self, stream: bool):
        self.stream = stream

    def request(self, instance, args, kwargs):
        address, port = _endpoints.get(instance._stub, _DEFAULT_ENDPOINT)
        conversation = getattr(instance, "_conversation_id", None)
        return InferenceRequest(
            provider=Provider.XAI,
            model=instance._proto.model or None,
            operation=semconv.Operation.CHAT,
            server_address=address,
            server_port=port,
            stream=self.stream,
            conversation_id=conversation or None,
        ), None

    def record_input(self, call, instance, args, kwargs):
        _sent.expect(call)

    def result(self, call, result, kwargs):
        if self.stream and is_stream(result):  # its request is built at the first chunk
            return observe_stream(steps_within_call(result, call, http_status), call, _StreamedAnswer())
        _sent.forget(call)
        answer = _answer_of(result)
        if answer is not None:
            call.later(_record_answer, call, answer)
        call.end()
        return result

    def error_status(self, exc):
        _sent.forget(active_call())
        return http_status(exc)


class XAIInstrumentor(LLMInstrumentor):
    requirements = ("xai-sdk >= 1.0.0, < 2",)

    def targets(self) -> list:
        sample, stream = ChatCall(stream=False), ChatCall(stream=True)
        targets = [
            Target("xai_sdk.client", "BaseClient.__init__", wrapper=_remember_host),
            Target("xai_sdk.chat", "BaseChat._make_request", wrapper=_sent.wrapper),
        ]
        for module, is_async in (("xai_sdk.sync.chat", False), ("xai_sdk.aio.chat", True)):
            targets += [
                Target(module, "Chat.sample", sample, is_async=is_async, required_since="1.0.0"),
                Target(module, "Chat.parse", sample, is_async=is_async),
                # An async generator function: calling it returns the stream at once.
                Target(module, "Chat.stream", stream, required_since="1.0.0"),
            ]
        return targets
