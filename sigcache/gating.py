"""The promotion seam's view of a gate verdict: read `gate.json` and decide (stdlib only).

sigcache never imports harness: the harness writes `gate.json` (``harness.gate.write_gate_json``)
and this module only reads it. A promotion is allowed when the file exists and parses, names the
target phase, says ``pass``, is not older than the allowed age, and any recording it names exists.
Every refusal is named, so a 409 or a ``GateRefusedError`` can list why.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sigcache.errors import PhaseError

__all__ = [
    "GATE_FORMAT",
    "GATE_VERSION",
    "PHASE_NAMES",
    "check_promotion",
    "phase_name",
]

GATE_FORMAT: Final = "sigcache-gate"
GATE_VERSION: Final = 1
# Mirrors MigrationPhase (sigcache.phases) by value; kept here so this seam stays import-free.
PHASE_NAMES: Final = ("LEGACY_ONLY", "DUAL_WRITE", "NEW_PREFERRED", "NEW_ONLY")
# A verdict stamped slightly in the future is clock skew between hosts, not forgery.
_FUTURE_TOLERANCE_S: Final = 60.0


def phase_name(phase: object) -> str:
    """Canonical phase name from a name (any case), an int 1-4 or a MigrationPhase member."""
    name = getattr(phase, "name", None)
    if isinstance(phase, int) and isinstance(name, str):
        phase = name  # an IntEnum member: trust its name
    if isinstance(phase, int) and not isinstance(phase, bool) and 1 <= phase <= len(PHASE_NAMES):
        return PHASE_NAMES[phase - 1]
    if isinstance(phase, str) and phase.strip().upper() in PHASE_NAMES:
        return phase.strip().upper()
    raise PhaseError(f"unknown migration phase: {phase!r}", valid=PHASE_NAMES)


def _epoch(value: float | datetime) -> float:
    if isinstance(value, datetime):
        # A naive datetime is taken as UTC: gate files are always written in UTC.
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.timestamp()
    return float(value)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _age_problem(data: dict[str, Any], max_age_seconds: float, now: float) -> str | None:
    try:
        written = _epoch(datetime.fromisoformat(str(data.get("time"))))
    except ValueError:
        return "gate_time_invalid"
    age = now - written
    if age > max_age_seconds:
        return "gate_stale"
    if age < -_FUTURE_TOLERANCE_S:
        return "gate_time_in_future"
    return None


def _failed_rules(data: dict[str, Any]) -> list[str]:
    rules = data.get("rules")
    if not isinstance(rules, list):
        return []
    return [
        str(rule.get("name"))
        for rule in rules
        if isinstance(rule, dict) and rule.get("passed") is not True
    ]


def check_promotion(
    gate_json_path: str | Path,
    target: object,
    *,
    max_age_seconds: float,
    now: float | datetime,
) -> tuple[bool, dict[str, Any] | None, list[str]]:
    """(allowed, the verdict read or None, why not): may the facade promote to `target`?

    Refusal reasons are the failed gate rules, or one of ``gate_missing``, ``gate_unreadable``,
    ``gate_format``, ``target_mismatch``, ``verdict_fail``, ``verdict_inconclusive``,
    ``gate_time_invalid``, ``gate_stale``, ``gate_time_in_future``, ``recording_missing``.
    An unknown `target` raises PhaseError (the caller validates phases before asking).
    """
    path = Path(gate_json_path)
    if not path.is_file():
        return False, None, ["gate_missing"]
    data = _load(path)
    if data is None:
        return False, None, ["gate_unreadable"]
    problems: list[str] = []
    if data.get("format") != GATE_FORMAT or data.get("version") != GATE_VERSION:
        problems.append("gate_format")
    try:
        recorded_target = phase_name(data.get("target"))
    except PhaseError:
        recorded_target = None
    if recorded_target != phase_name(target):
        problems.append("target_mismatch")
    outcome = data.get("verdict")
    if outcome != "pass":
        problems.extend(_failed_rules(data))
        problems.append(f"verdict_{outcome}" if outcome in ("fail", "inconclusive") else "verdict")
    age_problem = _age_problem(data, max_age_seconds, _epoch(now))
    if age_problem:
        problems.append(age_problem)
    recording = data.get("recording")
    if recording:
        # Relative paths are relative to the gate file, so a report directory can move whole.
        recording_path = path.parent / str(recording)
        if not recording_path.is_file():
            problems.append("recording_missing")
    return not problems, data, problems
