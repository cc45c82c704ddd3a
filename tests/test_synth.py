"""The traffic generator: reproducible, realistic, and replayable on a fresh legacy cache."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.synth import START, generate_recording, run_generate
from sigcache import signature_cache as api
from sigcache.keys import is_valid_signature, normalize_thinking_text
from sigcache.recording import RecordedEvent, read_recording


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "small.jsonl.gz"
    stats = generate_recording(path, events=4000, seed=7)
    assert stats.events == 4000
    return path


@pytest.fixture(scope="module")
def events(small: Path) -> list[RecordedEvent]:
    return list(read_recording(small)[1])


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    generate_recording(tmp_path / "a.jsonl.gz", events=800, seed=3)
    generate_recording(tmp_path / "b.jsonl.gz", events=800, seed=3)
    generate_recording(tmp_path / "c.jsonl.gz", events=800, seed=4)
    a, b, c = (tmp_path / f"{n}.jsonl.gz" for n in "abc")
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_header_is_reproducible_and_created_at_settable(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    generate_recording(path, events=10, seed=1, created_at="2026-05-01T12:00:00+00:00")
    header, reader = read_recording(path)
    assert [e.seq for e in reader] == list(range(10))
    assert header.created_at == "2026-05-01T12:00:00+00:00"
    assert "seed=1" in header.source


def test_ide_clients_resend_their_history(events: list[RecordedEvent]) -> None:
    reads = sum(e.op == "get_cached_signature" for e in events)
    writes = sum(e.op == "cache_signature" for e in events)
    assert reads > 4 * writes
    wrapped = [e for e in events if e.op == "get_cached_signature"
               and e.args["thinking_text"].startswith("<think>")]  # fmt: skip
    assert any(e.result is not None for e in wrapped)  # written bare, read wrapped, still a hit


def test_traffic_has_the_shapes_the_caches_care_about(events: list[RecordedEvent]) -> None:
    ops = {e.op for e in events}
    assert {"cache_tool_signature", "get_tool_signature", "cache_session_signature",
            "get_session_signature", "get_recent_signature"} <= ops  # fmt: skip
    tool_ids = {e.args["tool_id"] for e in events if e.op == "cache_tool_signature"}
    assert any(re.fullmatch(r"call_[0-9a-f]{24}", t) for t in tool_ids)
    assert any(t.startswith("toolu_") for t in tool_ids)
    sessions = {e.args["session_id"] for e in events if e.op == "cache_session_signature"}
    assert any(re.fullmatch(r"[0-9a-f]{16}", s) for s in sessions)
    assert any(s.startswith("scid_") for s in sessions)
    owners = {e.args.get("owner_id") for e in events if e.op == "get_cached_signature"}
    assert None in owners and len(owners) >= 3
    models = {e.args.get("model") for e in events if e.op == "cache_signature"}
    assert any("claude" in str(m) for m in models) and any("gemini" in str(m) for m in models)


def test_invalid_signatures_expiry_gaps_and_shared_prefixes(events: list[RecordedEvent]) -> None:
    written = [e.args["signature"] for e in events if "signature" in e.args]
    assert any(not is_valid_signature(s) for s in written)
    times = [e.t for e in events]
    assert times == sorted(times)
    by_prefix: dict[str, set[str]] = {}
    for e in events:
        if e.op == "cache_signature":
            text = normalize_thinking_text(e.args["thinking_text"])
            if len(text) > 500:
                by_prefix.setdefault(text[:500], set()).add(text)
    assert any(len(texts) > 1 for texts in by_prefix.values())
    assert any(a.t - b.t > 3600 for a, b in _same_worker_pairs(events))


def _same_worker_pairs(events: list[RecordedEvent]) -> Iterator[tuple[RecordedEvent, ...]]:
    last: dict[str, RecordedEvent] = {}
    for e in events:
        if e.worker in last:
            yield e, last[e.worker]
        last[e.worker] = e


@pytest.fixture
def replay_api() -> Iterator[list[float]]:
    now = [START]
    api.reset_signature_cache(clock=lambda: now[0])
    yield now
    api.reset_signature_cache()


def test_a_fresh_legacy_cache_reproduces_every_recorded_result(
    events: list[RecordedEvent], replay_api: list[float]
) -> None:
    for e in events:
        replay_api[0] = START + e.t
        assert getattr(api, e.op)(**e.args) == e.result, e.seq


def test_run_generate_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.jsonl"
    assert run_generate(["--out", str(out), "--events", "25", "--seed", "2"]) == 0
    assert "25 events," in capsys.readouterr().out
    assert len(list(read_recording(out)[1])) == 25


def test_redacted_traffic_replays_to_the_redacted_answers(
    events: list[RecordedEvent], replay_api: list[float]
) -> None:
    from sigcache.redaction import Redactor

    redactor = Redactor(b"synth-test")
    for e in events:
        replay_api[0] = START + e.t
        redacted = redactor.event(e)
        assert getattr(api, e.op)(**redacted.args) == redacted.result, e.seq
