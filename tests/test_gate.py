"""Tests of harness.gate: thresholds, every rule, the three outcomes and gate.json."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.gate import (
    PhaseThresholds,
    Thresholds,
    Verdict,
    evaluate,
    gate_exit_code,
    load_thresholds,
    read_gate_json,
    thresholds_from_dict,
    write_gate_json,
)
from sigcache.errors import ConfigError, PhaseError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LIMITS = Thresholds(default=PhaseThresholds(min_reads=100))


def phase_summary(reads: int = 1000) -> dict[str, Any]:
    """A clean phase: no critical class, small regressions, similar latency."""
    return {
        "reads": reads,
        "classes": {
            "match": reads - 10,
            "both_miss": 5,
            "new_only_hit": 5,
            "legacy_only_hit": 0,
            "value_mismatch": 0,
            "isolation": 0,
            "foreign": 0,
            "error": 0,
        },
        "aa_differences": 0,
        "errors": 0,
        "recorded_mismatches": 0,
        "fallback_hits": 3,
        "read_repairs": 3,
        "shadow_errors": 0,
        "stack_hit_rate": 0.8,
        "control_hit_rate": 0.8,
        "latency_us": {
            "stack": {"p50": 2.0, "p90": 4.0, "p99": 10.0, "max": 50.0},
            "control": {"p50": 2.0, "p90": 4.0, "p99": 8.0, "max": 40.0},
        },
    }


def summary(**phases: dict[str, Any]) -> dict[str, Any]:
    """A summary with LEGACY_ONLY and NEW_ONLY clean, overridden by `phases`."""
    base = {"LEGACY_ONLY": phase_summary(), "NEW_ONLY": phase_summary()}
    base.update(phases)
    return {"recording": "r.jsonl", "recording_digest": "d", "events": 3000, "phases": base}


def changed(path: str, value: object, phase: str = "NEW_ONLY") -> dict[str, Any]:
    """A clean summary with one value (dotted path inside `phase`) replaced."""
    result = summary()
    node = result["phases"][phase]
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return result


def test_clean_summary_passes() -> None:
    verdict = evaluate(summary(), "new_only", LIMITS)
    assert verdict.outcome == "pass", verdict
    assert verdict.target == "NEW_ONLY"
    assert verdict.failed_rules == []
    assert gate_exit_code(verdict) == 0
    names = [rule.name for rule in verdict.rules]
    assert names == [
        "min_reads",
        "value_mismatch",
        "foreign",
        "aa_differences",
        "errors",
        "recorded_mismatches",
        "legacy_only_hit_rate",
        "hit_rate_drop",
        "p99_latency_ratio",
    ]


@pytest.mark.parametrize(
    ("path", "value", "rule", "outcome", "measured"),
    [
        ("classes.value_mismatch", 1, "value_mismatch", "fail", 1.0),
        ("classes.foreign", 2, "foreign", "fail", 2.0),
        ("aa_differences", 1, "aa_differences", "fail", 1.0),
        ("errors", 4, "errors", "fail", 4.0),
        ("classes.legacy_only_hit", 2, "legacy_only_hit_rate", "fail", 0.002),
        ("stack_hit_rate", 0.7, "hit_rate_drop", "fail", pytest.approx(0.1)),
        ("latency_us.stack.p99", 17.0, "p99_latency_ratio", "fail", 17.0 / 8.0),
        ("reads", 99, "min_reads", "inconclusive", 99.0),
        ("reads", 0, "min_reads", "inconclusive", 0.0),
        ("classes", None, "value_mismatch", "inconclusive", None),
        ("latency_us", {}, "p99_latency_ratio", "inconclusive", None),
        ("stack_hit_rate", "n/a", "hit_rate_drop", "inconclusive", None),
    ],
)
def test_each_rule(path: str, value: object, rule: str, outcome: str, measured: object) -> None:
    verdict = evaluate(changed(path, value), "NEW_ONLY", LIMITS)
    assert verdict.outcome == outcome, verdict.reasons
    assert rule in verdict.failed_rules
    found = next(r for r in verdict.rules if r.name == rule)
    assert found.measured == measured
    assert not found.passed
    assert gate_exit_code(verdict) == {"pass": 0, "fail": 1, "inconclusive": 2}[outcome]


def test_recorded_mismatches_read_from_legacy_only() -> None:
    verdict = evaluate(changed("recorded_mismatches", 3, "LEGACY_ONLY"), "NEW_ONLY", LIMITS)
    assert verdict.outcome == "fail"
    assert verdict.failed_rules == ["recorded_mismatches"]
    # NEW_ONLY's own recorded mismatches are expected (new answers differ from legacy's).
    assert evaluate(changed("recorded_mismatches", 3), "NEW_ONLY", LIMITS).outcome == "pass"


def test_missing_legacy_only_phase_is_inconclusive() -> None:
    data = summary()
    del data["phases"]["LEGACY_ONLY"]
    verdict = evaluate(data, "NEW_ONLY", LIMITS)
    assert verdict.outcome == "inconclusive"
    assert verdict.failed_rules == ["recorded_mismatches"]


def test_critical_failure_beats_too_few_reads() -> None:
    data = changed("classes.foreign", 1)
    data["phases"]["NEW_ONLY"]["reads"] = 10
    assert evaluate(data, "NEW_ONLY", LIMITS).outcome == "fail"


def test_noncritical_failure_below_min_reads_is_inconclusive() -> None:
    data = changed("classes.legacy_only_hit", 5)
    data["phases"]["NEW_ONLY"]["reads"] = 50
    assert evaluate(data, "NEW_ONLY", LIMITS).outcome == "inconclusive"


@pytest.mark.parametrize(
    "data", [{}, {"phases": {}}, {"phases": None}, summary(NEW_ONLY={}), {"phases": {"X": {}}}]
)
def test_no_data_is_never_a_pass(data: dict[str, Any]) -> None:
    verdict = evaluate(data, "NEW_ONLY", LIMITS)
    assert verdict.outcome == "inconclusive"
    assert gate_exit_code(verdict) == 2


def test_isolation_hits_do_not_count_as_a_hit_rate_drop() -> None:
    data = changed("stack_hit_rate", 0.7)
    data["phases"]["NEW_ONLY"]["classes"]["isolation"] = 100  # 0.1 of the reads
    verdict = evaluate(data, "NEW_ONLY", LIMITS)
    assert verdict.outcome == "pass", verdict.reasons


def test_absent_class_counts_as_zero_and_phase_keys_any_case() -> None:
    data = summary()
    data["phases"]["new_only"] = data["phases"].pop("NEW_ONLY")
    del data["phases"]["new_only"]["classes"]["foreign"]
    assert evaluate(data, "NEW_ONLY", LIMITS).outcome == "pass"


def test_zero_control_latency_uses_a_floor() -> None:
    data = changed("latency_us.control.p99", 0.0)
    data["phases"]["NEW_ONLY"]["latency_us"]["stack"]["p99"] = 1.5
    rule = next(
        r for r in evaluate(data, "NEW_ONLY", LIMITS).rules if r.name == "p99_latency_ratio"
    )
    assert rule.measured == 1.5 and rule.passed


@pytest.mark.parametrize(
    ("floor", "stack_p99", "control_p99", "measured", "passed"),
    [
        (100.0, 182.0, 51.0, 1.82, True),  # a fast control: the stack is judged against the floor
        (100.0, 320.0, 51.0, 3.2, False),  # ...and still fails past the ratio times the floor
        (100.0, 900.0, 250.0, 3.6, False),  # a control above the floor divides as measured
        (100.0, 600.0, 250.0, 2.4, True),
        (0.0, 17.0, 0.5, 17.0, False),  # a floor below 1 µs is raised to 1 µs
    ],
)
def test_latency_floor_raises_the_divisor(
    floor: float, stack_p99: float, control_p99: float, measured: float, passed: bool
) -> None:
    data = changed("latency_us.control.p99", control_p99)
    data["phases"]["NEW_ONLY"]["latency_us"]["stack"]["p99"] = stack_p99
    rules = PhaseThresholds(min_reads=100, max_p99_latency_ratio=3.0, p99_latency_floor_us=floor)
    limits = Thresholds(default=rules)
    verdict = evaluate(data, "NEW_ONLY", limits)
    rule = next(r for r in verdict.rules if r.name == "p99_latency_ratio")
    assert rule.measured == pytest.approx(measured)
    assert rule.passed is passed
    assert verdict.outcome == ("pass" if passed else "fail")


def test_shipped_latency_floor() -> None:
    limits = load_thresholds()
    assert limits.default.p99_latency_floor_us == 100.0
    assert PhaseThresholds().p99_latency_floor_us == 1.0  # thresholds built in code: timer floor


class _Phase(int):
    """Stands in for a MigrationPhase member: an int with a name."""

    name = "NEW_ONLY"


@pytest.mark.parametrize("target", ["NEW_ONLY", " new_only ", 4, _Phase(4)])
def test_target_forms(target: object) -> None:
    assert evaluate(summary(), target, LIMITS).target == "NEW_ONLY"


@pytest.mark.parametrize("target", ["NEWER", 0, 5, True, None])
def test_unknown_target(target: object) -> None:
    with pytest.raises(PhaseError):
        evaluate(summary(), target, LIMITS)


def test_per_phase_thresholds() -> None:
    limits = thresholds_from_dict(
        {"default": {"min_reads": 100}, "new_only": {"max_legacy_only_hit_rate": 0.01}}
    )
    data = changed("classes.legacy_only_hit", 5)
    data["phases"]["NEW_PREFERRED"] = copy.deepcopy(data["phases"]["NEW_ONLY"])
    assert evaluate(data, "NEW_ONLY", limits).outcome == "pass"
    assert evaluate(data, "NEW_PREFERRED", limits).outcome == "fail"
    assert limits.for_phase("NEW_ONLY").min_reads == 100  # inherited from [default]


def test_shipped_thresholds_load_and_differ_per_phase() -> None:
    limits = load_thresholds()
    assert limits.default.max_value_mismatch == 0
    assert limits.for_phase("LEGACY_ONLY").max_legacy_only_hit_rate == 0.0
    assert (
        limits.for_phase("NEW_PREFERRED").max_p99_latency_ratio
        > limits.default.max_p99_latency_ratio
    )


@pytest.mark.parametrize(
    "data",
    [
        {"default": {"max_foreign": -1}},
        {"default": {"min_reads": 1.5}},
        {"default": {"max_errors": True}},
        {"default": {"max_everything": 0}},
        {"SOMETIMES": {}},
        {"NEW_ONLY": 3},
    ],
)
def test_bad_thresholds(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        thresholds_from_dict(data)


def test_load_thresholds_from_file(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[default]\nmin_reads = 5\n[NEW_ONLY]\nmax_errors = 2\n", encoding="utf-8")
    limits = load_thresholds(path)
    assert limits.for_phase(4).max_errors == 2
    assert limits.for_phase(4).min_reads == 5
    path.write_text("[default\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_thresholds(path)
    with pytest.raises(ConfigError):
        load_thresholds(tmp_path / "missing.toml")


def test_gate_json_round_trip(tmp_path: Path) -> None:
    verdict = evaluate(changed("errors", 1), "NEW_ONLY", LIMITS)
    path = tmp_path / "gate.json"
    document = write_gate_json(
        verdict, path, recording_digest="abc", report_path="reports/x", now=NOW, recording="r.jsonl"
    )
    assert json.loads(path.read_text(encoding="utf-8")) == document
    assert document["verdict"] == "fail"
    assert document["time"] == "2026-01-02T03:04:05+00:00"
    gate = read_gate_json(path)
    assert gate.verdict == verdict
    assert (gate.recording_digest, gate.report_path, gate.recording) == (
        "abc",
        "reports/x",
        "r.jsonl",
    )
    assert gate.time == NOW


def test_read_gate_json_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "gate.json"
    path.write_text('{"verdict": "pass"}', encoding="utf-8")
    with pytest.raises(ConfigError):
        read_gate_json(path)
    with pytest.raises(ConfigError):
        read_gate_json(tmp_path / "missing.json")


def test_verdict_is_frozen() -> None:
    verdict = Verdict("NEW_ONLY", "pass", ())
    with pytest.raises(AttributeError):
        verdict.outcome = "fail"  # type: ignore[misc]
