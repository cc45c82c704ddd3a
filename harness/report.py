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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from harness.compare import CLASSES, finding_name
from harness.gate import Verdict
from harness.report_render import render_html, render_markdown, rules_table
from sigcache.gating import PHASE_NAMES
from sigcache.provenance import PROVENANCE_REASONS, REJECTION_REASONS

__all__ = [
    "COUNTERS",
    "NEW_CACHE_COUNTERS",
    "PERCENTILES",
    "RESULT_COLUMNS",
    "STACK_TIERS",
    "NewCacheStats",
    "ReportTables",
    "build_tables",
    "class_table",
    "findings_table",
    "latency_table",
    "new_cache_stats_of",
    "new_cache_table",
    "op_table",
    "phase_table",
    "read_results",
    "summarize",
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


def read_results(path: str | Path) -> pd.DataFrame:
    """Read `results.parquet`; ValueError naming the missing columns if it is not one."""
    frame = pd.read_parquet(path)
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a results file, missing columns {missing}")
    return frame


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


def _counts(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Counters, hit rates and class rates grouped by `keys` (phase first)."""
    sums = _indicators(df).join(df[keys]).groupby(keys, sort=True).sum()
    reads = sums["reads"].where(sums["reads"] > 0)  # NaN rate, not a division by zero
    sums["stack_hit_rate"] = sums["stack_hits"] / reads
    sums["control_hit_rate"] = sums["control_hits"] / reads
    for cls in CLASSES:
        sums[f"{cls}_rate"] = sums[cls] / reads
    order = _phase_order(sums.index.get_level_values(0).unique())
    return sums.reindex(order, level=0) if len(keys) > 1 else sums.reindex(order)


def phase_table(df: pd.DataFrame) -> pd.DataFrame:
    """Counters, hit rates (caller-visible stack, control) and class counts/rates per phase."""
    return _counts(df, ["phase"])


def op_table(df: pd.DataFrame) -> pd.DataFrame:
    """The phase table broken down by operation."""
    return _counts(df, ["phase", "op"])


def class_table(df: pd.DataFrame) -> pd.DataFrame:
    """Reads per phase, class and reason ("" when unknown), with the rate of the phase's reads."""
    reads = df[df["kind"].eq("read") & df["cls"].notna()]
    if reads.empty:
        return pd.DataFrame(columns=list(_CLASS_COLUMNS)).astype(_CLASS_COLUMNS)
    frame = reads.assign(reason=reads["reason"].fillna("").astype(str))
    counts = frame.groupby(["phase", "cls", "reason"]).size().rename("count").reset_index()
    per_phase = frame.groupby("phase").size()
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


def _latency_samples(df: pd.DataFrame) -> pd.DataFrame:
    """Long form (phase, tier, latency_us) over reads: stack overall, each stack tier, control."""
    reads = df[df["kind"].eq("read")]
    stack = reads[["phase", "latency_us"]].assign(tier="stack")
    tiers = reads[reads["tier"].isin(STACK_TIERS)][["phase", "tier", "latency_us"]]
    control = reads[["phase", "control_latency_us"]].rename(
        columns={"control_latency_us": "latency_us"}
    )
    frames = [stack, tiers, control.assign(tier="control")]
    return pd.concat(frames, ignore_index=True)[["phase", "tier", "latency_us"]]


def latency_table(df: pd.DataFrame) -> pd.DataFrame:
    """Read latency (µs) per phase and tier: count, p50, p90, p99, max (never the mean alone)."""
    samples = _latency_samples(df)
    grouped = samples.groupby(["phase", "tier"])["latency_us"]
    table = pd.DataFrame({"count": grouped.size()})
    for name, q in PERCENTILES:
        table[name] = grouped.quantile(q)
    table["max"] = grouped.max()
    tier_order = ["stack", *STACK_TIERS, "control"]
    table = table.reset_index()
    keys = table["phase"].map({p: i for i, p in enumerate(PHASE_NAMES)}).fillna(len(PHASE_NAMES))
    keys = keys * 10 + table["tier"].map({t: i for i, t in enumerate(tier_order)})
    return table.assign(_k=keys).sort_values("_k").drop(columns="_k").reset_index(drop=True)


@dataclass(frozen=True)
class ReportTables:
    """Every table of a report."""

    phases: pd.DataFrame
    ops: pd.DataFrame
    classes: pd.DataFrame
    latency: pd.DataFrame
    findings: pd.DataFrame
    new_cache: pd.DataFrame


def build_tables(df: pd.DataFrame, new_cache_stats: NewCacheStats | None = None) -> ReportTables:
    """All report tables from a results frame and the new cache's stats per phase (pure)."""
    classes = class_table(df)
    return ReportTables(
        phase_table(df),
        op_table(df),
        classes,
        latency_table(df),
        findings_table(classes),
        new_cache_table(new_cache_stats),
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
    phases = {str(phase): _phase_summary(row, tables) for phase, row in tables.phases.iterrows()}
    # Events of the recording, not rows: each event is replayed once per phase.
    events = int(df["seq"].nunique()) if len(df) else 0
    return {
        "recording": recording,
        "recording_digest": recording_digest,
        "events": events,
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
    df: pd.DataFrame,
    summary: dict[str, Any],
    verdicts: Sequence[Verdict],
    out_dir: str | Path,
    *,
    tables: ReportTables | None = None,
) -> dict[str, Path]:
    """Write report.md, report.html, one CSV per table and summary.json; returns their paths.

    The new cache's counters come from the summary's per-phase ``new_cache`` sections.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = tables or build_tables(df, new_cache_stats_of(summary))
    paths = {
        "markdown": out / "report.md",
        "html": out / "report.html",
        "summary": out / "summary.json",
    }
    paths["markdown"].write_text(render_markdown(summary, tables, verdicts), encoding="utf-8")
    paths["html"].write_text(render_html(df, summary, tables, verdicts), encoding="utf-8")
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
