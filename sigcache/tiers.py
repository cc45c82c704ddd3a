"""The tiered core of the layered cache: the read path (L1, overlay, L2) and the write path.

`TieredCore` owns the tiers (L1 `MemoryTier`, the L2 store, the `BatchWriter`) and the counters,
and implements one read and one write; `LayeredSignatureCache` builds the public cache API on it
and the async bridge (`sigcache.aio`) reuses `before_l2` / `after_l2` around its aiosqlite read.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import TypeGuard, TypeVar

from sigcache.config import LayeredConfig
from sigcache.errors import StorageError
from sigcache.layered_keys import l2_key, l2_key_of
from sigcache.layered_stats import Counters
from sigcache.memory import L1Key, MemoryTier
from sigcache.sqlite import SQLiteStore
from sigcache.storage import MAIN, BurstLog, Entry, QueryStorage
from sigcache.writer import BatchWriter

__all__ = ["Clock", "TieredCore"]

log = logging.getLogger("sigcache.layered")

Clock = Callable[[], float]
_T = TypeVar("_T")


class TieredCore:
    """L1 over the pending overlay over L2: one read, one write, failures counted."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        config: LayeredConfig | None = None,
        clock: Clock = time.time,
        store: QueryStorage | None = None,
    ) -> None:
        self._config = config or LayeredConfig()
        self._clock = clock
        self._l1 = MemoryTier(self._config.l1, clock)
        # StorageOpenError names the path; `store` replaces the SQLite default (db_path unused).
        self._l2: QueryStorage = (
            store if store is not None else SQLiteStore(db_path, self._config.l2)
        )
        self._writer = BatchWriter(self._l2, self._config.l2, l2_key_of)
        self._stats = Counters()
        self._faults = BurstLog(log, f"L2 reads from {self._l2.path!r}")
        self._local = threading.local()
        self._closed = False
        self._l1_ttl = self._config.l1.ttl_seconds
        self._l2_ttl = self._config.l2.ttl_seconds

    @property
    def path(self) -> str:
        """Where L2 lives (the database file by default)."""
        return self._l2.path

    @property
    def storage(self) -> QueryStorage:
        """The L2 store."""
        return self._l2

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

    def read_refusal(self) -> str | None:
        """Why this thread's last read, if it answered nothing, refused what it found, else None."""
        # Set by the provenance check and cleared by every miss, never by a hit, so the hit path
        # pays nothing; after a hit the value is stale, hence "if it answered nothing".
        refusal: str | None = getattr(self._local, "refused", None)
        return refusal

    def _no_read(self) -> None:
        """Record a read that found nothing without asking a tier (no usable key)."""
        local = self._local
        local.tier = local.refused = None

    def before_l2(self, key: L1Key) -> tuple[bool, Entry | None, str]:
        """L1, then the pending overlay: (answered, entry, L2 key) for one read.

        The L2 key (a SHA-256 for main texts) is derived only when neither answered.
        """
        entry = self._l1.get(key)
        if entry is not None:
            self._local.tier = "l1"
            self._stats.answered(key[0], True, "l1")
            return True, entry, ""
        found, pending = self._writer.lookup(*key)
        if not found:
            return False, None, l2_key(key)
        if pending is not None and self._clock() > pending.expires_at:
            pending = None
        if pending is not None:
            self._promote(key, pending)
        self._answer(key[0], "l2" if pending else None, "pending")
        return True, pending, ""

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
        local = self._local
        local.tier = tier
        if tier is None:
            local.refused = None  # a plain miss (the L1 hit path never comes here)
        self._stats.answered(store, tier is not None, source)

    def _promote(self, key: L1Key, entry: Entry) -> None:
        self._l1.put(key, entry, min(self._clock() + self._l1_ttl, entry.expires_at))

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

    def _write(
        self,
        key: L1Key,
        signature: str,
        text: str,
        model: object,
        conv: object,
        expires_at: object = None,
        written_at: object = None,
        scope: object = None,
    ) -> bool:
        """Write to L1 now and to L2 through the writer; False for refused times."""
        # The L2 key of a main entry stays "" here: the writer thread derives it (see writer.py).
        now = self._clock()
        times = _entry_times(now, self._l2_ttl, expires_at, written_at)
        if times is None:
            return False
        written, expires = times
        entry = Entry(
            key[0],
            key[1],
            "" if key[0] == MAIN else key[2],
            signature,
            text,
            model if isinstance(model, str) else None,
            conv if isinstance(conv, str) else None,
            written,
            expires,
            scope if isinstance(scope, str) and scope else None,
        )
        l1_expires = min(written + self._l1_ttl, expires)
        if l1_expires >= now:  # an old backfilled write may already be past its L1 life
            self._l1.put(key, entry, l1_expires)
        self._writer.put(entry, key[2])
        self._stats.add(f"{key[0]}_writes")
        return True

    def _guarded(self, action: Callable[[], _T], default: _T) -> _T:
        """Run an L2 call; on failure count it and return `default`."""
        try:
            result = action()
        except StorageError as exc:
            self._l2_failed(exc)
            return default
        self._faults.success()
        return result

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

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued L2 write is committed; False on a timeout or when an L2 write
        failed since the previous flush (even before this call)."""
        return self._writer.flush(timeout)


def _entry_times(
    now: float, l2_ttl: float, expires_at: object, written_at: object
) -> tuple[float, float] | None:
    """(written_at, L2 expiry) of a write, or None when the caller's times are refused.

    A caller's `expires_at` only shortens the life (never past now + the L2 TTL) and must lie
    in the future; `written_at` (e.g. a backfilled entry's legacy write time) never lies
    ahead of now, so "recent" windows and ordering cannot be skewed into the future.
    """
    expires = now + l2_ttl
    if expires_at is not None:
        if not _finite(expires_at) or expires_at <= now:
            return None
        expires = min(expires, float(expires_at))
    if written_at is None:
        return now, expires
    if not _finite(written_at):
        return None
    return min(float(written_at), now), expires


def _finite(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
