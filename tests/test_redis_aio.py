"""The async cache over a Redis L2: native redis.asyncio reads against a real redis-server."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sigcache.aio import AsyncLayeredSignatureCache
from sigcache.config import L1Settings, LayeredConfig
from sigcache.errors import StorageError
from sigcache.layered import LayeredSignatureCache
from sigcache.redis_aio import AsyncRedisReads
from sigcache.redis_store import RedisSettings, RedisStore
from sigcache.storage import MAIN
from tests.contract import SIG_A, SIG_B, SIG_C, FakeClock
from tests.redis_server import RedisServer, redis_server, requires_redis

pytestmark = requires_redis

_prefixes = itertools.count()
L2_ONLY = LayeredConfig(l1=L1Settings(max_entries=1))  # reads of other texts miss L1


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


def _cache(url: str, clock: Any = time.time, **settings: Any) -> LayeredSignatureCache:
    store = RedisStore(url, RedisSettings(prefix=f"aio{next(_prefixes)}", **settings))
    return LayeredSignatureCache("unused.db", config=L2_ONLY, clock=clock, store=store)


def _no_thread_hops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if a read still goes through a worker thread."""

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an L2 read went through asyncio.to_thread")

    monkeypatch.setattr("sigcache.aio.asyncio.to_thread", refuse)


def test_reads_are_native_and_match_the_sync_cache(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    cache = _cache(server.url, clock)
    texts = [f"thought number {i} " * 20 for i in range(30)]
    for i, text in enumerate(texts):
        cache.set(text, (SIG_A, SIG_B)[i % 2], owner_id="alice" if i % 3 else None)
    cache.cache_tool_signature("toolu_9", SIG_C)
    cache.cache_session_signature("sess", SIG_B, "a text")
    assert cache.flush(5)
    _no_thread_hops(monkeypatch)

    async def scenario() -> None:
        wrapper = AsyncLayeredSignatureCache(cache, owns_cache=False)
        try:
            assert isinstance(wrapper._native, AsyncRedisReads)
            for i, text in enumerate(texts):
                owner = "alice" if i % 3 else None
                assert await wrapper.aget(text, owner_id=owner) == cache.get(text, owner)
                assert await wrapper.aget(text, owner_id="bob") is None  # owner-strict
            await wrapper.aget(texts[1], owner_id="alice")
            assert cache.read_tier() == "l2"  # answered by Redis, not L1
            many = await wrapper.aget_many([texts[1], texts[2], "absent", texts[1]], "alice")
            assert many == [SIG_B, SIG_A, None, SIG_B]
            assert await wrapper.aget_tool_signature("toolu_9") == SIG_C
            assert await wrapper.aget_session_signature_with_text("sess") == (SIG_B, "a text")
            clock.advance(30 * 86_400)  # past the L2 TTL on the cache's (virtual) clock
            assert await wrapper.aget(texts[5], owner_id="alice") is None
        finally:
            await wrapper.aclose()

    asyncio.run(scenario())
    cache.close()


def test_concurrent_tasks(server: RedisServer) -> None:
    # 40 tasks open 40 connections at once: on a loaded machine the handshakes take longer
    # than the 0.1 s default (they would be counted misses); this test is about the answers.
    cache = _cache(server.url, socket_timeout_s=2.0, connect_timeout_s=2.0)
    texts = [f"concurrent thought {i} " * 30 for i in range(50)]
    for i, text in enumerate(texts):
        cache.set(text, (SIG_A, SIG_B, SIG_C)[i % 3])
    assert cache.flush(5)
    expected = [(SIG_A, SIG_B, SIG_C)[i % 3] for i in range(50)]

    async def scenario() -> None:
        async with AsyncLayeredSignatureCache(cache, owns_cache=True) as wrapper:

            async def reader(offset: int) -> list[str | None]:
                return [await wrapper.aget(texts[(offset + i) % 50]) for i in range(50)]

            results = await asyncio.gather(*(reader(n) for n in range(40)))
            for offset, answers in enumerate(results):
                assert answers == [expected[(offset + i) % 50] for i in range(50)]
            idle = len(wrapper._native._idle)
            assert 1 <= idle <= 40  # connections are shared, one per task in flight at most

    asyncio.run(scenario())
    assert int(cache.get_stats()["l2_errors"]) == 0  # type: ignore[call-overload]


def test_killed_and_restarted_never_raises_and_recovers() -> None:
    with redis_server() as server:
        cache = _cache(server.url, socket_timeout_s=0.2, backoff_initial_s=0.02, backoff_max_s=0.1)
        cache.set("survivor " * 40, SIG_A)
        assert cache.flush(5)

        async def scenario() -> None:
            async with AsyncLayeredSignatureCache(cache, owns_cache=True) as wrapper:

                async def hammer(stop: asyncio.Event) -> int:
                    calls = 0
                    while not stop.is_set():
                        # Never raises: a failing L2 is a miss (or an L1 hit), counted.
                        await wrapper.aget("survivor " * 40)
                        await wrapper.aget_many(["survivor " * 40, "other"])
                        calls += 1
                        await asyncio.sleep(0)
                    return calls

                assert await wrapper.aget("survivor " * 40) == SIG_A
                stop = asyncio.Event()
                tasks = [asyncio.create_task(hammer(stop)) for _ in range(8)]
                await asyncio.sleep(0.2)
                server.stop()
                await asyncio.sleep(0.4)
                errors_while_down = int(cache.get_stats()["l2_errors"])  # type: ignore[call-overload]
                assert errors_while_down > 0
                server.start()
                # A write refused while the shared back-off still runs (the hammering reads keep
                # failing on dead connections until the server answers) stays in L1 only, so
                # flush reports it; recovery means a later write lands, without a restart.
                deadline = time.monotonic() + 5
                landed = False
                while not landed and time.monotonic() < deadline:
                    cache.set("after restart " * 40, SIG_B)
                    landed = await wrapper.aflush(5)
                    await asyncio.sleep(0.05)
                assert landed
                deadline = time.monotonic() + 5
                found = None
                while found is None and time.monotonic() < deadline:
                    found = await wrapper.aget("after restart " * 40 + "x")  # a miss: fine
                    found = await wrapper.aget("after restart " * 40)
                    await asyncio.sleep(0.02)
                stop.set()
                assert all(n > 0 for n in await asyncio.gather(*tasks))
                assert found == SIG_B  # served by the restarted Redis (L1 holds one entry)

        asyncio.run(scenario())


def test_paused_server_times_out_within_the_socket_timeout() -> None:
    with redis_server() as server:
        cache = _cache(server.url, socket_timeout_s=0.1, backoff_initial_s=0.05)
        cache.set("paused " * 40, SIG_A)
        assert cache.flush(5)

        async def scenario() -> None:
            async with AsyncLayeredSignatureCache(cache, owns_cache=True) as wrapper:
                assert await wrapper.aget("paused " * 40) == SIG_A  # connected
                cache.set("other " * 40, SIG_B)  # evicts the first from the one-entry L1
                assert await wrapper.aflush(5)
                server.pause()
                try:
                    started = time.monotonic()
                    assert await wrapper.aget("paused " * 40) is None
                    assert time.monotonic() - started < 1.0  # bounded by the 0.1 s deadline
                finally:
                    server.resume()
                await asyncio.sleep(0.1)  # past the back-off
                deadline = time.monotonic() + 5
                found = None
                while found is None and time.monotonic() < deadline:
                    found = await wrapper.aget("paused " * 40)
                    await asyncio.sleep(0.02)
                assert found == SIG_A

        asyncio.run(scenario())


def test_each_event_loop_gets_its_own_connections(server: RedisServer) -> None:
    cache = _cache(server.url)
    cache.set("loop " * 40, SIG_A)
    cache.set("evictor " * 40, SIG_B)
    assert cache.flush(5)
    wrapper = AsyncLayeredSignatureCache(cache)

    async def read() -> str | None:
        await wrapper.aget("evictor " * 40)  # so that the next read misses L1
        try:
            return await wrapper.aget("loop " * 40)
        finally:
            await wrapper.aclose()  # this loop's connections; the next loop opens its own

    assert asyncio.run(read()) == SIG_A
    assert asyncio.run(read()) == SIG_A
    assert cache.read_tier() == "l2"
    cache.close()


def test_closed_store_is_a_counted_miss(server: RedisServer) -> None:
    cache = _cache(server.url)

    async def scenario() -> None:
        wrapper = AsyncLayeredSignatureCache(cache)
        cache.storage.close()
        assert await wrapper.aget("anything " * 10) is None
        assert await wrapper.aget_many(["a", "b"]) == [None, None]
        await wrapper.aclose()

    asyncio.run(scenario())
    assert int(cache.get_stats()["l2_errors"]) >= 2  # type: ignore[call-overload]
    cache.close()


def test_sync_and_async_share_the_back_off() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", RedisSettings(backoff_initial_s=5.0))
    reads = store.async_reads()
    with pytest.raises(StorageError):
        store.get(MAIN, "", "k", 0.0)  # the refused connect opens the window

    async def scenario() -> None:
        started = time.monotonic()
        with pytest.raises(StorageError, match="backing off"):
            await reads.get(MAIN, "", "k", 0.0)
        assert time.monotonic() - started < 0.05  # no network call at all
        await reads.close()

    asyncio.run(scenario())
    store.close()
