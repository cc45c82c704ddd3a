"""The promotion gate: thresholds (TOML), rules over a replay summary (pure), and `gate.json`.

:func:`evaluate` is a pure function of the summary JSON (docs/contracts.md section 4) and the
thresholds of the target phase. Outcome, first that applies:

* ``fail``          a critical rule failed (value_mismatch, foreign, aa_differences, errors,
                    recorded_mismatches): evidence of a wrong answer is conclusive at any volume;
* ``inconclusive``  fewer reads than ``min_reads``, or a measurement is missing (no data is
                    never a pass);
* ``fail``          any other rule failed;
* ``pass``          every rule passed.

Findings: a (class, reason) pair of ``harness.compare.FINDING_REASONS`` (``legacy_truncated``
under ``value_mismatch`` or ``legacy_only_hit``: legacy answered an aborted stream's truncated
signature, which the new cache refused to store) is a legacy defect the replay surfaces, not a
wrong or missing answer of the new cache: no rule counts it (``value_mismatch``,
``legacy_only_hit_rate``, ``hit_rate_drop``), and the verdict lists it under ``findings``.
So are ``isolation`` reads (legacy's answer crossed owners, model families, scopes or
conversations and the new cache refused it), which no rule ever counted: the verdict lists them
as ``isolation_<reason>`` (``harness.compare.finding_name``).

Live figures (optional): a summary may carry ``live: {PHASE: {"samples": int, "classes": {CLASS:
int}}}``, the live consistency counts sampled in production while PHASE served traffic (the
``by_phase`` part of ``get_migration_status()["live_consistency"]``). A promotion to a target uses
the figures of the phase before it; once they hold ``live_min_samples`` samples, two more rules
apply: ``live_value_mismatch_rate`` and ``live_legacy_only_hit_rate``. Fewer samples, or no
``live`` section, add no rule (live data is an extra input, never a requirement).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

from harness.compare import FINDING_REASONS, finding_name
from sigcache.errors import ConfigError
from sigcache.gating import GATE_FORMAT, GATE_VERSION, PHASE_NAMES, phase_name

__all__ = [
    "LATENCY_FLOOR_US",
    "GateFile",
    "Outcome",
    "PhaseThresholds",
    "RuleResult",
    "Thresholds",
    "Verdict",
    "evaluate",
    "gate_exit_code",
    "load_thresholds",
    "p99_ratio",
    "read_gate_json",
    "thresholds_from_dict",
    "write_gate_json",
]

Outcome = Literal["pass", "fail", "inconclusive"]
_EXIT_CODES: Final[dict[str, int]] = {"pass": 0, "fail": 1, "inconclusive": 2}
# Timer resolution makes a sub-microsecond control p99 meaningless as a divisor: the least floor,
# and the default of thresholds built in code. The shipped thresholds.toml sets a higher one.
LATENCY_FLOOR_US: Final = 1.0


@dataclass(frozen=True, slots=True)
class PhaseThresholds:
    """Every rule's threshold for one target phase (units in harness/thresholds.toml)."""

    min_reads: int = 1000
    max_value_mismatch: int = 0
    max_foreign: int = 0
    max_aa_differences: int = 0
    max_errors: int = 0
    max_recorded_mismatches: int = 0
    max_legacy_only_hit_rate: float = 0.001
    max_hit_rate_drop: float = 0.001
    max_p99_latency_ratio: float = 2.0
    p99_latency_floor_us: float = LATENCY_FLOOR_US  # the least control p99 the ratio divides by
    live_min_samples: int = 1000  # live samples needed before the live rules apply
    max_live_value_mismatch_rate: float = 0.0
    max_live_legacy_only_hit_rate: float = 0.001


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Default thresholds plus complete per-phase tables (a phase absent uses the default)."""

    default: PhaseThresholds = PhaseThresholds()
    phases: Mapping[str, PhaseThresholds] = field(default_factory=dict)

    def for_phase(self, phase: object) -> PhaseThresholds:
        """The thresholds for a promotion to `phase` (name in any case, int or enum member)."""
        return self.phases.get(phase_name(phase), self.default)


def _phase_table(base: PhaseThresholds, table: object, where: str) -> PhaseThresholds:
    if not isinstance(table, Mapping):
        raise ConfigError(f"thresholds [{where}] must be a table")
    known = {f.name: f.type for f in fields(PhaseThresholds)}
    values = asdict(base)
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"thresholds [{where}]: unknown key {key!r} (known: {sorted(known)})")
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or (known[key] == "int" and not isinstance(value, int)) or value < 0:
            raise ConfigError(f"thresholds [{where}] {key} = {value!r}: need a number >= 0")
        values[key] = value
    return PhaseThresholds(**values)


def thresholds_from_dict(data: Mapping[str, Any]) -> Thresholds:
    """Thresholds from parsed TOML: a ``default`` table and optional per-phase tables (pure)."""
    default = _phase_table(PhaseThresholds(), data.get("default", {}), "default")
    phases: dict[str, PhaseThresholds] = {}
    for name, table in data.items():
        if name == "default":
            continue
        if name.strip().upper() not in PHASE_NAMES:
            raise ConfigError(f"thresholds: unknown table [{name}] (phases: {PHASE_NAMES})")
        phases[name.strip().upper()] = _phase_table(default, table, name)
    return Thresholds(default=default, phases=phases)


def load_thresholds(path: str | Path | None = None) -> Thresholds:
    """Read a thresholds TOML file; None reads the default shipped as harness/thresholds.toml."""
    try:
        if path is None:
            text = resources.files("harness").joinpath("thresholds.toml").read_text("utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        return thresholds_from_dict(tomllib.loads(text))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"cannot read thresholds {path or 'harness/thresholds.toml'}: {exc}"
        ) from exc


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One gate rule: its measured value (None = no data), threshold and whether it passed."""

    name: str
    measured: float | None
    threshold: float
    passed: bool
    critical: bool = False  # a failure is a fail even below min_reads


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's verdict for one target phase, every rule listed."""

    target: str
    outcome: Outcome
    rules: tuple[RuleResult, ...]
    reasons: tuple[str, ...] = ()  # why the outcome is what it is, in words
    # Legacy defects seen in the target phase, by reason (counted apart from any rule).
    findings: Mapping[str, int] = field(default_factory=dict)

    @property
    def failed_rules(self) -> list[str]:
        """Names of the rules that did not pass."""
        return [rule.name for rule in self.rules if not rule.passed]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _path(data: object, *keys: str) -> float | None:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return _number(data)


def _class_count(phase: Mapping[str, Any], cls: str) -> float | None:
    """Reads of a class, findings (FINDING_REASONS) left out; None when there is no data."""
    classes = phase.get("classes")
    # A summary lists the classes it saw; an absent one is zero, absent classes are no data.
    count = _number(classes.get(cls, 0)) if isinstance(classes, Mapping) else None
    if count is None:
        return None
    return count - sum(n for (c, _), n in _finding_counts(phase).items() if c == cls)


def _finding_counts(phase: Mapping[str, Any]) -> dict[tuple[str, str], int]:
    """Reads per finding (class, reason) of one phase summary (its `reasons` section)."""
    reasons = phase.get("reasons")
    found: dict[tuple[str, str], int] = {}
    for cls, reason in sorted(FINDING_REASONS):
        by_reason = reasons.get(cls) if isinstance(reasons, Mapping) else None
        count = _number(by_reason.get(reason, 0)) if isinstance(by_reason, Mapping) else None
        if count:
            found[(cls, reason)] = int(count)
    return found


def _phases(summary: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    phases = summary.get("phases")
    if not isinstance(phases, Mapping):
        return {}
    found = {str(k).strip().upper(): v for k, v in phases.items() if isinstance(v, Mapping)}
    return {k: v for k, v in found.items() if k in PHASE_NAMES}


def p99_ratio(stack_p99: float, control_p99: float, floor_us: float = LATENCY_FLOOR_US) -> float:
    """Stack p99 over control p99, the divisor raised to `floor_us` (never below 1 µs)."""
    return stack_p99 / max(control_p99, floor_us, LATENCY_FLOOR_US)


def _at_most(name: str, measured: float | None, limit: float, critical: bool) -> RuleResult:
    passed = measured is not None and measured <= limit
    return RuleResult(name, measured, float(limit), passed, critical)


def _rates(
    phase: Mapping[str, Any], latency_floor_us: float
) -> tuple[float | None, float | None, float | None]:
    """(legacy_only_hit rate, hit-rate drop, p99 latency ratio) of one phase summary."""
    reads = _path(phase, "reads")
    if not reads:
        return None, None, None
    legacy_only = _class_count(phase, "legacy_only_hit")
    isolation = _class_count(phase, "isolation") or 0.0
    truncated = _finding_counts(phase).get(("legacy_only_hit", "legacy_truncated"), 0)
    stack_rate, control_rate = _path(phase, "stack_hit_rate"), _path(phase, "control_hit_rate")
    drop = None
    if stack_rate is not None and control_rate is not None:
        # The control's cross-owner hits and its truncated values are findings, not hits the
        # stack owes anyone.
        drop = (control_rate - (isolation + truncated) / reads) - stack_rate
    stack_p99 = _path(phase, "latency_us", "stack", "p99")
    control_p99 = _path(phase, "latency_us", "control", "p99")
    ratio = None
    if stack_p99 is not None and control_p99 is not None:
        ratio = p99_ratio(stack_p99, control_p99, latency_floor_us)
    return (None if legacy_only is None else legacy_only / reads), drop, ratio


def _rules(summary: Mapping[str, Any], target: str, limits: PhaseThresholds) -> list[RuleResult]:
    phases = _phases(summary)
    phase, legacy_only = phases.get(target, {}), phases.get("LEGACY_ONLY", {})
    reads = _path(phase, "reads")
    enough = reads is not None and reads >= limits.min_reads
    legacy_rate, drop, ratio = _rates(phase, limits.p99_latency_floor_us)
    return [
        RuleResult("min_reads", reads, limits.min_reads, enough),
        _at_most(
            "value_mismatch",
            _class_count(phase, "value_mismatch"),
            limits.max_value_mismatch,
            True,
        ),
        _at_most("foreign", _class_count(phase, "foreign"), limits.max_foreign, True),
        _at_most("aa_differences", _path(phase, "aa_differences"), limits.max_aa_differences, True),
        _at_most("errors", _path(phase, "errors"), limits.max_errors, True),
        # The replay reproduces the recording under LEGACY_ONLY: proof the harness itself is sound.
        _at_most(
            "recorded_mismatches",
            _path(legacy_only, "recorded_mismatches"),
            limits.max_recorded_mismatches,
            True,
        ),
        _at_most("legacy_only_hit_rate", legacy_rate, limits.max_legacy_only_hit_rate, False),
        _at_most("hit_rate_drop", drop, limits.max_hit_rate_drop, False),
        _at_most("p99_latency_ratio", ratio, limits.max_p99_latency_ratio, False),
    ]


def _live_rules(
    summary: Mapping[str, Any], target: str, limits: PhaseThresholds
) -> list[RuleResult]:
    """Rules on live samples of the phase before `target`, once there are enough of them."""
    index = PHASE_NAMES.index(target) if target in PHASE_NAMES else 0
    live = summary.get("live")
    if index == 0 or not isinstance(live, Mapping):
        return []
    source = live.get(PHASE_NAMES[index - 1])
    samples = _path(source, "samples")
    if samples is None or samples < max(limits.live_min_samples, 1):
        return []
    assert isinstance(source, Mapping)  # _path found a number inside it
    mismatch, legacy_only = (_class_count(source, c) for c in ("value_mismatch", "legacy_only_hit"))
    return [
        _at_most(
            "live_value_mismatch_rate",
            None if mismatch is None else mismatch / samples,
            limits.max_live_value_mismatch_rate,
            False,
        ),
        _at_most(
            "live_legacy_only_hit_rate",
            None if legacy_only is None else legacy_only / samples,
            limits.max_live_legacy_only_hit_rate,
            False,
        ),
    ]


def _decide(rules: list[RuleResult], target: str) -> tuple[Outcome, tuple[str, ...]]:
    critical = [r.name for r in rules if r.critical and not r.passed and r.measured is not None]
    if critical:
        return "fail", (f"critical rules failed: {', '.join(critical)}",)
    missing = [r.name for r in rules if r.measured is None]
    if missing:
        return "inconclusive", (f"no data for {target}: {', '.join(missing)}",)
    if not rules[0].passed:
        return "inconclusive", (f"too few reads: {rules[0].measured:g} < {rules[0].threshold:g}",)
    failed = [r.name for r in rules if not r.passed]
    if failed:
        return "fail", (f"rules failed: {', '.join(failed)}",)
    return "pass", ()


def evaluate(summary: Mapping[str, Any], target: object, thresholds: Thresholds) -> Verdict:
    """The verdict on promoting to `target` given a replay summary (pure)."""
    name = phase_name(target)
    limits = thresholds.for_phase(name)
    rules = _rules(summary, name, limits) + _live_rules(summary, name, limits)
    outcome, reasons = _decide(rules, name)
    findings = _findings(_phases(summary).get(name, {}))
    return Verdict(name, outcome, tuple(rules), reasons, findings)


def _findings(phase: Mapping[str, Any]) -> dict[str, int]:
    """Reads per finding (`harness.compare.finding_name`) of one phase summary's reasons."""
    reasons = phase.get("reasons")
    found: dict[str, int] = {}
    for cls, by_reason in reasons.items() if isinstance(reasons, Mapping) else ():
        for reason, count in by_reason.items() if isinstance(by_reason, Mapping) else ():
            name, number = finding_name(str(cls), str(reason) or None), _number(count)
            if name is not None and number:
                found[name] = found.get(name, 0) + int(number)
    return dict(sorted(found.items()))


def gate_exit_code(verdict: Verdict) -> int:
    """Process exit status: 0 pass, 1 fail, 2 inconclusive."""
    return _EXIT_CODES[verdict.outcome]


@dataclass(frozen=True, slots=True)
class GateFile:
    """A `gate.json` as read back: the verdict and what it was computed from."""

    verdict: Verdict
    recording_digest: str
    report_path: str
    recording: str | None
    time: datetime


def write_gate_json(
    verdict: Verdict,
    path: str | Path,
    *,
    recording_digest: str,
    report_path: str | Path,
    now: datetime,
    recording: str | Path | None = None,
) -> dict[str, Any]:
    """Write `gate.json` (what sigcache.gating.check_promotion reads); returns the document."""
    stamp = now if now.tzinfo else now.replace(tzinfo=UTC)
    document: dict[str, Any] = {
        "format": GATE_FORMAT,
        "version": GATE_VERSION,
        "target": verdict.target,
        "verdict": verdict.outcome,
        "reasons": list(verdict.reasons),
        "rules": [asdict(rule) for rule in verdict.rules],
        "findings": dict(verdict.findings),
        "recording": None if recording is None else str(recording),
        "recording_digest": recording_digest,
        "report_path": str(report_path),
        "time": stamp.isoformat(),
    }
    # NaN and infinities are never measured (see _number and the latency floor): strict JSON.
    Path(path).write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", "utf-8")
    return document


def read_gate_json(path: str | Path) -> GateFile:
    """Read a `gate.json` written by :func:`write_gate_json`; ConfigError if it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != GATE_FORMAT or data.get("version") != GATE_VERSION:
            raise ValueError(f"not a {GATE_FORMAT} v{GATE_VERSION} file")
        rules = tuple(RuleResult(**rule) for rule in data["rules"])
        findings = {str(k): int(v) for k, v in dict(data.get("findings", {})).items()}
        verdict = Verdict(
            data["target"], data["verdict"], rules, tuple(data.get("reasons", ())), findings
        )
        return GateFile(
            verdict=verdict,
            recording_digest=str(data["recording_digest"]),
            report_path=str(data["report_path"]),
            recording=data.get("recording"),
            time=datetime.fromisoformat(data["time"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"cannot read gate file {path}: {exc}") from exc
