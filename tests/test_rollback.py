"""Rollback: from every phase, disable_migration_mode() gives legacy answers at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sigcache.facade import CacheFacade
from sigcache.legacy import SignatureCache
from sigcache.migration_config import MigrationConfig
from sigcache.observers import OperationEvent
from sigcache.phases import MigrationPhase
from tests.contract import SIG_A, SIG_B, SIG_C, FakeClock

P = MigrationPhase


def legacy_factory(db_path: str, *, config: MigrationConfig, clock: Any) -> Any:
    return SignatureCache(clock=clock)


FACTORIES = {"layered": None, "legacy-as-new": legacy_factory}


def reads(facade: CacheFacade) -> list[Any]:
    """Every caller-visible read of the data written by `write_everywhere`."""
    return [
        facade.get_cached_signature(f"text written in {p.name}") for p in P
    ] + [
        facade.get_tool_signature(f"toolu_{p.name}") for p in P
    ] + [
        facade.get_session_signature_with_text(f"sess_{p.name}") for p in P
    ] + [facade.get_last_signature(), facade.get_recent_signature(60)]  # fmt: skip


def legacy_reads(legacy: Any) -> list[Any]:
    """The same reads asked of the legacy cache directly."""
    return [
        legacy.get(f"text written in {p.name}") for p in P
    ] + [
        legacy.get_tool_signature(f"toolu_{p.name}") for p in P
    ] + [
        legacy.get_session_signature_with_text(f"sess_{p.name}") for p in P
    ] + [legacy.get_last_signature(), legacy.get_recent_signature(60)]  # fmt: skip


@pytest.mark.parametrize("factory", list(FACTORIES))
@pytest.mark.parametrize("final", list(P))
def test_disable_from_every_phase(tmp_path: Path, final: MigrationPhase, factory: str) -> None:
    clock = FakeClock()
    cfg = MigrationConfig(new_l2_db_path=str(tmp_path / "l2.db"), use_migration_adapter=True)
    facade = CacheFacade(cfg, clock=clock, new_cache_factory=FACTORIES[factory])
    for phase in P:
        if phase > final:
            break
        facade.set_migration_phase(phase)
        sig = (SIG_A, SIG_B, SIG_C, SIG_A[::-1])[int(phase) - 1]
        facade.cache_signature(f"text written in {phase.name}", sig)
        facade.cache_tool_signature(f"toolu_{phase.name}", sig)
        facade.cache_session_signature(f"sess_{phase.name}", sig, "some text")
        clock.advance(1)
    events: list[OperationEvent] = []
    facade.add_observer(events.append)
    facade.disable_migration_mode(actor="pager")
    got = reads(facade)
    assert got == legacy_reads(facade.legacy)
    assert {e.source for e in events} <= {"legacy", None}
    assert all(e.phase == "LEGACY_ONLY" for e in events)
    if final is P.NEW_ONLY:  # written to the new cache only: legacy does not know it
        assert got[3] is None
    status = facade.get_migration_status()
    assert status["migration_mode_enabled"] is False and status["phase"] == "LEGACY_ONLY"
    assert facade.get_migration_history()[-1]["actor"] == "pager"
    facade.close()


@pytest.mark.parametrize("start", list(P))
def test_rollback_to_any_earlier_phase(tmp_path: Path, start: MigrationPhase) -> None:
    cfg = MigrationConfig(new_l2_db_path=str(tmp_path / "l2.db"), use_migration_adapter=True)
    for target in P:
        if target >= start:
            break
        facade = CacheFacade(cfg, clock=FakeClock(), new_cache_factory=legacy_factory)
        facade.disable_migration_mode()
        facade.enable_migration_mode()
        for step in range(2, int(start) + 1):
            facade.set_migration_phase(step)
        facade.set_migration_phase(target)
        assert facade.phase is target
        facade.close()


def test_disable_survives_a_restart(tmp_path: Path) -> None:
    cfg = MigrationConfig(new_l2_db_path=str(tmp_path / "l2.db"), use_migration_adapter=True)
    facade = CacheFacade(cfg, clock=FakeClock(), new_cache_factory=legacy_factory)
    facade.set_migration_phase(P.DUAL_WRITE)
    facade.disable_migration_mode()
    facade.close()
    again = CacheFacade(cfg, clock=FakeClock(), new_cache_factory=legacy_factory)
    assert not again.is_migration_mode_enabled()  # the env said on; the rollback persisted
    assert again.phase is P.LEGACY_ONLY
    assert again.get_migration_status()["conflicts"] == []  # raw env var was not set
