"""The replay (issue 6): the committed recordings under each phase against the harness alone.

The baseline of each group replays the recording with no stack at all (reading it, the legacy
control and A/A twin, the oracle, the results file), so every row's ratio is what its stacks add.
The large group runs one round per row, pinned to one CPU as the issue's goal reads ("well under
a minute on one core"); its figure is quoted, never asserted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from harness.replayer import ReplayOptions, replay
from sigcache.phases import MigrationPhase

from .conftest import REPO, describe

SMALL = REPO / "recordings" / "small.jsonl.gz"
LARGE = REPO / "recordings" / "large.jsonl.gz"
HARNESS_ALONE = "harness alone (no stack)"
ALL = tuple(MigrationPhase)
# id -> (label, phases)
CASES: dict[str, tuple[str, Sequence[MigrationPhase]]] = {
    "none": (HARNESS_ALONE, ()),
    **{p.name.lower(): (f"{p.name} stack only", (p,)) for p in MigrationPhase},
    "all": ("all four phases (the main job's replay)", ALL),
}
GOAL_S = 60.0  # the "well under a minute on one core", for the large recording


def _replay(recording: Path, phases: Sequence[MigrationPhase], out: Path) -> int:
    options = ReplayOptions(phases=tuple(phases), results_path=out / "results.parquet")
    return replay(recording, options).events


@contextmanager
def _one_cpu() -> Iterator[None]:
    """Pin this thread (and the threads it starts: the L2 writers) to one CPU, then unpin."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@pytest.mark.parametrize("case", list(CASES))
def test_replay_small(benchmark: BenchmarkFixture, case: str, tmp_path: Path) -> None:
    label, phases = CASES[case]
    group = "replay: small recording (5,000 events), one replay per round"
    describe(benchmark, group, label, baseline=case == "none")
    benchmark.extra_info["events"] = benchmark.pedantic(
        _replay, args=(SMALL, phases, tmp_path), rounds=5, iterations=1, warmup_rounds=1
    )


@pytest.mark.parametrize("case", ["none", "all"])
def test_replay_large_on_one_cpu(benchmark: BenchmarkFixture, case: str, tmp_path: Path) -> None:
    label, phases = CASES[case]
    group = "replay: large recording (150,000 events), one CPU, one round"
    goal = {"goal_max_s": GOAL_S} if phases == ALL else {}
    describe(benchmark, group, label, baseline=case == "none", **goal)
    with _one_cpu():
        benchmark.extra_info["events"] = benchmark.pedantic(
            _replay, args=(LARGE, phases, tmp_path), rounds=1, iterations=1
        )
