"""Async bridge: `AsyncLayeredSignatureCache`, L2 reads through aiosqlite.

L1 and the write queue never block, so writes and L1 hits run inline on the event loop. An L1
miss reads L2 through one aiosqlite connection (its own thread) with the SQL of
`sigcache.schema`; the rarer look-ups (last/recent, fuzzy, invalidate, clear, cleanup, flush)
run the sync method in a worker thread (`asyncio.to_thread`), so the loop is never blocked.
A cache over another store than SQLite (`store=`) reads L2 in a worker thread too, unless the
store offers native async reads (`async_reads()`, e.g. `RedisStore`: redis.asyncio, see
`sigcache.redis_aio`).

Provenance (issue 13): every method takes the keyword-only `model`, `scope` and
`conversation_id` of its sync twin, with the same meaning; a tool id that missed is looked up by
its rewritten forms in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import aiosqlite

from sigcache import schema
from sigcache.config import L2Settings, LayeredConfig
from sigcache.errors import StorageError, translate_sqlite_error
from sigcache.layered import LayeredSignatureCache
from sigcache.layered_keys import id_key, main_key
from sigcache.memory import L1Key
from sigcache.sqlite import SQLiteStore
from sigcache.storage import MAIN, SESSION, TOOL, Entry

__all__ = ["AsyncLayeredSignatureCache"]

_T = TypeVar("_T")


class _AsyncReader:
    """One aiosqlite reader connection, reopened for a new event loop or after a fork."""

    def __init__(
        self, path: str, settings: L2Settings, verify: Callable[[bool], int] | None = None
    ) -> None:
        self._path = path
        self._verify = verify  # the sync store's file-identity check (a recreated file)
        self._generation = -1
        self._pragmas = schema.connection_pragmas(
            schema.READER_PRAGMAS,
            settings.busy_timeout_ms,
            settings.cache_size_kib,
            settings.mmap_size_bytes,
        )
        self._timeout = settings.busy_timeout_ms / 1000
        self._conn: aiosqlite.Connection | None = None
        self._owner: tuple[int, asyncio.AbstractEventLoop] | None = None
        self._opening: tuple[tuple[int, asyncio.AbstractEventLoop], asyncio.Lock] | None = None

    async def _connection(self) -> aiosqlite.Connection:
        owner = (os.getpid(), asyncio.get_running_loop())
        stale = self._verify is not None and self._verify(False) != self._generation
        if self._conn is not None and self._owner == owner and not stale:
            return self._conn
        # 2026-11: many tasks missing at once each opened a connection and all but one leaked
        # (ResourceWarning); one opening lock per loop makes the others wait for the first.
        if self._opening is None or self._opening[0] != owner:
            self._opening = (owner, asyncio.Lock())
        async with self._opening[1]:
            generation = -1 if self._verify is None else self._verify(True)
            if self._conn is not None and self._owner == owner and generation == self._generation:
                return self._conn
            await self.close()
            conn = await aiosqlite.connect(self._path, timeout=self._timeout, isolation_level=None)
            try:
                for statement in self._pragmas:
                    await (await conn.execute(statement)).close()
            except BaseException:
                await conn.close()
                raise
            self._conn, self._owner, self._generation = conn, owner, generation
            return conn

    async def rows(self, sql: str, params: Sequence[object]) -> list[Entry]:
        """Entries selected by one statement; errors become `StorageError`."""
        return [Entry.from_row(row) for row in await self.fetch(sql, params)]

    async def fetch(self, sql: str, params: Sequence[object]) -> list[Sequence[object]]:
        """The raw rows of one statement; errors become `StorageError`."""
        try:
            conn = await self._connection()
            # 2026-11: one hop to aiosqlite's thread (execute, fetch and close there); execute,
            # fetchall and the cursor's close took three, each waiting for that thread to wake
            # and then for the loop to resume: most of an async L2 hit.
            return list(await conn.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            await self.close()  # a fresh connection next time lets a cleared fault recover
            raise translate_sqlite_error(exc, self._path, "read") from exc
        except StorageError:  # the file was recreated: reconnect next time
            await self.close()
            raise

    async def close(self) -> None:
        """Close the connection if it belongs to this process."""
        conn, self._conn = self._conn, None
        if conn is not None and self._owner is not None and self._owner[0] == os.getpid():
            # Its loop or thread may be gone already; there is nothing left to release then.
            with contextlib.suppress(sqlite3.Error, RuntimeError, ValueError):
                await conn.close()


class AsyncLayeredSignatureCache:
    """Async twin of `LayeredSignatureCache` (`aget`, `aset`, ...), sharing its tiers."""

    def __init__(self, cache: LayeredSignatureCache, *, owns_cache: bool = False) -> None:
        self.cache = cache
        self._owns_cache = owns_cache
        # aiosqlite reads only a SQLite L2; any other store is read in a worker thread.
        self._sqlite = isinstance(cache.storage, SQLiteStore)
        verify = cache.storage.verify if isinstance(cache.storage, SQLiteStore) else None
        self._reader = _AsyncReader(cache.path, cache.config.l2, verify)
        # A store with native async reads (RedisStore: redis.asyncio) skips the thread hop.
        make_async = getattr(cache.storage, "async_reads", None)
        self._native: Any = make_async() if callable(make_async) else None

    @classmethod
    def open(
        cls,
        db_path: str | os.PathLike[str],
        *,
        config: LayeredConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> AsyncLayeredSignatureCache:
        """A new layered cache on `db_path`, owned (and closed) by the async wrapper."""
        return cls(LayeredSignatureCache(db_path, config=config, clock=clock), owns_cache=True)

    # -- reads through aiosqlite --------------------------------------------------------------

    async def _read(self, key: L1Key | None) -> Entry | None:
        if key is None:
            return None
        answered, entry, digest = self.cache.before_l2(key)
        if answered:
            return entry
        try:
            row = await self._get(key, digest)
        except StorageError as exc:
            return self.cache.after_l2(key, None, exc)
        return self.cache.after_l2(key, row, None)

    async def _get(self, key: L1Key, digest: str) -> Entry | None:
        now = self.cache.clock()
        if self._native is not None:
            found: Entry | None = await self._native.get(key[0], key[1], digest, now)
            return found
        if not self._sqlite:
            return await asyncio.to_thread(self.cache.storage.get, key[0], key[1], digest, now)
        params = (key[0], schema.bind_text(key[1]), schema.bind_text(digest), now)
        rows = await self._reader.fetch(schema.GET_VALUES, params)
        # GET_VALUES selects the columns after the key; the look-up's own store, owner and key
        # complete the row (as in `SQLiteStore.get`).
        return Entry.from_row((key[0], key[1], digest, *rows[0])) if rows else None

    async def aget(
        self,
        thinking_text: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """Async `get`."""
        entry = await self._read(main_key(thinking_text, owner_id))
        if entry is not None and (model is not None or scope is not None):
            entry = self.cache.admit(MAIN, entry, model, scope)
        return entry.signature if entry else None

    async def aget_many(
        self,
        texts: Sequence[object],
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> list[str | None]:
        """Async `get_many`: L1 misses read from L2 in one query per 500 keys."""
        keys = [main_key(text, owner_id) for text in texts]
        found: list[Entry | None] = [None] * len(keys)
        wanted: dict[str, list[int]] = {}
        for index, key in enumerate(keys):
            if key is not None:
                answered, entry, digest = self.cache.before_l2(key)
                if answered:
                    found[index] = entry
                else:
                    wanted.setdefault(digest, []).append(index)
        rows, error = await self._many(keys, wanted)
        for digest, indexes in wanted.items():
            for index in indexes:
                key = keys[index]
                if key is not None:
                    found[index] = self.cache.after_l2(key, rows.get(digest), error)
        if model is not None or scope is not None:
            found = [self.cache.admit(MAIN, entry, model, scope) for entry in found]
        return [entry.signature if entry else None for entry in found]

    async def _many(
        self, keys: list[L1Key | None], wanted: dict[str, list[int]]
    ) -> tuple[dict[str, Entry], StorageError | None]:
        if not wanted:
            return {}, None
        owner = next(key[1] for key in keys if key is not None)
        digests, rows = list(wanted), {}
        now = self.cache.clock()
        if self._native is not None:
            try:
                return await self._native.get_many(MAIN, owner, digests, now), None
            except StorageError as exc:
                return {}, exc
        if not self._sqlite:
            storage = self.cache.storage
            try:
                return await asyncio.to_thread(storage.get_many, MAIN, owner, digests, now), None
            except StorageError as exc:
                return {}, exc
        try:
            for start in range(0, len(digests), schema.MAX_KEYS_PER_QUERY):
                chunk = [
                    schema.bind_text(d) for d in digests[start : start + schema.MAX_KEYS_PER_QUERY]
                ]
                sql = schema.get_many_sql(len(chunk))
                params = (MAIN, schema.bind_text(owner), *chunk, now)
                rows.update({e.key: e for e in await self._reader.rows(sql, params)})
        except StorageError as exc:
            return {}, exc
        return rows, None

    async def aget_tool_signature(
        self,
        tool_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """Async `get_tool_signature` (rewritten forms of the id included)."""
        key = id_key(TOOL, tool_id, owner_id)
        entry = await self._read(key)
        if entry is None and key is not None:
            entry = await asyncio.to_thread(self.cache.tool_alias_entry, key)
        entry = self.cache.admit(TOOL, entry, model, scope)
        return entry.signature if entry else None

    async def aget_session_signature(
        self,
        session_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """Async `get_session_signature`."""
        found = await self.aget_session_signature_with_text(
            session_id, owner_id, model=model, scope=scope
        )
        return found[0] if found else None

    async def aget_session_signature_with_text(
        self,
        session_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> tuple[str, str] | None:
        """Async `get_session_signature_with_text`."""
        entry = await self._read(id_key(SESSION, session_id, owner_id))
        entry = self.cache.admit(SESSION, entry, model, scope)
        return (entry.signature, entry.text) if entry else None

    # -- writes: inline, they never wait for SQLite ---------------------------------------------

    async def aset(
        self,
        thinking_text: str,
        signature: str,
        model: str | None = None,
        owner_id: str | None = None,
        *,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> bool:
        """Async `set`."""
        return self.cache.set(
            thinking_text, signature, model, owner_id, scope=scope, conversation_id=conversation_id
        )

    async def acache_tool_signature(
        self,
        tool_id: str,
        signature: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> bool:
        """Async `cache_tool_signature` (its alias check may read L2: in a worker thread)."""
        return await self._in_thread(
            partial(
                self.cache.cache_tool_signature,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            ),
            tool_id,
            signature,
            owner_id,
        )

    async def acache_session_signature(
        self,
        session_id: str,
        signature: str,
        thinking_text: str = "",
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> bool:
        """Async `cache_session_signature`."""
        return self.cache.cache_session_signature(
            session_id,
            signature,
            thinking_text,
            owner_id,
            model=model,
            scope=scope,
            conversation_id=conversation_id,
        )

    # -- the rest: the sync method in a worker thread ------------------------------------------

    async def _in_thread(self, method: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.to_thread(method, *args)

    async def ainvalidate(self, thinking_text: str, owner_id: str | None = None) -> bool:
        """Async `invalidate`."""
        return await self._in_thread(self.cache.invalidate, thinking_text, owner_id)

    async def aclear(self) -> int:
        """Async `clear`."""
        return await self._in_thread(self.cache.clear)

    async def acleanup_expired(self) -> int:
        """Async `cleanup_expired`."""
        return await self._in_thread(self.cache.cleanup_expired)

    async def aget_tool_signature_fuzzy(
        self,
        tool_id: str,
        max_candidates: int = 5,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """Async `get_tool_signature_fuzzy`."""
        return await self._in_thread(
            partial(
                self.cache.get_tool_signature_fuzzy,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            ),
            tool_id,
            max_candidates,
            owner_id,
        )

    async def aget_last_signature(
        self,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """Async `get_last_signature`."""
        return await self._in_thread(
            partial(
                self.cache.get_last_signature,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            ),
            owner_id,
        )

    async def aget_last_signature_with_text(
        self,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> tuple[str, str] | None:
        """Async `get_last_signature_with_text`."""
        return await self._in_thread(
            partial(
                self.cache.get_last_signature_with_text,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            ),
            owner_id,
        )

    async def aget_recent_signature(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """Async `get_recent_signature`."""
        return await self._in_thread(
            partial(
                self.cache.get_recent_signature,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            ),
            time_window_seconds,
            client_type,
            owner_id,
        )

    async def aget_recent_signature_with_text(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> tuple[str, str] | None:
        """Async `get_recent_signature_with_text`."""
        return await self._in_thread(
            partial(
                self.cache.get_recent_signature_with_text,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            ),
            time_window_seconds,
            client_type,
            owner_id,
        )

    async def aflush(self, timeout: float | None = None) -> bool:
        """Async `flush`."""
        return await self._in_thread(self.cache.flush, timeout)

    async def aclose(self) -> None:
        """Close the aiosqlite connection (and the layered cache when this wrapper owns it)."""
        await self._reader.close()
        if self._native is not None:
            await self._native.close()
        if self._owns_cache:
            await self._in_thread(self.cache.close)

    async def __aenter__(self) -> AsyncLayeredSignatureCache:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
