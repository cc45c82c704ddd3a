"""Numeric counters of the phase proxy: dual writes and routed reads, under one lock."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, Final

__all__ = [
    "FALLBACK_REFUSALS",
    "CacheSide",
    "DualWriteStats",
    "MigrationStats",
    "ReadOutcome",
    "ReadStats",
    "Tally",
    "TallySource",
]

# Why a fallback answer was withheld for provenance (`ReadStats.fallback_refused_<name>`).
FALLBACK_REFUSALS: Final = ("legacy_family", "new_family", "new_scope")

# (main-store hits, misses, successful writes) as the legacy cache counts them.
Tally = tuple[int, int, int]
TallySource = Callable[[], Tally]


class CacheSide(enum.StrEnum):
    """One of the two caches behind the phase proxy."""

    LEGACY = "legacy"
    NEW = "new"


def _rate(part: int, whole: int) -> float:
    """A float in [0, 1]; 0.0 when there is no denominator."""
    return part / whole if whole else 0.0


@dataclass(slots=True)
class DualWriteStats:
    """Write counters; a target that was not attempted is never a failure."""

    total_writes: int = 0  # routed write calls with valid input
    rejected: int = 0  # invalid input: nothing attempted
    legacy_writes: int = 0  # attempted
    legacy_failures: int = 0  # attempted and returned False or raised
    new_writes: int = 0
    new_failures: int = 0
    dual_writes: int = 0  # both caches attempted
    shadow_failures: int = 0  # failures of the non-authoritative side (never seen by callers)
    secondary_skipped: int = 0  # authoritative failed, so the other side was not written

    def to_dict(self) -> dict[str, Any]:
        """Counters plus success rates in [0, 1]."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["legacy_success_rate"] = _rate(
            self.legacy_writes - self.legacy_failures, self.legacy_writes
        )
        out["new_success_rate"] = _rate(self.new_writes - self.new_failures, self.new_writes)
        return out


@dataclass(slots=True)
class ReadStats:
    """Read counters; a cache's miss is counted only when it was consulted."""

    total_reads: int = 0  # every routed read, hit or miss
    hits: int = 0  # caller-visible hits
    misses: int = 0  # caller-visible misses
    legacy_hits: int = 0  # answers given by the legacy cache (primary or fallback)
    legacy_misses: int = 0
    new_hits: int = 0
    new_misses: int = 0
    fallback_hits: int = 0
    read_repairs: int = 0  # fallback hits written back into the cache that missed
    read_repair_failures: int = 0
    read_repairs_skipped: int = 0  # legacy answers to ownerless callers are not copied to new
    read_errors: int = 0  # a consulted cache raised (counted as its miss)
    # Fallbacks withheld for provenance (NEW_PREFERRED, issue 13): the read is a caller-visible
    # miss. `legacy_family`: legacy answered from an entry of another model family (counted as
    # legacy's miss); `new_family` / `new_scope`: the new cache found the key and refused it, so
    # legacy was not asked.
    fallback_provenance_refusals: int = 0  # the sum of the three below
    fallback_refused_legacy_family: int = 0
    fallback_refused_new_family: int = 0
    fallback_refused_new_scope: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Counters plus `hit_rate` (hits / reads) and `new_hit_ratio` (new hits / hits)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["hit_rate"] = _rate(self.hits, self.total_reads)
        out["new_hit_ratio"] = _rate(self.new_hits, self.hits)
        return out


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    """What one routed read did: recorded once, by the code that knows it."""

    primary: CacheSide | None
    primary_hit: bool
    fallback: CacheSide | None = None  # set only when the fallback was consulted
    fallback_hit: bool = False
    repaired: bool = False
    repair_failed: bool = False
    repair_skipped: bool = False  # not attempted: the owner of a permissive answer is unknown
    errors: int = 0
    refusal: str | None = None  # a fallback withheld: FALLBACK_REFUSALS names which


class MigrationStats:
    """Dual-write and read counters under one lock.

    While traffic touches the legacy cache alone (LEGACY_ONLY with migration mode on), main-store
    reads and writes are not counted here a second time: they are derived from the legacy cache's
    own counters (counted once, under its lock) via :meth:`derive_from`, which keeps the proxy's
    hot path free of a second lock. A call racing a phase change may fall on either side of it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writes = DualWriteStats()
        self._reads = ReadStats()
        self._source: TallySource | None = None
        self._base: Tally | None = None  # the source's counters when deriving began

    def derive_from(self, source: TallySource | None, on: bool) -> None:
        """Fold what was derived so far; then derive from `source` while `on`."""
        with self._lock:
            if self._base is not None:
                _fold(self._reads, self._writes, self._delta())
                self._base = None
            self._source = source
            if on and source is not None:
                self._base = source()

    def _delta(self) -> Tally:
        """Legacy (hits, misses, writes) since deriving began; call under the lock."""
        if self._source is None or self._base is None:
            return (0, 0, 0)
        now, base = self._source(), self._base
        if any(n < b for n, b in zip(now, base, strict=True)):
            base = (0, 0, 0)  # the legacy counters were reset directly: count from zero
        return (now[0] - base[0], now[1] - base[1], now[2] - base[2])

    def record_rejected_write(self) -> None:
        """Count a write refused for invalid input."""
        with self._lock:
            self._writes.rejected += 1

    def record_write(
        self, attempted: dict[CacheSide, bool], authoritative: CacheSide, skipped: int
    ) -> None:
        """Count one routed write: `attempted` maps each written cache to its success."""
        with self._lock:
            w = self._writes
            w.total_writes += 1
            w.secondary_skipped += skipped
            if len(attempted) > 1:
                w.dual_writes += 1
            for side, ok in attempted.items():
                if side is CacheSide.LEGACY:
                    w.legacy_writes += 1
                    w.legacy_failures += not ok
                else:
                    w.new_writes += 1
                    w.new_failures += not ok
                if not ok and side is not authoritative:
                    w.shadow_failures += 1

    def record_primary(self, side: CacheSide, hit: bool, errors: int) -> None:
        """Count a read the primary answered alone (a hit, or a miss with no fallback)."""
        with self._lock:
            r = self._reads
            r.total_reads += 1
            r.read_errors += errors
            if hit:
                r.hits += 1
            else:
                r.misses += 1
            if side is CacheSide.LEGACY:
                r.legacy_hits += hit
                r.legacy_misses += not hit
            else:
                r.new_hits += hit
                r.new_misses += not hit

    def record_read(self, outcome: ReadOutcome) -> None:
        """Count one routed read."""
        with self._lock:
            r = self._reads
            r.total_reads += 1
            r.read_errors += outcome.errors
            hit_side: CacheSide | None = None
            consulted = (
                (outcome.primary, outcome.primary_hit),
                (outcome.fallback, outcome.fallback_hit),
            )
            for side, hit in consulted:
                if side is None:
                    continue
                if side is CacheSide.LEGACY:
                    r.legacy_hits += hit
                    r.legacy_misses += not hit
                else:
                    r.new_hits += hit
                    r.new_misses += not hit
                hit_side = side if hit else hit_side
            r.hits += hit_side is not None
            r.misses += hit_side is None
            r.fallback_hits += outcome.fallback_hit
            r.read_repairs += outcome.repaired
            r.read_repair_failures += outcome.repair_failed
            r.read_repairs_skipped += outcome.repair_skipped
            if outcome.refusal is not None:
                r.fallback_provenance_refusals += 1
                if outcome.refusal == "legacy_family":
                    r.fallback_refused_legacy_family += 1
                elif outcome.refusal == "new_family":
                    r.fallback_refused_new_family += 1
                else:
                    r.fallback_refused_new_scope += 1

    def snapshot(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(dual_write_stats, read_stats), taken together under the lock."""
        with self._lock:
            reads, writes = replace(self._reads), replace(self._writes)
            _fold(reads, writes, self._delta())
            return writes.to_dict(), reads.to_dict()

    def reset(self, also: Callable[[], None] | None = None) -> None:
        """Zero every counter; `also` (e.g. zeroing the legacy counters) runs under the lock."""
        with self._lock:
            if also is not None:
                also()
            self._writes = DualWriteStats()
            self._reads = ReadStats()
            if self._base is not None and self._source is not None:
                self._base = self._source()


def _fold(reads: ReadStats, writes: DualWriteStats, delta: Tally) -> None:
    """Add legacy-only main-store traffic to the counters, as the adapter would have counted it."""
    hits, misses, written = delta
    reads.total_reads += hits + misses
    reads.hits += hits
    reads.misses += misses
    reads.legacy_hits += hits
    reads.legacy_misses += misses
    writes.total_writes += written
    writes.legacy_writes += written
