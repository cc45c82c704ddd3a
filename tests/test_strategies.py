"""Strategies: the phase table as data, plan derivation with overrides, and the stats."""

from __future__ import annotations

import pytest

from sigcache.phases import PHASE_FLAG_TABLE, MigrationFeatureFlags, MigrationPhase
from sigcache.strategies import (
    READ_TABLE,
    WRITE_TABLE,
    CacheSide,
    DualWriteStrategy,
    MigrationStats,
    ReadOutcome,
    ReadStrategy,
)

P = MigrationPhase
L, N = CacheSide.LEGACY, CacheSide.NEW

# DESIGN section 4: writes (authoritative first), read primary, fallback.
DESIGN = {
    P.LEGACY_ONLY: ((L,), L, None),
    P.DUAL_WRITE: ((L, N), L, N),
    P.NEW_PREFERRED: ((N, L), N, L),
    P.NEW_ONLY: ((N,), N, None),
}


@pytest.mark.parametrize("phase", list(P))
def test_tables_follow_design(phase: MigrationPhase) -> None:
    targets, primary, fallback = DESIGN[phase]
    assert WRITE_TABLE[phase].targets == targets
    assert WRITE_TABLE[phase].authoritative is targets[0]
    assert (READ_TABLE[phase].primary, READ_TABLE[phase].fallback) == (primary, fallback)
    assert DualWriteStrategy.for_phase(phase) == DualWriteStrategy().plan(PHASE_FLAG_TABLE[phase])
    assert ReadStrategy.for_phase(phase) == ReadStrategy().plan(PHASE_FLAG_TABLE[phase])


def test_plans_follow_overrides() -> None:
    flags = MigrationFeatureFlags(P.DUAL_WRITE)
    flags.override("write_to_new", False)
    flags.override("read_from_new", False)
    assert DualWriteStrategy().plan(flags.effective).targets == (L,)
    assert ReadStrategy().plan(flags.effective).fallback is None
    flags.override("write_to_legacy", False)
    assert DualWriteStrategy().plan(flags.effective).authoritative is None


def test_not_attempted_is_never_a_failure() -> None:
    stats = MigrationStats()
    stats.record_write({L: True}, L, skipped=0)  # LEGACY_ONLY write
    writes, _ = stats.snapshot()
    assert writes["new_writes"] == writes["new_failures"] == 0
    assert writes["legacy_success_rate"] == 1.0
    assert writes["new_success_rate"] == 0.0


def test_write_counters() -> None:
    stats = MigrationStats()
    stats.record_write({L: True, N: False}, L, skipped=0)
    stats.record_write({N: False}, N, skipped=1)
    stats.record_rejected_write()
    writes, _ = stats.snapshot()
    assert writes["total_writes"] == 2
    assert writes["dual_writes"] == 1
    assert writes["new_writes"] == 2 and writes["new_failures"] == 2
    assert writes["shadow_failures"] == 1  # only the non-authoritative failure
    assert writes["secondary_skipped"] == 1
    assert writes["rejected"] == 1
    assert all(isinstance(v, int | float) for v in writes.values())


def test_read_counters_count_each_read_once() -> None:
    stats = MigrationStats()
    stats.record_read(ReadOutcome(L, True))
    stats.record_read(ReadOutcome(L, False, N, True, repaired=True))
    stats.record_read(ReadOutcome(N, False, L, False, errors=1))
    stats.record_read(ReadOutcome(N, False))
    _, reads = stats.snapshot()
    assert reads["total_reads"] == 4
    assert (reads["hits"], reads["misses"]) == (2, 2)
    assert (reads["legacy_hits"], reads["legacy_misses"]) == (1, 2)
    assert (reads["new_hits"], reads["new_misses"]) == (1, 2)
    assert reads["fallback_hits"] == 1
    assert reads["read_repairs"] == 1
    assert reads["read_errors"] == 1
    assert reads["hit_rate"] == 0.5
    assert isinstance(reads["hit_rate"], float)
    assert reads["new_hit_ratio"] == 0.5
    stats.reset()
    _, reads = stats.snapshot()
    assert reads["total_reads"] == 0 and reads["hit_rate"] == 0.0
