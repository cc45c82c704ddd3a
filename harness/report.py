"""Aggregation of per-event replay results (pandas, pure) and the report files (I/O at the edge).

The results frame has the columns of docs/contracts.md section 4, one row per event and phase.
Tables: per phase, per phase and op, classes with reasons, latency percentiles per tier, findings
(legacy defects the replay surfaces: `harness.compare.finding_name`) and, when the replay
collected them, the new cache's provenance misses and refused writes per phase. Rates are
fractions of the group's reads. Rendering lives in :mod:`harness.report_render` and
:mod:`harness.plots`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from harness.compare import CLASSES, finding_name
from harness.gate import Verdict
from harness.quantiles import GroupQuantiles
from harness.report_render import render_html, render_markdown, rules_table
from sigcache.gating import PHASE_NAMES
from sigcache.provenance import PROVENANCE_REASONS, REJECTION_REASONS

__all__ = [
    "COUNTERS",
    "LATENCY_QUANTILES",
    "NEW_CACHE_COUNTERS",
    "PERCENTILES",
    "RESULT_COLUMNS",
    "STACK_TIERS",
    "NewCacheStats",
    "ReportTables",
    "TableBuilder",
    "build_tables",
    "build_tables_from_file",
    "class_table",
    "findings_table",
    "iter_results",
    "latency_table",
    "new_cache_stats_of",
    "new_cache_table",
    "op_table",
    "phase_table",
    "read_results",
    "summarize",
    "summarize_tables",
    "write_report",
]

RESULT_COLUMNS: Final = (
    "phase", "seq", "t", "op", "kind", "store", "cls", "reason", "stack_hit", "control_hit",
    "aa_equal", "recorded_equal", "source", "tier", "fallback", "read_repair", "shadow_error",
    "error", "latency_us", "control_latency_us", "text_hash",
)  # fmt: skip
STACK_TIERS: Final = ("l1", "l2", "legacy")
PERCENTILES: Final = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))
# Event counters every table carries, in display order (classes follow them).
COUNTERS: Final = (
    "events", "reads", "writes", "stack_hits", "control_hits", "aa_differences", "errors",
    "recorded_mismatches", "fallback_hits", "read_repairs", "shadow_errors",
)  # fmt: skip
# The new cache's counters the report shows per phase (issue 13), from its `get_stats()` at the
# end of each phase's replay: reads refused for their provenance and writes refused by reason.
NEW_CACHE_COUNTERS: Final = (
    "provenance_misses",
    *(f"provenance_misses_{reason}" for reason in PROVENANCE_REASONS),
    "rejected_writes",
    *(f"rejected_{reason}" for reason in REJECTION_REASONS),
    "tool_alias_hits",
    "tool_alias_ambiguous",
)
NewCacheStats = Mapping[str, Mapping[str, object]]  # phase -> the new cache's get_stats()
# Rows per chunk when a report streams a results file: the replay writes row groups of 50,000.
_CHUNK_ROWS: Final = 32_768  # 65,536: ~0.3 s less per 600,000 rows, 20-40 MB more at the peak
_LATENCY_COLUMNS: Final = ("phase", "kind", "tier", "latency_us", "control_latency_us")
# What the counters and classes read (pass 1): fewer columns, smaller chunks in memory.
_COUNTED_COLUMNS: Final = (
    "phase", "seq", "op", "kind", "cls", "reason", "stack_hit", "control_hit", "aa_equal",
    "recorded_equal", "fallback", "read_repair", "shadow_error", "error",
)  # fmt: skip


def read_results(path: str | Path) -> pd.DataFrame:
    """Read `results.parquet`; ValueError naming the missing columns if it is not one."""
    frame = pd.read_parquet(path)
    _check_columns(path, frame.columns)
    return frame


def _check_columns(path: str | Path, columns: Iterable[str]) -> None:
    missing = [c for c in RESULT_COLUMNS if c not in set(columns)]
    if missing:
        raise ValueError(f"{path}: not a results file, missing columns {missing}")


def iter_results(
    path: str | Path, columns: Sequence[str] | None = None, *, batch_rows: int = _CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """`results.parquet` in chunks of at most `batch_rows` rows (ValueError as read_results)."""
    # pre_buffer=False: with read-ahead buffering on (pyarrow's default), iterating the batches
    # of a file grew the RSS with its length (+60 MB over 6,000,000 rows); off, it stays flat.
    source = pq.ParquetFile(path, pre_buffer=False)
    _check_columns(path, source.schema_arrow.names)
    wanted = list(columns) if columns is not None else None
    for batch in source.iter_batches(batch_size=batch_rows, columns=wanted):
        yield batch.to_pandas()


def _true(series: pd.Series) -> pd.Series:
    # bool, object-with-None or nullable boolean alike; None counts as "not true".
    return series.astype("boolean").fillna(False).astype(bool)


def _false(series: pd.Series) -> pd.Series:
    return (~series.astype("boolean")).fillna(False).astype(bool)


def _indicators(df: pd.DataFrame) -> pd.DataFrame:
    """One 0/1 column per counter and class, aligned with `df` (the unit every table sums)."""
    reads = df["kind"].eq("read")
    columns: dict[str, pd.Series] = {
        "events": pd.Series(True, index=df.index),
        "reads": reads,
        "writes": df["kind"].eq("write"),
        "stack_hits": reads & _true(df["stack_hit"]),
        "control_hits": reads & _true(df["control_hit"]),
        "aa_differences": _false(df["aa_equal"]),
        "errors": df["error"].notna() & df["error"].ne(""),
        "recorded_mismatches": _false(df["recorded_equal"]),
        "fallback_hits": reads & _true(df["fallback"]),
        "read_repairs": _true(df["read_repair"]),
        "shadow_errors": _true(df["shadow_error"]),
    }
    for cls in CLASSES:
        columns[cls] = reads & df["cls"].eq(cls)
    return pd.DataFrame(columns).astype("int64")


def _phase_order(phases: pd.Index) -> list[str]:
    known = [p for p in PHASE_NAMES if p in phases]
    return known + sorted(str(p) for p in phases if p not in PHASE_NAMES)


def _count_sums(df: pd.DataFrame, keys: list[str], *, dropna: bool = True) -> pd.DataFrame:
    """Counter and class sums grouped by `keys` (phase first): what chunks add up."""
    return _indicators(df).join(df[keys]).groupby(keys, sort=True, dropna=dropna).sum()


def _split_sums(by_op: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per phase, per phase and op) sums from sums per (phase, op) that kept missing keys."""
    phases = by_op.groupby(level="phase", sort=True).sum()  # drops a missing phase, as groupby
    index = by_op.index
    phase_known = np.asarray(index.get_level_values("phase").notna(), dtype=bool)
    known = phase_known & np.asarray(index.get_level_values("op").notna(), dtype=bool)
    return phases, by_op[known]


def _add_sums(total: pd.DataFrame | None, part: pd.DataFrame) -> pd.DataFrame:
    if total is None:
        return part
    # Aligned on the union of the groups; a group missing from one side counts 0 there.
    return total.add(part, fill_value=0).astype("int64")


def _counts(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Counters, hit rates and class rates grouped by `keys` (phase first)."""
    return _with_rates(_count_sums(df, keys))


def _with_rates(sums: pd.DataFrame) -> pd.DataFrame:
    """Hit rates and class rates from counter sums; groups ordered by phase."""
    sums = sums.sort_index()
    reads = sums["reads"].where(sums["reads"] > 0)  # NaN rate, not a division by zero
    sums["stack_hit_rate"] = sums["stack_hits"] / reads
    sums["control_hit_rate"] = sums["control_hits"] / reads
    for cls in CLASSES:
        sums[f"{cls}_rate"] = sums[cls] / reads
    order = _phase_order(sums.index.get_level_values(0).unique())
    return sums.reindex(order, level=0) if sums.index.nlevels > 1 else sums.reindex(order)


def phase_table(df: pd.DataFrame) -> pd.DataFrame:
    """Counters, hit rates (caller-visible stack, control) and class counts/rates per phase."""
    return _counts(df, ["phase"])


def op_table(df: pd.DataFrame) -> pd.DataFrame:
    """The phase table broken down by operation."""
    return _counts(df, ["phase", "op"])


def class_table(df: pd.DataFrame) -> pd.DataFrame:
    """Reads per phase, class and reason ("" when unknown), with the rate of the phase's reads."""
    return _class_table(_class_counts(df))


ClassCounts = Counter[tuple[str, str, str]]  # (phase, cls, reason) -> reads


def _class_counts(df: pd.DataFrame) -> ClassCounts:
    """Reads per (phase, class, reason) of one chunk: what chunks add up."""
    reads = df[df["kind"].eq("read") & df["cls"].notna()]
    if reads.empty:
        return Counter()
    reasons = reads["reason"].fillna("").astype(str)
    sizes = pd.DataFrame({"phase": reads["phase"], "cls": reads["cls"], "reason": reasons})
    grouped = sizes.groupby(["phase", "cls", "reason"]).size()
    index = grouped.index
    keys = zip(*(index.get_level_values(level).astype(str) for level in range(3)), strict=True)
    return Counter(dict(zip(keys, map(int, grouped.to_numpy()), strict=True)))


def _class_table(found: ClassCounts) -> pd.DataFrame:
    if not found:
        return pd.DataFrame(columns=list(_CLASS_COLUMNS)).astype(_CLASS_COLUMNS)
    ordered = sorted(found)  # groupby's order, which ties in the sort below keep
    counts = pd.DataFrame(
        {
            "phase": [key[0] for key in ordered],
            "cls": [key[1] for key in ordered],
            "reason": [key[2] for key in ordered],
            "count": pd.Series([found[key] for key in ordered], dtype="int64"),
        }
    )
    per_phase = counts.groupby("phase")["count"].sum()
    counts["rate"] = counts["count"] / counts["phase"].map(per_phase)
    order = {p: i for i, p in enumerate(_phase_order(pd.Index(counts["phase"].unique())))}
    rank = {c: i for i, c in enumerate(CLASSES)}
    keys = counts["phase"].map(order) * 100 + counts["cls"].map(rank).fillna(99)
    return (
        counts.assign(_k=keys)
        .sort_values(["_k", "count"], ascending=[True, False])
        .drop(columns="_k")
        .reset_index(drop=True)
    )


_CLASS_COLUMNS: Final[dict[str, str]] = {
    "phase": "object", "cls": "object", "reason": "object", "count": "int64", "rate": "float64",
}  # fmt: skip
_FINDING_COLUMNS: Final[dict[str, str]] = {
    "phase": "object", "finding": "object", "count": "int64", "rate": "float64",
}  # fmt: skip


def findings_table(classes: pd.DataFrame) -> pd.DataFrame:
    """Findings per phase (from the class table): reads, and their rate of the phase's reads.

    A finding is a legacy defect the replay surfaces and the gate never counts as a failure:
    ``isolation_<reason>`` (legacy's answer crossed owners, families, scopes or conversations)
    and the reasons of `harness.compare.FINDING_REASONS` (e.g. ``legacy_truncated``).
    """
    names = pd.Series(
        [finding_name(str(c), str(r) or None) for c, r in zip(classes["cls"], classes["reason"],
         strict=True)], index=classes.index, dtype="object",
    )  # fmt: skip
    found = classes.assign(finding=names).dropna(subset=["finding"])
    if found.empty:
        return pd.DataFrame(columns=list(_FINDING_COLUMNS)).astype(_FINDING_COLUMNS)
    table = found.groupby(["phase", "finding"], sort=False)[["count", "rate"]].sum().reset_index()
    order = {p: i for i, p in enumerate(_phase_order(pd.Index(table["phase"].unique())))}
    keys = table["phase"].map(order)
    return (
        table.assign(_k=keys)
        .sort_values(["_k", "count", "finding"], ascending=[True, False, True])
        .drop(columns="_k")
        .reset_index(drop=True)
    )


def new_cache_table(stats: NewCacheStats | None) -> pd.DataFrame:
    """The new cache's provenance misses and refused writes per phase (NEW_CACHE_COUNTERS).

    One row per phase whose replay built a new cache (LEGACY_ONLY never does); a counter the
    cache does not report (a candidate's) is left empty.
    """
    rows = {
        str(phase): {name: _count(values.get(name)) for name in NEW_CACHE_COUNTERS}
        for phase, values in (stats or {}).items()
        if values
    }
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(NEW_CACHE_COUNTERS))
    frame = frame.astype("Int64").rename_axis("phase")
    return frame.reindex(_phase_order(frame.index))


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _latency_samples(df: pd.DataFrame) -> Iterator[tuple[tuple[str, str], np.ndarray]]:
    """((phase, tier), latencies) over reads: the stack overall, each stack tier, the control."""
    reads = df[df["kind"].eq("read")]
    phases = reads["phase"].astype(str)
    for phase in phases.unique():
        rows = reads[phases == phase]
        stack = rows["latency_us"].to_numpy(np.float64, na_value=np.nan)
        yield (phase, "stack"), stack
        tiers = rows["tier"]
        for tier in STACK_TIERS:
            chosen = tiers.eq(tier).fillna(False).to_numpy(bool)
            if chosen.any():
                yield (phase, tier), stack[chosen]
        yield (phase, "control"), rows["control_latency_us"].to_numpy(np.float64, na_value=np.nan)


def _latency_quantiles(chunks: Callable[[], Iterable[pd.DataFrame]]) -> GroupQuantiles:
    """Exact latency quantiles per (phase, tier): two passes over the same chunks."""
    quantiles = GroupQuantiles(LATENCY_QUANTILES)
    for chunk in chunks():
        for group, samples in _latency_samples(chunk):
            quantiles.count(group, samples)
    for chunk in chunks():
        for group, samples in _latency_samples(chunk):
            quantiles.collect(group, samples)
    return quantiles


# Quantiles the report reads: the table's percentiles, and the plot's boxes (quartiles) and
# whiskers (1st and 99th percentiles).
LATENCY_QUANTILES: Final = (0.01, 0.25, 0.50, 0.75, 0.90, 0.99)
_TIER_ORDER: Final = ("stack", *STACK_TIERS, "control")
_LATENCY_STATS_COLUMNS: Final = (
    "phase", "tier", "count", "p50", "p90", "p99", "max", "q1", "q3", "whislo", "whishi",
)  # fmt: skip


def _latency_stats(quantiles: GroupQuantiles) -> pd.DataFrame:
    """Per (phase, tier): the latency table's columns and the plot's box statistics."""
    rows = []
    for group in quantiles.groups():
        phase, tier = cast(tuple[str, str], group)
        found = quantiles.result(group)
        values = found.values
        p01, p99 = values[0.01], values[0.99]
        # As matplotlib's boxplot_stats: whiskers end at the outermost samples inside the 1st
        # and 99th percentiles, never inside the box.
        whislo = found.lower[0.01] if p01 <= found.lower[0.01] else found.upper[0.01]
        whishi = found.upper[0.99] if p99 >= found.upper[0.99] else found.lower[0.99]
        q1, q3 = values[0.25], values[0.75]
        rows.append(
            (phase, tier, found.count, values[0.50], values[0.90], p99, found.max,
             q1, q3, min(whislo, q1), max(whishi, q3))
        )  # fmt: skip
    table = pd.DataFrame(rows, columns=list(_LATENCY_STATS_COLUMNS))
    if table.empty:
        return table.astype({"count": "int64"})
    order = {p: i for i, p in enumerate(_phase_order(pd.Index(table["phase"].unique())))}
    keys = table["phase"].map(order) * 10 + table["tier"].map(
        {t: i for i, t in enumerate(_TIER_ORDER)}
    )
    return table.assign(_k=keys).sort_values("_k", kind="stable").drop(columns="_k")


def _latency_table(stats: pd.DataFrame) -> pd.DataFrame:
    return stats[["phase", "tier", "count", "p50", "p90", "p99", "max"]].reset_index(drop=True)


def latency_table(df: pd.DataFrame) -> pd.DataFrame:
    """Read latency (µs) per phase and tier: count, p50, p90, p99, max (never the mean alone)."""
    return _latency_table(_latency_stats(_latency_quantiles(lambda: [df])))


@dataclass(frozen=True)
class ReportTables:
    """Every table of a report."""

    phases: pd.DataFrame
    ops: pd.DataFrame
    classes: pd.DataFrame
    latency: pd.DataFrame
    findings: pd.DataFrame
    new_cache: pd.DataFrame
    events: int = 0  # distinct events of the recording (each is one row per phase)
    # Per phase and tier: the latency table's figures and the plot's box statistics.
    latency_stats: pd.DataFrame | None = None


class _SeenSeqs:
    """Distinct event numbers seen, one byte each (1,500,000 events: 1.5 MB)."""

    def __init__(self) -> None:
        self._bits = np.zeros(0, dtype=bool)
        self._others: set[int] = set()  # negative numbers, which no replay writes

    def add(self, seqs: np.ndarray) -> None:
        seqs = np.unique(seqs.astype(np.int64))
        self._others.update(seqs[seqs < 0].tolist())
        seqs = seqs[seqs >= 0]
        if not len(seqs):
            return
        if seqs[-1] >= len(self._bits):
            grown = np.zeros(max(int(seqs[-1]) + 1, 2 * len(self._bits)), dtype=bool)
            grown[: len(self._bits)] = self._bits
            self._bits = grown
        self._bits[seqs] = True

    def __len__(self) -> int:
        return int(np.count_nonzero(self._bits)) + len(self._others)


class TableBuilder:
    """The report tables from results chunks: memory follows the number of groups (phases, ops,
    classes, reasons, latency bins), not the number of rows. Latency quantiles are exact and
    need a second pass over the same rows (`harness.quantiles`)."""

    def __init__(self) -> None:
        # Sums per (phase, op), missing keys kept: the phase table is their sum per phase.
        self._ops: pd.DataFrame | None = None
        self._classes: ClassCounts = Counter()
        self._seqs = _SeenSeqs()

    def add(self, chunk: pd.DataFrame) -> None:
        """Count one chunk of results rows."""
        if chunk.empty:
            return
        self._ops = _add_sums(self._ops, _count_sums(chunk, ["phase", "op"], dropna=False))
        self._classes.update(_class_counts(chunk))
        self._seqs.add(chunk["seq"].to_numpy())

    def tables(
        self,
        latency_chunks: Callable[[], Iterable[pd.DataFrame]],
        new_cache_stats: NewCacheStats | None = None,
    ) -> ReportTables:
        """Every table; `latency_chunks()` yields the counted rows again on each call."""
        # No rows at all: the empty tables of an empty frame, with every column.
        empty = pd.DataFrame({name: pd.Series(dtype=object) for name in RESULT_COLUMNS})
        by_op = self._ops
        if by_op is None:
            by_op = _count_sums(empty, ["phase", "op"], dropna=False)
        phases, ops = _split_sums(by_op)
        classes = _class_table(self._classes)
        stats = _latency_stats(_latency_quantiles(latency_chunks))
        return ReportTables(
            _with_rates(phases),
            _with_rates(ops),
            classes,
            _latency_table(stats),
            findings_table(classes),
            new_cache_table(new_cache_stats),
            events=len(self._seqs),
            latency_stats=stats,
        )


def build_tables(df: pd.DataFrame, new_cache_stats: NewCacheStats | None = None) -> ReportTables:
    """All report tables from a results frame and the new cache's stats per phase (pure)."""
    builder = TableBuilder()
    builder.add(df)
    return builder.tables(lambda: [df], new_cache_stats)


def build_tables_from_file(
    path: str | Path,
    new_cache_stats: NewCacheStats | None = None,
    *,
    batch_rows: int = _CHUNK_ROWS,
) -> ReportTables:
    """All report tables of a results file, read in chunks: memory flat in its length."""
    builder = TableBuilder()
    for chunk in iter_results(path, _COUNTED_COLUMNS, batch_rows=batch_rows):
        builder.add(chunk)
    return builder.tables(
        lambda: iter_results(path, _LATENCY_COLUMNS, batch_rows=batch_rows), new_cache_stats
    )


def _latency_summary(latency: pd.DataFrame, phase: str) -> dict[str, dict[str, float | None]]:
    result: dict[str, dict[str, float | None]] = {}
    for tier in ("stack", "control", *STACK_TIERS):
        rows = latency[(latency["phase"] == phase) & (latency["tier"] == tier)]
        names = [name for name, _ in PERCENTILES] + ["max"]
        values = rows.iloc[0] if len(rows) else None
        # No reads, no latency: None says "no data", which the gate treats as inconclusive.
        result[tier] = {n: None if values is None else float(values[n]) for n in names}
    return result


def _phase_summary(row: pd.Series, tables: ReportTables) -> dict[str, Any]:
    phase = str(row.name)
    classes, latency = tables.classes, tables.latency
    findings = tables.findings[tables.findings["phase"] == phase]
    new_cache: dict[str, int] = {}
    if phase in tables.new_cache.index:
        counts = tables.new_cache.loc[[phase]].iloc[0].dropna()  # one row: a Series
        new_cache = {str(k): int(v) for k, v in counts.items()}
    reasons = classes[classes["phase"] == phase]
    by_class: dict[str, dict[str, int]] = {}
    for cls, reason, count in (
        reasons[["cls", "reason"]].assign(n=reasons["count"]).itertuples(index=False)
    ):
        by_class.setdefault(str(cls), {})[str(reason)] = int(count)
    reads = int(row["reads"])
    counters = ("aa_differences", "errors", "recorded_mismatches", "fallback_hits")
    return {
        "events": int(row["events"]),
        "reads": reads,
        "classes": {cls: int(row[cls]) for cls in CLASSES},
        "reasons": by_class,
        **{name: int(row[name]) for name in counters},
        "read_repairs": int(row["read_repairs"]),
        "shadow_errors": int(row["shadow_errors"]),
        "stack_hit_rate": float(row["stack_hit_rate"]) if reads else 0.0,
        "control_hit_rate": float(row["control_hit_rate"]) if reads else 0.0,
        "latency_us": _latency_summary(latency, phase),
        # Legacy defects the replay surfaced (never failures) and, when the replay collected
        # them, the new cache's provenance misses and refused writes.
        "findings": dict(
            zip(findings["finding"].astype(str), map(int, findings["count"]), strict=True)
        ),
        "new_cache": new_cache,
    }


def summarize(
    df: pd.DataFrame,
    *,
    recording: str,
    recording_digest: str,
    tables: ReportTables | None = None,
    new_cache_stats: NewCacheStats | None = None,
) -> dict[str, Any]:
    """The replay summary JSON of docs/contracts.md section 4 (pure)."""
    tables = tables or build_tables(df, new_cache_stats)
    return summarize_tables(tables, recording=recording, recording_digest=recording_digest)


def summarize_tables(
    tables: ReportTables, *, recording: str, recording_digest: str
) -> dict[str, Any]:
    """The replay summary JSON from the report tables (pure; no results rows needed)."""
    phases = {str(phase): _phase_summary(row, tables) for phase, row in tables.phases.iterrows()}
    return {
        "recording": recording,
        "recording_digest": recording_digest,
        # Events of the recording, not rows: each event is replayed once per phase.
        "events": tables.events,
        "phases": phases,
    }


def new_cache_stats_of(summary: Mapping[str, Any]) -> dict[str, Mapping[str, object]]:
    """The per-phase ``new_cache`` sections of a summary (to rebuild a report from it)."""
    phases = summary.get("phases")
    if not isinstance(phases, Mapping):
        return {}
    return {
        str(phase): data["new_cache"]
        for phase, data in phases.items()
        if isinstance(data, Mapping) and isinstance(data.get("new_cache"), Mapping)
    }


def write_report(
    df: pd.DataFrame | None,
    summary: dict[str, Any],
    verdicts: Sequence[Verdict],
    out_dir: str | Path,
    *,
    tables: ReportTables | None = None,
) -> dict[str, Path]:
    """Write report.md, report.html, one CSV per table and summary.json; returns their paths.

    The new cache's counters come from the summary's per-phase ``new_cache`` sections. Give
    `tables` (e.g. `build_tables_from_file`) and `df` may be None: the rows are not needed.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if tables is None:
        if df is None:
            raise ValueError("write_report needs the results frame or the tables")
        tables = build_tables(df, new_cache_stats_of(summary))
    paths = {
        "markdown": out / "report.md",
        "html": out / "report.html",
        "summary": out / "summary.json",
    }
    paths["markdown"].write_text(render_markdown(summary, tables, verdicts), encoding="utf-8")
    paths["html"].write_text(render_html(summary, tables, verdicts), encoding="utf-8")
    paths["summary"].write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", "utf-8")
    csvs = {
        "phases": tables.phases,
        "ops": tables.ops,
        "classes": tables.classes,
        "latency": tables.latency,
        "findings": tables.findings,
        "new_cache": tables.new_cache,
        "gate_rules": rules_table(verdicts),
    }
    for name, table in csvs.items():
        paths[f"csv_{name}"] = out / f"{name}.csv"
        keep_index = name in ("phases", "ops", "new_cache")
        table.to_csv(paths[f"csv_{name}"], index=keep_index)
    return paths
