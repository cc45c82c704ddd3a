"""The replay loop's data structures: per-event results rows, stack diagnostics, the speed probe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from harness.replay_speed import main as speed_main
from harness.results import EVENT_COLUMNS, PHASE_COLUMNS, RESULTS_SCHEMA, ResultsWriter
from harness.run_state import build_stack
from sigcache.phases import MigrationPhase
from sigcache.routing import NO_DIAG
from tests.contract import SIG_A, FakeClock

SMALL = Path(__file__).resolve().parent.parent / "recordings" / "small.jsonl.gz"


def full_row(seq: int, phase: str) -> dict[str, Any]:
    return {
        "phase": phase,
        "seq": seq,
        "t": seq / 2,
        "op": "get_cached_signature",
        "kind": "read",
        "store": "main",
        "cls": "match" if seq % 2 else "both_miss",
        "reason": None,
        "stack_hit": bool(seq % 2),
        "control_hit": bool(seq % 2),
        "aa_equal": True,
        "recorded_equal": None,
        "control_recorded_equal": None,
        "source": "legacy" if seq % 2 else None,
        "tier": None,
        "fallback": False,
        "read_repair": False,
        "shadow_error": False,
        "error": None,
        "latency_us": 1.5 + seq,
        "control_latency_us": 0.5,
        "text_hash": f"hash{seq}",
    }


def test_events_and_rows_read_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "results.parquet"
    expected = []
    # A batch of 3 rows: flushes fall inside and between events, never split one.
    with ResultsWriter(path, batch_rows=3) as writer:
        for seq in range(5):
            rows = [full_row(seq, phase) for phase in ("LEGACY_ONLY", "NEW_ONLY")]
            writer.add_event(
                tuple(rows[0][name] for name in EVENT_COLUMNS),
                [tuple(row[name] for name in PHASE_COLUMNS) for row in rows],
            )
            expected += rows
        row = full_row(5, "DUAL_WRITE")
        writer.add(**row)
        expected.append(row)
    table = pq.read_table(path)
    assert table.schema.equals(RESULTS_SCHEMA)
    assert table.to_pylist() == expected
    assert writer.rows == len(expected)


def test_a_row_of_the_wrong_width_is_refused(tmp_path: Path) -> None:
    with ResultsWriter(tmp_path / "r.parquet") as writer, pytest.raises(ValueError):
        writer.add_row(("too", "short"))


def test_stack_diagnostics_come_from_the_router(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000.0)
    with (
        build_stack(MigrationPhase.NEW_ONLY, tmp_path / "new", clock, None) as new,
        build_stack(MigrationPhase.LEGACY_ONLY, tmp_path / "legacy", clock, None) as legacy,
    ):
        for stack in (new, legacy):
            assert stack.call("cache_signature", {"thinking_text": "t", "signature": SIG_A})
            assert stack.call("get_cached_signature", {"thinking_text": "t"}) == SIG_A
        assert (new.last_diagnostics().source, new.last_diagnostics().tier) == ("new", "l1")
        assert legacy.call_diagnostics().source == "legacy"
        assert new.last_diagnostics().latency_us == new.latency_us > 0
        # A call the facade refuses raises; its diagnostics are empty, not the previous call's.
        with pytest.raises(TypeError):
            new.call("get_cached_signature", {"no_such_argument": 1})
        assert new.call_diagnostics() is NO_DIAG
        assert new.last_diagnostics().source is None


def test_speed_probe_measures_a_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "speed.json"
    assert speed_main([str(SMALL), "--json", str(out)]) == 0
    assert "events/s" in capsys.readouterr().out
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert (figures["events"], figures["phases"], figures["job"]) == (5000, 4, False)
    assert figures["cpu_s"] > 0 and figures["peak_rss_mb"] > 0 and figures["events_per_s"] > 0


@pytest.mark.parametrize(
    ("given", "phases"), [(["none"], 0), (["dual_write"], 1), (["2", "DUAL_WRITE", "4"], 2)]
)
def test_speed_probe_replays_the_phases_named(
    given: list[str], phases: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "speed.json"
    argv = [str(SMALL), "--json", str(out)]
    for phase in given:
        argv += ["--phase", phase]
    assert speed_main(argv) == 0
    assert f"x {phases} phases" in capsys.readouterr().out
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert (figures["events"], figures["phases"]) == (5000, phases)


@pytest.mark.parametrize(
    "argv",
    [["--phase", "FIFTH"], ["--phase", "none", "--phase", "NEW_ONLY"], ["--job", "--phase", "1"]],
)
def test_speed_probe_refuses_bad_phases(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        speed_main([str(SMALL), *argv])
    assert exc.value.code == 2
