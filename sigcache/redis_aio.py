"""Native async reads of the Redis L2 (redis.asyncio), for `AsyncLayeredSignatureCache`.

Without this the async cache read a Redis L2 in a worker thread (`asyncio.to_thread`), a thread
hop per read. Here an L1 miss is a GET (or an MGET for `aget_many`) awaited on the event loop.
Keys, codec, liveness and failure handling are the sync `RedisStore`'s: the same `KeyLayout`,
the same decoder, `now <= expires_at`, and the same back-off, shared with the store, so when
Redis is down both paths fail fast together. Every failure is a `StorageError` (the cache then
answers from L1, counted); nothing else reaches the caller.

As in `sigcache.redis_reads`, a read borrows a connection from a small free list and sends a
packed command on it, skipping redis.asyncio's client layer (pool lock, observability, retry
wrapper). Connections belong to one event loop: a read from another loop, or in a forked child,
starts a fresh pool; await `close()` (`AsyncLayeredSignatureCache.aclose()`) on each loop that
read before that loop ends, as with any asyncio client, or its sockets are only closed (with a
ResourceWarning) when collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sigcache.errors import StorageError
from sigcache.storage import Entry

if TYPE_CHECKING:
    from sigcache.redis_codec import KeyLayout
    from sigcache.redis_store import Backoff, RedisSettings

__all__ = ["AsyncRedisReads"]


class AsyncRedisReads:
    """GET / MGET of L2 entries over redis.asyncio (built by `RedisStore.async_reads()`)."""

    def __init__(
        self,
        url: str,
        settings: RedisSettings,
        keys: KeyLayout,
        backoff: Backoff,
        decode: Callable[[bytes], Entry],
        path: str,
        store_closed: Callable[[], bool],
    ) -> None:
        self._url = url
        self._settings = settings
        self._keys = keys
        self._backoff = backoff
        self._decode = decode
        self.path = path
        self._store_closed = store_closed
        self._pool: aioredis.ConnectionPool | None = None
        self._owner: tuple[int, asyncio.AbstractEventLoop] | None = None
        self._idle: list[Any] = []  # redis.asyncio connections of the current pool

    # -- reads -------------------------------------------------------------------------------

    async def get(self, store: str, owner: str, key: str, now: float) -> Entry | None:
        """The live entry for a key, or None (one GET)."""
        name = self._keys.entry(store, owner, key)
        raw: bytes | None = await self._run(b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(name), name))
        if raw is None:
            return None
        entry = self._decode(raw)
        return entry if now <= entry.expires_at else None

    async def get_many(
        self, store: str, owner: str, keys: Sequence[str], now: float
    ) -> dict[str, Entry]:
        """Live entries for many keys of one store and owner (one MGET)."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        names = [self._keys.entry(store, owner, key) for key in unique]
        parts = [b"*%d\r\n$4\r\nMGET\r\n" % (len(names) + 1)]
        parts += [b"$%d\r\n%b\r\n" % (len(name), name) for name in names]
        values: list[bytes | None] = await self._run(b"".join(parts))
        found: dict[str, Entry] = {}
        for key, raw in zip(unique, values, strict=True):
            if raw is not None:
                entry = self._decode(raw)
                if now <= entry.expires_at:
                    found[key] = entry
        return found

    # -- the guarded round trip ----------------------------------------------------------------

    async def _run(self, packed: bytes) -> Any:
        if self._store_closed():
            raise StorageError(f"read {self.path!r}: store is closed", self.path)
        backoff = self._backoff
        if backoff.until and backoff.blocked():
            raise StorageError(f"read {self.path!r}: unavailable, backing off", self.path)
        try:
            reply = await self._round_trip(packed)
        except (RedisError, TimeoutError) as exc:
            backoff.failed()
            raise StorageError(f"read {self.path!r}: {type(exc).__name__}", self.path) from exc
        backoff.succeeded()
        return reply

    async def _round_trip(self, packed: bytes) -> Any:
        idle = self._current_idle()
        conn = idle.pop() if idle else None
        s = self._settings
        # One deadline (asyncio.timeout: a timer handle) rather than redis-py's per-call socket
        # timeout, which wraps every send in wait_for (a task); a connection still to be opened
        # gets the connect timeout on top.
        ready = conn is not None and conn.is_connected
        budget = s.socket_timeout_s + (0.0 if ready else s.connect_timeout_s)
        async with asyncio.timeout(budget):
            if conn is None:
                conn = await self._borrow()
            return await self._exchange(conn, packed, idle)

    async def _exchange(self, conn: Any, packed: bytes, idle: list[Any]) -> Any:
        try:
            await conn.send_packed_command(packed, check_health=False)
            reply = await conn.read_response()
        except BaseException as exc:
            if not isinstance(exc, ResponseError):
                # redis-py disconnects on a failed send or read (a cancellation included);
                # make sure: a half-read reply must never reach the next command.
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)
            idle.append(conn)  # disconnected: it reconnects on its next use
            if isinstance(exc, RedisConnectionError | RedisTimeoutError):
                await self._disconnect_idle()  # after a restart every idle socket is dead
            raise
        idle.append(conn)
        return reply

    def _current_idle(self) -> list[Any]:
        """The free list of this process and running loop (a fresh pool for a new one)."""
        owner = (os.getpid(), asyncio.get_running_loop())
        if self._owner != owner:
            stale, self._idle = self._idle, []
            for conn in stale:  # their loop is gone or not ours: close without awaiting it
                with contextlib.suppress(Exception):
                    conn._close()
            self._pool, self._owner = None, owner
        return self._idle

    async def _borrow(self) -> Any:
        if self._pool is None:
            s = self._settings
            self._pool = aioredis.ConnectionPool.from_url(
                self._url,
                socket_timeout=None,  # the deadline of `_run` bounds each round trip
                socket_connect_timeout=s.connect_timeout_s,
                retry=Retry(NoBackoff(), 0),  # the shared back-off, not redis-py's retries
                max_connections=s.max_connections,
            )
        # Borrowed for good: kept in the free list.
        return await self._pool.get_connection()  # type: ignore[no-untyped-call]

    async def _disconnect_idle(self) -> None:
        for conn in list(self._idle):
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)

    async def close(self) -> None:
        """Disconnect this loop's connections; a later read opens new ones (as a new loop would)."""
        pool, idle, owner = self._pool, self._idle, self._owner
        self._pool, self._idle, self._owner = None, [], None
        try:
            here = owner == (os.getpid(), asyncio.get_running_loop())
        except RuntimeError:  # no running loop
            here = False
        for conn in idle:
            with contextlib.suppress(Exception):
                if here:
                    await conn.disconnect()
                else:
                    conn._close()
        if pool is not None and here:
            with contextlib.suppress(Exception):
                await pool.aclose()
