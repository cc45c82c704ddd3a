"""Write and read strategies per phase (pure decisions) and their numeric stats."""

from __future__ import annotations

import enum
import functools
import threading
from dataclasses import dataclass, fields
from typing import Any

from sigcache.phases import PHASE_FLAG_TABLE, MigrationPhase, PhaseFlags

__all__ = [
    "READ_TABLE",
    "WRITE_TABLE",
    "CacheSide",
    "DualWriteStats",
    "DualWriteStrategy",
    "MigrationStats",
    "ReadOutcome",
    "ReadPlan",
    "ReadStats",
    "ReadStrategy",
    "WritePlan",
    "read_plan",
    "write_plan",
]


class CacheSide(enum.StrEnum):
    """One of the two caches behind the phase proxy."""

    LEGACY = "legacy"
    NEW = "new"


@dataclass(frozen=True, slots=True)
class WritePlan:
    """The caches a write reaches, in order; the first is authoritative (its result is returned)."""

    targets: tuple[CacheSide, ...]

    @property
    def authoritative(self) -> CacheSide | None:
        """The cache whose result the caller sees."""
        return self.targets[0] if self.targets else None


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """The cache asked first, and the one asked on a primary miss (None: no fallback)."""

    primary: CacheSide | None
    fallback: CacheSide | None


@functools.cache  # pure and keyed by a frozen row: the hot path pays one dict look-up
def write_plan(flags: PhaseFlags) -> WritePlan:
    """Where a write goes: the cache reads prefer is authoritative and written first."""
    first, second = (
        (CacheSide.NEW, CacheSide.LEGACY)
        if flags.prefer_new_on_read
        else (CacheSide.LEGACY, CacheSide.NEW)
    )
    enabled = {CacheSide.LEGACY: flags.write_to_legacy, CacheSide.NEW: flags.write_to_new}
    return WritePlan(tuple(side for side in (first, second) if enabled[side]))


@functools.cache
def read_plan(flags: PhaseFlags) -> ReadPlan:
    """Where a read goes: the preferred readable cache first, the other readable one as fallback."""
    readable = {CacheSide.LEGACY: flags.read_from_legacy, CacheSide.NEW: flags.read_from_new}
    order = (
        (CacheSide.NEW, CacheSide.LEGACY)
        if flags.prefer_new_on_read
        else (CacheSide.LEGACY, CacheSide.NEW)
    )
    sides = [side for side in order if readable[side]]
    return ReadPlan(sides[0] if sides else None, sides[1] if len(sides) > 1 else None)


# The phase table of DESIGN section 4, as data.
WRITE_TABLE: dict[MigrationPhase, WritePlan] = {
    phase: write_plan(row) for phase, row in PHASE_FLAG_TABLE.items()
}
READ_TABLE: dict[MigrationPhase, ReadPlan] = {
    phase: read_plan(row) for phase, row in PHASE_FLAG_TABLE.items()
}


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


class MigrationStats:
    """Dual-write and read counters under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writes = DualWriteStats()
        self._reads = ReadStats()

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

    def snapshot(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(dual_write_stats, read_stats), taken together under the lock."""
        with self._lock:
            return self._writes.to_dict(), self._reads.to_dict()

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._writes = DualWriteStats()
            self._reads = ReadStats()


class DualWriteStrategy:
    """Which caches a write reaches under the given flags, authoritative first (pure)."""

    def plan(self, flags: PhaseFlags) -> WritePlan:
        """The write plan for these flags."""
        return write_plan(flags)

    @staticmethod
    def for_phase(phase: MigrationPhase) -> WritePlan:
        """The table row for a phase without overrides."""
        return WRITE_TABLE[phase]


class ReadStrategy:
    """Which cache a read asks first, and which on a miss, under the given flags (pure)."""

    def plan(self, flags: PhaseFlags) -> ReadPlan:
        """The read plan for these flags."""
        return read_plan(flags)

    @staticmethod
    def for_phase(phase: MigrationPhase) -> ReadPlan:
        """The table row for a phase without overrides."""
        return READ_TABLE[phase]
