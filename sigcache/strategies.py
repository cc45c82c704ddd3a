"""Write and read strategies per phase (pure decisions); the stats live in `migration_stats`."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sigcache.migration_stats import (
    CacheSide,
    DualWriteStats,
    MigrationStats,
    ReadOutcome,
    ReadStats,
)
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
