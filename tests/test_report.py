"""Tests of harness.report (aggregation, summary) and its rendering (Markdown, HTML, CSV)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.compare import CLASSES
from harness.gate import PhaseThresholds, Thresholds, evaluate
from harness.report import (
    RESULT_COLUMNS,
    build_tables,
    build_tables_from_file,
    class_table,
    latency_table,
    phase_table,
    read_results,
    summarize,
    write_report,
)
from harness.report_render import markdown_table

PHASES = ("LEGACY_ONLY", "DUAL_WRITE", "NEW_PREFERRED", "NEW_ONLY")
READ_OPS = ("get_cached_signature", "get_tool_signature", "get_session_signature")
WRITE_OPS = ("cache_signature", "cache_tool_signature", "cache_session_signature")
STORES = {"get_cached_signature": "main", "get_tool_signature": "tool"}
STACK_HIT = {"match", "new_only_hit", "value_mismatch", "foreign"}
CONTROL_HIT = {"match", "legacy_only_hit", "value_mismatch", "isolation"}
REASONS = {
    "new_only_hit": ["prefix_collision", "eviction", "expiry"],
    "legacy_only_hit": ["eviction", "expiry"],
    "isolation": ["owner", "family"],
    "foreign": ["owner"],
}


def _where(mask: np.ndarray, values: object, other: object = None) -> list[object]:
    """Element-wise `values if mask else other` as a list (None survives, unlike in numpy)."""
    size = len(mask)
    left = values if isinstance(values, np.ndarray) else np.full(size, values, dtype=object)
    right = other if isinstance(other, np.ndarray) else [other] * size
    return [a if m else b for m, a, b in zip(mask, left, right, strict=True)]


def _phase_rows(rng: np.random.Generator, phase: str, events: int, p: list[float]) -> pd.DataFrame:
    kinds = rng.choice(["read", "write", "admin"], size=events, p=[0.8, 0.19, 0.01])
    reads = kinds == "read"
    cls = np.array(_where(reads, rng.choice(CLASSES, size=events, p=p)), dtype=object)
    writes = np.array(
        _where(kinds == "write", rng.choice(WRITE_OPS, size=events), "cleanup_expired")
    )
    ops = np.array(_where(reads, rng.choice(READ_OPS, size=events), writes))
    reason = [rng.choice(REASONS[c]) if c in REASONS else None for c in cls]
    stack_hit = np.array([c in STACK_HIT for c in cls])
    tier = _where(stack_hit, rng.choice(["l1", "l2", "legacy"], size=events, p=[0.9, 0.05, 0.05]))
    stores = [
        STORES.get(o, "session") if k != "admin" else None for o, k in zip(ops, kinds, strict=True)
    ]
    new_side = phase in ("NEW_PREFERRED", "NEW_ONLY")
    return pd.DataFrame(
        {
            "phase": phase,
            "seq": np.arange(events),
            "t": np.sort(rng.uniform(0, 7200, size=events)),
            "op": ops,
            "kind": kinds,
            "store": stores,
            "cls": cls,
            "reason": reason,
            "stack_hit": stack_hit,
            "control_hit": np.array([c in CONTROL_HIT for c in cls]),
            "aa_equal": True,
            "recorded_equal": _where(reads, True) if phase == "LEGACY_ONLY" else None,
            "source": _where(stack_hit, "new" if new_side else "legacy"),
            "tier": tier,
            "fallback": reads & (rng.random(events) < 0.01),
            "read_repair": reads & (rng.random(events) < 0.005),
            "shadow_error": (kinds == "write") & (rng.random(events) < 0.002),
            "error": _where(cls == "error", "RuntimeError: injected"),
            "latency_us": rng.lognormal(1.2 if new_side else 1.0, 0.5, size=events),
            "control_latency_us": rng.lognormal(1.0, 0.5, size=events),
            "text_hash": [f"{h:012x}" for h in rng.integers(0, 2**40, size=events)],
        }
    )  # fmt: skip


def make_results(
    events: int = 2000, seed: int = 7, *, broken: bool = False, phases: tuple[str, ...] = PHASES
) -> pd.DataFrame:
    """A realistic synthetic results frame; `broken` adds leaks and mismatches to NEW_* phases."""
    rng = np.random.default_rng(seed)
    clean = [0.70, 0.15, 0.10, 0.0, 0.0, 0.05, 0.0, 0.0]  # order of CLASSES
    leaky = [0.66, 0.15, 0.10, 0.01, 0.02, 0.04, 0.01, 0.01]
    frames = [
        _phase_rows(rng, phase, events, leaky if broken and phase.startswith("NEW") else clean)
        for phase in phases
    ]
    return pd.concat(frames, ignore_index=True)[list(RESULT_COLUMNS)]


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return make_results()


def test_fixture_has_the_contract_columns(results: pd.DataFrame) -> None:
    assert tuple(results.columns) == RESULT_COLUMNS


def test_phase_table_counts(results: pd.DataFrame) -> None:
    table = phase_table(results)
    assert list(table.index) == list(PHASES)
    reads = results[results["kind"] == "read"]
    row = table.loc["NEW_ONLY"]
    new_reads = reads[reads["phase"] == "NEW_ONLY"]
    assert row["events"] == 2000
    assert row["reads"] == len(new_reads)
    assert row["match"] == (new_reads["cls"] == "match").sum()
    assert row["stack_hit_rate"] == pytest.approx(new_reads["stack_hit"].mean())
    assert row["control_hit_rate"] == pytest.approx(new_reads["control_hit"].mean())
    assert sum(row[c] for c in CLASSES) == row["reads"]
    assert sum(row[f"{c}_rate"] for c in CLASSES) == pytest.approx(1.0)
    assert row["shadow_errors"] == results[results["phase"] == "NEW_ONLY"]["shadow_error"].sum()


def test_counters_tolerate_none_and_nullable_booleans() -> None:
    frame = make_results(50, phases=("LEGACY_ONLY",))
    frame["aa_equal"] = pd.array([False, None] + [True] * 48, dtype="boolean")
    frame["recorded_equal"] = [False, None, True] + [None] * 47
    row = phase_table(frame).loc["LEGACY_ONLY"]
    assert (row["aa_differences"], row["recorded_mismatches"]) == (1, 1)


def test_class_table_has_reasons_and_rates(results: pd.DataFrame) -> None:
    table = class_table(results)
    assert list(table.columns) == ["phase", "cls", "reason", "count", "rate"]
    isolation = table[(table["phase"] == "DUAL_WRITE") & (table["cls"] == "isolation")]
    assert set(isolation["reason"]) == {"owner", "family"}
    assert table.groupby("phase")["rate"].sum().to_numpy() == pytest.approx(1.0)
    assert table["phase"].iloc[0] == "LEGACY_ONLY"


def test_latency_table_percentiles(results: pd.DataFrame) -> None:
    table = latency_table(results)
    assert set(table["tier"]) == {"stack", "l1", "l2", "legacy", "control"}
    row = table[(table["phase"] == "NEW_ONLY") & (table["tier"] == "stack")].iloc[0]
    sample = results[(results["phase"] == "NEW_ONLY") & (results["kind"] == "read")]["latency_us"]
    assert row["p99"] == pytest.approx(sample.quantile(0.99))
    assert row["p50"] <= row["p90"] <= row["p99"] <= row["max"]


def test_summary_matches_the_contract(results: pd.DataFrame) -> None:
    summary = summarize(results, recording="rec.jsonl", recording_digest="sha256:x")
    assert summary["events"] == 2000
    assert list(summary["phases"]) == list(PHASES)
    phase = summary["phases"]["NEW_ONLY"]
    keys = {"reads", "classes", "aa_differences", "errors", "recorded_mismatches", "fallback_hits"}
    keys |= {"read_repairs", "shadow_errors", "stack_hit_rate", "control_hit_rate", "latency_us"}
    assert keys <= set(phase)
    assert set(phase["classes"]) == set(CLASSES)
    assert set(phase["latency_us"]["stack"]) == {"p50", "p90", "p99", "max"}
    json.dumps(summary, allow_nan=False)  # strict JSON: plain ints and floats only
    limits = Thresholds(default=PhaseThresholds(min_reads=100, max_p99_latency_ratio=3.0))
    assert evaluate(summary, "NEW_ONLY", limits).outcome == "pass"


def test_broken_new_cache_fails_the_gate_for_new_phases() -> None:
    summary = summarize(make_results(broken=True), recording="r", recording_digest="d")
    limits = Thresholds(default=PhaseThresholds(min_reads=100, max_p99_latency_ratio=3.0))
    assert evaluate(summary, "DUAL_WRITE", limits).outcome == "pass"
    for target in ("NEW_PREFERRED", "NEW_ONLY"):
        verdict = evaluate(summary, target, limits)
        assert verdict.outcome == "fail"
        assert {"value_mismatch", "foreign", "errors"} <= set(verdict.failed_rules)


def test_empty_results_summarise_to_no_data() -> None:
    empty = make_results(10).iloc[0:0]
    summary = summarize(empty, recording="r", recording_digest="d")
    assert summary == {"recording": "r", "recording_digest": "d", "events": 0, "phases": {}}
    assert evaluate(summary, "NEW_ONLY", Thresholds()).outcome == "inconclusive"


def test_phase_without_reads_has_no_latency() -> None:
    frame = make_results(30, phases=("DUAL_WRITE",))
    frame["kind"] = "write"
    phase = summarize(frame, recording="r", recording_digest="d")["phases"]["DUAL_WRITE"]
    assert phase["reads"] == 0 and phase["stack_hit_rate"] == 0.0
    assert phase["latency_us"]["stack"]["p99"] is None


def test_markdown_table() -> None:
    frame = pd.DataFrame(
        {"name": ["a|b", None], "n": [1234567, 2], "rate": [0.12345, float("nan")]}
    )
    assert markdown_table(frame).splitlines() == [
        "| name | n | rate |",
        "|---|---:|---:|",
        "| a\\|b | 1,234,567 | 0.1235 |",
        "| – | 2 | – |",
    ]


def test_write_report(tmp_path: Path, results: pd.DataFrame) -> None:
    parquet = tmp_path / "results.parquet"
    results.to_parquet(parquet)
    frame = read_results(parquet)
    summary = summarize(frame, recording="rec.jsonl", recording_digest="d")
    verdicts = [evaluate(summary, phase, Thresholds()) for phase in ("DUAL_WRITE", "NEW_ONLY")]
    paths = write_report(frame, summary, verdicts, tmp_path / "out")
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {"report.md", "report.html", "summary.json", "phases.csv", "ops.csv",
                     "classes.csv", "latency.csv", "findings.csv", "new_cache.csv",
                     "gate_rules.csv"}  # fmt: skip
    markdown = paths["markdown"].read_text(encoding="utf-8")
    head = markdown.splitlines()[:8]
    assert head[0] == "# Replay report: rec.jsonl"
    assert any("**DUAL_WRITE: PASS**" in line for line in head)
    assert any("**NEW_ONLY: PASS**" in line for line in head)
    assert "critical findings" in markdown.split("## Per phase")[0]
    assert json.loads(paths["summary"].read_text(encoding="utf-8")) == summary
    phases_csv = pd.read_csv(paths["csv_phases"], index_col="phase")
    assert phases_csv.loc["NEW_ONLY", "reads"] == summary["phases"]["NEW_ONLY"]["reads"]


def test_html_is_self_contained_with_three_plots(tmp_path: Path, results: pd.DataFrame) -> None:
    summary = summarize(results, recording="<rec>", recording_digest="d")
    paths = write_report(results, summary, [], tmp_path)
    page = paths["html"].read_text(encoding="utf-8")
    assert "&lt;rec&gt;" in page and "<rec>" not in page
    images = re.findall(r'<img alt="[^"]+" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert len(images) == 3
    assert all(base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n") for data in images)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere


def test_build_tables_on_a_single_phase() -> None:
    tables = build_tables(make_results(200, phases=("NEW_ONLY",)))
    assert list(tables.phases.index) == ["NEW_ONLY"]
    assert tables.ops.index.names == ["phase", "op"]


def test_read_results_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pd.DataFrame({"phase": ["A"]}).to_parquet(path)
    with pytest.raises(ValueError, match="missing columns"):
        read_results(path)


def test_tables_streamed_from_a_file_equal_the_in_memory_ones(tmp_path: Path) -> None:
    frame = make_results(3000, broken=True)
    parquet = tmp_path / "results.parquet"
    frame.to_parquet(parquet, row_group_size=1000)
    whole = build_tables(read_results(parquet), {"NEW_ONLY": {"rejected_writes": 3}})
    # Chunks cut across phases and row groups alike.
    streamed = build_tables_from_file(parquet, {"NEW_ONLY": {"rejected_writes": 3}}, batch_rows=777)
    for name in ("phases", "ops", "classes", "latency", "findings", "new_cache", "latency_stats"):
        pd.testing.assert_frame_equal(
            getattr(streamed, name), getattr(whole, name), check_exact=True
        )
    assert streamed.events == whole.events == 3000
    summary = summarize(frame, recording="r", recording_digest="d", tables=whole)
    assert summary == summarize(frame, recording="r", recording_digest="d", tables=streamed)


def test_latency_percentiles_are_exact(results: pd.DataFrame) -> None:
    reads = results[results["kind"] == "read"]
    table = latency_table(results).set_index(["phase", "tier"])
    for (phase, tier), latencies in [
        *(
            (("DUAL_WRITE", t), g["latency_us"])
            for t, g in reads[reads["phase"] == "DUAL_WRITE"].groupby("tier")
        ),
        (("NEW_ONLY", "stack"), reads.loc[reads["phase"] == "NEW_ONLY", "latency_us"]),
        (("NEW_ONLY", "control"), reads.loc[reads["phase"] == "NEW_ONLY", "control_latency_us"]),
    ]:
        row = table.loc[(phase, tier)]
        assert row["count"] == len(latencies)
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            assert row[name] == pytest.approx(latencies.quantile(q), rel=1e-12)
        assert row["max"] == latencies.max()
