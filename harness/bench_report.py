"""Bench report: pytest-benchmark JSON in, Markdown + PNG out (`sigcache-harness bench-report`).

Per group: median, P90, P99 and max per call, the percentiles taken over the rounds kept in the
JSON `data` field (each round's time per iteration), and each median's ratio to the group's
baseline. A scaling group (every row names its `series` and `entries`) has a baseline per size
instead: each row's ratio is to the baseline series at its own size, next to its growth from
the series' smallest size. Ratio goals ("targets") travel in each benchmark's `extra_info`, so
the report needs nothing but the JSON. Ratios are only ever taken inside one file: one run, one
machine state.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["BenchRow", "TargetResult", "load_rows", "main", "percentile", "render", "targets"]

DEFAULT_JSON = Path("reports/bench/bench.json")
DEFAULT_OUT = Path("reports/bench")


@dataclass(frozen=True, slots=True)
class BenchRow:
    """One benchmark's statistics, in seconds per operation."""

    group: str
    label: str
    name: str
    baseline: bool
    median: float
    p90: float | None
    p99: float | None
    max: float
    rounds: int
    iterations: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TargetResult:
    """A ratio goal checked on one run: subject median / reference median <= max_ratio."""

    goal: str
    group: str
    subject: str
    reference: str
    subject_median: float
    reference_median: float | None
    max_ratio: float

    @property
    def ratio(self) -> float | None:
        """The measured ratio, None when the reference is missing."""
        if not self.reference_median:
            return None
        return self.subject_median / self.reference_median

    @property
    def holds(self) -> bool | None:
        """Whether the goal holds; None when it could not be measured."""
        ratio = self.ratio
        return None if ratio is None else ratio <= self.max_ratio


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _row(bench: dict[str, Any]) -> BenchRow:
    stats, extra = bench["stats"], dict(bench.get("extra_info") or {})
    # A call that does several operations (a batch) is reported per operation.
    per = float(extra.get("ops_per_call", 1) or 1)
    data = [float(value) / per for value in stats.get("data") or []]
    return BenchRow(
        group=bench.get("group") or "(no group)",
        label=str(extra.get("label") or bench["name"]),
        name=bench["name"],
        baseline=bool(extra.get("baseline")),
        median=float(stats["median"]) / per,
        p90=percentile(data, 90) if data else None,
        p99=percentile(data, 99) if data else None,
        max=float(stats["max"]) / per,
        rounds=int(stats["rounds"]),
        iterations=int(stats.get("iterations", 1)),
        extra=extra,
    )


def load_rows(document: dict[str, Any]) -> list[BenchRow]:
    """Every benchmark of one pytest-benchmark JSON document."""
    return [_row(bench) for bench in document.get("benchmarks", [])]


def _groups(rows: Sequence[BenchRow]) -> dict[str, list[BenchRow]]:
    groups: dict[str, list[BenchRow]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    return groups


def _baseline(rows: Sequence[BenchRow]) -> BenchRow | None:
    return next((row for row in rows if row.baseline), None)


def targets(rows: Sequence[BenchRow]) -> list[TargetResult]:
    """Every target declared in the run, checked against its reference in the same group."""
    results = []
    for group, members in _groups(rows).items():
        by_label = {row.label: row for row in members}
        for row in members:
            for goal in row.extra.get("targets", []):
                reference = by_label.get(goal["vs"])
                results.append(
                    TargetResult(
                        goal["goal"],
                        group,
                        row.label,
                        goal["vs"],
                        row.median,
                        reference.median if reference else None,
                        float(goal["max_ratio"]),
                    )
                )
    return results


def _us(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    micro = seconds * 1e6
    return f"{micro:,.3f}" if micro < 10 else f"{micro:,.1f}"


def _verdict(result: TargetResult) -> str:
    return {True: "holds", False: "**missed**", None: "not measured"}[result.holds]


def _machine(document: dict[str, Any]) -> list[str]:
    info = document.get("machine_info") or {}
    cpu = info.get("cpu") or {}
    versions = info.get("versions") or {}
    commit = document.get("commit_info") or {}
    lines = [
        f"- run: {document.get('datetime', 'unknown')}, "
        f"commit {str(commit.get('id', 'unknown'))[:12]}"
        f"{' (dirty)' if commit.get('dirty') else ''}",
        f"- machine: {info.get('node', '?')}, {cpu.get('brand_raw', info.get('processor', '?'))}, "
        f"{info.get('cpu_count', cpu.get('count', '?'))} cores, "
        f"{info.get('system', '?')} {info.get('release', '')}",
        f"- python: {info.get('python_implementation', '?')} {info.get('python_version', '?')}",
    ]
    if versions:
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    if info.get("signatures"):
        lines.append(f"- signatures: {info['signatures']}")
    return lines


def render(document: dict[str, Any], source: str, plots: Sequence[str] = ()) -> str:
    """The Markdown report of one run."""
    rows = load_rows(document)
    out = [f"# Benchmark report: {source}", "", *_machine(document), ""]
    out += [
        "Times are per operation in microseconds. Median over rounds; P90/P99 over the rounds "
        "kept in the JSON (each round is the mean of its iterations); ratios are medians over "
        "the group's baseline, all from this one run.",
        "",
        "## Targets",
        "",
        "| goal | group | subject | reference | subject µs | reference µs | ratio | max "
        "| verdict |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for result in targets(rows):
        ratio = "n/a" if result.ratio is None else f"{result.ratio:.2f}x"
        out.append(
            f"| {result.goal} | {result.group} | {result.subject} | {result.reference} | "
            f"{_us(result.subject_median)} | {_us(result.reference_median)} | {ratio} | "
            f"{result.max_ratio:g}x | {_verdict(result)} |"
        )
    for group, members in _groups(rows).items():
        base = _baseline(members)
        out += ["", f"## {group}", ""]
        if all(_is_delay(row) for row in members):
            out += _delay_table(members, base)
            continue
        if all(_is_scaling(row) for row in members):
            out += _scaling_table(members)
            continue
        out += [
            "| benchmark | median µs | P90 µs | P99 µs | max µs | rounds | ratio to baseline |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in sorted(members, key=lambda r: r.median):
            ratio = f"{row.median / base.median:.2f}x" if base and base.median else "n/a"
            name = f"{row.label} (baseline)" if row is base else row.label
            out.append(
                f"| {name} | {_us(row.median)} | {_us(row.p90)} | {_us(row.p99)} | "
                f"{_us(row.max)} | {row.rounds} | {ratio} |"
            )
        notes = [
            f"{r.label}: {r.extra['dropped_writes']} dropped writes"
            for r in members
            if "dropped_writes" in r.extra
        ]
        notes += [
            f"{r.label}: {1 / r.median:,.0f} writes/s"
            for r in members
            if "writes_per_round" in r.extra and r.median
        ]
        notes += _replay_notes(members)
        if notes:
            out += ["", "Notes: " + "; ".join(notes) + "."]
    out += ["", *[f"![{Path(plot).stem}]({Path(plot).name})" for plot in plots], ""]
    return "\n".join(out)


def _replay_notes(members: Sequence[BenchRow]) -> list[str]:
    """Rows timing a whole replay (`events` per call): events per second, and an absolute goal
    (`goal_max_s`, seconds per call) quoted with the measured time, never asserted."""
    notes = [
        f"{r.label}: {float(r.extra['events']) / r.median:,.0f} events/s"
        for r in members
        if "events" in r.extra and r.median
    ]
    for row in members:
        goal = float(row.extra.get("goal_max_s") or 0.0)
        if goal:
            notes.append(
                f"{row.label}: {row.median:.1f} s against a goal of well under {goal:g} s "
                f"({row.median / goal:.2f} of it)"
            )
    return notes


def _is_delay(row: BenchRow) -> bool:
    """A row whose figures are delays it measured itself (`p50_s`, ...), not its timing."""
    return "p50_s" in row.extra


def _is_scaling(row: BenchRow) -> bool:
    """A row of one series measured at several sizes (`series`, `entries`), per-size baselines."""
    return "series" in row.extra and "entries" in row.extra


def _scaling_table(members: Sequence[BenchRow]) -> list[str]:
    """Per size and series: median, P99, ratio to the same size's baseline, growth from smallest."""
    sizes = sorted({int(row.extra["entries"]) for row in members})
    base_series = {str(row.extra["series"]) for row in members if row.baseline}
    by_key = {(str(row.extra["series"]), int(row.extra["entries"])): row for row in members}
    smallest: dict[str, BenchRow] = {}
    for row in sorted(members, key=lambda r: int(r.extra["entries"])):
        smallest.setdefault(str(row.extra["series"]), row)
    lines = [
        "| entries | benchmark | median µs | P99 µs | rounds | ratio to baseline (same size) "
        f"| growth vs {sizes[0]:,} |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    # Within a size: the baseline first, then the others by median.
    for row in sorted(members, key=lambda r: (int(r.extra["entries"]), not r.baseline, r.median)):
        series, entries = str(row.extra["series"]), int(row.extra["entries"])
        base = next((by_key[(s, entries)] for s in base_series if (s, entries) in by_key), None)
        ratio = f"{row.median / base.median:.2f}x" if base and base.median else "n/a"
        first = smallest[series]
        growth = f"{row.median / first.median:.2f}x" if first.median else "n/a"
        name = f"{series} (baseline)" if row.baseline else series
        lines.append(
            f"| {entries:,} | {name} | {_us(row.median)} | {_us(row.p99)} | {row.rounds} | "
            f"{ratio} | {growth} |"
        )
    return lines


def _ms(seconds: object) -> str:
    return "n/a" if not isinstance(seconds, int | float) else f"{float(seconds) * 1000:,.1f}"


def _delay_table(members: Sequence[BenchRow], base: BenchRow | None) -> list[str]:
    """Delays measured by the bench itself (e.g. phase propagation): p50, p99, max, ratio."""
    lines = [
        "| benchmark | p50 ms | p99 ms | max ms | samples | p50 ratio to baseline |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    base_p50 = float(base.extra["p50_s"]) if base is not None else 0.0
    for row in sorted(members, key=lambda r: float(r.extra["p50_s"])):
        p50 = float(row.extra["p50_s"])
        ratio = f"{p50 / base_p50:.2f}x" if base_p50 else "n/a"
        name = f"{row.label} (baseline)" if row is base else row.label
        lines.append(
            f"| {name} | {_ms(p50)} | {_ms(row.extra.get('p99_s'))} | "
            f"{_ms(row.extra.get('max_s'))} | {row.extra.get('changes', 'n/a')} | {ratio} |"
        )
    return lines


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)  # Agg whatever the global backend: no display, no pyplot state
    figure.savefig(path, format="png", dpi=90, bbox_inches="tight")


def plot_medians(rows: Sequence[BenchRow], path: Path) -> None:
    """Horizontal bars of each median (log scale) with its P99 as a tick, grouped."""
    timed = [row for row in rows if not _is_delay(row)]  # a delay row's timing is a no-op
    ordered = [row for members in _groups(timed).values() for row in members]
    figure = Figure(figsize=(10, 1.5 + 0.22 * len(ordered)))
    axes = figure.add_subplot()
    labels = [f"{row.group} | {row.label}" for row in ordered]
    positions = range(len(ordered))
    colours = ["#999999" if row.baseline else "#3b75af" for row in ordered]
    axes.barh(positions, [row.median * 1e6 for row in ordered], color=colours)
    p99 = [(i, row.p99 * 1e6) for i, row in enumerate(ordered) if row.p99 is not None]
    if p99:
        axes.scatter(
            [v for _, v in p99], [i for i, _ in p99], marker="|", color="#d7191c", label="P99"
        )
        axes.legend(loc="lower right")
    axes.set_yticks(list(positions), labels, fontsize=7)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel("median µs per operation (grey: group baseline)")
    _save(figure, path)


def plot_scaling(rows: Sequence[BenchRow], path: Path) -> bool:
    """Median against the number of entries, one line per scaling group or series; False if none."""
    series: dict[str, list[tuple[int, float]]] = {}
    for group, members in _groups(rows).items():
        if not all("entries" in r.extra for r in members):
            continue
        for row in members:  # one line per series of a group (the group if it has one)
            name = f"{group}: {row.extra['series']}" if "series" in row.extra else group
            series.setdefault(name, []).append((int(row.extra["entries"]), row.median * 1e6))
    for points in series.values():
        points.sort()
    if not series:
        return False
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    for group, points in series.items():
        axes.plot([n for n, _ in points], [m for _, m in points], marker="o", label=group)
    axes.set_xscale("log")
    axes.set_xlabel("entries")
    axes.set_ylabel("median µs per hit")
    axes.set_ylim(bottom=0)
    axes.legend()
    _save(figure, path)
    return True


def write_report(json_path: Path, out_dir: Path) -> Path:
    """Write `<stem>.md` and its PNGs for one JSON file; returns the Markdown path."""
    document = json.loads(json_path.read_text(encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = load_rows(document)
    plots = [out_dir / f"{json_path.stem}-medians.png"]
    plot_medians(rows, plots[0])
    scaling = out_dir / f"{json_path.stem}-scaling.png"
    if plot_scaling(rows, scaling):
        plots.append(scaling)
    markdown = out_dir / f"{json_path.stem}.md"
    markdown.write_text(render(document, json_path.name, [str(p) for p in plots]), "utf-8")
    return markdown


def main(argv: Sequence[str] | None = None) -> int:
    """`bench-report [JSON ...] [--out DIR]`: a Markdown report per JSON; exit 0, 65 bad input."""
    parser = argparse.ArgumentParser(prog="sigcache-harness bench-report", description=__doc__)
    parser.add_argument(
        "json",
        type=Path,
        nargs="*",
        default=[DEFAULT_JSON],
        help="pytest-benchmark JSON files (default: reports/bench/bench.json)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    for path in args.json:
        try:
            report = write_report(path, args.out)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"bench-report: cannot read {path}: {exc}")
            return 65
        print(report)
    return 0
