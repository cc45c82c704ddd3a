"""The replayer: each comparison class from a recording made to cause it, broken candidates,
A/A agreement and the recorded results reproduced under LEGACY_ONLY."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.compare import FINDING_REASONS
from harness.replay_ops import call_legacy
from harness.replayer import ReplayOptions, replay
from sigcache.legacy import SignatureCache
from sigcache.phases import MigrationPhase
from sigcache.recording import RecordedEvent, RecordingHeader, RecordingWriter
from tests.contract import SIG_A, SIG_B, SIG_C, FakeClock

Call = tuple[float, str, dict[str, Any]]
DAY = 86_400.0


def write(text: str, sig: str, owner: str | None = None) -> dict[str, Any]:
    return {"thinking_text": text, "signature": sig, "model": None, "owner_id": owner}


def read(text: str, owner: str | None = None) -> dict[str, Any]:
    return {"thinking_text": text, "owner_id": owner}


def record(path: Path, calls: list[Call]) -> Path:
    """A recording of `calls` whose results are what a legacy cache answered (made under legacy)."""
    clock = FakeClock(0.0)
    legacy = SignatureCache(clock=clock)
    header = RecordingHeader(created_at="2026-11-25T00:00:00+00:00", source="test")
    with RecordingWriter(path, header) as writer:
        for seq, (t, op, args) in enumerate(calls):
            clock.now = t
            result = call_legacy(legacy, op, args)
            writer.write(RecordedEvent(seq, t, op, args, result, "w", "LEGACY_ONLY", 1.0))
    return path


def run(path: Path, tmp_path: Path, factory: Any = None, phases: Any = None) -> pd.DataFrame:
    options = ReplayOptions(
        phases=tuple(phases or MigrationPhase),
        new_cache_factory=factory,
        results_path=tmp_path / "results.parquet",
    )
    outcome = replay(path, options)
    return pd.read_parquet(outcome.results_path)


def cls_at(df: pd.DataFrame, seq: int, phase: str) -> tuple[str, Any]:
    row = df[(df.seq == seq) & (df.phase == phase)].iloc[0]
    return row.cls, row.reason


def read_classes(df: pd.DataFrame, phase: str) -> set[str]:
    return set(df[(df.phase == phase) & (df.kind == "read")].cls)


def test_match_and_both_miss(tmp_path: Path) -> None:
    path = record(
        tmp_path / "r.jsonl",
        [
            (0, "cache_signature", write("a thought", SIG_A)),
            (1, "get_cached_signature", read("<think>a thought</think>")),
            (2, "get_cached_signature", read("never written")),
        ],
    )
    df = run(path, tmp_path)
    for phase in MigrationPhase:
        assert cls_at(df, 1, phase.name)[0] == "match"
        assert cls_at(df, 2, phase.name)[0] == "both_miss"
    assert df.aa_equal.all()
    legacy_only = df[df.phase == "LEGACY_ONLY"]
    assert legacy_only.recorded_equal.all()


def test_new_only_hit_after_legacy_expiry(tmp_path: Path) -> None:
    path = record(
        tmp_path / "r.jsonl",
        [
            (0, "cache_signature", write("long-lived", SIG_A)),
            (7200, "get_cached_signature", read("long-lived")),
        ],
    )
    df = run(path, tmp_path, phases=[MigrationPhase.NEW_ONLY, MigrationPhase.LEGACY_ONLY])
    assert cls_at(df, 1, "NEW_ONLY") == ("new_only_hit", "expiry")
    assert cls_at(df, 1, "LEGACY_ONLY")[0] == "both_miss"
    assert read_classes(df, "NEW_ONLY") == {"new_only_hit"}


def test_new_only_hit_on_prefix_collision(tmp_path: Path) -> None:
    prefix = "shared preamble " * 40
    path = record(
        tmp_path / "r.jsonl",
        [
            (0, "cache_signature", write(prefix + "first", SIG_A)),
            (1, "cache_signature", write(prefix + "second", SIG_B)),
            (2, "get_cached_signature", read(prefix + "first")),
        ],
    )
    df = run(path, tmp_path, phases=[MigrationPhase.NEW_ONLY])
    assert cls_at(df, 2, "NEW_ONLY") == ("new_only_hit", "prefix_collision")


def test_isolation_when_legacy_crosses_owners(tmp_path: Path) -> None:
    path = record(
        tmp_path / "r.jsonl",
        [
            (0, "cache_signature", write("alice's thought", SIG_A, "alice")),
            (1, "get_cached_signature", read("alice's thought")),
            (2, "get_cached_signature", read("alice's thought", "alice")),
        ],
    )
    df = run(path, tmp_path)
    assert cls_at(df, 1, "NEW_ONLY") == ("isolation", "owner")
    assert cls_at(df, 2, "NEW_ONLY")[0] == "match"
    # phases still answering from legacy show legacy's behaviour, flagged, not failed
    assert cls_at(df, 1, "LEGACY_ONLY") == ("match", "legacy_crossed_owner")


def test_legacy_only_hit_from_a_cache_that_loses_writes(tmp_path: Path) -> None:
    calls: list[Call] = [(i, "cache_signature", write(f"text {i}", SIG_A)) for i in range(20)]
    calls += [(100 + i, "get_cached_signature", read(f"text {i}")) for i in range(20)]
    path = record(tmp_path / "r.jsonl", calls)
    from tests.broken_caches import drops_every_tenth

    df = run(path, tmp_path, drops_every_tenth, phases=[MigrationPhase.NEW_ONLY])
    lost = df[df.cls == "legacy_only_hit"]
    assert sorted(lost.seq) == [20 + 9, 20 + 19]  # the 10th and 20th texts were dropped


def test_foreign_from_an_owner_blind_cache(tmp_path: Path) -> None:
    from tests.broken_caches import owner_blind

    path = record(
        tmp_path / "r.jsonl",
        [
            (0, "cache_signature", write("alice's thought", SIG_A, "alice")),
            (1, "get_cached_signature", read("alice's thought", "bob")),
            (2, "get_cached_signature", read("alice's thought", "alice")),
        ],
    )
    df = run(path, tmp_path, owner_blind, phases=[MigrationPhase.NEW_ONLY])
    assert cls_at(df, 1, "NEW_ONLY") == ("foreign", "owner")
    assert cls_at(df, 2, "NEW_ONLY")[0] == "match"


def test_value_mismatch_from_a_stale_cache(tmp_path: Path) -> None:
    from tests.broken_caches import first_write_wins

    path = record(
        tmp_path / "r.jsonl",
        [
            (0, "cache_signature", write("rewritten", SIG_A)),
            (1, "cache_signature", write("rewritten", SIG_B)),
            (2, "get_cached_signature", read("rewritten")),
        ],
    )
    df = run(path, tmp_path, first_write_wins, phases=[MigrationPhase.NEW_ONLY])
    assert cls_at(df, 2, "NEW_ONLY")[0] == "value_mismatch"


def test_a_failing_new_cache_never_reaches_the_caller(tmp_path: Path) -> None:
    from tests.broken_caches import raises_on_read

    path = record(
        tmp_path / "r.jsonl",
        [
            (0, "cache_signature", write("thought", SIG_A)),
            (1, "get_cached_signature", read("thought")),
        ],
    )
    df = run(path, tmp_path, raises_on_read)
    assert cls_at(df, 1, "DUAL_WRITE")[0] == "match"
    # the new cache is authoritative in NEW_ONLY: its failure is a visible miss, never an exception
    assert cls_at(df, 1, "NEW_ONLY") == ("legacy_only_hit", "new_cache_error")
    assert df[df.seq == 1].error.isna().all()


def test_tool_and_session_reads_are_classified(tmp_path: Path) -> None:
    path = record(
        tmp_path / "r.jsonl",
        [
            (
                0,
                "cache_tool_signature",
                {"tool_id": "toolu_1", "signature": SIG_C, "owner_id": None},
            ),
            (
                0,
                "cache_session_signature",
                {"session_id": "s1", "signature": SIG_B, "thinking_text": "t", "owner_id": None},
            ),
            (1, "get_tool_signature", {"tool_id": "toolu_1", "owner_id": None}),
            (2, "get_session_signature_with_text", {"session_id": "s1", "owner_id": None}),
            (
                3,
                "get_recent_signature",
                {"time_window_seconds": 300, "client_type": None, "owner_id": None},
            ),
            (DAY * 30, "get_tool_signature", {"tool_id": "toolu_1", "owner_id": None}),
        ],
    )
    df = run(path, tmp_path)
    for phase in MigrationPhase:
        assert cls_at(df, 2, phase.name)[0] == "match"
        assert cls_at(df, 3, phase.name)[0] == "match"
        assert cls_at(df, 5, phase.name)[0] == "both_miss"
        # A recent read naming no conversation: the new cache answers nothing by design.
        cls, reason = cls_at(df, 4, phase.name)
        if phase.name == "NEW_ONLY":
            assert (cls, reason) == ("isolation", "no_conversation")
        else:
            assert cls == "match" and pd.isna(reason)


@pytest.fixture(scope="module")
def small_recording() -> Path:
    return Path(__file__).resolve().parent.parent / "recordings" / "small.jsonl.gz"


def test_committed_small_recording_is_clean(small_recording: Path, tmp_path: Path) -> None:
    df = run(small_recording, tmp_path)
    assert df.aa_equal.all()
    legacy = df[df.phase == "LEGACY_ONLY"]
    assert legacy.recorded_equal.all() and legacy.control_recorded_equal.all()
    critical = df[df.cls.isin(["value_mismatch", "foreign", "error"])]
    # Legacy's defects (an aborted stream's cut value it kept) are findings, not failures.
    findings = [
        (c, r) in FINDING_REASONS for c, r in zip(critical.cls, critical.reason, strict=True)
    ]
    critical = critical[~pd.Series(findings, index=critical.index, dtype=bool)]
    assert critical.empty, critical[["phase", "seq", "op", "cls", "reason"]].head()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000))
def test_any_generated_recording_replays_cleanly(seed: int, tmp_path: Path) -> None:
    from harness.synth import generate_recording

    path = tmp_path / f"gen-{seed}.jsonl"
    generate_recording(path, events=300, seed=seed)
    df = run(path, tmp_path)
    assert df.aa_equal.all()
    assert df.error.isna().all()
    legacy = df[df.phase == "LEGACY_ONLY"]
    assert legacy.recorded_equal.all()


def test_replay_raises_the_collector_thresholds_and_restores_them(
    small_recording: Path, tmp_path: Path
) -> None:
    import gc

    from harness.replayer import _REPLAY_GC_THRESHOLDS

    seen: list[tuple[int, int, int]] = []
    previous = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        options = ReplayOptions(
            phases=(MigrationPhase.NEW_ONLY,),
            results_path=tmp_path / "results.parquet",
            progress=lambda _done: seen.append(gc.get_threshold()),
        )
        replay(small_recording, options)
        assert seen and set(seen) == {_REPLAY_GC_THRESHOLDS}
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*previous)
