"""Findings in the replay (issue 13): scope crossings, legacy's cut values, the stack's own legacy
answering across conversations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.compare import FINDING_REASONS, Observation, Oracle, classify, finding_name
from sigcache.phases import MigrationPhase
from tests.contract import SIG_A, SIG_B
from tests.test_replayer import Call, cls_at, record, run

CLAUDE = "claude-sonnet-4-5"
FULL = SIG_A + "B" * 40


def write(text: str, sig: str, **provenance: Any) -> dict[str, Any]:
    return {"thinking_text": text, "signature": sig, "model": provenance.pop("model", CLAUDE),
            "owner_id": None, **provenance}  # fmt: skip


def read(text: str, **provenance: Any) -> dict[str, Any]:
    return {"thinking_text": text, "owner_id": None, "model": CLAUDE, **provenance}


def test_legacy_crossing_accounts_is_isolation_scope(tmp_path: Path) -> None:
    calls: list[Call] = [
        (0, "cache_signature", write("pinned", SIG_A, scope="acct-0")),
        (1, "get_cached_signature", read("pinned", scope="acct-1")),  # moved to another account
        (2, "get_cached_signature", read("pinned", scope="acct-0")),
        (3, "get_cached_signature", read("pinned")),  # a read naming no scope matches any
    ]
    df = run(record(tmp_path / "r.jsonl", calls), tmp_path)
    assert cls_at(df, 1, "NEW_ONLY") == ("isolation", "scope")
    assert cls_at(df, 1, "LEGACY_ONLY") == ("match", "legacy_crossed_scope")
    assert cls_at(df, 2, "NEW_ONLY")[0] == cls_at(df, 3, "NEW_ONLY")[0] == "match"


def test_legacy_answering_a_cut_the_new_cache_refused_is_a_finding() -> None:
    oracle = Oracle()
    oracle.record_write("main", "t", FULL, None, 1.0)
    oracle.record_write("main", "t", FULL[:84], None, 2.0)  # valid base64, known cut by FULL
    facts = oracle.facts("main", "t", None, Observation(), Observation(FULL[:84]))
    assert facts.control_cut
    assert classify(Observation(), Observation(FULL[:84]), facts) == (
        "legacy_only_hit",
        "legacy_truncated",
    )
    other = oracle.facts("main", "t", None, Observation(), Observation(FULL))
    assert not other.control_cut
    assert classify(Observation(), Observation(FULL), other) == ("legacy_only_hit", None)


def test_the_stacks_own_legacy_answering_another_conversation_is_a_finding(
    tmp_path: Path,
) -> None:
    # B expires in legacy, the new cache still holds it: DUAL_WRITE's read repair puts it back
    # into the stack's legacy, whose "last" is then c2's signature where the control's is c1's.
    calls: list[Call] = [
        (0, "cache_signature", write("b", SIG_B, conversation_id="c2")),
        (3000, "cache_signature", write("a", SIG_A, conversation_id="c1")),
        (4000, "get_cached_signature", read("b", conversation_id="c2")),
        (4001, "get_last_signature", {"conversation_id": "c1", "model": CLAUDE}),
    ]
    df = run(record(tmp_path / "r.jsonl", calls), tmp_path, phases=[MigrationPhase.DUAL_WRITE])
    assert cls_at(df, 2, "DUAL_WRITE")[0] == "new_only_hit"
    assert cls_at(df, 3, "DUAL_WRITE") == ("value_mismatch", "legacy_crossed_conversation")
    assert ("value_mismatch", "legacy_crossed_conversation") in FINDING_REASONS


def test_finding_names() -> None:
    assert finding_name("isolation", "family") == "isolation_family"
    assert finding_name("value_mismatch", "legacy_truncated") == "legacy_truncated"
    assert finding_name("value_mismatch", "legacy_crossed_scope") == "legacy_crossed_scope"
    assert finding_name("value_mismatch", None) is None
    assert finding_name("legacy_only_hit", "eviction") is None
    assert finding_name("match", "legacy_crossed_family") is None  # agreeing is no finding
