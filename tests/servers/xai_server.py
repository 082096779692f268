"""A loopback stand-in for xAI's gRPC API (``xai_api.Chat``), built from the ``xai-sdk``'s own
protobuf definitions: ``GetCompletion`` (one ``GetChatCompletionResponse``) and
``GetCompletionChunk`` (a stream of ``GetChatCompletionChunk``, the last one carrying the finish
reason and the usage), on 127.0.0.1 without TLS (``Client(api_host=..., use_insecure_channel=True)``).

Behaviour is chosen by the request:

* the **model name** ``error-<code>`` fails with that gRPC status (``error-RESOURCE_EXHAUSTED``);
  ``stream-error`` aborts a stream with ``UNAVAILABLE`` after two content chunks; a model whose
  name contains ``reasoning`` thinks first (``reasoning_content`` and reasoning tokens);
* the **last user message** may carry ``reply="..."`` and ``chunks=N``;
* offering **tools** while the user spoke last yields a tool call (``REASON_TOOL_CALLS``);
* a ``response_format`` with a JSON schema answers ``{"city": "Paris"}``.

Usage follows the API: ``prompt_tokens`` includes ``cached_prompt_text_tokens``; reasoning
tokens are reported beside ``completion_tokens``, not in them.
"""

from __future__ import annotations

import re
import threading
import uuid
from concurrent import futures

import grpc
from xai_sdk.proto import chat_pb2, chat_pb2_grpc, sample_pb2, usage_pb2

DEFAULT_REPLY = "Hello from fake Grok"
REASONING_TEXT = "The user greets me."
TOOL_CALL_ID = "call_xai_1"
TOOL_ARGUMENTS = '{"city": "Paris"}'
PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7
CACHED_TOKENS = 3
REASONING_TOKENS = 5


def _last_user_text(request) -> str:
    for message in reversed(request.messages):
        if message.role == chat_pb2.MessageRole.ROLE_USER:
            return "".join(c.text for c in message.content)
    return ""


def _option(text: str, name: str, default):
    found = re.search(rf'{name}=(?:"([^"]*)"|(\d+))', text)
    if not found:
        return default
    return found.group(1) if found.group(1) is not None else int(found.group(2))


def _usage(request) -> usage_pb2.SamplingUsage:
    reasoning = REASONING_TOKENS if "reasoning" in request.model else 0
    return usage_pb2.SamplingUsage(
        prompt_tokens=PROMPT_TOKENS,
        completion_tokens=COMPLETION_TOKENS,
        reasoning_tokens=reasoning,
        total_tokens=PROMPT_TOKENS + COMPLETION_TOKENS + reasoning,
        cached_prompt_text_tokens=CACHED_TOKENS,
        prompt_text_tokens=PROMPT_TOKENS,
    )


def _wants_tool_call(request) -> bool:
    return bool(request.tools) and request.messages[-1].role == chat_pb2.MessageRole.ROLE_USER


def _reply_text(request) -> str:
    if request.HasField("response_format") and request.response_format.schema:
        return '{"city": "Paris"}'
    return _option(_last_user_text(request), "reply", DEFAULT_REPLY)


def _tool_call() -> chat_pb2.ToolCall:
    return chat_pb2.ToolCall(
        id=TOOL_CALL_ID, function=chat_pb2.FunctionCall(name="get_weather", arguments=TOOL_ARGUMENTS)
    )


class _Chat(chat_pb2_grpc.ChatServicer):
    def __init__(self, owner: "FakeXAI"):
        self.owner = owner

    def _check(self, request, context) -> None:
        self.owner._record(request, context)
        if request.model.startswith("error-"):
            code = getattr(grpc.StatusCode, request.model[len("error-") :])
            context.abort(code, f"fake xAI: {code.name.lower()}")

    def GetCompletion(self, request, context):
        self._check(request, context)
        message = chat_pb2.CompletionMessage(role=chat_pb2.MessageRole.ROLE_ASSISTANT)
        reason = sample_pb2.FinishReason.REASON_STOP
        if "reasoning" in request.model:
            message.reasoning_content = REASONING_TEXT
        if _wants_tool_call(request):
            message.tool_calls.append(_tool_call())
            reason = sample_pb2.FinishReason.REASON_TOOL_CALLS
        else:
            message.content = _reply_text(request)
        return chat_pb2.GetChatCompletionResponse(
            id=str(uuid.uuid4()),
            model=request.model,
            system_fingerprint="fp_fake",
            outputs=[chat_pb2.CompletionOutput(index=0, finish_reason=reason, message=message)],
            usage=_usage(request),
        )

    def GetCompletionChunk(self, request, context):
        self._check(request, context)
        response_id = str(uuid.uuid4())

        def chunk(delta=None, reason=None, usage=None):
            output = chat_pb2.CompletionOutputChunk(index=0, delta=delta or chat_pb2.Delta())
            output.delta.role = chat_pb2.MessageRole.ROLE_ASSISTANT
            if reason is not None:
                output.finish_reason = reason
            return chat_pb2.GetChatCompletionChunk(id=response_id, model=request.model, outputs=[output], usage=usage)

        if "reasoning" in request.model:
            yield chunk(chat_pb2.Delta(reasoning_content=REASONING_TEXT))
        if _wants_tool_call(request):
            yield chunk(
                chat_pb2.Delta(tool_calls=[_tool_call()]), sample_pb2.FinishReason.REASON_TOOL_CALLS, _usage(request)
            )
            return
        text = _reply_text(request)
        count = max(1, _option(_last_user_text(request), "chunks", 3))
        words = text.split(" ")
        pieces = [" ".join(words[i * len(words) // count : (i + 1) * len(words) // count]) for i in range(count)]
        pieces = [p + (" " if i < count - 1 and p else "") for i, p in enumerate(pieces)]
        for i, piece in enumerate(pieces):
            if request.model == "stream-error" and i == 2:
                context.abort(grpc.StatusCode.UNAVAILABLE, "fake xAI: connection lost")
            yield chunk(chat_pb2.Delta(content=piece))
        yield chunk(reason=sample_pb2.FinishReason.REASON_STOP, usage=_usage(request))


class FakeXAI:
    """xAI's chat service on 127.0.0.1: ``Client(api_key=..., api_host=api_host, use_insecure_channel=True)``."""

    def __init__(self) -> None:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        chat_pb2_grpc.add_ChatServicer_to_server(_Chat(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._lock = threading.Lock()
        self._requests: list = []

    @property
    def api_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def requests(self) -> list:
        """What was received: each request as a dict (its model and metadata)."""
        with self._lock:
            return list(self._requests)

    def _record(self, request, context) -> None:
        with self._lock:
            self._requests.append({"model": request.model, "metadata": dict(context.invocation_metadata())})

    def __enter__(self) -> "FakeXAI":
        self._server.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.stop(grace=None)
