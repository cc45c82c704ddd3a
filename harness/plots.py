"""Report plots as base64 PNG (matplotlib, Agg canvas, no pyplot: no global state, no display)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.compare import CLASSES

__all__ = ["class_plot", "hit_rate_plot", "latency_plot", "to_base64_png"]

_CLASS_COLOURS = {
    "match": "#4c9a2a",
    "both_miss": "#b0b0b0",
    "new_only_hit": "#7fc97f",
    "legacy_only_hit": "#fdae61",
    "value_mismatch": "#d7191c",
    "isolation": "#80b1d3",
    "foreign": "#7b3294",
    "error": "#000000",
}


def to_base64_png(figure: Figure) -> str:
    """Render a figure through the Agg canvas and return the PNG as base64 text."""
    FigureCanvasAgg(figure)  # attaches itself to the figure: Agg whatever the global backend
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _no_data(figure: Figure) -> str:
    figure.text(0.5, 0.5, "no reads", ha="center", va="center")
    return to_base64_png(figure)


def latency_plot(stats: pd.DataFrame | None) -> str:
    """Box plots (1st-99th percentile whiskers, log scale) of read latency per tier and phase.

    `stats` is the report's `latency_stats` (`harness.report`): per phase and tier the exact
    quartiles and whisker ends over every read, so the plot needs no per-read rows.
    """
    rows = stats[stats["tier"] != "stack"] if stats is not None else None
    phases = list(dict.fromkeys(rows["phase"])) if rows is not None else []
    figure = Figure(figsize=(4 * max(len(phases), 1), 3.5))
    if rows is None or not phases:
        return _no_data(figure)
    axes = figure.subplots(1, len(phases), sharey=True, squeeze=False)[0]
    for ax, phase in zip(axes, phases, strict=True):
        boxes = [_box(row) for _, row in rows[rows["phase"] == phase].iterrows() if row["count"]]
        ax.bxp(boxes, showfliers=False)
        ax.set_xticks(range(1, len(boxes) + 1), [str(box["label"]) for box in boxes])
        ax.set_yscale("log")
        ax.set_title(str(phase), fontsize=9)
    axes[0].set_ylabel("latency (µs)")
    return to_base64_png(figure)


def _box(row: pd.Series) -> dict[str, object]:
    """matplotlib `bxp` statistics of one tier (without fliers, which the plot does not show)."""
    # Log axes reject zero; a sub-0.01 µs timing is below any timer's resolution anyway.
    names = {"med": "p50", "q1": "q1", "q3": "q3", "whislo": "whislo", "whishi": "whishi"}
    box: dict[str, object] = {key: max(float(row[col]), 0.01) for key, col in names.items()}
    return {**box, "label": row["tier"], "fliers": []}


def hit_rate_plot(phases: pd.DataFrame) -> str:
    """Grouped bars: caller-visible stack hit rate and control hit rate per phase."""
    figure = Figure(figsize=(6, 3.5))
    if phases.empty:
        return _no_data(figure)
    ax = figure.subplots()
    x = np.arange(len(phases))
    stack = phases["stack_hit_rate"].fillna(0.0).to_numpy(float)
    control = phases["control_hit_rate"].fillna(0.0).to_numpy(float)
    ax.bar(x - 0.2, stack, 0.4, label="stack (caller-visible)")
    ax.bar(x + 0.2, control, 0.4, label="control (legacy)")
    ax.set_xticks(x, [str(p) for p in phases.index], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("hit rate")
    ax.legend(fontsize=8, loc="lower right")
    return to_base64_png(figure)


def class_plot(phases: pd.DataFrame) -> str:
    """Stacked bars: share of reads in each comparison class, per phase."""
    figure = Figure(figsize=(7, 3.5))
    if phases.empty:
        return _no_data(figure)
    ax = figure.subplots()
    x = np.arange(len(phases))
    bottom = np.zeros(len(phases))
    for cls in CLASSES:
        rates = phases[f"{cls}_rate"].fillna(0.0).to_numpy(float)
        ax.bar(x, rates, 0.6, bottom=bottom, label=cls, color=_CLASS_COLOURS[cls])
        bottom += rates
    ax.set_xticks(x, [str(p) for p in phases.index], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of reads")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return to_base64_png(figure)
