"""The bench report on a tiny synthetic pytest-benchmark JSON (fast; in the default suite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.bench_report import load_rows, main, percentile, render, targets


def _bench(group: str, label: str, data: list[float], **extra: Any) -> dict[str, Any]:
    ordered = sorted(data)
    return {
        "group": group,
        "name": f"test_{label.replace(' ', '_')}",
        "extra_info": {"label": label, **extra},
        "stats": {
            "median": ordered[len(ordered) // 2],
            "max": ordered[-1],
            "rounds": len(data),
            "iterations": 10,
            "data": data,
        },
    }


def _document() -> dict[str, Any]:
    goal = {"goal": "tier <= 2x bare", "vs": "bare", "max_ratio": 2.0}
    return {
        "datetime": "2026-01-01T00:00:00",
        "machine_info": {
            "node": "box",
            "python_version": "3.11.9",
            "cpu_count": 2,
            "versions": {"sqlite": "3.45.0"},
        },
        "commit_info": {"id": "0123456789abcdef", "dirty": True},
        "benchmarks": [
            _bench("L1: get-hit", "bare", [1e-6] * 99 + [5e-6], baseline=True),
            _bench("L1: get-hit", "tier", [3e-6] * 100, targets=[goal]),
            _bench("L2: set", "batch", [256e-6] * 5, baseline=True, ops_per_call=256),
            _bench("scaling: L1 hit", "n=1000", [1e-6] * 5, baseline=True, entries=1000),
            _bench("scaling: L1 hit", "n=10000", [2e-6] * 5, entries=10000),
        ],
    }


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_rows_ratios_and_targets() -> None:
    rows = {row.label: row for row in load_rows(_document())}
    assert rows["bare"].p99 == pytest.approx(1e-6 + 0.01 * 4e-6)  # rank 98.01 of 100
    assert rows["batch"].median == pytest.approx(1e-6)  # per operation, not per call
    [result] = targets(load_rows(_document()))
    assert result.ratio == pytest.approx(3.0) and result.holds is False


def test_render_and_main_write_markdown_and_png(tmp_path: Path) -> None:
    text = render(_document(), "bench.json")
    assert "| tier | 3.000 | 3.000 | 3.000 | 3.000 | 100 | 3.00x |" in text
    assert "**missed**" in text and "sqlite 3.45.0" in text and "(dirty)" in text
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(_document()), encoding="utf-8")
    out = tmp_path / "out"
    assert main([str(source), "--out", str(out)]) == 0
    assert (out / "bench.md").read_text(encoding="utf-8").startswith("# Benchmark report")
    assert (out / "bench-medians.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "bench-scaling.png").stat().st_size > 0
    assert main([str(tmp_path / "missing.json"), "--out", str(out)]) == 65


def test_delays_and_write_throughput() -> None:
    document = _document()
    propagation = "phase propagation across 4 workers"
    document["benchmarks"] += [
        _bench(propagation, "sqlite shared state", [1e-9], baseline=True, p50_s=0.1, p99_s=0.2,
               max_s=0.25, changes=20),
        _bench(propagation, "redis shared state", [1e-9], p50_s=0.05, p99_s=0.1, max_s=0.12,
               changes=20),
        _bench("redis writes", "bare", [256e-6] * 5, baseline=True, ops_per_call=256,
               writes_per_round=256),
    ]  # fmt: skip
    text = render(document, "bench.json")
    assert "| redis shared state | 50.0 | 100.0 | 120.0 | 20 | 0.50x |" in text
    assert "| sqlite shared state (baseline) | 100.0 | 200.0 | 250.0 | 20 | 1.00x |" in text
    assert "bare: 1,000,000 writes/s" in text


def test_replay_rows_quote_events_per_second_and_their_goal() -> None:
    document = _document()
    group = "replay: large recording"
    document["benchmarks"] += [
        _bench(group, "harness alone", [4.0], baseline=True, events=150_000),
        _bench(group, "all four phases", [20.0], events=150_000, goal_max_s=60.0),
    ]
    text = render(document, "bench.json")
    assert "harness alone: 37,500 events/s" in text
    assert "all four phases: 7,500 events/s" in text
    assert "all four phases: 20.0 s against a goal of well under 60 s (0.33 of it)" in text
    assert "harness alone: 4.0 s against" not in text  # only rows that carry a goal
    twenty = "20,000,000.0 | " * 4
    assert f"| all four phases | {twenty}1 | 5.00x |" in text


def test_scaling_series_have_a_baseline_per_size(tmp_path: Path) -> None:
    document = _document()
    group = "scaling: L2 hit"
    for entries, ours, bare in ((1000, 10e-6, 8e-6), (1000000, 25e-6, 20e-6)):
        document["benchmarks"] += [
            _bench(group, f"ours {entries}", [ours] * 5, entries=entries, series="ours"),
            _bench(group, f"bare {entries}", [bare] * 5, entries=entries, series="bare",
                   baseline=True),
        ]  # fmt: skip
    text = render(document, "bench.json")
    header = "| entries | benchmark | median µs | P99 µs | rounds | ratio to baseline (same size) |"
    assert header + " growth vs 1,000 |" in text
    assert "| 1,000 | bare (baseline) | 8.000 | 8.000 | 5 | 1.00x | 1.00x |" in text
    assert "| 1,000 | ours | 10.0 | 10.0 | 5 | 1.25x | 1.00x |" in text
    assert "| 1,000,000 | bare (baseline) | 20.0 | 20.0 | 5 | 1.00x | 2.50x |" in text
    assert "| 1,000,000 | ours | 25.0 | 25.0 | 5 | 1.25x | 2.50x |" in text
    # The other groups keep their table; the L1 scaling group (no series) included.
    assert "| n=10000 | 2.000 | 2.000 | 2.000 | 2.000 | 5 | 2.00x |" in text
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(document), encoding="utf-8")
    assert main([str(source), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "bench-scaling.png").stat().st_size > 0
