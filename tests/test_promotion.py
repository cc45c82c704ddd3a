"""Promotions gated by verdict files: none, stale, failing, passing; through code and HTTP."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from harness.gate import RuleResult, Verdict, write_gate_json
from harness.pipeline import run_job
from sigcache.api import create_app
from sigcache.errors import ConfigError, GateRefusedError
from sigcache.facade import CacheFacade
from sigcache.gate_guard import DirectoryGateGuard, guard_from_env
from sigcache.migration_config import MigrationConfig
from sigcache.phases import MigrationPhase
from tests.test_api_server import AUTH, TOKEN, serve

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def gate_file(directory: Path, phase: str, outcome: str, *, age: timedelta = timedelta()) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    recording = directory / "rec.jsonl"
    recording.write_text("{}\n")
    rules = (RuleResult("value_mismatch", 0 if outcome == "pass" else 3, 0, outcome == "pass"),)
    verdict = Verdict(phase, outcome, rules)  # type: ignore[arg-type]
    path = directory / f"gate-{phase}.json"
    write_gate_json(
        verdict,
        path,
        recording_digest="sha256:x",
        report_path="r.md",
        now=NOW - age,
        recording=recording,
    )
    stamp = (NOW - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def facade_with_gates(tmp_path: Path, gates: Path) -> CacheFacade:
    guard = DirectoryGateGuard(gates, max_age_seconds=3600, clock=lambda: NOW.timestamp())
    config = MigrationConfig(new_l2_db_path=str(tmp_path / "l2.db"), use_migration_adapter=True)
    return CacheFacade(config, clock=lambda: NOW.timestamp(), promotion_guard=guard)


def test_no_verdict_refuses(tmp_path: Path) -> None:
    with facade_with_gates(tmp_path, tmp_path / "reports") as facade:
        with pytest.raises(GateRefusedError) as refused:
            facade.set_migration_phase("DUAL_WRITE")
        assert refused.value.failed_rules == ["gate_missing"]
        assert facade.get_migration_status()["phase"] == "LEGACY_ONLY"


@pytest.mark.parametrize(
    ("outcome", "age", "reasons"),
    [
        ("fail", timedelta(), {"value_mismatch", "verdict_fail"}),
        ("inconclusive", timedelta(), {"verdict_inconclusive"}),
        ("pass", timedelta(hours=2), {"gate_stale"}),
    ],
)
def test_failing_or_stale_verdict_refuses(
    tmp_path: Path, outcome: str, age: timedelta, reasons: set[str]
) -> None:
    gate_file(tmp_path / "reports" / "run1", "DUAL_WRITE", outcome, age=age)
    with facade_with_gates(tmp_path, tmp_path / "reports") as facade:
        with pytest.raises(GateRefusedError) as refused:
            facade.set_migration_phase("DUAL_WRITE")
        assert reasons <= set(refused.value.failed_rules)


def test_passing_verdict_promotes_and_is_audited(tmp_path: Path) -> None:
    gate_file(tmp_path / "reports" / "old", "DUAL_WRITE", "fail", age=timedelta(minutes=5))
    newest = gate_file(tmp_path / "reports" / "new", "DUAL_WRITE", "pass")
    with facade_with_gates(tmp_path, tmp_path / "reports") as facade:
        facade.set_migration_phase("DUAL_WRITE", actor="ops", reason="replay passed")
        history = facade.get_migration_history()
        assert history[-1]["to"] == "DUAL_WRITE" and history[-1]["forced"] is False
        assert history[-1]["verdict"]["verdict"] == "pass"
        assert history[-1]["verdict"]["gate_file"] == str(newest)
        # the verdict is for DUAL_WRITE only: the next step needs its own
        with pytest.raises(GateRefusedError):
            facade.set_migration_phase("NEW_PREFERRED")


def test_force_overrides_and_is_audited(tmp_path: Path) -> None:
    with facade_with_gates(tmp_path, tmp_path / "reports") as facade:
        facade.set_migration_phase("DUAL_WRITE", actor="ops", reason="incident", force=True)
        entry = facade.get_migration_history()[-1]
        assert entry["forced"] is True and entry["reason"] == "incident"


def test_rollback_never_needs_a_verdict(tmp_path: Path) -> None:
    with facade_with_gates(tmp_path, tmp_path / "reports") as facade:
        facade.set_migration_phase("DUAL_WRITE", force=True)
        facade.set_migration_phase("LEGACY_ONLY")
        assert facade.get_migration_status()["phase"] == "LEGACY_ONLY"


def test_http_promotion_gated(tmp_path: Path) -> None:
    gates = tmp_path / "reports"
    facade = facade_with_gates(tmp_path, gates)
    with (
        serve(create_app(facade, token=TOKEN)) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=10) as client,
    ):
        refused = client.post("/cache/migration/phase", params={"phase": "dual_write"})
        assert refused.status_code == 409
        assert "gate_missing" in refused.text
        gate_file(gates / "run", "DUAL_WRITE", "fail")
        failing = client.post("/cache/migration/phase", params={"phase": "dual_write"})
        assert failing.status_code == 409 and "value_mismatch" in failing.text
        newest = gate_file(gates / "run2", "DUAL_WRITE", "pass")
        os.utime(newest, (NOW.timestamp() + 1, NOW.timestamp() + 1))  # newest on disk
        passed = client.post("/cache/migration/phase", params={"phase": "dual_write"})
        assert passed.status_code == 200, passed.text
    facade.close()


def test_replay_verdicts_gate_a_real_promotion(tmp_path: Path) -> None:
    recording = Path(__file__).resolve().parent.parent / "recordings" / "small.jsonl.gz"
    # Latency is measured by the benchmarks, never asserted in a test: relax that one rule.
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text("[default]\nmax_p99_latency_ratio = 1000.0\n")
    job = run_job(
        recording,
        phases=(MigrationPhase.DUAL_WRITE,),
        reports_root=tmp_path / "rep",
        thresholds_path=thresholds,
    )
    assert job.verdicts[0].outcome == "pass", job.verdicts[0].failed_rules
    guard = DirectoryGateGuard(tmp_path / "rep")
    config = MigrationConfig(new_l2_db_path=str(tmp_path / "l2.db"), use_migration_adapter=True)
    with CacheFacade(config, promotion_guard=guard) as facade:
        facade.set_migration_phase("DUAL_WRITE")
        assert facade.get_migration_status()["phase"] == "DUAL_WRITE"


def test_guard_from_env(tmp_path: Path) -> None:
    guard = guard_from_env({"SIGCACHE_GATE_DIR": str(tmp_path), "SIGCACHE_GATE_MAX_AGE": "60"})
    assert guard.gate_dir == tmp_path and guard.max_age_seconds == 60
    assert guard_from_env({}).gate_dir == Path("reports")
    for bad in ("soon", "-1", "0", "inf"):
        with pytest.raises(ConfigError, match="SIGCACHE_GATE_MAX_AGE"):
            guard_from_env({"SIGCACHE_GATE_MAX_AGE": bad})
