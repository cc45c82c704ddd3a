"""LayeredSignatureCache: L1 memory (cachetools) over L2 SQLite, owner-strict, restart-proof.

Read path: L1, else the writer's pending overlay (queued, uncommitted writes), else L2 with
promotion to L1 (expiry = min(now + L1 TTL, the row's expiry)), else a miss, never cached.
Write path: L1 at once, L2 through the background `BatchWriter`; a write never waits for
SQLite. An L2 failure is counted (`l2_errors`), logged once per burst with `[LAYERED_CACHE]`
and answered from L1; nothing raises into a cache call.

Keys: legacy normalisation, then the whole normalised text (no 500-character prefix), under the
owner as namespace. Strict isolation: an entry written by owner A answers only owner A; an
entry written with no owner answers only callers with no owner.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TypeVar

from sigcache.config import LayeredConfig
from sigcache.errors import StorageError
from sigcache.fingerprints import extract_base_tool_id, recent_window
from sigcache.keys import is_valid_signature, normalize_thinking_text, text_digest
from sigcache.memory import L1Key, MemoryTier
from sigcache.sqlite import BatchWriter, SQLiteStore
from sigcache.storage import MAIN, SESSION, TOOL, BurstLog, Entry

__all__ = ["LayeredSignatureCache"]

log = logging.getLogger("sigcache.layered")

Clock = Callable[[], float]
_T = TypeVar("_T")


def _owner(owner_id: object) -> str | None:
    """The namespace of an owner id ("" = no owner), or None when the value is not usable."""
    if owner_id is None:
        return ""
    return owner_id if isinstance(owner_id, str) else None


def main_key(thinking_text: object, owner_id: object) -> L1Key | None:
    """The L1 key of a thinking text, derived once per request; None for unusable input."""
    owner = _owner(owner_id)
    if owner is None or not isinstance(thinking_text, str) or not thinking_text:
        return None
    normalized = normalize_thinking_text(thinking_text)
    return (MAIN, owner, normalized) if normalized else None


def id_key(store: str, ident: object, owner_id: object) -> L1Key | None:
    """The L1 key of a tool or session id; None for unusable input."""
    owner = _owner(owner_id)
    if owner is None or not isinstance(ident, str) or not ident:
        return None
    return (store, owner, ident)


def l2_key(key: L1Key) -> str:
    """The L2 key: SHA-256 of the normalised text for main entries, the id otherwise."""
    return text_digest(key[2]) if key[0] == MAIN else key[2]


def window_start(now: float, time_window_seconds: object, client_type: object) -> float | None:
    """The oldest write time inside a recent-signature window (legacy rule), None if unusable."""
    if not isinstance(client_type, str | None) or isinstance(time_window_seconds, bool):
        return None
    if not isinstance(time_window_seconds, int | float):
        return None
    # Legacy: an entry is recent when now - written_at < window, i.e. written_at > now - window.
    return now - recent_window(time_window_seconds, client_type)


class LayeredSignatureCache:
    """The new cache: L1 + L2, main/tool/session stores, owner-strict; see the module doc."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        config: LayeredConfig | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._config = config or LayeredConfig()
        self._clock = clock
        self._l1 = MemoryTier(self._config.l1, clock)
        self._l2 = SQLiteStore(db_path, self._config.l2)  # StorageOpenError names the path
        self._writer = BatchWriter(self._l2, self._config.l2)
        self._stats = _Counters()
        self._faults = BurstLog(log, f"L2 reads from {self._l2.path!r}")
        self._local = threading.local()
        self._closed = False

    # -- plumbing shared with the async bridge ------------------------------------------------

    @property
    def path(self) -> str:
        """The L2 database file."""
        return self._l2.path

    @property
    def config(self) -> LayeredConfig:
        """The settings this cache was built with."""
        return self._config

    @property
    def clock(self) -> Clock:
        """The injected clock."""
        return self._clock

    def read_tier(self) -> str | None:
        """The tier that answered this thread's last read: "l1", "l2" or None (a miss)."""
        tier: str | None = getattr(self._local, "tier", None)
        return tier

    def before_l2(self, key: L1Key) -> tuple[bool, Entry | None, str]:
        """L1, then the pending overlay: (answered, entry, L2 key) for one read."""
        entry = self._l1.get(key)
        if entry is not None:
            self._answer(key[0], "l1", "l1")
            return True, entry, ""
        digest = l2_key(key)
        found, pending = self._writer.lookup(key[0], key[1], digest)
        if found:
            if pending is not None and self._clock() > pending.expires_at:
                pending = None
            if pending is not None:
                self._promote(key, pending)
            self._answer(key[0], "l2" if pending else None, "pending")
            return True, pending, digest
        return False, None, digest

    def after_l2(self, key: L1Key, row: Entry | None, error: Exception | None) -> Entry | None:
        """Finish one read with L2's answer (or its failure): count, promote, record the tier."""
        if error is not None:
            self._l2_failed(error)
            self._answer(key[0], None, "error")
            return None
        self._faults.success()
        if row is not None:
            self._promote(key, row)
        self._answer(key[0], "l2" if row is not None else None, "l2")
        return row

    def l2_failed(self, error: Exception) -> None:
        """Count and log (once per burst) an L2 failure seen by a read."""
        self._l2_failed(error)

    def _l2_failed(self, error: Exception) -> None:
        self._stats.add("l2_errors")
        self._faults.failure(f"{type(error).__name__}: {error}")

    def _answer(self, store: str, tier: str | None, source: str) -> None:
        self._local.tier = tier
        self._stats.answered(store, tier is not None, source)

    def _promote(self, key: L1Key, entry: Entry) -> None:
        now = self._clock()
        self._l1.put(key, entry, min(now + self._config.l1.ttl_seconds, entry.expires_at))

    def _read(self, key: L1Key) -> Entry | None:
        answered, entry, digest = self.before_l2(key)
        if answered:
            return entry
        if self._closed:  # L1 still answers after close(); L2 is gone
            return self.after_l2(key, None, None)
        try:
            row = self._l2.get(key[0], key[1], digest, self._clock())
        except StorageError as exc:
            return self.after_l2(key, None, exc)
        return self.after_l2(key, row, None)

    def _write(self, key: L1Key, entry: Entry) -> None:
        l1_expires = min(entry.written_at + self._config.l1.ttl_seconds, entry.expires_at)
        self._l1.put(key, entry, l1_expires)
        self._writer.put(entry)
        self._stats.add(f"{key[0]}_writes")

    def _entry(self, key: L1Key, signature: str, text: str, model: object, conv: object) -> Entry:
        now = self._clock()
        return Entry(
            key[0],
            key[1],
            l2_key(key),
            signature,
            text,
            model if isinstance(model, str) else None,
            conv if isinstance(conv, str) else None,
            now,
            now + self._config.l2.ttl_seconds,
        )

    def _guarded(self, action: Callable[[], _T], default: _T) -> _T:
        """Run an L2 call; on failure count it and return `default`."""
        try:
            result = action()
        except StorageError as exc:
            self._l2_failed(exc)
            return default
        self._faults.success()
        return result

    # -- main store -------------------------------------------------------------------------

    def set(
        self,
        thinking_text: str,
        signature: str,
        model: str | None = None,
        owner_id: str | None = None,
        *,
        conversation_id: str | None = None,
    ) -> bool:
        """Cache a signature for a thinking text; False for empty or invalid input."""
        key = main_key(thinking_text, owner_id)
        if key is None or not is_valid_signature(signature) or self._closed:
            return False
        self._write(key, self._entry(key, signature, thinking_text, model, conversation_id))
        return True

    def get(self, thinking_text: str, owner_id: str | None = None) -> str | None:
        """The signature for a thinking text under this owner, or None."""
        key = main_key(thinking_text, owner_id)
        if key is None:
            self._local.tier = None
            return None
        entry = self._read(key)
        return entry.signature if entry else None

    def get_many(self, texts: Iterable[object], owner_id: str | None = None) -> list[str | None]:
        """Signatures for many texts (aligned with `texts`); L2 misses of L1 in one query."""
        keys = [main_key(text, owner_id) for text in texts]
        found: dict[int, Entry | None] = {}
        wanted: dict[str, list[int]] = {}
        for index, key in enumerate(keys):
            if key is None:
                found[index] = None
                continue
            answered, entry, digest = self.before_l2(key)
            if answered:
                found[index] = entry
            else:
                wanted.setdefault(digest, []).append(index)
        if wanted:
            owner = _owner(owner_id) or ""
            rows, error = self._get_many_l2(owner, list(wanted))
            for digest, indexes in wanted.items():
                for index in indexes:
                    key = keys[index]
                    assert key is not None
                    found[index] = self.after_l2(key, rows.get(digest), error)
        return [found[i].signature if found[i] else None for i in range(len(keys))]  # type: ignore[union-attr]

    def _get_many_l2(
        self, owner: str, digests: list[str]
    ) -> tuple[dict[str, Entry], Exception | None]:
        try:
            return self._l2.get_many(MAIN, owner, digests, self._clock()), None
        except StorageError as exc:
            return {}, exc

    def invalidate(self, thinking_text: str, owner_id: str | None = None) -> bool:
        """Delete a text's entry in both tiers; owner None = every owner. True if one existed."""
        key = main_key(thinking_text, None if owner_id is None else owner_id)
        if key is None or self._closed:
            return False
        digest, now = l2_key(key), self._clock()
        if owner_id is None:
            removed = self._l1.pop_every_owner(MAIN, key[2]) > 0
            in_l2 = self._guarded(lambda: self._l2.exists_any_owner(MAIN, digest, now), False)
            pending = self._writer.delete(MAIN, None, digest)
        else:
            removed = self._l1.pop(key)
            in_l2 = self._guarded(lambda: self._l2.get(MAIN, key[1], digest, now), None) is not None
            pending = self._writer.delete(MAIN, key[1], digest)
        return removed or bool(in_l2) or pending

    def clear(self) -> int:
        """Empty the main store in both tiers; returns max(L1 entries, L2 rows) removed.

        After queued writes commit, L2 holds every L1 entry (unless L2 failed), so the larger
        count is the number of distinct entries removed.
        """
        removed = self._l1.clear(MAIN)
        done = self._writer.call(lambda store: store.clear_store(MAIN), self._timeout)  # type: ignore[attr-defined]
        return max(removed, self._call_result(done))

    def cleanup_expired(self) -> int:
        """Remove expired entries of every store in both tiers and trim L2 to `l2.max_rows`.

        Returns L1 removals plus L2 rows removed (an entry can count once per tier).
        """
        removed = self._l1.expire()
        now, max_rows = self._clock(), self._config.l2.max_rows
        done = self._writer.call(lambda store: store.cleanup(now, max_rows), self._timeout)
        return removed + self._call_result(done)

    @property
    def _timeout(self) -> float:
        return self._config.l2.close_timeout_s

    def _call_result(self, done: object) -> int:
        error = getattr(done, "error", None)
        if done is None or error is not None:
            self._l2_failed(error or StorageError("L2 writer did not answer in time", self.path))
            return 0
        self._faults.success()
        return int(getattr(done, "result", 0))

    # -- size and stats -----------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Live main entries across both tiers (flushes first); L1's count if L2 is failing."""
        if not self._closed and self._writer.flush(self._timeout):
            now = self._clock()
            count = self._guarded(lambda: self._l2.count_live(MAIN, now), -1)
            if count >= 0:
                return count
        return self._l1.live_count(MAIN)

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        # An empty cache is still a cache (the origin's facade was falsy while empty).
        return True

    def get_stats(self) -> dict[str, object]:
        """Numbers only: per tier, per store and overall; `hit_rate` a float in [0, 1]."""
        stats: dict[str, object] = dict(self._stats.snapshot())
        stats.update({f"l1_{name}": value for name, value in self._l1.counts.items()})
        stats["l1_size"] = self._l1.size()
        stats["l1_main_size"] = self._l1.size(MAIN)
        writer = dict(self._writer.counts)
        stats["l2_writes_batched"] = writer["writes_batched"]
        stats["l2_batches"] = writer["batches"]
        stats["dropped_writes"] = writer["dropped_writes"]
        stats["write_errors"] = writer["write_errors"]
        stats["l2_errors"] = int(stats["l2_errors"]) + self._writer.error_events  # type: ignore[call-overload]
        stats["l2_queue_depth"] = self._writer.depth()
        rows = -1 if self._closed else self._guarded(self._l2.count_rows, -1)
        stats["l2_rows"] = rows
        hits, misses = int(stats["hits"]), int(stats["misses"])  # type: ignore[call-overload]
        stats["hit_rate"] = hits / (hits + misses) if hits + misses else 0.0
        return stats

    def reset_stats(self) -> None:
        """Zero the counters of both tiers (sizes and queue depth are states, not counters)."""
        self._stats.reset()
        self._l1.reset_counts()
        self._writer.reset_counts()

    # -- tool and session stores --------------------------------------------------------------

    def cache_tool_signature(
        self, tool_id: str, signature: str, owner_id: str | None = None
    ) -> bool:
        """Cache a signature for a tool-call id."""
        key = id_key(TOOL, tool_id, owner_id)
        if key is None or not is_valid_signature(signature) or self._closed:
            return False
        self._write(key, self._entry(key, signature, "", None, None))
        return True

    def get_tool_signature(self, tool_id: str, owner_id: str | None = None) -> str | None:
        """The signature for a tool-call id under this owner, or None."""
        key = id_key(TOOL, tool_id, owner_id)
        entry = self._read(key) if key else None
        return entry.signature if entry else None

    def get_tool_signature_fuzzy(
        self, tool_id: str, max_candidates: int = 5, owner_id: str | None = None
    ) -> str | None:
        """Exact id, its base id, then ids containing the base id, newest first (owner-strict)."""
        exact = self.get_tool_signature(tool_id, owner_id)
        key = id_key(TOOL, tool_id, owner_id)
        if exact is not None or key is None:
            return exact
        base = extract_base_tool_id(tool_id)
        if base == tool_id:
            return None
        found = self.get_tool_signature(base, owner_id)
        if found is not None:
            return found
        if isinstance(max_candidates, bool) or not isinstance(max_candidates, int):
            return None
        if max_candidates <= 0:
            return None
        entry = self._l1.search(TOOL, key[1], base, tool_id)
        if entry is None:
            now = self._clock()
            hits: list[Entry] = self._guarded(
                lambda: self._l2.search(TOOL, key[1], base, tool_id, max_candidates, now),
                list[Entry](),
            )
            entry = hits[0] if hits else None
        return entry.signature if entry else None

    def cache_session_signature(
        self,
        session_id: str,
        signature: str,
        thinking_text: str = "",
        owner_id: str | None = None,
    ) -> bool:
        """Cache a signature (and optionally its thinking text) for a session id."""
        key = id_key(SESSION, session_id, owner_id)
        if key is None or not is_valid_signature(signature) or self._closed:
            return False
        if not isinstance(thinking_text, str | None):
            return False
        self._write(key, self._entry(key, signature, thinking_text or "", None, None))
        return True

    def get_session_signature(self, session_id: str, owner_id: str | None = None) -> str | None:
        """The signature for a session id under this owner, or None."""
        found = self.get_session_signature_with_text(session_id, owner_id)
        return found[0] if found else None

    def get_session_signature_with_text(
        self, session_id: str, owner_id: str | None = None
    ) -> tuple[str, str] | None:
        """(signature, thinking text) for a session id under this owner, or None."""
        key = id_key(SESSION, session_id, owner_id)
        entry = self._read(key) if key else None
        return (entry.signature, entry.text) if entry else None

    # -- last / recent ------------------------------------------------------------------------

    def _latest(
        self, store: str, owner: str, since: float, with_text: bool = False
    ) -> Entry | None:
        """L1's newest eligible entry, else L2's (by write time, e.g. after a restart)."""
        entry = self._l1.latest(store, owner, since, with_text)
        if entry is not None:
            return entry
        now = self._clock()
        return self._guarded(lambda: self._l2.latest(store, owner, since, now, with_text), None)

    def get_last_signature(self, owner_id: str | None = None) -> str | None:
        """The most recently written or read live main entry of this owner (legacy "last")."""
        found = self.get_last_signature_with_text(owner_id)
        return found[0] if found else None

    def get_last_signature_with_text(self, owner_id: str | None = None) -> tuple[str, str] | None:
        """(signature, thinking text) of this owner's most recently touched live main entry."""
        owner = _owner(owner_id)
        entry = None if owner is None else self._latest(MAIN, owner, -math.inf)
        return (entry.signature, entry.text) if entry else None

    def get_recent_signature(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
    ) -> str | None:
        """A signature of this owner written within the window: tool, session, then main."""
        owner, since = (
            _owner(owner_id),
            window_start(self._clock(), time_window_seconds, client_type),
        )
        if owner is None or since is None:
            return None
        for store in (TOOL, SESSION, MAIN):
            entry = self._latest(store, owner, since)
            if entry is not None:
                return entry.signature
        return None

    def get_recent_signature_with_text(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
    ) -> tuple[str, str] | None:
        """(signature, text) of this owner written within the window: main, then session."""
        owner, since = (
            _owner(owner_id),
            window_start(self._clock(), time_window_seconds, client_type),
        )
        if owner is None or since is None:
            return None
        entry = self._latest(MAIN, owner, since) or self._latest(SESSION, owner, since, True)
        return (entry.signature, entry.text) if entry else None

    # -- lifecycle ------------------------------------------------------------------------------

    def entries(self) -> Iterator[Entry]:
        """Every live entry (L2 after a flush, oldest write first; L1's if L2 is failing)."""
        self.flush(self._timeout)
        now, yielded = self._clock(), False
        try:
            for entry in self._l2.scan(now):
                yielded = True
                yield entry
        except StorageError as exc:
            self._l2_failed(exc)
            if not yielded:
                yield from self._l1.live()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued L2 write is committed; False on timeout or a failed write."""
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Commit queued writes (up to `l2.close_timeout_s`) and close every connection."""
        if self._closed:
            return
        self._closed = True
        if not self._writer.close(self._timeout):
            log.warning("[LAYERED_CACHE] writer did not finish within %ss", self._timeout)
        self._l2.close()

    def __enter__(self) -> LayeredSignatureCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LayeredSignatureCache(path={self.path!r}, l1_size={self._l1.size()})"


class _Counters:
    """Read counters, each changed under one lock by the code that knows the outcome."""

    _NAMES = (
        "hits",
        "misses",
        *(
            f"{store}_{what}"
            for store in (MAIN, TOOL, SESSION)
            for what in ("hits", "misses", "writes")
        ),
        *(f"{source}_{what}" for source in ("pending", "l2") for what in ("hits", "misses")),
        "l2_errors",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self._NAMES, 0)

    def add(self, name: str, amount: int = 1) -> None:
        """Add to one counter."""
        with self._lock:
            self._counts[name] += amount

    def answered(self, store: str, hit: bool, source: str) -> None:
        """Count one look-up: overall, per store, per source ("l1", "pending", "l2", "error")."""
        outcome = "hits" if hit else "misses"
        with self._lock:
            self._counts[outcome] += 1
            self._counts[f"{store}_{outcome}"] += 1
            if source in ("pending", "l2"):
                self._counts[f"{source}_{outcome}"] += 1

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter."""
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._counts = dict.fromkeys(self._NAMES, 0)
