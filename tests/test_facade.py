"""CacheFacade: control plane, persistence, audit, stats and observers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from sigcache.errors import GateRefusedError, PhaseError, PhaseTransitionError
from sigcache.facade import CacheFacade, GuardDecision
from sigcache.legacy import SignatureCache
from sigcache.migration_config import MigrationConfig
from sigcache.observers import OperationEvent
from sigcache.phases import MigrationPhase
from tests.contract import SIG_A, SIG_B, FakeClock
from tests.test_public_api import DESIGN_FUNCTIONS

P = MigrationPhase
TEXT = "the model reasons about the question at some length"
STATUS_KEYS = {
    "migration_mode_enabled",
    "phase",
    "runtime_override",
    "env_var",
    "flags",
    "dual_write_stats",
    "read_stats",
    "history",
    "conflicts",
    "persistence",
}


def legacy_factory(db_path: str, *, config: MigrationConfig, clock: Any) -> Any:
    """A second legacy cache standing in for the layered one."""
    return SignatureCache(clock=clock)


def make(
    tmp_path: Path,
    clock: FakeClock | None = None,
    *,
    factory: Any = legacy_factory,
    guard: Any = None,
    **config: Any,
) -> CacheFacade:
    cfg = MigrationConfig(new_l2_db_path=str(tmp_path / "l2.db"), **config)
    return CacheFacade(
        cfg, clock=clock or FakeClock(), new_cache_factory=factory, promotion_guard=guard
    )


def promote_to(facade: CacheFacade, phase: MigrationPhase) -> None:
    for step in range(int(facade.phase) + 1, int(phase) + 1):
        facade.set_migration_phase(step)


def test_defaults_are_legacy_and_fast(tmp_path: Path) -> None:
    facade = make(tmp_path)
    assert bool(facade) is True  # never falsy (the origin's facade was, while empty)
    assert facade.fast and not facade.is_migration_mode_enabled()
    assert facade.cache_signature(TEXT, SIG_A) is True
    assert facade.get_signature_cache().get(TEXT) == SIG_A
    assert facade.new_cache() is None  # not built for legacy-only traffic
    assert not (tmp_path / "l2.db").exists()  # nothing persisted, nothing created
    status = facade.get_migration_status()
    assert set(status) >= STATUS_KEYS
    assert status["runtime_override"] is None
    assert status["read_stats"]["total_reads"] == 0  # mode off: no proxy work at all


def test_status_keys_and_numbers(tmp_path: Path) -> None:
    facade = make(tmp_path, use_migration_adapter=True, initial_phase=P.DUAL_WRITE)
    facade.cache_signature(TEXT, SIG_A)
    facade.get_cached_signature(TEXT)
    facade.get_cached_signature("missing")
    status = facade.get_migration_status()
    assert status["phase"] == "DUAL_WRITE" and status["migration_mode_enabled"] is True
    reads = status["read_stats"]
    assert {"legacy_hits", "new_hits", "fallback_hits", "hit_rate"} <= set(reads)
    assert reads["hit_rate"] == 0.5
    stats = facade.get_cache_stats()
    for key in ("legacy_hits", "new_hits", "fallback_hits", "read_repairs"):
        assert isinstance(stats[key], int)
    assert isinstance(stats["hit_rate"], float) and 0.0 <= stats["hit_rate"] <= 1.0
    assert stats["dual_write_stats"]["dual_writes"] == 1
    assert "new_cache_stats" in stats
    facade.reset_cache_stats()
    assert facade.get_cache_stats()["legacy_hits"] == 0


def test_stats_hit_rate_is_a_float_with_mode_off(tmp_path: Path) -> None:
    facade = make(tmp_path)
    facade.cache_signature(TEXT, SIG_A)
    facade.get_cached_signature(TEXT)
    assert facade.get_cache_stats()["hit_rate"] == 1.0


def test_promotion_rules(tmp_path: Path) -> None:
    facade = make(tmp_path)
    with pytest.raises(PhaseError) as unknown:
        facade.set_migration_phase("PHASE_X")
    assert "NEW_ONLY" in unknown.value.valid
    with pytest.raises(PhaseTransitionError):
        facade.set_migration_phase("NEW_PREFERRED")
    facade.set_migration_phase("dual_write", actor="ops", reason="start")
    facade.set_migration_phase(2)  # same phase: no-op, not audited
    facade.set_migration_phase(3)
    facade.set_migration_phase(1)  # rollback to any earlier phase
    history = facade.get_migration_history()
    assert [(h["from"], h["to"]) for h in history] == [
        ("LEGACY_ONLY", "DUAL_WRITE"),
        ("DUAL_WRITE", "NEW_PREFERRED"),
        ("NEW_PREFERRED", "LEGACY_ONLY"),
    ]
    assert history[0]["actor"] == "ops" and history[0]["reason"] == "start"


def test_gate_refusal_and_forced_promotion(tmp_path: Path) -> None:
    asked: list[MigrationPhase] = []

    def guard(target: MigrationPhase) -> GuardDecision:
        asked.append(target)
        if target is P.NEW_PREFERRED:
            return GuardDecision(False, {"verdict": "fail"}, ("value_mismatch", "errors"))
        return GuardDecision(True, {"verdict": "pass", "target": target.name})

    facade = make(tmp_path, guard=guard)
    facade.set_migration_phase(P.DUAL_WRITE)
    with pytest.raises(GateRefusedError) as refused:
        facade.set_migration_phase(P.NEW_PREFERRED)
    assert refused.value.failed_rules == ["value_mismatch", "errors"]
    assert facade.phase is P.DUAL_WRITE
    facade.set_migration_phase(P.NEW_PREFERRED, actor="alice", reason="hotfix", force=True)
    facade.set_migration_phase(P.LEGACY_ONLY)  # a rollback never asks the gate
    assert asked == [P.DUAL_WRITE, P.NEW_PREFERRED]
    history = facade.get_migration_history()
    assert history[0]["verdict"] == {"verdict": "pass", "target": "DUAL_WRITE"}
    assert history[1]["forced"] is True and history[1]["actor"] == "alice"
    assert history[1]["verdict"] is None


def test_unavailable_new_cache_refuses_promotion(tmp_path: Path) -> None:
    def broken(db_path: str, *, config: MigrationConfig, clock: Any) -> Any:
        raise OSError("disk gone")

    facade = make(tmp_path, factory=broken, use_migration_adapter=True)
    with pytest.raises(PhaseTransitionError, match="disk gone"):
        facade.set_migration_phase(P.DUAL_WRITE)
    assert facade.phase is P.LEGACY_ONLY
    assert "disk gone" in facade.get_migration_status()["new_cache"]["error"]
    assert facade.cache_signature(TEXT, SIG_A) is True


def test_disable_works_when_mode_came_from_env(tmp_path: Path) -> None:
    facade = make(tmp_path, use_migration_adapter=True, initial_phase=P.DUAL_WRITE)
    assert facade.get_migration_status()["runtime_override"] is None
    facade.disable_migration_mode(actor="ops")  # the origin ignored this (bug 7.6)
    assert not facade.is_migration_mode_enabled() and facade.fast
    status = facade.get_migration_status()
    assert status["phase"] == "LEGACY_ONLY" and status["runtime_override"] is False
    facade.enable_migration_mode(actor="ops")
    assert facade.phase is P.LEGACY_ONLY  # re-enabling starts again from legacy
    kinds = [(h["kind"], h["mode_enabled"]) for h in facade.get_migration_history()]
    assert kinds == [("mode", False), ("mode", True)]


def test_restart_restores_phase_and_mode(tmp_path: Path) -> None:
    clock = FakeClock()
    first = make(tmp_path, clock)
    first.enable_migration_mode(actor="ops")
    promote_to(first, P.NEW_PREFERRED)
    first.cache_signature(TEXT, SIG_A)
    first.close()
    second = make(tmp_path, clock)
    assert second.is_migration_mode_enabled()
    assert second.phase is P.NEW_PREFERRED
    status = second.get_migration_status()
    assert status["persistence"]["restored"] is True
    assert status["conflicts"] == []
    assert len(status["history"]) == 3


def test_env_conflict_is_reported_not_applied(tmp_path: Path) -> None:
    clock = FakeClock()
    first = make(tmp_path, clock)
    first.enable_migration_mode()
    promote_to(first, P.NEW_PREFERRED)
    first.close()
    env = MigrationConfig.from_env(
        {
            "CACHE_NEW_L2_DB_PATH": str(tmp_path / "l2.db"),
            "CACHE_MIGRATION_PHASE": "DUAL_WRITE",
            "CACHE_USE_MIGRATION_ADAPTER": "false",
        }
    )
    second = CacheFacade(env, clock=clock, new_cache_factory=legacy_factory)
    assert second.phase is P.NEW_PREFERRED and second.is_migration_mode_enabled()
    conflicts = {c["variable"]: c for c in second.get_migration_status()["conflicts"]}
    assert conflicts["CACHE_MIGRATION_PHASE"]["env_value"] == "DUAL_WRITE"
    assert conflicts["CACHE_MIGRATION_PHASE"]["applied"] == "NEW_PREFERRED"
    assert conflicts["CACHE_USE_MIGRATION_ADAPTER"]["applied"] is True


def test_env_gives_the_initial_phase_of_a_new_database(tmp_path: Path) -> None:
    env = MigrationConfig.from_env(
        {
            "CACHE_NEW_L2_DB_PATH": str(tmp_path / "l2.db"),
            "CACHE_MIGRATION_PHASE": "2",
            "CACHE_USE_MIGRATION_ADAPTER": "on",
        }
    )
    facade = CacheFacade(env, clock=FakeClock(), new_cache_factory=legacy_factory)
    assert facade.phase is P.DUAL_WRITE and facade.is_migration_mode_enabled()
    assert facade.get_migration_status()["env_var"] == "on"


def test_persistence_failure_is_reported_and_disable_still_works(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = MigrationConfig(new_l2_db_path=str(blocker / "l2.db"), use_migration_adapter=True)
    facade = CacheFacade(cfg, clock=FakeClock(), new_cache_factory=legacy_factory)
    facade.set_migration_phase(P.DUAL_WRITE)
    facade.disable_migration_mode()
    assert not facade.is_migration_mode_enabled()
    assert facade.get_migration_status()["persistence"]["error"]


def test_observers_see_every_operation(tmp_path: Path) -> None:
    clock = FakeClock(500.0)
    facade = make(tmp_path, clock, use_migration_adapter=True, initial_phase=P.DUAL_WRITE)
    events: list[OperationEvent] = []

    def broken(event: OperationEvent) -> None:
        raise RuntimeError("observer bug")

    record = events.append  # one bound-method object: ObserverList.remove matches by identity
    facade.add_observer(broken)
    facade.add_observer(record)
    assert not facade.fast
    facade.cache_signature(TEXT, SIG_A, owner_id="o1")
    facade.new_cache().set("only in new", SIG_B)  # type: ignore[union-attr]
    assert facade.get_cached_signature("only in new") == SIG_B
    write, read = events
    assert write.op == "cache_signature" and write.result is True
    assert write.args == {
        "thinking_text": TEXT,
        "signature": SIG_A,
        "model": None,
        "owner_id": "o1",
    }
    assert write.phase == "DUAL_WRITE" and write.t == 500.0 and write.latency_us >= 0
    assert (read.source, read.tier, read.fallback, read.read_repair) == ("new", "new", True, True)
    facade.remove_observer(broken)
    facade.remove_observer(record)
    facade.disable_migration_mode()
    assert facade.fast


def test_observers_with_mode_off_see_legacy(tmp_path: Path) -> None:
    facade = make(tmp_path)
    events: list[OperationEvent] = []
    facade.add_observer(events.append)
    facade.cache_tool_signature("toolu_1", SIG_A)
    facade.get_tool_signature("toolu_1")
    facade.get_tool_signature("toolu_2")
    assert [(e.op, e.phase, e.source) for e in events] == [
        ("cache_tool_signature", "LEGACY_ONLY", "legacy"),
        ("get_tool_signature", "LEGACY_ONLY", "legacy"),
        ("get_tool_signature", "LEGACY_ONLY", None),
    ]


def test_logs_carry_the_tag_and_no_text(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    facade = make(tmp_path)
    with caplog.at_level(logging.INFO):
        facade.enable_migration_mode(actor="robot")
        facade.cache_signature(TEXT, SIG_A)
        facade.set_migration_phase(P.DUAL_WRITE, actor="robot")
        facade.disable_migration_mode(actor="robot")
    lines = [r.getMessage() for r in caplog.records if "[CACHE_MIGRATION]" in r.getMessage()]
    assert len(lines) == 3
    assert "LEGACY_ONLY -> DUAL_WRITE" in lines[1] and "actor=robot" in lines[1]
    assert TEXT not in caplog.text and SIG_A not in caplog.text


def test_every_module_operation_is_a_method(tmp_path: Path) -> None:
    facade = make(tmp_path, use_migration_adapter=True, initial_phase=P.DUAL_WRITE)
    assert facade.cache_session_signature("s1", SIG_A, TEXT) is True
    assert facade.get_session_signature("s1") == SIG_A
    assert facade.get_session_signature_with_text("s1") == (SIG_A, TEXT)
    assert facade.cache_tool_signature("call_abc_1", SIG_B) is True
    assert facade.get_tool_signature_fuzzy("call_abc_2") == SIG_B
    assert facade.cache_signature(TEXT, SIG_A)
    assert facade.get_last_signature() == SIG_A
    assert facade.get_last_signature_with_text() == (SIG_A, TEXT)
    assert facade.get_recent_signature_with_text(60) == (SIG_A, TEXT)
    assert facade.get_recent_signature(60) is not None
    assert facade.invalidate(TEXT) is True
    assert facade.cleanup_expired() == 0
    assert facade.clear() == 0
    facade.close()
    facade.close()  # idempotent


def test_restart_in_dual_write_answers_from_l2_and_repairs(tmp_path: Path) -> None:
    clock = FakeClock()
    cfg = MigrationConfig(new_l2_db_path=str(tmp_path / "l2.db"), use_migration_adapter=True)
    first = CacheFacade(cfg, clock=clock)  # the real layered cache
    first.set_migration_phase(P.DUAL_WRITE)
    first.cache_signature(TEXT, SIG_A, owner_id="o1")
    first.cache_session_signature("sess", SIG_B, TEXT)
    first.close()
    second = CacheFacade(cfg, clock=clock)
    events: list[OperationEvent] = []
    record = events.append
    second.add_observer(record)
    assert second.get_cached_signature(TEXT, owner_id="o1") == SIG_A
    assert second.get_cached_signature(TEXT, owner_id="o2") is None  # new cache: strict owner
    assert second.get_session_signature("sess") == SIG_B
    assert [(e.source, e.tier, e.fallback, e.read_repair) for e in events] == [
        ("new", "l2", True, True),
        (None, None, False, False),
        ("new", "l2", True, True),
    ]
    assert second.legacy.get(TEXT, owner_id="o1") == SIG_A  # repaired into legacy
    assert second.legacy.get_session_signature_with_text("sess") == (SIG_B, TEXT)
    reads = second.get_migration_status()["read_stats"]
    assert reads["fallback_hits"] == reads["read_repairs"] == 2
    second.close()


# -- the module API over the process-default facade ---------------------------------------------

# DESIGN section 2's functions, plus what the module API adds for the migration.
MODULE_NAMES = [
    *DESIGN_FUNCTIONS,
    "get_cache_facade",
    "add_observer",
    "remove_observer",
    "invalidate",
    "clear",
    "cleanup_expired",
    "get_migration_history",
]


@pytest.fixture
def module_env(tmp_path: Path) -> Any:
    from sigcache import signature_cache as sc

    env = {"CACHE_NEW_L2_DB_PATH": str(tmp_path / "l2.db")}
    sc.reset_signature_cache(clock=FakeClock(), environ=env, new_cache_factory=legacy_factory)
    yield sc, env
    sc.reset_signature_cache()


def test_module_names_exist(module_env: Any) -> None:
    sc, _ = module_env
    assert [name for name in MODULE_NAMES if not callable(getattr(sc, name, None))] == []


def test_module_fast_path_skips_the_proxy(module_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sc, _ = module_env
    facade = sc.get_cache_facade()
    assert facade.fast

    def no_proxy(*args: Any) -> Any:
        raise AssertionError("the proxy ran with migration mode off")

    monkeypatch.setattr(facade, "run", no_proxy)
    assert sc.cache_signature(TEXT, SIG_A) is True
    assert sc.get_cached_signature(TEXT) == SIG_A
    assert sc.cache_tool_signature("toolu_1", SIG_B) and sc.get_tool_signature("toolu_1") == SIG_B
    assert sc.get_last_signature() == SIG_A
    assert sc.get_signature_cache() is facade.legacy


def test_module_builds_from_env_and_resets(module_env: Any, tmp_path: Path) -> None:
    sc, env = module_env
    env = {**env, "CACHE_USE_MIGRATION_ADAPTER": "1", "CACHE_MIGRATION_PHASE": "2"}
    sc.reset_signature_cache(clock=FakeClock(), environ=env, new_cache_factory=legacy_factory)
    assert sc.is_migration_mode_enabled()
    assert sc.get_migration_status()["phase"] == "DUAL_WRITE"
    assert sc.cache_signature(TEXT, SIG_A) and sc.get_cached_signature(TEXT) == SIG_A
    assert sc.get_cache_stats()["dual_write_stats"]["dual_writes"] == 1
    with pytest.raises(GateRefusedError):  # the default guard wants a gate verdict
        sc.set_migration_phase("NEW_PREFERRED", actor="test")
    sc.set_migration_phase("NEW_PREFERRED", actor="test", force=True, reason="no gate here")
    sc.disable_migration_mode(actor="test")
    assert [h["actor"] for h in sc.get_migration_history()] == ["test", "test"]
    first = sc.get_cache_facade()
    sc.reset_signature_cache(clock=FakeClock(), environ=env, new_cache_factory=legacy_factory)
    assert sc.get_cache_facade() is not first
    assert not sc.is_migration_mode_enabled()  # the persisted rollback wins over the env


def test_module_bad_env_falls_back_to_legacy(
    module_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sc, env = module_env
    bad = {**env, "CACHE_LEGACY_TTL": "soon"}
    sc.reset_signature_cache(environ=bad, new_cache_factory=legacy_factory)
    with caplog.at_level(logging.ERROR):
        assert sc.cache_signature(TEXT, SIG_A) is True  # never an exception in a cache call
    assert "CACHE_LEGACY_TTL" in caplog.text
    assert not sc.is_migration_mode_enabled()
