"""The gate's optional live-consistency rules (figures sampled by the running service)."""

from __future__ import annotations

from typing import Any

from harness.gate import PhaseThresholds, Thresholds, evaluate, load_thresholds
from tests.test_gate import phase_summary

LIMITS = Thresholds(default=PhaseThresholds(min_reads=100, live_min_samples=500))


def replay(**live: dict[str, Any]) -> dict[str, Any]:
    """A clean replay summary for every phase, plus a `live` section."""
    phases = {name: phase_summary() for name in ("LEGACY_ONLY", "DUAL_WRITE", "NEW_PREFERRED")}
    return {"phases": phases, "live": live}


def sampled(samples: int, mismatch: int = 0, legacy_only: int = 0) -> dict[str, Any]:
    classes = {"match": samples - mismatch - legacy_only}
    classes.update(value_mismatch=mismatch, legacy_only_hit=legacy_only)
    return {"samples": samples, "classes": classes}


def rule(verdict: Any, name: str) -> Any:
    return next((r for r in verdict.rules if r.name == name), None)


def test_live_rules_apply_to_the_phase_before_the_target() -> None:
    verdict = evaluate(replay(DUAL_WRITE=sampled(1_000)), "NEW_PREFERRED", LIMITS)
    assert verdict.outcome == "pass"
    assert rule(verdict, "live_value_mismatch_rate").measured == 0.0
    assert rule(verdict, "live_legacy_only_hit_rate").passed
    # DUAL_WRITE's samples say nothing about a promotion to DUAL_WRITE.
    assert (
        rule(
            evaluate(replay(DUAL_WRITE=sampled(1_000)), "DUAL_WRITE", LIMITS),
            "live_value_mismatch_rate",
        )
        is None
    )


def test_live_mismatch_or_regressions_fail_the_gate() -> None:
    verdict = evaluate(replay(DUAL_WRITE=sampled(1_000, mismatch=1)), "NEW_PREFERRED", LIMITS)
    assert verdict.outcome == "fail" and verdict.failed_rules == ["live_value_mismatch_rate"]
    verdict = evaluate(replay(DUAL_WRITE=sampled(1_000, legacy_only=5)), "NEW_PREFERRED", LIMITS)
    assert verdict.failed_rules == ["live_legacy_only_hit_rate"]
    assert rule(verdict, "live_legacy_only_hit_rate").measured == 0.005


def test_too_few_or_no_live_samples_add_no_rule() -> None:
    few = evaluate(replay(DUAL_WRITE=sampled(499, mismatch=1)), "NEW_PREFERRED", LIMITS)
    assert few.outcome == "pass" and rule(few, "live_value_mismatch_rate") is None
    none = evaluate({"phases": replay()["phases"]}, "NEW_PREFERRED", LIMITS)
    assert none.outcome == "pass" and len(none.rules) == len(few.rules)


def test_shipped_thresholds_carry_the_live_keys() -> None:
    shipped = load_thresholds().for_phase("NEW_PREFERRED")
    assert shipped.live_min_samples == 1000 and shipped.max_live_value_mismatch_rate == 0.0
