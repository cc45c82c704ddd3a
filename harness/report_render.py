"""Rendering of a replay report: Markdown for terminals and code hosts, self-contained HTML."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.compare import CLASSES, finding_name
from harness.gate import Verdict, p99_ratio
from harness.plots import class_plot, hit_rate_plot, latency_plot

if TYPE_CHECKING:
    from harness.report import ReportTables

__all__ = [
    "findings_matrix",
    "headline",
    "markdown_table",
    "new_cache_matrix",
    "render_html",
    "render_markdown",
    "rules_table",
]

_PHASE_COLUMNS = [
    "events", "reads", "stack_hit_rate", "control_hit_rate", *CLASSES, "aa_differences",
    "errors", "recorded_mismatches", "fallback_hits", "read_repairs", "shadow_errors",
]  # fmt: skip
_CRITICAL = ("value_mismatch", "foreign", "error")


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):  # NaN: no data
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _phase_rows(phases: pd.DataFrame) -> pd.DataFrame:
    """The per-phase table turned on its side: one row per metric, one column per phase."""
    return phases[[c for c in _PHASE_COLUMNS if c in phases.columns]].T.rename_axis("metric")


def markdown_table(frame: pd.DataFrame, *, index: bool = False) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency), numbers right-aligned."""
    table = frame.reset_index() if index else frame
    header = [str(c) for c in table.columns]
    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines)


def rules_table(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """One row per (target phase, rule): measured, threshold, passed, and the outcome."""
    rows = [
        {
            "target": v.target,
            "outcome": v.outcome,
            "rule": r.name,
            "measured": r.measured,
            "threshold": r.threshold,
            "passed": r.passed,
            "critical": r.critical,
        }
        for v in verdicts
        for r in v.rules
    ]
    columns = ["target", "outcome", "rule", "measured", "threshold", "passed", "critical"]
    return pd.DataFrame(rows, columns=columns)


def headline(summary: dict[str, Any]) -> pd.DataFrame:
    """The numbers that matter most, per phase: critical findings (legacy's defects left out),
    hit rates, the raw p99 ratio (the gate's rule may floor its divisor higher: thresholds.toml),
    and the legacy defects the replay surfaced."""
    rows = []
    for phase, data in summary.get("phases", {}).items():
        critical = sum(data["classes"].get(c, 0) for c in _CRITICAL) + data["aa_differences"]
        reasons = data.get("reasons", {})
        # A finding under a critical class (legacy_truncated, ...) is no failure (harness.gate).
        critical -= sum(
            count
            for cls in _CRITICAL
            for reason, count in reasons.get(cls, {}).items()
            if finding_name(cls, reason or None) is not None
        )
        stack_p99 = data["latency_us"]["stack"]["p99"]
        control_p99 = data["latency_us"]["control"]["p99"]
        ratio = None
        if stack_p99 is not None and control_p99 is not None:
            ratio = p99_ratio(stack_p99, control_p99)  # raw: the gate may floor the divisor higher
        rows.append(
            {
                "phase": phase,
                "critical findings": critical,
                "hit rate (stack)": data["stack_hit_rate"],
                "hit rate (control)": data["control_hit_rate"],
                "p99 stack/control": ratio,
                "legacy findings": sum(data.get("findings", {}).values()),
            }
        )
    return pd.DataFrame(rows)


def findings_matrix(findings: pd.DataFrame) -> pd.DataFrame:
    """Findings (rows) by phase (columns): reads, 0 where a phase had none."""
    if findings.empty:
        return pd.DataFrame(index=pd.Index([], name="finding"))
    matrix = findings.pivot_table(
        index="finding", columns="phase", values="count", aggfunc="sum", fill_value=0, sort=False
    )
    phases = list(dict.fromkeys(findings["phase"]))  # the table's phase order
    return matrix.reindex(columns=phases).astype("int64").rename_axis(columns=None)


def new_cache_matrix(new_cache: pd.DataFrame) -> pd.DataFrame:
    """The new cache's counters (rows) by phase (columns)."""
    return new_cache.T.rename_axis("counter").rename_axis(columns=None)


_FINDINGS_NOTE = (
    "Legacy defects the replay surfaced, in reads: `isolation_<reason>` (legacy answered across "
    "owners, model families, scopes or conversations, and the new cache refused), "
    "`legacy_truncated` (legacy answered an aborted stream's cut signature), "
    "`legacy_crossed_<what>` (the stack's own legacy answered a last/recent read across them). "
    "The gate never counts them as failures."
)
_NEW_CACHE_NOTE = (
    "The new cache's `get_stats()` at the end of each phase's replay: reads refused for their "
    "provenance (`provenance_misses`, by family, scope and conversation) and writes refused, "
    "by reason (`rejected_*`). LEGACY_ONLY never builds a new cache."
)


def _verdict_lines(verdicts: Sequence[Verdict]) -> list[str]:
    if not verdicts:
        return ["**No gate verdict** (no target phase was gated)."]
    lines = []
    for v in verdicts:
        failed = f" — failed: {', '.join(v.failed_rules)}" if v.failed_rules else ""
        lines.append(f"- **{v.target}: {v.outcome.upper()}**{failed}")
        lines.extend(f"  - {reason}" for reason in v.reasons)
        if v.findings:
            listed = ", ".join(f"{name} {count:,}" for name, count in v.findings.items())
            lines.append(f"  - findings (not failures): {listed}")
    return lines


def render_markdown(
    summary: dict[str, Any], tables: ReportTables, verdicts: Sequence[Verdict]
) -> str:
    """report.md: the verdicts and the headline numbers first, then every table."""
    phases = _phase_rows(tables.phases)
    parts = [
        f"# Replay report: {summary.get('recording', '?')}",
        "",
        *_verdict_lines(verdicts),
        "",
        markdown_table(headline(summary)),
        "",
        f"Recording digest `{summary.get('recording_digest', '?')}`, "
        f"{summary.get('events', 0):,} events.",
        "",
        "## Per phase",
        "",
        markdown_table(phases, index=True),
        "",
        "## Findings (legacy defects, never failures)",
        "",
        _FINDINGS_NOTE,
        "",
        markdown_table(findings_matrix(tables.findings), index=True),
        "",
        "## New cache: provenance misses and refused writes",
        "",
        _NEW_CACHE_NOTE,
        "",
        markdown_table(new_cache_matrix(tables.new_cache), index=True),
        "",
        "## Classes and reasons",
        "",
        markdown_table(tables.classes),
        "",
        "## Read latency (µs)",
        "",
        markdown_table(tables.latency),
        "",
        "## Gate rules",
        "",
        markdown_table(rules_table(verdicts)),
        "",
        "## Per operation",
        "",
        markdown_table(tables.ops[["events", "reads", "stack_hit_rate", "control_hit_rate",
                                   *CLASSES]], index=True),
        "",
    ]  # fmt: skip
    return "\n".join(parts)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f4f4f4; }
.pass { color: #1a7f37; } .fail { color: #cf222e; } .inconclusive { color: #9a6700; }
img { max-width: 100%; display: block; margin: 1em 0; }
"""


def _html_table(frame: pd.DataFrame, *, index: bool = False) -> str:
    # The same number format as the Markdown: counts with thousands separators, never 1.5e+05.
    return frame.to_html(index=index, na_rep="–", float_format=_fmt, border=0)


def _html_verdicts(verdicts: Sequence[Verdict]) -> str:
    if not verdicts:
        return "<p><strong>No gate verdict</strong> (no target phase was gated).</p>"
    items = []
    for v in verdicts:
        failed = html.escape(", ".join(v.failed_rules)) or "none"
        items.append(
            f'<li class="{v.outcome}"><strong>{html.escape(v.target)}: '
            f"{v.outcome.upper()}</strong> — failed rules: {failed}</li>"
        )
    return "<ul>" + "".join(items) + "</ul>"


def render_html(summary: dict[str, Any], tables: ReportTables, verdicts: Sequence[Verdict]) -> str:
    """report.html: self-contained (inline CSS, plots as base64 PNG), no external requests."""
    title = html.escape(f"Replay report: {summary.get('recording', '?')}")
    plots = [
        ("Read latency per tier and phase", latency_plot(tables.latency_stats)),
        ("Hit rate per phase", hit_rate_plot(tables.phases)),
        ("Classes per phase", class_plot(tables.phases)),
    ]
    images = "".join(
        f'<h3>{html.escape(name)}</h3><img alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{data}">'
        for name, data in plots
    )
    phases = _phase_rows(tables.phases)
    body = [
        f"<h1>{title}</h1>",
        _html_verdicts(verdicts),
        _html_table(headline(summary)),
        f"<h2>Plots</h2>{images}",
        f"<h2>Per phase</h2>{_html_table(phases, index=True)}",
        "<h2>Findings (legacy defects, never failures)</h2>"
        f"<p>{html.escape(_FINDINGS_NOTE)}</p>"
        f"{_html_table(findings_matrix(tables.findings), index=True)}",
        "<h2>New cache: provenance misses and refused writes</h2>"
        f"<p>{html.escape(_NEW_CACHE_NOTE)}</p>"
        f"{_html_table(new_cache_matrix(tables.new_cache), index=True)}",
        f"<h2>Classes and reasons</h2>{_html_table(tables.classes)}",
        f"<h2>Read latency (µs)</h2>{_html_table(tables.latency)}",
        f"<h2>Gate rules</h2>{_html_table(rules_table(verdicts))}",
        f"<h2>Per operation</h2>{_html_table(tables.ops, index=True)}",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
