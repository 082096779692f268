"""Stream proxies end the call exactly once on every exit path and stay transparent."""

import asyncio
import gc

import pytest

from posthog_autoinstrument.genai import AsyncStreamProxy, StreamAccumulator, SyncStreamProxy


class FakeCall:
    """Counts how the call ended."""

    def __init__(self):
        self.ended = False
        self.ends = 0
        self.failures = []
        self.chunks = 0

    def chunk_received(self):
        self.chunks += 1

    def end(self):
        self.ends += 1
        self.ended = True

    def fail(self, exc):
        self.failures.append(exc)
        self.end()


class Collect(StreamAccumulator):
    def __init__(self, hide=()):
        self.seen = []
        self.finished = 0
        self.hide = hide

    def on_chunk(self, chunk):
        self.seen.append(chunk)
        return chunk in self.hide

    def finish(self, call):
        self.finished += 1


class SdkStream:
    """Shaped like the SDKs' streams: iterator, context manager, close()."""

    def __init__(self, items, fail_at=None):
        self._items = iter(items)
        self.fail_at = fail_at
        self.closed = False
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.fail_at is not None and self.position == self.fail_at:
            raise ConnectionError("dropped")
        self.position += 1
        return next(self._items)

    def __enter__(self):
        return self  # the SDK returns itself, not our proxy

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.closed = True

    def helper(self):
        return "helper works"


def wrap(items, **kw):
    call, acc = FakeCall(), Collect(hide=kw.pop("hide", ()))
    return SyncStreamProxy(SdkStream(items, **kw), call, acc), call, acc


def test_exhaustion_ends_once_and_keeps_isinstance_and_helpers():
    proxy, call, acc = wrap([1, 2, 3])
    assert isinstance(proxy, SdkStream)
    assert proxy.helper() == "helper works"
    assert list(proxy) == [1, 2, 3]
    with pytest.raises(StopIteration):
        next(proxy)
    # Three chunks seen by the accumulator; the call is told of the first one (time to first chunk).
    assert (call.ends, acc.finished, len(acc.seen), call.chunks) == (1, 1, 3, 1)


def test_hidden_chunks_are_skipped():
    proxy, call, acc = wrap([1, 2, 3], hide=(3,))
    assert list(proxy) == [1, 2]
    assert acc.seen == [1, 2, 3]
    assert call.ends == 1


def test_close_ends_once():
    proxy, call, _ = wrap([1, 2, 3])
    next(proxy)
    proxy.close()
    proxy.close()
    assert proxy.__wrapped__.closed and call.ends == 1 and not call.failures


def test_with_block_returns_the_proxy_and_ends_on_exit():
    proxy, call, _ = wrap([1, 2, 3])
    with proxy as stream:
        assert stream is proxy
        next(stream)
    assert proxy.__wrapped__.closed and call.ends == 1


def test_break_then_garbage_collection_ends_once():
    proxy, call, _ = wrap(range(100))
    for item in proxy:
        if item == 2:
            break
    del proxy
    gc.collect()
    assert call.ends == 1 and not call.failures


def test_iteration_resumes_where_it_stopped_whichever_way_it_is_driven():
    proxy, call, acc = wrap([1, 2, 3, 4, 5])
    for item in proxy:
        break
    assert next(proxy) == 2
    assert list(proxy) == [3, 4, 5]
    assert acc.seen == [1, 2, 3, 4, 5] and call.ends == 1 and not call.failures


def test_a_for_loop_over_a_dropped_proxy_records_the_whole_stream():
    # `for chunk in client.create(stream=True)` keeps only the iterator, not the proxy.
    proxy, call, acc = wrap([1, 2, 3])
    iterator = iter(proxy)
    del proxy
    gc.collect()
    assert call.ends == 0
    assert list(iterator) == [1, 2, 3] and acc.seen == [1, 2, 3] and call.ends == 1


def test_an_iterator_dropped_before_its_first_chunk_ends_the_call_at_once():
    proxy, call, _ = wrap([1, 2, 3])
    iterator = iter(proxy)
    del proxy, iterator  # reference counting alone, no gc.collect(): nothing keeps a cycle alive
    assert call.ends == 1 and not call.failures


def test_error_while_iterating_fails_the_call_and_reaches_the_app_unchanged():
    proxy, call, acc = wrap([1, 2, 3], fail_at=1)
    next(proxy)
    with pytest.raises(ConnectionError, match="dropped"):
        next(proxy)
    assert call.ends == 1 and isinstance(call.failures[0], ConnectionError) and acc.finished == 1


def test_a_broken_accumulator_does_not_disturb_the_stream():
    class Broken(StreamAccumulator):
        def on_chunk(self, chunk):
            raise RuntimeError("boom")

        def finish(self, call):
            raise RuntimeError("boom")

    call = FakeCall()
    assert list(SyncStreamProxy(SdkStream([1, 2]), call, Broken())) == [1, 2]
    assert call.ends == 1


class AsyncSdkStream:
    def __init__(self, items, fail_at=None):
        self._items = list(items)
        self.fail_at = fail_at
        self.closed = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.fail_at is not None and not self._items[self.fail_at :]:
            raise ConnectionError("dropped")
        if self.fail_at == 0:
            raise ConnectionError("dropped")
        if not self._items:
            raise StopAsyncIteration
        return self._items.pop(0)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        self.closed = True


def awrap(items, **kw):
    call, acc = FakeCall(), Collect()
    return AsyncStreamProxy(AsyncSdkStream(items, **kw), call, acc), call, acc


def test_async_exit_paths():
    async def scenario():
        proxy, call, _ = awrap([1, 2, 3])
        assert [x async for x in proxy] == [1, 2, 3]
        assert call.ends == 1

        proxy, call, _ = awrap([1, 2, 3])
        async with proxy as stream:
            assert stream is proxy
            async for _ in stream:
                break
        assert proxy.__wrapped__.closed and call.ends == 1

        proxy, call, _ = awrap([1, 2, 3])
        await proxy.__anext__()
        await proxy.close()
        assert call.ends == 1

        proxy, call, _ = awrap([1], fail_at=0)
        with pytest.raises(ConnectionError):
            await proxy.__anext__()
        assert call.ends == 1 and call.failures

        proxy, call, _ = awrap(range(10))
        async for item in proxy:
            break
        del proxy
        gc.collect()
        assert call.ends == 1

    asyncio.run(scenario())


def test_an_async_for_over_a_dropped_proxy_records_the_whole_stream():
    # `async for chunk in await client.create(stream=True)` keeps only what __aiter__ returned.
    async def scenario():
        proxy, call, acc = awrap([1, 2, 3])
        iterator = proxy.__aiter__()
        del proxy
        gc.collect()
        assert call.ends == 0
        assert [x async for x in iterator] == [1, 2, 3] and acc.seen == [1, 2, 3] and call.ends == 1

    asyncio.run(scenario())


def test_an_async_stream_dropped_mid_way_with_its_proxy_ends_the_call_at_once():
    async def scenario():
        proxy, call, acc = awrap(range(10))
        async for item in proxy:
            if item == 2:
                break
        del proxy  # reference counting alone: the event loop has not run since
        assert call.ends == 1 and acc.seen == [0, 1, 2] and not call.failures

    asyncio.run(scenario())


def test_async_iteration_resumes_where_it_stopped_whichever_way_it_is_driven():
    async def scenario():
        proxy, call, acc = awrap([1, 2, 3, 4])
        async for _ in proxy:
            break
        assert await proxy.__anext__() == 2
        assert [x async for x in proxy] == [3, 4]
        assert acc.seen == [1, 2, 3, 4] and call.ends == 1

    asyncio.run(scenario())


class GeneratedSdkStream:
    """Shaped like OpenAI's generated streams: iteration forwards a generator made at creation."""

    def __init__(self, items):
        self.made = list(items)
        self._iterator = self.__stream__()

    def __stream__(self):
        yield from self.made

    def __iter__(self):
        for item in self._iterator:
            yield item


class ObservedSdkStream(GeneratedSdkStream):
    """Its iteration does more than forward (Anthropic's calls an observer per chunk)."""

    def __init__(self, items):
        super().__init__(items)
        self.observed = []

    def __iter__(self):
        for item in self._iterator:
            self.observed.append(item)
            yield item


def test_a_stream_that_only_forwards_its_generator_is_read_from_the_generator():
    from posthog_autoinstrument.genai.streams import chunk_source

    forwarding, observing = GeneratedSdkStream([1, 2]), ObservedSdkStream([1, 2])
    assert chunk_source(forwarding, False) is forwarding._iterator
    assert chunk_source(observing, False) is observing
    call, acc = FakeCall(), Collect()
    assert list(SyncStreamProxy(observing, call, acc)) == [1, 2] and observing.observed == [1, 2]
    call, acc = FakeCall(), Collect()
    assert list(SyncStreamProxy(forwarding, call, acc)) == [1, 2] and acc.seen == [1, 2] and call.ends == 1
