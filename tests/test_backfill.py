"""Backfill: legacy entries copied into the new cache with their owner and remaining TTL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sigcache.backfill import BackfillRefused, decide, run_backfill, supports_expiry
from sigcache.facade import CacheFacade
from sigcache.layered import LayeredSignatureCache
from sigcache.legacy import LegacyEntryCopy, SignatureCache
from sigcache.migration_config import MigrationConfig
from sigcache.new_cache import default_new_cache_factory
from sigcache.phases import MigrationPhase
from tests.contract import SIG_A, SIG_B, SIG_C, TTL, FakeClock

P = MigrationPhase
SIGS = [SIG_A, SIG_B, SIG_C]
# (store, key, owner, written at seconds after start); legacy TTL is 3600 s.
SEED: list[tuple[str, str, str | None, float]] = [
    ("main", "<think>old text of owner a</think>", "a", 0),  # expired at the backfill
    ("main", "text of owner a", "a", 1_000),
    ("main", "text of owner b", "b", 1_500),
    ("main", "ownerless text", None, 2_000),
    ("tool", "toolu_old", "a", 10),  # expired
    ("tool", "toolu_01", "a", 2_500),
    ("tool", "toolu_02", None, 2_600),
    ("session", "sess-old", None, 50),  # expired
    ("session", "sess-1", "b", 3_000),
]
BACKFILL_AT = 3_700.0  # seconds after start: the first entry of each store has expired
LIVE = [row for row in SEED if BACKFILL_AT - row[3] <= TTL]
EXPIRED = [row for row in SEED if row not in LIVE]


def write(cache: Any, row: tuple[str, str, str | None, float], sig: str) -> bool:
    store, key, owner, _ = row
    if store == "main":
        return bool(cache.set(key, sig, "claude-sonnet-4-5", owner))
    if store == "tool":
        return bool(cache.cache_tool_signature(key, sig, owner))
    return bool(cache.cache_session_signature(key, sig, f"text of {key}", owner))


def read(cache: Any, row: tuple[str, str, str | None, float], owner: object = "same") -> Any:
    store, key, own, _ = row
    who = own if owner == "same" else owner
    if store == "main":
        return cache.get(key, who)
    if store == "tool":
        return cache.get_tool_signature(key, who)
    return cache.get_session_signature(key, who)


def seeded(
    tmp_path: Path, factory: Any = default_new_cache_factory, **cfg: Any
) -> tuple[CacheFacade, FakeClock]:
    clock = FakeClock()
    start = clock.now
    config = MigrationConfig(
        new_l2_db_path=str(tmp_path / "l2.db"), use_migration_adapter=True, **cfg
    )
    facade = CacheFacade(config, clock=clock, new_cache_factory=factory)
    for index, row in enumerate(SEED):  # LEGACY_ONLY: only the legacy cache holds them
        clock.now = start + row[3]
        assert write(facade.adapter, row, SIGS[index % 3])
    clock.now = start + BACKFILL_AT
    facade.set_migration_phase(P.DUAL_WRITE)
    return facade, clock


def sig_of(row: tuple[str, str, str | None, float]) -> str:
    return SIGS[SEED.index(row) % 3]


def test_backfill_copies_live_entries_with_owner_and_remaining_ttl(tmp_path: Path) -> None:
    facade, clock = seeded(tmp_path)
    summary = facade.backfill(actor="test")
    assert summary.supported and not summary.aborted
    assert (summary.copied, summary.skipped_expired, summary.failed) == (len(LIVE), len(EXPIRED), 0)
    new = facade.new_cache()
    for row in LIVE:
        assert read(new, row) == sig_of(row)
        assert read(new, row, owner="intruder") is None  # strict owner, kept from legacy
    for row in EXPIRED:
        assert read(new, row) is None
    assert new is not None and new.get_session_signature_with_text("sess-1", "b") == (
        sig_of(LIVE[-1]),
        "text of sess-1",
    )
    # TTLs end when legacy's would: live at the legacy expiry, gone just after.
    start = clock.now - BACKFILL_AT
    for row in LIVE:
        clock.now = start + row[3] + TTL
        assert read(new, row) == sig_of(row) and read(facade.legacy, row) == sig_of(row)
        clock.now += 0.5
        assert read(new, row) is None and read(facade.legacy, row) is None
    facade.close()


def test_backfill_twice_changes_nothing(tmp_path: Path) -> None:
    facade, _ = seeded(tmp_path)
    facade.backfill()
    new = facade.new_cache()
    assert isinstance(new, LayeredSignatureCache)
    before = sorted(new.entries(), key=repr)
    again = facade.backfill()
    assert (again.copied, again.skipped_present, again.failed) == (0, len(LIVE), 0)
    assert sorted(new.entries(), key=repr) == before
    facade.close()


class FailingAfter(LayeredSignatureCache):
    """Writes succeed `budget` times, then raise (an L2 that died halfway)."""

    budget = 3

    def _write(self, *args: Any) -> bool:
        if FailingAfter.budget <= 0:
            raise OSError("disk gone")
        FailingAfter.budget -= 1
        return super()._write(*args)


def failing_factory(db_path: str, *, config: MigrationConfig, clock: Any) -> FailingAfter:
    return FailingAfter(db_path, clock=clock)


def test_failure_halfway_is_reported_and_leaves_both_caches_consistent(tmp_path: Path) -> None:
    FailingAfter.budget = 10**6
    facade, _ = seeded(tmp_path, failing_factory)
    assert isinstance(facade.legacy, SignatureCache)
    legacy_before = [e for chunk in facade.legacy.iter_entries() for e in chunk]
    FailingAfter.budget = 3
    summary = facade.backfill(chunk_size=2)
    assert summary.copied == 3 and summary.failed == len(LIVE) - 3
    assert summary.error == "OSError"
    assert [e for chunk in facade.legacy.iter_entries() for e in chunk] == legacy_before
    new = facade.new_cache()
    answered = [row for row in LIVE if read(new, row) is not None]
    assert len(answered) == 3
    assert all(read(new, row) == sig_of(row) for row in answered)  # never a wrong value
    assert "failed=" in facade.get_migration_history()[-1]["reason"]
    facade.close()


def test_a_new_cache_without_expiry_is_skipped_gracefully(tmp_path: Path) -> None:
    facade, _ = seeded(tmp_path, factory=None)
    assert isinstance(facade.new_cache(), LayeredSignatureCache)
    summary = facade.backfill()
    if supports_expiry(facade.new_cache()):  # once sigcache.layered ships the expiry API
        assert summary.copied == len(LIVE)
    else:
        assert summary.supported is False and summary.copied == 0 and summary.seen == 0
    facade.close()


def test_backfill_is_audited_and_shown_in_the_status(tmp_path: Path) -> None:
    facade, _ = seeded(tmp_path)
    facade.backfill(actor="ops", reason="warm-up")
    entry = facade.get_migration_history()[-1]
    assert entry["kind"] == "backfill" and entry["actor"] == "ops"
    assert f"copied={len(LIVE)}" in entry["reason"] and "warm-up" in entry["reason"]
    status = facade.get_migration_status()["backfill"]
    assert status["mode"] == "on_demand" and status["running"] is False
    assert status["last"]["copied"] == len(LIVE)
    facade.close()


@pytest.mark.parametrize("phase", [P.LEGACY_ONLY, P.NEW_ONLY])
def test_backfill_is_refused_where_both_caches_are_not_written(
    tmp_path: Path, phase: MigrationPhase
) -> None:
    facade, _ = seeded(tmp_path)
    for step in range(int(facade.phase) + 1, int(phase) + 1):
        facade.set_migration_phase(step)
    facade.set_migration_phase(phase)
    with pytest.raises(BackfillRefused):
        facade.backfill()
    facade.disable_migration_mode()
    with pytest.raises(BackfillRefused):
        facade.backfill()
    facade.close()


def test_automatic_backfill_on_entering_dual_write(tmp_path: Path) -> None:
    facade, _ = seeded(tmp_path, backfill_on_dual_write="auto")
    assert facade.backfills.wait(30)
    last = facade.get_migration_status()["backfill"]["last"]
    assert last["copied"] == len(LIVE)
    assert facade.get_migration_history()[-1]["actor"] == "code (auto)"
    facade.close()


def test_legacy_iteration_is_chunked_and_holds_no_lock_between_chunks() -> None:
    clock = FakeClock()
    legacy = SignatureCache(clock=clock)
    for index in range(7):
        assert legacy.set(f"text {index}", SIG_A, owner_id=f"o{index}")
    assert legacy.cache_tool_signature("toolu_9", SIG_B)
    chunks = []
    for chunk in legacy.iter_entries(chunk_size=3):
        assert not legacy._lock.locked()
        legacy.set("written while iterating", SIG_C)  # traffic goes on between chunks
        chunks.append(chunk)
    assert [len(c) for c in chunks] == [3, 3, 1, 1]
    assert {e.owner_id for e in chunks[0]} == {"o0", "o1", "o2"}
    assert chunks[-1][0].store == "tool" and chunks[-1][0].expires_at == clock.now + TTL


def test_decide_is_pure() -> None:
    entry = LegacyEntryCopy("main", "t", SIG_A, "t", None, None, 100.0, 200.0)
    assert decide(entry, 200.5, None) == "expired"
    assert decide(entry, 200.0, None) == "copy"
    assert decide(entry, 150.0, SIG_A) == "present"
    assert decide(entry, 150.0, SIG_B) == "replace"


def test_run_backfill_reports_progress(tmp_path: Path) -> None:
    clock = FakeClock()
    legacy = SignatureCache(clock=clock)
    for index in range(5):
        legacy.set(f"text {index}", SIG_A)
    seen: list[int] = []
    with LayeredSignatureCache(tmp_path / "l2.db", clock=clock) as new:
        summary = run_backfill(
            legacy, new, clock=clock, chunk_size=2, progress=lambda s: seen.append(s.seen)
        )
        assert summary.copied == 5 and seen == [2, 4, 5]
