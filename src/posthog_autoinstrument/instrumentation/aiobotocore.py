"""Async AWS Bedrock through aiobotocore: Converse, ConverseStream, InvokeModel and
InvokeModelWithResponseStream on ``bedrock-runtime`` clients made by an aiobotocore session, and
the Bedrock Agents calls of ``bedrock-agent-runtime`` clients (:mod:`.bedrock_agents`, which
records them as it does boto3's, with :func:`.bedrock_agents.async_call`).

aiobotocore's ``AioBaseClient`` overrides botocore's ``_make_api_call`` with a coroutine, so the
botocore adapter's hook never sees these calls. We patch the override once at class level and
record the four inference operations as the botocore adapter does, with its call handler
(:class:`.bedrock.BedrockCall`); only what is asynchronous differs:

* event streams (``AioEventStream``) are iterated with ``async for``: the app gets an async proxy
  that yields the same events, and the call ends when the stream is exhausted, closed or fails;
* InvokeModel's body is read with ``await body.read()``: we read it inside the awaited call, and
  the app gets a body that serves the same bytes through the same async methods.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional

import wrapt

from ..genai import AsyncStreamProxy, InferenceCall, StreamAccumulator
from . import bedrock_agents
from .base import LLMInstrumentor, Target, async_wrapper
from .bedrock import INVOKE, BedrockCall, is_bedrock_inference

_CHUNK_SIZE = 1024  # aiobotocore's default for iterating a body


class AioBedrockCall(BedrockCall):
    """One bedrock-runtime call of an async client. Its InvokeModel body is read (``read_body``)
    before the call's result is recorded, which then takes the bytes read."""

    __slots__ = ("body_data", "body_error")

    def __init__(self, operation: str, params: Any):
        super().__init__(operation, params)
        self.body_data: Optional[bytes] = None
        self.body_error: Optional[BaseException] = None

    async def read_body(self, response: Any) -> None:
        body = response.get("body") if isinstance(response, dict) else None
        if not inspect.iscoroutinefunction(getattr(body, "read", None)):
            return  # not aiobotocore's body: left to the app, the call recorded without its content
        try:
            self.body_data = await body.read()
        except Exception as exc:
            self.body_error = exc
            response["body"] = BufferedBody(body, b"", exc)
            return
        response["body"] = BufferedBody(body, self.body_data)

    def take_body(self, response: dict) -> Optional[bytes]:
        if self.body_error is not None:
            raise self.body_error
        return self.body_data

    def wrap_stream(self, stream: Any, call: InferenceCall, accumulator: StreamAccumulator) -> Any:
        return AsyncStreamProxy(stream, call, accumulator)


class BufferedBody(wrapt.ObjectProxy):
    """An aiobotocore response body that we read whole: it serves the same bytes through the
    same async reading methods, and is otherwise the body itself (type, attributes, closing).
    A body whose read failed raises the same error to the app when it reads."""

    def __init__(self, wrapped: Any, data: bytes, error: Optional[BaseException] = None):
        super().__init__(wrapped)
        self._self_data = data
        self._self_position = 0
        self._self_error = error

    def _self_take(self, amount: Optional[int]) -> bytes:
        if self._self_error is not None:
            raise self._self_error
        start = self._self_position
        end = len(self._self_data) if amount is None or amount < 0 else start + amount
        self._self_position = min(end, len(self._self_data))
        return self._self_data[start : self._self_position]

    async def read(self, amt: Optional[int] = None) -> bytes:
        return self._self_take(amt)

    async def readinto(self, b: Any) -> int:
        chunk = self._self_take(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)

    def readable(self) -> bool:
        return self._self_error is not None or self._self_position < len(self._self_data)

    def tell(self) -> int:
        return self._self_position

    async def readlines(self) -> list:
        return [line async for line in self.iter_lines()]

    async def iter_lines(self, chunk_size: int = _CHUNK_SIZE, keepends: bool = False):
        for line in self._self_take(None).splitlines(keepends):
            yield line

    async def iter_chunks(self, chunk_size: int = _CHUNK_SIZE):
        while True:
            chunk = self._self_take(chunk_size)
            if not chunk:
                return
            yield chunk

    def __aiter__(self):
        return self.iter_chunks(_CHUNK_SIZE)

    async def __anext__(self) -> bytes:
        chunk = self._self_take(_CHUNK_SIZE)
        if not chunk:
            raise StopAsyncIteration
        return chunk

    anext = __anext__

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc_value, traceback):
        return await self.__wrapped__.__aexit__(exc_type, exc_value, traceback)


class AioBotocoreInstrumentor(LLMInstrumentor):
    # The first release whose botocore has Converse (1.34.116) is 2.13.1.
    requirements = ("aiobotocore >= 2.13.1, < 4",)

    def targets(self) -> list:
        return [
            Target(
                "aiobotocore.client",
                "AioBaseClient._make_api_call",
                wrapper=self._make_api_call,
                required_since="2.13.1",
            )
        ]

    def _make_api_call(self, wrapped, instance, args, kwargs):
        # One hook for every AWS call: only bedrock-runtime inference and the Bedrock Agents
        # calls are recorded, each call with its own handler (its request and result translation
        # share the parsed body).
        if bedrock_agents.handles(instance, args):
            return bedrock_agents.async_call(self, wrapped, instance, args, kwargs)
        if not is_bedrock_inference(instance, args):
            return wrapped(*args, **kwargs)
        handler = AioBedrockCall(args[0], args[1] if len(args) > 1 else kwargs.get("api_params"))

        async def call_then_read_body(*call_args, **call_kwargs):
            response = await wrapped(*call_args, **call_kwargs)
            if handler.operation == INVOKE:
                await handler.read_body(response)
            return response

        return async_wrapper(self, handler)(call_then_read_body, instance, args, kwargs)
