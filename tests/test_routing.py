"""Routes per flags, the LEGACY_ONLY fast path and its derived counters, validate-once writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from sigcache.adapter import LegacySignatureCacheAdapter
from sigcache.facade import CacheFacade
from sigcache.legacy import SignatureCache
from sigcache.migration_config import MigrationConfig
from sigcache.phases import PHASE_FLAG_TABLE, MigrationFeatureFlags, MigrationPhase
from sigcache.routing import route_for
from tests.contract import SIG_A, SIG_B, FakeClock

P = MigrationPhase
TEXT = "<think>routing text</think>"


def adapter(phase: MigrationPhase, new: Any = None) -> LegacySignatureCacheAdapter:
    legacy = SignatureCache(clock=FakeClock())
    other = new if new is not None else SignatureCache(clock=FakeClock())
    return LegacySignatureCacheAdapter(legacy, lambda build: other, MigrationFeatureFlags(phase))


def counts(a: LegacySignatureCacheAdapter) -> tuple[int, ...]:
    writes, reads = a.stats.snapshot()
    return (
        reads["total_reads"],
        reads["legacy_hits"],
        reads["legacy_misses"],
        writes["total_writes"],
        writes["legacy_writes"],
        writes["rejected"],
    )


def test_routes_per_phase() -> None:
    routes = {phase: route_for(row) for phase, row in PHASE_FLAG_TABLE.items()}
    assert [r.legacy_only for r in routes.values()] == [True, False, False, False]
    assert [r.both_read for r in routes.values()] == [False, True, True, False]


def test_legacy_only_counts_exactly_without_a_second_lock() -> None:
    a = adapter(P.LEGACY_ONLY)
    assert a.fast_legacy
    assert a.set(TEXT, SIG_A) and not a.set(TEXT, "short")
    assert a.get(TEXT) == SIG_A and a.get("missing") is None and a.get(TEXT, "other") == SIG_A
    assert counts(a) == (3, 2, 1, 1, 1, 1)
    a.flags.set_phase(P.DUAL_WRITE)  # folds what was derived, then counts itself
    assert not a.fast_legacy
    assert a.get(TEXT) == SIG_A
    assert counts(a)[:3] == (4, 3, 1)
    a.reset_stats()
    assert counts(a) == (0, 0, 0, 0, 0, 0)
    a.flags.set_phase(P.LEGACY_ONLY)
    a.get(TEXT)
    a.legacy.reset_stats()  # behind the adapter's back: never negative
    a.get(TEXT)
    assert counts(a)[0] >= 1 and min(counts(a)) >= 0


def test_an_override_leaves_the_fast_path() -> None:
    a = adapter(P.LEGACY_ONLY)
    a.flags.override("write_to_new", True)
    assert not a.fast_legacy
    assert a.set(TEXT, SIG_A)
    assert a.stats.snapshot()[0]["dual_writes"] == 1


def test_mode_off_reads_are_not_migration_reads(tmp_path: Path) -> None:
    facade = CacheFacade(MigrationConfig(new_l2_db_path=str(tmp_path / "l2.db")))
    facade.cache_signature(TEXT, SIG_A)
    facade.get_cached_signature(TEXT)
    assert facade.get_migration_status()["read_stats"]["total_reads"] == 0
    facade.enable_migration_mode()
    facade.get_cached_signature(TEXT)
    facade.get_cached_signature(TEXT)
    reads = facade.get_migration_status()["read_stats"]
    assert reads["total_reads"] == 2 and reads["legacy_hits"] == 2
    facade.disable_migration_mode()
    facade.get_cached_signature(TEXT)
    assert facade.get_migration_status()["read_stats"]["total_reads"] == 2
    facade.close()


class TakesValidated(SignatureCache):
    """A new cache whose writes can skip validation (the API proposed to the layered cache)."""

    calls: ClassVar[list[bool]] = []

    def set(
        self,
        thinking_text: str,
        signature: str,
        model: str | None = None,
        owner_id: str | None = None,
        *,
        validated: bool = False,
    ) -> bool:
        TakesValidated.calls.append(validated)
        return super().set(thinking_text, signature, model, owner_id)


def test_dual_write_validates_once_when_the_new_cache_allows() -> None:
    new = TakesValidated(clock=FakeClock())
    a = adapter(P.DUAL_WRITE, new)
    assert a.set(TEXT, SIG_B)
    assert not a.set(TEXT, "short")  # refused by legacy: the new cache is not asked
    assert TakesValidated.calls == [True]
    assert a.stats.snapshot()[0]["rejected"] == 1
