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
import sys
import types
from typing import Any, Optional

import wrapt

from .inference_call import InferenceCall

logger = logging.getLogger("posthog_autoinstrument")


class StreamAccumulator:
    """Folds one library's stream chunks into the call's response. Adapters subclass it."""

    #: True when ``finish`` reads only the accumulator's own state: it may then run on the
    #: export thread (``InferenceCall.later``) instead of as the stream ends.
    finish_can_wait = False

    def on_chunk(self, chunk: Any) -> bool:
        """Look at one chunk; return True to hide it from the application."""
        return False

    def finish(self, call: InferenceCall) -> None:
        """Record what the stream delivered (output, usage, finish reasons) on the call."""


def _finish(call: InferenceCall, accumulator: StreamAccumulator, error: Optional[BaseException]) -> None:
    if call.ended:
        return
    try:
        if accumulator.finish_can_wait:
            call.later(accumulator.finish, call)
        else:
            accumulator.finish(call)
    except Exception:
        logger.debug("posthog-autoinstrument: stream accumulator failed", exc_info=True)
    if error is None:
        call.end()
    else:
        call.fail(error)


def _observed(stream: Any, call: InferenceCall, accumulator: StreamAccumulator):
    """The chunks of ``stream``, each shown to the accumulator; the call ends with the stream.

    The per-chunk code: a generator resumes for a fraction of what a ``__next__`` call through
    the proxy costs. It holds no reference to the proxy (no cycle: a dropped stream is freed,
    and its call ended, at once by reference counting). Primed by the proxy, so that dropping
    it even before the first chunk ends the call (GeneratorExit).
    """
    on_chunk = accumulator.on_chunk
    first = True
    try:
        yield None  # the priming step
        # ``for`` over the stream, not ``next()`` per chunk: the SDKs' streams iterate through
        # a generator, cheaper to resume than their ``__next__`` is to call.
        for chunk in stream:
            if first:
                first = False
                call.chunk_received()
            try:
                hidden = on_chunk(chunk)
            except Exception:
                logger.debug("posthog-autoinstrument: stream chunk not understood", exc_info=True)
                hidden = False
            if not hidden:
                yield chunk
    except GeneratorExit:
        # Closed, or dropped before the end: record what the application got.
        _finish(call, accumulator, None)
        raise
    except BaseException as exc:
        _finish(call, accumulator, exc)
        raise
    _finish(call, accumulator, None)


async def _observed_async(stream: Any, call: InferenceCall, accumulator: StreamAccumulator):
    """``_observed`` for async streams. Not primed (an async generator cannot be advanced
    without an event loop): the proxy's ``__del__`` covers a stream dropped before its first
    chunk, and one dropped mid-way along with its proxy (see ``AsyncStreamProxy.__del__``)."""
    on_chunk = accumulator.on_chunk
    first = True
    try:
        async for chunk in stream:
            if first:
                first = False
                call.chunk_received()
            try:
                hidden = on_chunk(chunk)
            except Exception:
                logger.debug("posthog-autoinstrument: stream chunk not understood", exc_info=True)
                hidden = False
            if not hidden:
                yield chunk
    except GeneratorExit:
        _finish(call, accumulator, None)
        raise
    except BaseException as exc:
        _finish(call, accumulator, exc)
        raise
    _finish(call, accumulator, None)


def observe_stream(stream: Any, call: InferenceCall, accumulator: StreamAccumulator) -> Any:
    """The proxy the application gets in place of an SDK's stream, sync or async."""
    proxy = AsyncStreamProxy if _is_async(stream) else SyncStreamProxy
    return proxy(stream, call, accumulator)


def _is_async(stream: Any, depth: int = 0) -> bool:
    kind = type(stream)
    if hasattr(kind, "__next__") and hasattr(kind, "__anext__") and depth < 8:
        # Another instrumentation's proxy that offers both (OpenInference's): what it stands for decides.
        inner = getattr(stream, "__wrapped__", None)
        if inner is not None:
            return _is_async(inner, depth + 1)
    return hasattr(stream, "__anext__")


# type -> whether its __iter__/__aiter__ only forwards its ``_iterator`` generator
_forwarding_types: dict = {}


def chunk_source(stream: Any, asynchronous: bool) -> Any:
    """What to read ``stream``'s chunks from: the stream, or the generator its iteration forwards.

    OpenAI's generated SDK streams iterate as ``for item in self._iterator: yield item``. Our
    own generator reads that generator directly and takes the forwarding layer's place, so
    observing the stream adds no generator resumption per chunk. A method that reads anything
    but ``self._iterator`` (Anthropic's also calls an observer) is left in the path.
    """
    kind = type(stream)
    forwards = _forwarding_types.get(kind)
    if forwards is None:
        method = getattr(kind, "__aiter__" if asynchronous else "__iter__", None)
        code = getattr(method, "__code__", None)
        forwards = code is not None and code.co_names == ("_iterator",) and code.co_argcount == 1
        if len(_forwarding_types) < 256:
            _forwarding_types[kind] = forwards
    if forwards:
        source = getattr(stream, "__dict__", {}).get("_iterator")
        if isinstance(source, types.AsyncGeneratorType if asynchronous else types.GeneratorType):
            return source
    return stream


class SyncStreamProxy(wrapt.ObjectProxy):
    """Proxy for a synchronous stream (an iterator, usually also a context manager)."""

    def __init__(self, wrapped: Any, call: InferenceCall, accumulator: StreamAccumulator):
        super().__init__(wrapped)
        self._self_call = call
        self._self_accumulator = accumulator
        self._self_chunks = None

    def __iter__(self):
        # One generator, made on first use, serves ``for`` and ``next()`` alike. From then on it
        # owns the end of the call: a ``for`` loop keeps only it, not this proxy.
        chunks = self._self_chunks
        if chunks is None:
            chunks = _observed(chunk_source(self.__wrapped__, False), self._self_call, self._self_accumulator)
            next(chunks)
            self._self_chunks = chunks
        return chunks

    def __next__(self):
        return next(self.__iter__())

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
        # Dropped without being iterated: record the call. (Once iterated, the generator ends it.)
        try:
            if self._self_chunks is None:
                _finish(self._self_call, self._self_accumulator, None)
        except Exception:
            pass


class AsyncStreamProxy(wrapt.ObjectProxy):
    """Proxy for an asynchronous stream (an async iterator, usually an async context manager)."""

    def __init__(self, wrapped: Any, call: InferenceCall, accumulator: StreamAccumulator):
        super().__init__(wrapped)
        self._self_call = call
        self._self_accumulator = accumulator
        self._self_chunks = None

    def __aiter__(self):
        # ``async for`` resumes our generator directly: no call of ours per chunk. (Without
        # reference counts, ``__del__`` could not tell whether a loop still holds it.)
        return self._self_generator() if _getrefcount is not None else self

    def __anext__(self):
        return self._self_generator().__anext__()  # the async generator's own awaitable

    def _self_generator(self):
        # One generator, made on first use, serves ``async for`` and ``__anext__`` alike.
        chunks = self._self_chunks
        if chunks is None:
            chunks = self._self_chunks = _observed_async(
                chunk_source(self.__wrapped__, True), self._self_call, self._self_accumulator
            )
        return chunks

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
        # Dropped, and nothing else holds our generator: record what the application got, now.
        # (An async generator dropped mid-way is closed later, by a task of the event loop.) While
        # an ``async for`` still holds the generator (``async for chunk in await create(...)``
        # keeps no reference to the proxy), the generator ends the call.
        try:
            if self._self_chunks is None or _getrefcount is None or _references_to_chunks(self) <= _ONLY_THE_PROXYS:
                _finish(self._self_call, self._self_accumulator, None)
        except Exception:
            pass


# An interpreter without reference counts has no getrefcount: the async proxy then stays the
# app's iterator, and ends the call when it is dropped.
_getrefcount = getattr(sys, "getrefcount", None)


def _references_to_chunks(holder: Any) -> int:
    return 0 if _getrefcount is None else _getrefcount(holder._self_chunks)


# What ``_references_to_chunks`` counts when only its holder refers to the generator, measured
# on this interpreter rather than assumed (how many references reading an attribute and passing
# it on takes differs between versions).
_ONLY_THE_PROXYS = _references_to_chunks(types.SimpleNamespace(_self_chunks=object())) if _getrefcount else 0
