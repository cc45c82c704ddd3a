"""What the pytest plugin checks: one shared replay per recording, one check per test item.

A :class:`RecordingRun` replays its recording once (every requested phase plus LEGACY_ONLY in one
pass, through :func:`harness.pipeline.run_job`, which also writes the report and the gate files)
the first time an item asks for it. :func:`check` turns that result into the outcome of one item:
``aa_control``, ``legacy_reproduced`` or a gate rule of :func:`harness.gate.evaluate`. A failure
names the measured value, the threshold and the first offending events (seq, op, class, reason,
short text hash), read from the per-event results; never a text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # pandas and the replay stack load only when a recording is replayed
    import pandas as pd

    from harness.gate import RuleResult, Verdict

__all__ = [
    "FIRST_EVENTS",
    "HARNESS_CHECKS",
    "CheckOutcome",
    "RecordingRun",
    "ReplayFailed",
    "RunResult",
    "check",
    "item_names",
    "summary_lines",
]

HARNESS_CHECKS: Final = ("aa_control", "legacy_reproduced")
FIRST_EVENTS: Final = 5  # offending events quoted in a failure message
_LEGACY: Final = "LEGACY_ONLY"


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One item's outcome: passed, skipped (with why) or failed (with the message)."""

    passed: bool
    message: str = ""
    skipped: bool = False
    measured: float | None = None
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """A replayed recording: per-event results, the summary, one verdict per requested phase."""

    frame: pd.DataFrame
    summary: dict[str, Any]
    verdicts: dict[str, Verdict]
    report_dir: Path


class RecordingRun:
    """One recording's replay, run lazily once and shared by every item of that recording."""

    def __init__(
        self,
        recording: Path,
        phases: Sequence[str],
        *,
        reports_root: Path,
        thresholds: Path | None,
        new_cache: str | None,
        l2: str | None = None,
    ) -> None:
        self.recording = recording
        self.phases = tuple(phases)
        self._job: dict[str, Any] = {
            "reports_root": reports_root,
            "thresholds_path": thresholds,
            "new_cache": new_cache,
            "l2": l2,
        }
        self._result: RunResult | None = None
        self._error: str | None = None

    @property
    def done(self) -> RunResult | None:
        """The result if the replay has run and succeeded, else None (never starts a replay)."""
        return self._result

    def result(self) -> RunResult:
        """Replay on first use; a failed replay fails every later caller with the same message."""
        if self._result is None and self._error is None:
            try:
                self._result = self._run()
            except Exception as exc:  # a bad recording is a finding for each item, not a crash
                self._error = f"replay of {self.recording} failed: {type(exc).__name__}: {exc}"
        if self._result is None:
            raise ReplayFailed(self._error or "replay failed")
        return self._result

    def _run(self) -> RunResult:
        from harness.pipeline import run_job
        from harness.report import read_results
        from sigcache.phases import MigrationPhase

        job = run_job(
            self.recording, phases=tuple(MigrationPhase[p] for p in self.phases), **self._job
        )
        frame = read_results(job.outcome.results_path)
        verdicts = {verdict.target: verdict for verdict in job.verdicts}
        return RunResult(frame, job.summary, verdicts, job.report_dir)


class ReplayFailed(Exception):
    """The recording could not be replayed (unreadable, bad candidate factory, ...)."""


def item_names(phase: str) -> list[str]:
    """The items of one recording and phase: the harness checks, then every gate rule."""
    from harness.gate import Thresholds, evaluate

    # Rule names do not depend on data or thresholds: evaluate an empty summary to list them.
    return [*HARNESS_CHECKS, *(rule.name for rule in evaluate({}, phase, Thresholds()).rules)]


def _rows(frame: pd.DataFrame, phase: str) -> pd.DataFrame:
    return frame[frame["phase"] == phase]


def _is_false(series: pd.Series) -> pd.Series:
    return series.notna() & ~series.astype("boolean").fillna(True).astype(bool)


def _with_class(cls: str) -> Callable[[pd.DataFrame, str], pd.DataFrame]:
    def select(frame: pd.DataFrame, phase: str) -> pd.DataFrame:
        rows = _rows(frame, phase)
        return rows[rows["cls"] == cls]

    return select


def _aa(frame: pd.DataFrame, phase: str) -> pd.DataFrame:
    rows = _rows(frame, phase)
    return rows[_is_false(rows["aa_equal"])]


def _errors(frame: pd.DataFrame, phase: str) -> pd.DataFrame:
    rows = _rows(frame, phase)
    return rows[rows["error"].notna() & (rows["error"] != "")]


def _recorded(frame: pd.DataFrame, phase: str) -> pd.DataFrame:
    # The gate reads recorded mismatches of the LEGACY_ONLY replay whatever the target phase.
    rows = _rows(frame, _LEGACY)
    return rows[_is_false(rows["recorded_equal"])]


def _slowest(frame: pd.DataFrame, phase: str) -> pd.DataFrame:
    rows = _rows(frame, phase)
    return rows[rows["kind"] == "read"].sort_values("latency_us", ascending=False)


def _without_findings(cls: str) -> Callable[[pd.DataFrame, str], pd.DataFrame]:
    def select(frame: pd.DataFrame, phase: str) -> pd.DataFrame:
        from harness.compare import FINDING_REASONS

        rows = _with_class(cls)(frame, phase)
        findings = {reason for c, reason in FINDING_REASONS if c == cls}
        return rows[~rows["reason"].isin(findings)]  # findings are not failures (harness.gate)

    return select


_OFFENDERS: Final[dict[str, Callable[[pd.DataFrame, str], pd.DataFrame]]] = {
    "value_mismatch": _without_findings("value_mismatch"),
    "foreign": _with_class("foreign"),
    "aa_differences": _aa,
    "errors": _errors,
    "recorded_mismatches": _recorded,
    "legacy_only_hit_rate": _without_findings("legacy_only_hit"),
    "hit_rate_drop": _without_findings("legacy_only_hit"),
    "p99_latency_ratio": _slowest,
}


def _event_line(row: Any, latency: bool) -> str:
    def text(value: object) -> str:
        return "-" if value is None or value != value else str(value)  # NaN != NaN

    line = (
        f"  seq={row.seq} op={row.op} cls={text(row.cls)} reason={text(row.reason)} "
        f"text={text(row.text_hash)}"
    )
    if row.error is not None and row.error == row.error:
        line += f" error={str(row.error).split(':')[0]}"  # the type: a message may quote a text
    return line + (f" latency_us={row.latency_us:.1f}" if latency else "")


def _events(rows: pd.DataFrame, what: str, latency: bool = False) -> list[str]:
    if rows.empty:
        return []
    shown = rows.head(FIRST_EVENTS)
    head = f"{what} ({len(shown)} of {len(rows)}):"
    return [head, *(_event_line(row, latency) for row in shown.itertuples(index=False))]


def _fmt(value: float | None) -> str:
    return "no data" if value is None else f"{value:g}"


def _harness_check(result: RunResult, phase: str, name: str) -> CheckOutcome:
    """A/A agreement, or the legacy control reproducing the recorded results."""
    frame = result.frame
    if name == "aa_control":
        bad = _aa(frame, phase)
        what = "A/A differences (a second legacy cache disagreed with the control: harness noise)"
    else:
        rows = _rows(frame, phase)
        if not rows["control_recorded_equal"].notna().any():
            return CheckOutcome(True, f"no events recorded under {_LEGACY}", skipped=True)
        wrong = _is_false(rows["control_recorded_equal"])
        if phase == _LEGACY:  # the stack is legacy behind the proxy: it must reproduce them too
            wrong |= _is_false(rows["recorded_equal"])
        bad = rows[wrong]
        what = "recorded results not reproduced by legacy"
    count = len(bad)
    if count == 0:
        return CheckOutcome(True, measured=0.0, threshold=0.0)
    lines = [f"{phase} {name}: measured {count} > threshold 0", what]
    lines += _events(bad, "first offending events")
    return CheckOutcome(False, "\n".join(lines), False, count, 0.0)


def _rule_message(phase: str, rule: RuleResult, verdict: Verdict) -> str:
    relation = "<" if rule.name == "min_reads" else ">"
    head = f"{phase} {rule.name}: measured {_fmt(rule.measured)} {relation} threshold "
    head += f"{_fmt(rule.threshold)}" + (" (critical)" if rule.critical else "")
    if rule.measured is None:
        head = (
            f"{phase} {rule.name}: no data (threshold {_fmt(rule.threshold)}); no data never passes"
        )
    reasons = "; ".join(verdict.reasons)
    return head + f"\nverdict for {phase}: {verdict.outcome}" + (f" ({reasons})" if reasons else "")


def check(result: RunResult, phase: str, name: str) -> CheckOutcome:
    """The outcome of one item (a harness check or a gate rule) of a replayed recording."""
    if name in HARNESS_CHECKS:
        return _harness_check(result, phase, name)
    verdict = result.verdicts[phase]
    rule = next((r for r in verdict.rules if r.name == name), None)
    if rule is None:  # rules that need data a replay does not carry (e.g. live samples)
        return CheckOutcome(True, f"rule {name} not evaluated for {phase}", skipped=True)
    if rule.passed:
        return CheckOutcome(True, measured=rule.measured, threshold=rule.threshold)
    lines = [_rule_message(phase, rule, verdict)]
    select = _OFFENDERS.get(name)
    if select is not None:
        latency = name == "p99_latency_ratio"
        title = "slowest reads" if latency else "first offending events"
        lines += _events(select(result.frame, phase), title, latency)
    return CheckOutcome(False, "\n".join(lines), False, rule.measured, rule.threshold)


_SHORT: Final = {
    "match": "match", "both_miss": "both_miss", "new_only_hit": "new_only",
    "legacy_only_hit": "legacy_only", "value_mismatch": "mismatch", "isolation": "isolation",
    "foreign": "foreign", "error": "error",
}  # fmt: skip


def summary_lines(recording: Path, result: RunResult) -> list[str]:
    """The per-phase table of the terminal summary: events, hit rates, classes, verdict."""
    summary = result.summary
    columns = ["phase", "events", "reads", "stack_hit", "control_hit", *_SHORT.values(), "verdict"]
    rows = [columns]
    for phase, data in summary["phases"].items():
        verdict = result.verdicts.get(phase)
        rows.append(
            [
                phase,
                str(data["events"]),
                str(data["reads"]),
                f"{data['stack_hit_rate']:.3f}",
                f"{data['control_hit_rate']:.3f}",
                *(str(data["classes"].get(cls, 0)) for cls in _SHORT),
                "-" if verdict is None else verdict.outcome,  # replayed only as the baseline
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    table = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(pairs))
        for pairs in (list(zip(row, widths, strict=True)) for row in rows)
    ]
    head = f"{recording} ({summary['events']} events), report: {result.report_dir}"
    return [head, *table]
