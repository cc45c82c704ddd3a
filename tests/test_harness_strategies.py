"""The hypothesis strategies: generated recordings are read back whole and replay cleanly."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.replayer import ReplayOptions, replay
from harness.strategies import (
    event_lists,
    recorded_events,
    recordings,
    signatures,
    texts,
    write_recording,
)
from sigcache.keys import is_valid_signature, normalize_thinking_text
from sigcache.recording import VALID_OPS, decode_event, encode_event, read_recording

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(event_lists(max_size=30), st.booleans())
def test_generated_recordings_read_back_and_replay_cleanly(events: list, gz: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_recording(Path(tmp) / ("r.jsonl.gz" if gz else "r.jsonl"), events)
        _, reader = read_recording(path)
        with reader:
            assert list(reader) == events
        outcome = replay(path, ReplayOptions(results_path=Path(tmp) / "results.parquet"))
        frame = pd.read_parquet(outcome.results_path)
    assert outcome.events == len(events)
    assert frame["error"].isna().all()
    assert frame["aa_equal"].all()
    legacy = frame[frame["phase"] == "LEGACY_ONLY"]
    assert legacy["recorded_equal"].all() and legacy["control_recorded_equal"].all()


@settings(max_examples=50, deadline=None)
@given(recorded_events())
def test_recorded_events_are_valid_lines(event: object) -> None:
    assert decode_event(encode_event(event)) == event  # type: ignore[arg-type]
    assert event.op in VALID_OPS  # type: ignore[attr-defined]


@settings(max_examples=50, deadline=None)
@given(texts(), signatures())
def test_texts_and_signatures_are_what_the_caches_accept(text: str, signature: str) -> None:
    assert normalize_thinking_text(text)
    assert is_valid_signature(signature)


@settings(max_examples=5, deadline=None)
@given(st.data())
def test_recordings_strategy_writes_fresh_files(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        first = data.draw(recordings(tmp, max_size=5))
        second = data.draw(recordings(tmp, max_size=5))
        assert first != second and first.is_file() and second.is_file()
        header, reader = read_recording(second)
        with reader:
            assert header.source == "hypothesis" and len(list(reader)) >= 1
