"""Tests of sigcache.gating: the promotion seam reading gate.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.gate import RuleResult, Verdict, write_gate_json
from sigcache.errors import PhaseError
from sigcache.gating import check_promotion, phase_name

WRITTEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
HOUR = 3600.0


def write(tmp_path: Path, outcome: str = "pass", target: str = "DUAL_WRITE", **extra: Any) -> Path:
    """A gate.json written by the harness writer, for an existing recording unless told."""
    recording = tmp_path / "rec.jsonl"
    recording.write_text("{}\n", encoding="utf-8")
    rules = (
        RuleResult("foreign", 0.0, 0.0, True),
        RuleResult("errors", 2.0, 0.0, outcome == "pass"),
    )
    verdict = Verdict(target, outcome, rules)  # type: ignore[arg-type]
    path = tmp_path / "gate.json"
    write_gate_json(
        verdict,
        path,
        recording_digest="d",
        report_path=str(tmp_path),
        now=WRITTEN,
        recording=extra.get("recording", recording),
    )
    return path


def test_passing_fresh_verdict_allows(tmp_path: Path) -> None:
    path = write(tmp_path)
    allowed, verdict, failed = check_promotion(
        path, "dual_write", max_age_seconds=HOUR, now=WRITTEN + timedelta(minutes=5)
    )
    assert (allowed, failed) == (True, [])
    assert verdict is not None and verdict["target"] == "DUAL_WRITE"


def test_epoch_seconds_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path)
    allowed, _, _ = check_promotion(path, 2, max_age_seconds=HOUR, now=WRITTEN.timestamp() + 10)
    assert allowed


def test_relative_recording_path_is_relative_to_the_gate_file(tmp_path: Path) -> None:
    path = write(tmp_path, recording="rec.jsonl")
    assert check_promotion(path, "DUAL_WRITE", max_age_seconds=HOUR, now=WRITTEN)[0]


@pytest.mark.parametrize(
    ("kwargs", "now", "target", "expected"),
    [
        ({}, WRITTEN + timedelta(hours=2), "DUAL_WRITE", ["gate_stale"]),
        ({}, WRITTEN - timedelta(hours=1), "DUAL_WRITE", ["gate_time_in_future"]),
        ({}, WRITTEN, "NEW_ONLY", ["target_mismatch"]),
        ({"outcome": "fail"}, WRITTEN, "DUAL_WRITE", ["errors", "verdict_fail"]),
        ({"outcome": "inconclusive"}, WRITTEN, "DUAL_WRITE", ["errors", "verdict_inconclusive"]),
        ({"recording": "gone.jsonl"}, WRITTEN, "DUAL_WRITE", ["recording_missing"]),
        (
            {"outcome": "fail", "target": "NEW_ONLY"},
            WRITTEN + timedelta(days=1),
            "DUAL_WRITE",
            ["target_mismatch", "errors", "verdict_fail", "gate_stale"],
        ),
    ],
)
def test_refusals(
    tmp_path: Path, kwargs: dict[str, Any], now: datetime, target: str, expected: list[str]
) -> None:
    path = write(tmp_path, **kwargs)
    allowed, verdict, failed = check_promotion(path, target, max_age_seconds=HOUR, now=now)
    assert not allowed
    assert verdict is not None
    assert failed == expected


def test_small_clock_skew_is_tolerated(tmp_path: Path) -> None:
    path = write(tmp_path)
    now = WRITTEN - timedelta(seconds=30)
    assert check_promotion(path, "DUAL_WRITE", max_age_seconds=HOUR, now=now)[0]


def test_missing_and_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "gate.json"
    assert check_promotion(path, 2, max_age_seconds=HOUR, now=WRITTEN) == (
        False,
        None,
        ["gate_missing"],
    )
    for text in ("not json", "[1, 2]", "\udcff"):
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        assert check_promotion(path, 2, max_age_seconds=HOUR, now=WRITTEN)[2] == ["gate_unreadable"]


def test_hand_edited_file(tmp_path: Path) -> None:
    path = write(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(version=99, time="yesterday", target="nonsense", verdict="maybe")
    path.write_text(json.dumps(data), encoding="utf-8")
    allowed, _, failed = check_promotion(path, 2, max_age_seconds=HOUR, now=WRITTEN)
    assert not allowed
    assert failed == ["gate_format", "target_mismatch", "verdict", "gate_time_invalid"]


def test_naive_time_is_utc(tmp_path: Path) -> None:
    path = write(tmp_path)
    naive = WRITTEN.replace(tzinfo=None) + timedelta(minutes=1)
    assert check_promotion(path, "DUAL_WRITE", max_age_seconds=HOUR, now=naive)[0]


@pytest.mark.parametrize(
    ("value", "name"),
    [("legacy_only", "LEGACY_ONLY"), (" New_Preferred ", "NEW_PREFERRED"), (4, "NEW_ONLY")],
)
def test_phase_name(value: object, name: str) -> None:
    assert phase_name(value) == name


@pytest.mark.parametrize("value", ["", "NEW", 0, 5, False, 2.0, None])
def test_phase_name_rejects(value: object) -> None:
    with pytest.raises(PhaseError) as info:
        phase_name(value)
    assert "NEW_ONLY" in info.value.valid
