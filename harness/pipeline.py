"""The main job: replay a recording, summarise it, gate every phase, write the report."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.gate import Thresholds, Verdict, evaluate, load_thresholds, write_gate_json
from harness.l2 import replay_l2
from harness.replayer import ReplayOptions, ReplayOutcome, replay
from harness.report import NewCacheStats, build_tables_from_file, summarize_tables, write_report
from sigcache.errors import ConfigError
from sigcache.phases import MigrationPhase

__all__ = [
    "JobResult",
    "file_digest",
    "gate_path",
    "latest_report",
    "load_factory",
    "report_dir_for",
    "run_job",
    "summarize_results",
]


@dataclass(frozen=True, slots=True)
class JobResult:
    """What the job produced: the summary, one verdict per phase, where the report is."""

    summary: dict[str, Any]
    verdicts: tuple[Verdict, ...]
    report_dir: Path
    outcome: ReplayOutcome


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, streamed ("sha256:<hex>")."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def load_factory(spec: str | None) -> Callable[..., Any] | None:
    """Import `MODULE:FACTORY`; None passes through. ConfigError names what failed."""
    if not spec:
        return None
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--new-cache {spec!r}: expected MODULE:FACTORY")
    # Like `python -m` and uvicorn, look in the current directory too: a candidate usually
    # lives in the user's project, not in an installed package.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--new-cache {spec!r}: {exc}") from exc
    if not callable(factory):
        raise ConfigError(f"--new-cache {spec!r}: {attr} is not callable")
    return factory  # type: ignore[no-any-return]


def report_dir_for(recording: Path, root: Path, now: datetime) -> Path:
    """`reports/<recording>-<timestamp>/`."""
    stem = recording.name.split(".")[0]
    return root / f"{stem}-{now.strftime('%Y%m%dT%H%M%SZ')}"


def gate_path(report_dir: Path, phase: MigrationPhase | str) -> Path:
    """Where the gate verdict for a target phase is written inside a report directory."""
    name = phase.name if isinstance(phase, MigrationPhase) else str(phase).upper()
    return report_dir / f"gate-{name}.json"


def latest_report(root: Path = Path("reports")) -> Path:
    """The most recently written report directory under `root` (one holding summary.json)."""
    found = sorted(root.glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ConfigError(f"no report under {root}/: run `sigcache-harness replay` first")
    return found[-1].parent


def summarize_results(
    results: Path, recording: Path, new_cache_stats: NewCacheStats | None = None
) -> dict[str, Any]:
    """The summary JSON of a results file (docs/contracts.md section 4), read in chunks."""
    return summarize_tables(
        build_tables_from_file(results, new_cache_stats),
        recording=str(recording),
        recording_digest=file_digest(recording),
    )


def _gate_all(
    summary: dict[str, Any],
    phases: Sequence[MigrationPhase],
    thresholds: Thresholds,
    report_dir: Path,
    recording: Path,
    now: datetime,
) -> tuple[Verdict, ...]:
    verdicts = tuple(evaluate(summary, phase.name, thresholds) for phase in phases)
    for phase, verdict in zip(phases, verdicts, strict=True):
        write_gate_json(
            verdict,
            gate_path(report_dir, phase),
            recording_digest=summary["recording_digest"],
            report_path=report_dir / "report.md",
            now=now,
            recording=recording.resolve(),
        )
    return verdicts


def run_job(
    recording: Path,
    *,
    phases: Sequence[MigrationPhase] = tuple(MigrationPhase),
    reports_root: Path = Path("reports"),
    thresholds_path: Path | None = None,
    new_cache: str | None = None,
    skip_bad_lines: bool = False,
    summary_json: Path | None = None,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
    l2: str | None = None,
) -> JobResult:
    """Replay, summarise, gate each replayed phase and write the report; returns all of it.

    `l2`: None or "sqlite" for the embedded SQLite default, or a redis:// URL (`harness.l2`).
    """
    now = now or datetime.now(UTC)
    thresholds = load_thresholds(thresholds_path)
    report_dir = report_dir_for(recording, reports_root, now)
    # LEGACY_ONLY is always replayed: it proves the recording is reproduced (recorded results),
    # the baseline every gate rule on `recorded_mismatches` reads.
    replayed = tuple(dict.fromkeys((MigrationPhase.LEGACY_ONLY, *phases)))
    with replay_l2(l2, load_factory(new_cache)) as factory:
        options = ReplayOptions(
            phases=replayed,
            new_cache_factory=factory,
            results_path=report_dir / "results.parquet",
            skip_bad_lines=skip_bad_lines,
            progress=progress,
        )
        outcome = replay(recording, options)
    # Built once for the summary and the report, from the results file in chunks: the job's
    # memory does not grow with the recording (a frame of every row took 360 MB of 690 at 1x).
    tables = build_tables_from_file(outcome.results_path, outcome.new_cache_stats)
    digest = file_digest(recording)
    summary = summarize_tables(tables, recording=str(recording), recording_digest=digest)
    summary["skipped_lines"] = outcome.skipped_lines
    verdicts = _gate_all(summary, phases, thresholds, report_dir, recording, now)
    write_report(None, summary, verdicts, report_dir, tables=tables)
    if summary_json is not None:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return JobResult(summary, verdicts, report_dir, outcome)
