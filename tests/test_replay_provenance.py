"""The replay and the gate on provenance (issue 13): isolation by family and conversation,
legacy's truncated values as findings, tool answers given for rewritten ids."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.compare import Observation, Oracle, ReadFacts, classify
from harness.gate import Thresholds, evaluate, read_gate_json, write_gate_json
from sigcache.phases import MigrationPhase
from tests.contract import SIG_A, SIG_B
from tests.test_gate import phase_summary, summary
from tests.test_replayer import Call, cls_at, record, run

CLAUDE, GEMINI = "claude-sonnet-4-5", "gemini-3-pro-high"
FULL = SIG_A + "B" * 40  # 115 characters
CUT = FULL[:84]  # a strict prefix, still valid base64: an aborted stream's value


def write(text: str, sig: str, model: str | None = None, conv: str | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {"thinking_text": text, "signature": sig, "model": model}
    args["owner_id"] = None
    if conv is not None:
        args["conversation_id"] = conv
    return args


def test_classify_legacy_truncated() -> None:
    stack, control = Observation(FULL), Observation(CUT)
    assert classify(stack, control, ReadFacts(True)) == ("value_mismatch", "legacy_truncated")
    assert classify(control, stack, ReadFacts(True)) == ("value_mismatch", None)  # the reverse
    pair = Observation((FULL, "t")), Observation((CUT, "t"))
    assert classify(*pair, ReadFacts(True)) == ("value_mismatch", "legacy_truncated")


def test_oracle_family_and_conversation_crossings() -> None:
    oracle = Oracle()
    oracle.record_write("main", "t", SIG_A, None, 1.0, model=CLAUDE, conversation="c1")
    miss, hit = Observation(), Observation(SIG_A)
    assert oracle.facts("main", "t", None, miss, hit, model=GEMINI).control_crossed == "family"
    assert oracle.facts("main", "t", None, miss, hit, model=CLAUDE).control_crossed is None
    assert oracle.facts("main", "t", None, miss, hit).control_crossed is None
    unkeyed = oracle.unkeyed_facts
    assert unkeyed("main", None, miss, hit, model=GEMINI).control_crossed == "family"
    assert unkeyed("main", None, miss, hit, conversation="c2").control_crossed == "conversation"
    assert unkeyed("main", None, miss, hit, conversation="c1").control_crossed is None
    assert unkeyed("main", None, miss, hit).control_crossed == "no_conversation"
    assert unkeyed("any", "bob", miss, hit).control_crossed == "owner"


def test_oracle_takes_tool_answers_for_rewritten_ids_as_written() -> None:
    oracle = Oracle()
    oracle.record_write("tool", "toolu_01XY", SIG_A, "o", 1.0)
    assert oracle.written_for("tool", "call_01XY_retry2", "o", SIG_A)
    assert not oracle.written_for("tool", "call_01XZ", "o", SIG_A)
    assert not oracle.written_for("tool", "call_01XY", "p", SIG_A)
    assert oracle.prune(2.0) == 1
    assert not oracle.written_for("tool", "call_01XY", "o", SIG_A)


def test_replay_reports_legacy_crossing_families_as_isolation(tmp_path: Path) -> None:
    calls: list[Call] = [
        (0, "cache_signature", write("claude's thought", SIG_A, CLAUDE)),
        (1, "get_cached_signature", {"thinking_text": "claude's thought", "owner_id": None,
                                     "model": GEMINI}),
        (2, "get_cached_signature", {"thinking_text": "claude's thought", "owner_id": None,
                                     "model": CLAUDE}),
    ]  # fmt: skip
    df = run(record(tmp_path / "r.jsonl", calls), tmp_path)
    assert cls_at(df, 1, "NEW_ONLY") == ("isolation", "family")
    assert cls_at(df, 2, "NEW_ONLY")[0] == "match"
    # NEW_PREFERRED: the new cache's refusal settles the read (legacy is not asked).
    assert cls_at(df, 1, "NEW_PREFERRED") == ("isolation", "family")
    assert cls_at(df, 2, "NEW_PREFERRED")[0] == "match"
    for phase in ("LEGACY_ONLY", "DUAL_WRITE"):  # legacy answers as it always did
        assert cls_at(df, 1, phase) == ("match", "legacy_crossed_family")
    assert df.aa_equal.all() and df[df.phase == "LEGACY_ONLY"].recorded_equal.all()


def test_replay_reports_withheld_last_recent_fallbacks_as_isolation(tmp_path: Path) -> None:
    calls: list[Call] = [
        (0, "cache_signature", write("claude's thought", SIG_A, CLAUDE, "c1")),
        (1, "get_last_signature", {"model": GEMINI}),  # legacy asked, its Claude answer withheld
        (2, "get_last_signature", {"model": GEMINI, "conversation_id": "c1"}),  # new settles it
        (3, "get_last_signature", {"model": CLAUDE}),  # legacy's answer, as the phase table says
    ]
    df = run(record(tmp_path / "r.jsonl", calls), tmp_path)
    for phase in ("NEW_PREFERRED", "NEW_ONLY"):
        assert cls_at(df, 1, phase) == ("isolation", "family")
        assert cls_at(df, 2, phase) == ("isolation", "family")
    assert cls_at(df, 3, "NEW_PREFERRED")[0] == "match"
    assert cls_at(df, 3, "NEW_ONLY") == ("isolation", "no_conversation")
    assert cls_at(df, 1, "DUAL_WRITE") == ("match", "legacy_crossed_family")


def test_replay_reports_legacy_crossing_conversations_as_isolation(tmp_path: Path) -> None:
    calls: list[Call] = [
        (0, "cache_signature", write("mine", SIG_A, CLAUDE, "c1")),
        (1, "cache_signature", write("a stranger's", SIG_B, CLAUDE, "c2")),
        (2, "get_last_signature", {"conversation_id": "c1"}),
        (3, "get_last_signature", {"conversation_id": "c3"}),
        (4, "get_last_signature", {}),
        (5, "get_recent_signature_with_text",
         {"time_window_seconds": 300, "client_type": None, "owner_id": None}),
        (6, "get_last_signature", {"conversation_id": "c2"}),
    ]  # fmt: skip
    df = run(record(tmp_path / "r.jsonl", calls), tmp_path, phases=[MigrationPhase.NEW_ONLY])
    assert cls_at(df, 2, "NEW_ONLY") == ("isolation", "conversation")  # stack: c1's own
    assert cls_at(df, 3, "NEW_ONLY") == ("isolation", "conversation")  # stack: nothing
    assert cls_at(df, 4, "NEW_ONLY") == ("isolation", "no_conversation")
    assert cls_at(df, 5, "NEW_ONLY") == ("isolation", "no_conversation")
    assert cls_at(df, 6, "NEW_ONLY")[0] == "match"


def test_replay_reports_legacy_keeping_a_truncated_value_as_a_finding(tmp_path: Path) -> None:
    calls: list[Call] = [
        (0, "cache_signature", write("streamed", FULL)),
        (1, "cache_signature", write("streamed", CUT)),  # the aborted stream, re-sent
        (2, "get_cached_signature", {"thinking_text": "streamed", "owner_id": None}),
    ]
    df = run(record(tmp_path / "r.jsonl", calls), tmp_path)
    assert cls_at(df, 2, "NEW_ONLY") == ("value_mismatch", "legacy_truncated")
    assert cls_at(df, 2, "NEW_PREFERRED") == ("value_mismatch", "legacy_truncated")
    assert cls_at(df, 2, "DUAL_WRITE")[0] == "match"  # legacy still answers there
    row = df[(df.seq == 1) & (df.phase == "DUAL_WRITE")].iloc[0]
    assert bool(row.shadow_error)  # the new cache refused the shorter value: counted, not raised


def test_the_gate_counts_legacy_truncated_apart() -> None:
    phase = phase_summary()
    phase["classes"]["value_mismatch"] = 3
    phase["reasons"] = {"value_mismatch": {"legacy_truncated": 3}}
    verdict = evaluate(summary(NEW_ONLY=phase), "NEW_ONLY", Thresholds())
    assert verdict.outcome == "pass"
    rule = next(r for r in verdict.rules if r.name == "value_mismatch")
    assert rule.measured == 0
    assert dict(verdict.findings) == {"legacy_truncated": 3}
    worse = copy.deepcopy(phase)
    worse["classes"]["value_mismatch"] = 4
    worse["reasons"]["value_mismatch"][""] = 1
    failed = evaluate(summary(NEW_ONLY=worse), "NEW_ONLY", Thresholds())
    assert failed.outcome == "fail" and "value_mismatch" in failed.failed_rules


def test_findings_round_trip_through_gate_json(tmp_path: Path) -> None:
    phase = phase_summary()
    phase["classes"]["value_mismatch"] = 2
    phase["reasons"] = {"value_mismatch": {"legacy_truncated": 2}}
    verdict = evaluate(summary(NEW_ONLY=phase), "NEW_ONLY", Thresholds())
    path = tmp_path / "gate-NEW_ONLY.json"
    write_gate_json(verdict, path, recording_digest="sha256:x", report_path=tmp_path,
                    now=pd.Timestamp("2026-11-25T00:00:00Z").to_pydatetime())  # fmt: skip
    assert dict(read_gate_json(path).verdict.findings) == {"legacy_truncated": 2}


def test_legacy_answering_a_value_cut_short_is_a_finding(tmp_path: Path) -> None:
    cut = FULL[:85]  # 1 mod 4: no base64 encoding makes it, the new cache refuses it
    calls: list[Call] = [
        (0, "cache_signature", write("streamed", cut)),
        (1, "get_cached_signature", {"thinking_text": "streamed", "owner_id": None}),
    ]
    df = run(record(tmp_path / "r.jsonl", calls), tmp_path, phases=[MigrationPhase.NEW_ONLY])
    assert cls_at(df, 1, "NEW_ONLY") == ("legacy_only_hit", "legacy_truncated")
    phase = phase_summary()
    phase["classes"]["legacy_only_hit"] = 5
    phase["control_hit_rate"] = phase["stack_hit_rate"] + 5 / phase["reads"]
    phase["reasons"] = {"legacy_only_hit": {"legacy_truncated": 5}}
    verdict = evaluate(summary(NEW_ONLY=phase), "NEW_ONLY", Thresholds())
    rules = {rule.name: rule.measured for rule in verdict.rules}
    assert rules["legacy_only_hit_rate"] == 0 and rules["hit_rate_drop"] == pytest.approx(0)
    assert verdict.outcome == "pass" and dict(verdict.findings) == {"legacy_truncated": 5}
