"""RedisStore: the L2 storage protocol over Redis (redis-py), for workers on many hosts.

Key layout and value codec: `sigcache.redis_codec`. Every entry is one string value with a
Redis TTL; a per-store sorted set by expiry counts, cleans and scans; a per-(store, owner)
sorted set by write time answers the last/recent and fuzzy look-ups, trimmed to
`recent_horizon_s` behind its newest write. `put_many` is one MULTI/EXEC pipeline (all or none);
`get_many` is one MGET. Liveness is always checked against the caller's `now` (the injected
clock), so a replay's virtual clock expires entries exactly; the Redis TTL is garbage
collection: the entry's own expiry (PXAT) when the clock is the wall clock, else its
nominal lifetime from now (PX).

Failures: every call is bounded by `socket_timeout_s`; any redis-py error (refused, reset,
timeout, a broken reply) becomes `StorageError`. After a failure the store fails fast (no
network call) for a back-off that doubles from `backoff_initial_s` up to `backoff_max_s`, then
tries again; the first success ends it. redis-py's own retries are off, so a call never waits
more than one timeout. After a fork, redis-py's pool opens fresh connections in the child.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from sigcache import forksafe
from sigcache.errors import StorageError, StorageOpenError
from sigcache.redis_codec import KeyLayout, decode_entry, decode_part, encode_entry, encode_part
from sigcache.redis_reads import DirectReads
from sigcache.storage import STORES, Entry

if TYPE_CHECKING:
    from sigcache.redis_aio import AsyncRedisReads

__all__ = ["Backoff", "RedisSettings", "RedisStore", "redacted_url"]

_T = TypeVar("_T")
_A = TypeVar("_A")
# A clock within this of the wall clock is the wall clock (not a replay's virtual clock).
_REAL_CLOCK_SLACK_S = 300.0
_CHUNK = 500  # keys per MGET / DEL round of the admin calls


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """The Redis tier: timeouts, back-off and key layout."""

    prefix: str = "sigcache"  # every key starts with "{prefix}:"
    socket_timeout_s: float = 0.1  # longest one call waits for a reply; slower = failed
    connect_timeout_s: float = 0.1  # longest a (re)connect waits
    backoff_initial_s: float = 0.05  # fail fast this long after a failure, doubling per failure
    backoff_max_s: float = 2.0  # ... up to this
    recent_horizon_s: float = 604_800.0  # last/recent members kept this long (= the L2 TTL)
    max_connections: int | None = None  # pool bound per process; None = one per thread in use
    page_size: int = 32  # candidates fetched per round trip by latest() and search()


def redacted_url(url: str) -> str:
    """The URL without user name or password (for `path` and messages)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}"


class Backoff:
    """Fail-fast window after a failure, doubling per consecutive failure."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._initial, self._max = initial, maximum
        self._lock = threading.Lock()
        self.until = 0.0  # monotonic deadline; 0 = healthy
        self._delay = 0.0
        forksafe.register(self)

    def blocked(self) -> bool:
        """Whether calls should fail fast now (check `until` first: it is 0 when healthy)."""
        return time.monotonic() < self.until

    def failed(self) -> None:
        """Open (or lengthen) the window."""
        with self._lock:
            self._delay = min(max(self._delay * 2, self._initial), self._max)
            self.until = time.monotonic() + self._delay

    def succeeded(self) -> None:
        """Close the window."""
        if self.until:  # unlocked fast path: the healthy case on every call
            with self._lock:
                self.until, self._delay = 0.0, 0.0

    def after_fork_in_child(self) -> None:
        """A fresh lock and a fresh start in the child."""
        self._lock = threading.Lock()
        self.until, self._delay = 0.0, 0.0


class RedisStore:
    """L2 over Redis; implements `storage.QueryStorage` (see the module docstring)."""

    def __init__(self, url: str, settings: RedisSettings | None = None) -> None:
        self.settings = s = settings or RedisSettings()
        self.path = redacted_url(url)
        self._url = url  # with its credentials: for `async_reads` only, never shown
        self._keys = KeyLayout(s.prefix)
        try:
            self._client: redis.Redis = redis.Redis.from_url(
                url,
                socket_timeout=s.socket_timeout_s,
                socket_connect_timeout=s.connect_timeout_s,
                retry=Retry(NoBackoff(), 0),  # our back-off, not redis-py's retries
                max_connections=s.max_connections,
                decode_responses=False,
            )
        except (ValueError, RedisError) as exc:
            raise StorageOpenError(f"open {self.path!r}: {exc}", self.path) from exc
        self._backoff = Backoff(s.backoff_initial_s, s.backoff_max_s)
        self._reads = DirectReads(self._client.connection_pool)  # the hot GET / MGET
        self._closed = False
        self._horizon_ms = int(s.recent_horizon_s * 1000)

    # -- the guarded call -------------------------------------------------------------------

    def _cmd(self, action: str, *args: Any) -> Any:
        """One Redis command, guarded (see `_call`)."""
        return self._call(action, lambda client: client.execute_command(*args))  # type: ignore[no-untyped-call]

    def _call(self, action: str, fn: Callable[[redis.Redis], _T]) -> _T:
        if self._closed:
            raise StorageError(f"{action} {self.path!r}: store is closed", self.path)
        if self._backoff.until and time.monotonic() < self._backoff.until:
            raise StorageError(f"{action} {self.path!r}: unavailable, backing off", self.path)
        try:
            result = fn(self._client)
        except RedisError as exc:
            self._backoff.failed()
            if isinstance(exc, RedisConnectionError):
                # Idle pooled connections are as dead as this one after a server restart.
                self._client.connection_pool.disconnect(inuse_connections=False)
            raise StorageError(f"{action} {self.path!r}: {type(exc).__name__}", self.path) from exc
        self._backoff.succeeded()
        return result

    def _hot(self, fn: Callable[[_A], _T], arg: _A) -> _T:
        """A hot read through `DirectReads`, guarded like `_call` (one attempt, then back-off)."""
        if self._closed:
            raise StorageError(f"read {self.path!r}: store is closed", self.path)
        if self._backoff.until and time.monotonic() < self._backoff.until:
            raise StorageError(f"read {self.path!r}: unavailable, backing off", self.path)
        try:
            result = fn(arg)
        except RedisError as exc:
            self._backoff.failed()
            if isinstance(exc, RedisConnectionError):
                self._client.connection_pool.disconnect(inuse_connections=False)
            raise StorageError(f"read {self.path!r}: {type(exc).__name__}", self.path) from exc
        self._backoff.succeeded()
        return result

    def async_reads(self) -> AsyncRedisReads:
        """Native async GET / MGET of this store (redis.asyncio), sharing its back-off."""
        from sigcache.redis_aio import AsyncRedisReads

        return AsyncRedisReads(
            self._url,
            self.settings,
            self._keys,
            self._backoff,
            self._decode,
            self.path,
            lambda: self._closed,
        )

    def _decode(self, raw: bytes) -> Entry:
        try:
            return decode_entry(raw)
        except (ValueError, TypeError) as exc:
            raise StorageError(f"read {self.path!r}: corrupt entry", self.path) from exc

    def ping(self) -> bool:
        """Whether Redis answers now (False rather than raising)."""
        try:
            return bool(self._call("ping", lambda c: c.ping()))
        except StorageError:
            return False

    # -- Storage ----------------------------------------------------------------------------

    def get(self, store: str, owner: str, key: str, now: float) -> Entry | None:
        """The live entry for a key, or None (one GET)."""
        raw = self._hot(self._reads.get, self._keys.entry(store, owner, key))
        if raw is None:
            return None
        entry = self._decode(raw)
        return entry if now <= entry.expires_at else None

    def get_many(self, store: str, owner: str, keys: Sequence[str], now: float) -> dict[str, Entry]:
        """Live entries for many keys of one store and owner (one MGET)."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        names = [self._keys.entry(store, owner, key) for key in unique]
        values = self._hot(self._reads.mget, names)
        found: dict[str, Entry] = {}
        for key, raw in zip(unique, values, strict=True):
            if raw is not None:
                entry = self._decode(raw)
                if now <= entry.expires_at:
                    found[key] = entry
        return found

    def put_many(self, entries: Sequence[Entry]) -> int:
        """Upsert entries in one MULTI/EXEC pipeline (all or none)."""
        if not entries:
            return 0
        wall = time.time()
        index: dict[str, dict[bytes, float]] = {}
        recent: dict[bytes, dict[bytes, float]] = {}
        values: dict[bytes, tuple[bytes, int | None, int | None]] = {}
        for entry in entries:
            name = self._keys.entry(entry.store, entry.owner, entry.key)
            values[name] = (encode_entry(entry), *_expiry(entry, wall))
            index.setdefault(entry.store, {})[name] = entry.expires_at
            members = recent.setdefault(self._keys.recent(entry.store, entry.owner), {})
            members[encode_part(entry.key)] = entry.written_at
        real = abs(max(e.written_at for e in entries) - wall) < _REAL_CLOCK_SLACK_S

        def write(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=True)
            for name, (value, px, pxat) in values.items():
                pipe.set(name, value, px=px, pxat=pxat)
            for store, mapping in index.items():
                pipe.zadd(self._keys.index(store), mapping)
                if real:  # Redis has dropped these keys already (their PXAT passed)
                    pipe.zremrangebyscore(self._keys.index(store), "-inf", f"({wall - 60}")
            for name, mapping in recent.items():
                pipe.zadd(name, mapping)
                cutoff = max(mapping.values()) - self.settings.recent_horizon_s
                pipe.zremrangebyscore(name, "-inf", f"({cutoff!r}")
                pipe.pexpire(name, self._horizon_ms)
            pipe.execute()

        self._call("write", write)
        return len(entries)

    def delete(self, store: str, owner: str | None, key: str) -> int:
        """Delete a key of one owner, or of every owner when `owner` is None."""
        if owner is not None:
            return self._remove(store, [self._keys.entry(store, owner, key)])
        return self._remove(store, self._matching(self._keys.any_owner_pattern(store, key)))

    def _matching(self, pattern: bytes) -> list[bytes]:
        """Every key matching a pattern (SCAN: O(keyspace), for the rare admin calls)."""
        return self._call("scan", lambda c: list(dict.fromkeys(c.scan_iter(pattern, 1000))))

    def _remove(self, store: str, names: Sequence[bytes]) -> int:
        """Delete entries and their index members; how many entries existed."""
        removed = 0
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            removed += self._call("delete", partial(self._remove_chunk, store, chunk))
        return removed

    def _remove_chunk(self, store: str, chunk: Sequence[bytes], client: redis.Redis) -> int:
        recent: dict[bytes, list[bytes]] = {}
        for name in chunk:
            rkey, member = self._keys.recent_of_entry(store, name)
            recent.setdefault(rkey, []).append(member)
        pipe = client.pipeline(transaction=True)
        pipe.delete(*chunk)
        pipe.zrem(self._keys.index(store), *chunk)
        for rkey, members in recent.items():
            pipe.zrem(rkey, *members)
        return int(pipe.execute()[0])

    def cleanup(self, now: float, max_rows: int) -> int:
        """Delete expired entries, then the earliest-expiring beyond `max_rows`.

        With one TTL for every write (the layered cache's), earliest-expiring is oldest-written.
        """
        removed = 0
        for store in STORES:
            index = self._keys.index(store)
            expired: list[bytes] = self._cmd("cleanup", "ZRANGEBYSCORE", index, "-inf", f"({now!r}")
            removed += self._remove(store, expired)
        excess = self.count_rows() - max_rows
        if excess > 0:
            oldest: list[tuple[float, str, bytes]] = []
            for store in STORES:
                index = self._keys.index(store)
                flat: list[Any] = self._cmd("cleanup", "ZRANGE", index, 0, excess - 1, "WITHSCORES")
                rows = _score_pairs(flat)
                oldest.extend((score, store, name) for name, score in rows)
            for store in STORES:
                doomed = [name for _, s, name in sorted(oldest)[:excess] if s == store]
                removed += self._remove(store, doomed)
        return removed

    def clear_store(self, store: str) -> int:
        """Delete every entry of one store, its index and its recent sets."""
        removed = self._remove(store, self._matching(self._keys.entry(store, "", "")[:-1] + b"*"))
        sets = [self._keys.index(store), *self._matching(self._keys.recent_pattern(store))]
        self._cmd("clear", "DEL", *sets)
        return removed

    # -- ordered look-ups ---------------------------------------------------------------------

    def latest(
        self,
        store: str,
        owner: str,
        since: float,
        now: float,
        with_text: bool = False,
        conversation: str | None = None,
    ) -> Entry | None:
        """The newest live entry written after `since` (pages of the owner's recent set).

        A conversation filters the pages (issue 13): there is no per-conversation set, so a
        conversation with no entry in the window reads the owner's whole window.
        """
        rkey, page = self._keys.recent(store, owner), self.settings.page_size
        start = 0
        while True:
            members: list[bytes] = self._cmd(
                "read", "ZREVRANGEBYSCORE", rkey, "+inf", f"({since!r}", "LIMIT", start, page
            )
            for entry in self._entries(store, owner, members, now):
                if (
                    entry.written_at > since
                    and (entry.text or not with_text)
                    and (conversation is None or entry.conversation_id == conversation)
                ):
                    return entry
            if len(members) < page:
                return None
            start += page

    def search(
        self, store: str, owner: str, needle: str, exclude: str, limit: int, now: float
    ) -> list[Entry]:
        """Live entries whose key contains `needle`, other than `exclude`, newest first."""
        rkey = self._keys.recent(store, owner)
        members: list[bytes] = self._cmd("read", "ZREVRANGE", rkey, 0, -1)
        wanted = [m for m in members if _contains(decode_part(m), needle, exclude)]
        found: list[Entry] = []
        for start in range(0, len(wanted), self.settings.page_size):
            found.extend(
                self._entries(store, owner, wanted[start : start + self.settings.page_size], now)
            )
            if len(found) >= limit:
                break
        return found[: max(limit, 0)]

    def _entries(self, store: str, owner: str, members: list[bytes], now: float) -> list[Entry]:
        """The live entries behind recent-set members, in their order."""
        if not members:
            return []
        names = [self._keys.entry_of_member(store, owner, m) for m in members]
        values: list[bytes | None] = self._cmd("read", "MGET", *names)
        entries = (self._decode(raw) for raw in values if raw is not None)
        return [entry for entry in entries if now <= entry.expires_at]

    def exists_any_owner(self, store: str, key: str, now: float) -> bool:
        """Whether any owner holds a live entry for the key (a SCAN: admin calls only)."""
        names = self._matching(self._keys.any_owner_pattern(store, key))
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            values: list[bytes | None] = self._cmd("read", "MGET", *chunk)
            if any(now <= self._decode(raw).expires_at for raw in values if raw is not None):
                return True
        return False

    def count_live(self, store: str, now: float) -> int:
        """Live entries of one store (one ZCOUNT of its expiry index)."""
        return int(self._cmd("count", "ZCOUNT", self._keys.index(store), repr(now), "+inf"))

    def count_rows(self) -> int:
        """Every indexed entry, live or not yet cleaned up."""

        def count(client: redis.Redis) -> int:
            pipe = client.pipeline(transaction=False)
            for store in STORES:
                pipe.zcard(self._keys.index(store))
            return sum(int(n) for n in pipe.execute())

        return self._call("count", count)

    def scan(self, now: float) -> Iterator[Entry]:
        """Every live entry, earliest expiry (= oldest write under one TTL) first, lazily."""
        streams = [self._scan_store(store, now) for store in STORES]
        yield from heapq.merge(*streams, key=lambda entry: entry.expires_at)

    def _scan_store(self, store: str, now: float) -> Iterator[Entry]:
        index, start = self._keys.index(store), 0
        while True:
            names: list[bytes] = self._cmd(
                "scan", "ZRANGEBYSCORE", index, repr(now), "+inf", "LIMIT", start, _CHUNK
            )
            if not names:
                return
            values: list[bytes | None] = self._cmd("scan", "MGET", *names)
            for raw in values:
                if raw is not None and now <= (entry := self._decode(raw)).expires_at:
                    yield entry
            start += len(names)

    def close(self) -> None:
        """Close this process's connections (idempotent); later calls raise StorageError."""
        self._closed = True
        self._reads.close()
        self._client.close()
        self._client.connection_pool.disconnect()

    def __repr__(self) -> str:
        return f"RedisStore({self.path!r}, prefix={self.settings.prefix!r})"


def _expiry(entry: Entry, wall: float) -> tuple[int | None, int | None]:
    """SET's (PX, PXAT): the entry's own expiry on the wall clock, else its lifetime from now."""
    if abs(entry.written_at - wall) < _REAL_CLOCK_SLACK_S:
        return None, max(math.ceil(entry.expires_at * 1000) + 1, int(wall * 1000) + 1)
    return max(math.ceil((entry.expires_at - entry.written_at) * 1000) + 1, 1), None


def _contains(key: str, needle: str, exclude: str) -> bool:
    return key != exclude and needle in key


def _score_pairs(reply: list[Any]) -> list[tuple[bytes, float]]:
    """(member, score) pairs of a WITHSCORES reply, flat (RESP2) or paired (redis-py 6+)."""
    if reply and isinstance(reply[0], list | tuple):
        return [(member, float(score)) for member, score in reply]
    return list(zip(reply[::2], map(float, reply[1::2]), strict=True))
