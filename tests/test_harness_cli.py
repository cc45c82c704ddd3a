"""`sigcache-harness`: replay, report, gate, generate and promote, with their exit codes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from harness.cli import EXIT_DATA, EXIT_USAGE, main
from sigcache import signature_cache
from tests.contract import SIG_A, SIG_B
from tests.test_replayer import read, record, write

LAX = "[default]\nmax_p99_latency_ratio = 1000.0\nmin_reads = 1\n"


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    calls = [(float(i), "cache_signature", write(f"text {i}", SIG_A)) for i in range(5)]
    calls += [(10.0 + i, "get_cached_signature", read(f"text {i % 7}")) for i in range(20)]
    calls += [(40.0, "cache_signature", write("owned", SIG_B, "alice"))]
    calls += [(41.0, "get_cached_signature", read("owned"))]
    return record(tmp_path / "rec.jsonl", calls)


@pytest.fixture
def lax(tmp_path: Path) -> Path:
    path = tmp_path / "lax.toml"
    path.write_text(LAX)
    return path


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CACHE_NEW_L2_DB_PATH", str(tmp_path / "l2.db"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    signature_cache.reset_signature_cache()
    yield
    signature_cache.reset_signature_cache()


def test_replay_writes_report_and_gates(
    recording: Path, lax: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "summary.json"
    code = main(
        [
            "replay",
            str(recording),
            "--thresholds",
            str(lax),
            "--summary-json",
            str(summary),
            "--reports",
            str(tmp_path / "reports"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "NEW_ONLY" in out and "report:" in out
    data = json.loads(summary.read_text())
    assert data["events"] == 27 and set(data["phases"]) == {
        "LEGACY_ONLY",
        "DUAL_WRITE",
        "NEW_PREFERRED",
        "NEW_ONLY",
    }
    assert data["phases"]["NEW_ONLY"]["classes"]["isolation"] == 1
    (report_dir,) = (tmp_path / "reports").iterdir()
    for name in (
        "report.md",
        "report.html",
        "summary.json",
        "results.parquet",
        "gate-NEW_ONLY.json",
        "phases.csv",
    ):
        assert (report_dir / name).is_file(), name


def test_gate_exit_codes(recording: Path, lax: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    assert (
        main(["replay", str(recording), "--reports", str(reports), "--thresholds", str(lax)]) == 0
    )
    (report_dir,) = reports.iterdir()
    assert main(["gate", str(report_dir), "--to", "dual_write", "--thresholds", str(lax)]) == 0
    strict = tmp_path / "strict.toml"
    strict.write_text("[default]\nmin_reads = 100000\n")
    assert main(["gate", str(report_dir), "--to", "DUAL_WRITE", "--thresholds", str(strict)]) == 2
    failing = tmp_path / "failing.toml"
    failing.write_text("[default]\nmin_reads = 1\nmax_p99_latency_ratio = 0.0001\n")
    assert (
        main(["gate", str(report_dir / "summary.json"), "--to", "2", "--thresholds", str(failing)])
        == 1
    )
    gate = json.loads((report_dir / "gate-DUAL_WRITE.json").read_text())
    assert gate["verdict"] == "fail" and gate["target"] == "DUAL_WRITE"


def test_broken_candidate_fails_the_gate(recording: Path, lax: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    assert (
        main(
            [
                "replay",
                str(recording),
                "--reports",
                str(reports),
                "--thresholds",
                str(lax),
                "--new-cache",
                "tests.broken_caches:owner_blind",
            ]
        )
        == 0
    )
    (report_dir,) = reports.iterdir()
    assert main(["gate", str(report_dir), "--to", "new_only", "--thresholds", str(lax)]) == 1
    gate = json.loads((report_dir / "gate-NEW_ONLY.json").read_text())
    assert "foreign" in [r["name"] for r in gate["rules"] if not r["passed"]]


def test_a_slow_candidate_fails_the_latency_rule_despite_its_floor(tmp_path: Path) -> None:
    """The shipped floor (100 µs) forgives a fast control, not a candidate 2 ms slower per read."""
    calls = [(float(i), "cache_signature", write(f"text {i}", SIG_A)) for i in range(10)]
    calls += [(20.0 + i, "get_cached_signature", read(f"text {i % 10}")) for i in range(200)]
    recording = record(tmp_path / "slow.jsonl", calls)
    shipped = (Path(__file__).parent.parent / "harness" / "thresholds.toml").read_text("utf-8")
    thresholds = tmp_path / "shipped-but-few-reads.toml"
    thresholds.write_text(shipped.replace("min_reads = 1000", "min_reads = 100"), "utf-8")
    reports = tmp_path / "reports"
    argv = ["replay", str(recording), "--phase", "NEW_ONLY", "--reports", str(reports)]
    argv += ["--thresholds", str(thresholds), "--new-cache", "tests.broken_caches:slow_reads"]
    assert main(argv) == 0  # the replay ran; its verdicts are the gate's to enforce
    (report_dir,) = reports.iterdir()
    gate_argv = ["gate", str(report_dir), "--to", "NEW_ONLY", "--thresholds", str(thresholds)]
    assert main(gate_argv) == 1
    gate = json.loads((report_dir / "gate-NEW_ONLY.json").read_text())
    failed = [r for r in gate["rules"] if not r["passed"]]
    assert [r["name"] for r in failed] == ["p99_latency_ratio"]
    assert failed[0]["measured"] >= 2000 / 100 * 0.9  # >= 2 ms over at most the 100 µs floor


def test_report_rebuilds_from_results(recording: Path, lax: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    main(["replay", str(recording), "--reports", str(reports), "--thresholds", str(lax)])
    (report_dir,) = reports.iterdir()
    out = tmp_path / "again"
    assert (
        main(
            [
                "report",
                str(report_dir / "results.parquet"),
                "--recording",
                str(recording),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "report.md").read_text().startswith("# Replay report")


def test_bad_input_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "sigcache-recording", "version": 9}\n')
    assert main(["replay", str(bad)]) == EXIT_DATA
    assert "version" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing.jsonl")]) == EXIT_DATA
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(b'{"format": "sigcache-recording"}\n' * 50)[:40])
    assert main(["replay", str(truncated)]) == EXIT_DATA
    with pytest.raises(SystemExit) as usage:
        main(["gate"])
    assert usage.value.code == EXIT_USAGE
    assert main(["gate", str(tmp_path), "--to", "LEGACY_ONLY"]) == EXIT_DATA
    assert main(["replay", str(bad), "--phase", "bogus"]) == EXIT_DATA


def test_skip_bad_lines(
    recording: Path, lax: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = tmp_path / "damaged.jsonl"
    lines = recording.read_text().splitlines()
    damaged.write_text("\n".join([*lines[:5], "{not json", *lines[5:]]) + "\n")
    assert main(["replay", str(damaged), "--reports", str(tmp_path / "r")]) == EXIT_DATA
    assert "line 6" in capsys.readouterr().err
    assert (
        main(
            [
                "replay",
                str(damaged),
                "--skip-bad-lines",
                "--reports",
                str(tmp_path / "r2"),
                "--thresholds",
                str(lax),
            ]
        )
        == 0
    )
    assert "skipped 1 bad line" in capsys.readouterr().out


def test_generate_is_reproducible(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    assert main(["generate", "--out", str(first), "--events", "400", "--seed", "3"]) == 0
    assert main(["generate", "--out", str(second), "--events", "400", "--seed", "3"]) == 0
    assert first.read_bytes() == second.read_bytes()
    said = " ".join(capsys.readouterr().out.split())  # rich may wrap a long line
    assert "400 events," in said and "virtual hours" in said and "SynthStats" not in said


def test_promote_locally_only_on_a_pass(recording: Path, lax: Path, tmp_path: Path) -> None:
    strict = tmp_path / "strict.toml"
    strict.write_text("[default]\nmin_reads = 100000\n")
    assert (
        main(
            [
                "promote",
                "--to",
                "DUAL_WRITE",
                "--recording",
                str(recording),
                "--thresholds",
                str(strict),
                "--reports",
                str(tmp_path / "reports"),
            ]
        )
        == 2
    )
    assert signature_cache.get_migration_status()["phase"] == "LEGACY_ONLY"
    signature_cache.reset_signature_cache()
    assert (
        main(
            [
                "promote",
                "--to",
                "DUAL_WRITE",
                "--recording",
                str(recording),
                "--thresholds",
                str(lax),
                "--reports",
                str(tmp_path / "reports"),
            ]
        )
        == 0
    )
    signature_cache.reset_signature_cache()
    status = signature_cache.get_migration_status()
    assert status["phase"] == "DUAL_WRITE"  # persisted in the L2 database
    assert status["history"][-1]["actor"] == "sigcache-harness promote"
    # skipping a phase is refused even with a passing verdict for it
    assert (
        main(
            [
                "promote",
                "--to",
                "NEW_ONLY",
                "--recording",
                str(recording),
                "--thresholds",
                str(lax),
                "--reports",
                str(tmp_path / "reports"),
            ]
        )
        == 70
    )


def test_report_and_gate_default_to_the_latest_report(
    recording: Path, lax: Path, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    assert main(["gate", "--to", "DUAL_WRITE", "--reports", str(reports)]) == EXIT_DATA
    assert (
        main(["replay", str(recording), "--reports", str(reports), "--thresholds", str(lax)]) == 0
    )
    assert (
        main(["gate", "--to", "DUAL_WRITE", "--reports", str(reports), "--thresholds", str(lax)])
        == 0
    )
    assert main(["report", "--reports", str(reports), "--thresholds", str(lax)]) == 0
