"""The subcommands of `sigcache-harness` (argument parsing lives in harness.cli)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.gate import Verdict, evaluate, gate_exit_code, load_thresholds, write_gate_json
from harness.pipeline import file_digest, gate_path, latest_report, run_job
from harness.report import (
    build_tables_from_file,
    new_cache_stats_of,
    summarize_tables,
    write_report,
)
from sigcache.errors import ConfigError
from sigcache.phases import MigrationPhase, parse_phase

__all__ = ["cmd_gate", "cmd_generate", "cmd_promote", "cmd_replay", "cmd_report", "phases_named"]

_OUTCOME_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow"}


def phases_named(names: Sequence[str] | None) -> tuple[MigrationPhase, ...]:
    """Phases from `--phase` values (names in any case or 1-4), deduplicated; none: all four."""
    if not names:
        return tuple(MigrationPhase)
    return tuple(dict.fromkeys(parse_phase(name) for name in names))


@contextmanager
def _progress(console: Console, total: int | None) -> Iterator[Any]:
    if not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("replay", total=total)
        yield lambda done: bar.update(task, completed=done)


def phase_table(summary: dict[str, Any], verdicts: Sequence[Verdict]) -> Table:
    """The per-phase summary table printed after a replay."""
    by_phase = {v.target: v for v in verdicts}
    table = Table(title=f"replay of {summary['recording']} ({summary['events']} events)")
    for column in (
        "phase",
        "reads",
        "stack hit",
        "legacy hit",
        "match",
        "new-only",
        "legacy-only",
        "mismatch",
        "foreign",
        "isolation",
        "A/A diff",
        "errors",
        "verdict",
    ):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for name, phase in summary["phases"].items():
        classes = phase.get("classes", {})
        verdict = by_phase.get(name)
        outcome = verdict.outcome if verdict else "-"
        style = _OUTCOME_STYLE.get(outcome, "")
        table.add_row(
            name,
            str(phase["reads"]),
            f"{phase['stack_hit_rate']:.2%}",
            f"{phase['control_hit_rate']:.2%}",
            str(classes.get("match", 0)),
            str(classes.get("new_only_hit", 0)),
            str(classes.get("legacy_only_hit", 0)),
            str(classes.get("value_mismatch", 0)),
            str(classes.get("foreign", 0)),
            str(classes.get("isolation", 0)),
            str(phase.get("aa_differences", 0)),
            str(phase.get("errors", 0)),
            f"[{style}]{outcome}[/]" if style else outcome,
        )
    return table


def findings_lines(summary: dict[str, Any]) -> list[str]:
    """Per phase: the legacy defects found (never failures) and the new cache's provenance
    misses and refused writes, one line each where there are any."""
    lines = []
    for name, phase in summary["phases"].items():
        findings = phase.get("findings") or {}
        if findings:
            listed = ", ".join(f"{k} {v:,}" for k, v in sorted(findings.items(), key=_by_count))
            lines.append(f"{name} findings (legacy defects, not failures): {listed}")
        counters = {k: v for k, v in (phase.get("new_cache") or {}).items() if v}
        if counters:
            listed = ", ".join(f"{k} {v:,}" for k, v in counters.items())
            lines.append(f"{name} new cache: {listed}")
    return lines


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def rules_table(verdict: Verdict) -> Table:
    """Every rule of one verdict with its measured value and threshold."""
    style = _OUTCOME_STYLE[verdict.outcome]
    table = Table(title=f"gate to {verdict.target}: [{style}]{verdict.outcome}[/]")
    for column in ("rule", "measured", "threshold", "result"):
        table.add_column(column)
    for rule in verdict.rules:
        measured = "no data" if rule.measured is None else f"{rule.measured:g}"
        result = "[green]pass[/]" if rule.passed else "[red]FAIL[/]"
        table.add_row(rule.name, measured, f"{rule.threshold:g}", result)
    return table


def cmd_replay(args: argparse.Namespace, console: Console) -> int:
    """Replay a recording under each phase, write the report and the gate verdicts."""
    with _progress(console, None) as progress:
        job = run_job(
            args.recording,
            phases=phases_named(args.phases),
            reports_root=args.reports,
            thresholds_path=args.thresholds,
            new_cache=args.new_cache,
            skip_bad_lines=args.skip_bad_lines,
            summary_json=args.summary_json,
            progress=progress,
            l2=args.l2,
        )
    if args.json:
        console.print_json(json.dumps(job.summary))
        return 0
    console.print(phase_table(job.summary, job.verdicts))
    for line in findings_lines(job.summary):
        console.print(line, highlight=False)
    if job.outcome.skipped_lines:
        console.print(f"skipped {job.outcome.skipped_lines} bad line(s)")
    console.print(f"report: {job.report_dir / 'report.md'} (and report.html, CSV, summary.json)")
    console.print(f"gate verdicts: {job.report_dir}/gate-<PHASE>.json")
    return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    """Rebuild the report (and the gate verdicts of every phase) from a results file."""
    if args.bench is not None:
        from harness.bench_report import main as bench_main

        paths = [str(p) for p in args.bench] or ["reports/bench/bench.json"]
        return bench_main([*paths, "--out", str(args.out or Path("reports/bench"))])
    results = args.results or latest_report(args.reports) / "results.parquet"
    recording = args.recording
    summary_path = results.parent / "summary.json"
    previous = _load_summary(summary_path)[0] if recording is None or summary_path.is_file() else {}
    if recording is None:
        recording = Path(previous["recording"])
    out = args.out or results.parent
    # The new cache's counters are not in the results file: the replay's summary keeps them.
    tables = build_tables_from_file(results, new_cache_stats_of(previous))
    digest = file_digest(recording)
    summary = summarize_tables(tables, recording=str(recording), recording_digest=digest)
    thresholds = load_thresholds(args.thresholds)
    verdicts = tuple(evaluate(summary, name, thresholds) for name in summary["phases"])
    write_report(None, summary, verdicts, out, tables=tables)
    console.print(phase_table(summary, verdicts))
    for line in findings_lines(summary):
        console.print(line, highlight=False)
    console.print(f"report: {out / 'report.md'}")
    return 0


def _load_summary(report: Path) -> tuple[dict[str, Any], Path]:
    path = report / "summary.json" if report.is_dir() else report
    try:
        return json.loads(path.read_text(encoding="utf-8")), path.parent
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read summary {path}: {exc}") from exc


def cmd_gate(args: argparse.Namespace, console: Console) -> int:
    """Judge a report for a promotion and write gate-<PHASE>.json next to it."""
    summary, report_dir = _load_summary(args.report or latest_report(args.reports))
    target = parse_phase(args.target)
    verdict = evaluate(summary, target.name, load_thresholds(args.thresholds))
    recording = Path(summary.get("recording", ""))
    write_gate_json(
        verdict,
        gate_path(report_dir, target),
        recording_digest=str(summary.get("recording_digest", "")),
        report_path=report_dir / "report.md",
        now=datetime.now(UTC),
        recording=recording.resolve() if recording.is_file() else None,
    )
    if args.json:
        console.print_json(
            json.dumps(
                {
                    "target": verdict.target,
                    "verdict": verdict.outcome,
                    "failed_rules": verdict.failed_rules,
                }
            )
        )
    else:
        console.print(rules_table(verdict))
        for reason in verdict.reasons:
            console.print(f"- {reason}")
    return gate_exit_code(verdict)


def cmd_generate(args: argparse.Namespace, console: Console) -> int:
    """Write a seeded synthetic recording."""
    from harness.synth import generate_recording

    stats = generate_recording(
        args.out,
        events=args.events,
        seed=args.seed,
        signatures_path=args.signatures,
        profile=args.profile,
    )
    console.print(f"wrote {args.out}: {stats.describe()}")
    return 0


def cmd_promote(args: argparse.Namespace, console: Console) -> int:
    """Replay the recording, gate the target phase and promote to it, stopping at a failure."""
    from harness.promote import promote

    return promote(args, parse_phase(args.target), console)
