"""Transparent stream proxies that end the call's span exactly once, however the stream ends.

A provider stream is wrapped in a :class:`wrapt.ObjectProxy`, so ``isinstance`` checks,
attributes and helper methods of the SDK's stream keep working. Each chunk goes through
the adapter's :class:`StreamAccumulator`, which folds it into the final response and may
hide chunks the application did not ask for (OpenAI's usage-only chunk that we request).

Exit paths covered: exhaustion, an exception while iterating, ``close()``/``aclose()``,
``with``/``async with``, and abandonment (``break`` then garbage collection).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Optional

import wrapt

from .spans import InferenceCall

logger = logging.getLogger("posthog_autoinstrument")


class StreamAccumulator:
    """Folds one library's stream chunks into the call's response. Adapters subclass it."""

    def on_chunk(self, chunk: Any) -> bool:
        """Look at one chunk; return True to hide it from the application."""
        return False

    def finish(self, call: InferenceCall) -> None:
        """Record what the stream delivered (output, usage, finish reasons) on the call."""


def _finish(call: InferenceCall, accumulator: StreamAccumulator, error: Optional[BaseException]) -> None:
    if call.ended:
        return
    try:
        accumulator.finish(call)
    except Exception:
        logger.debug("posthog-autoinstrument: stream accumulator failed", exc_info=True)
    if error is None:
        call.end()
    else:
        call.fail(error)


def _observe(call: InferenceCall, accumulator: StreamAccumulator, chunk: Any) -> bool:
    call.chunk_received()
    try:
        return accumulator.on_chunk(chunk)
    except Exception:
        logger.debug("posthog-autoinstrument: stream chunk not understood", exc_info=True)
        return False


class SyncStreamProxy(wrapt.ObjectProxy):
    """Proxy for a synchronous stream (an iterator, usually also a context manager)."""

    def __init__(self, wrapped: Any, call: InferenceCall, accumulator: StreamAccumulator):
        super().__init__(wrapped)
        self._self_call = call
        self._self_accumulator = accumulator

    def __iter__(self):
        return self

    def __next__(self):
        call = self._self_call
        accumulator = self._self_accumulator
        wrapped = self.__wrapped__
        while True:
            try:
                chunk = next(wrapped)
            except StopIteration:
                _finish(call, accumulator, None)
                raise
            except BaseException as exc:
                _finish(call, accumulator, exc)
                raise
            # _observe, inlined: this runs once per chunk.
            call.chunk_received()
            try:
                if not accumulator.on_chunk(chunk):
                    return chunk
            except Exception:
                logger.debug("posthog-autoinstrument: stream chunk not understood", exc_info=True)
                return chunk

    def __enter__(self):
        enter = getattr(self.__wrapped__, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        try:
            exit_ = getattr(self.__wrapped__, "__exit__", None)
            return exit_(exc_type, exc_value, traceback) if exit_ is not None else None
        finally:
            _finish(self._self_call, self._self_accumulator, None)

    def close(self, *args, **kwargs):
        try:
            return self.__wrapped__.close(*args, **kwargs)
        finally:
            _finish(self._self_call, self._self_accumulator, None)

    def __del__(self):
        # The application stopped iterating and dropped the stream: record what it got.
        try:
            _finish(self._self_call, self._self_accumulator, None)
        except Exception:
            pass


class AsyncStreamProxy(wrapt.ObjectProxy):
    """Proxy for an asynchronous stream (an async iterator, usually an async context manager)."""

    def __init__(self, wrapped: Any, call: InferenceCall, accumulator: StreamAccumulator):
        super().__init__(wrapped)
        self._self_call = call
        self._self_accumulator = accumulator

    def __aiter__(self):
        return self

    async def __anext__(self):
        call = self._self_call
        accumulator = self._self_accumulator
        wrapped = self.__wrapped__
        while True:
            try:
                chunk = await wrapped.__anext__()
            except StopAsyncIteration:
                _finish(call, accumulator, None)
                raise
            except BaseException as exc:
                _finish(call, accumulator, exc)
                raise
            if not _observe(call, accumulator, chunk):
                return chunk

    async def __aenter__(self):
        enter = getattr(self.__wrapped__, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(self, exc_type, exc_value, traceback):
        try:
            exit_ = getattr(self.__wrapped__, "__aexit__", None)
            return await exit_(exc_type, exc_value, traceback) if exit_ is not None else None
        finally:
            _finish(self._self_call, self._self_accumulator, None)

    def close(self, *args, **kwargs):
        return self._self_closing(self.__wrapped__.close(*args, **kwargs))

    def aclose(self, *args, **kwargs):
        return self._self_closing(self.__wrapped__.aclose(*args, **kwargs))

    def _self_closing(self, result: Any) -> Any:
        # SDKs differ on whether closing an async stream is itself awaitable.
        if inspect.isawaitable(result):
            return self._self_await_then_finish(result)
        _finish(self._self_call, self._self_accumulator, None)
        return result

    async def _self_await_then_finish(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        finally:
            _finish(self._self_call, self._self_accumulator, None)

    def __del__(self):
        try:
            _finish(self._self_call, self._self_accumulator, None)
        except Exception:
            pass
