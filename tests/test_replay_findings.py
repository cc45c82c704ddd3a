"""Findings in the replay (issue 13): scope crossings, legacy's cut values, the stack's own legacy
answering across conversations, and how the gate and the report list them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.compare import FINDING_REASONS, Observation, Oracle, classify, finding_name
from harness.gate import Thresholds, evaluate
from harness.report import findings_table, new_cache_table, summarize
from harness.report_render import findings_matrix, headline
from sigcache.phases import MigrationPhase
from tests.contract import SIG_A, SIG_B
from tests.test_gate import phase_summary, summary
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


def test_the_verdict_lists_isolation_by_reason_and_passes() -> None:
    phase = phase_summary()
    phase["classes"]["isolation"] = 30
    phase["classes"]["value_mismatch"] = 2
    phase["control_hit_rate"] = phase["stack_hit_rate"] + 30 / phase["reads"]
    phase["reasons"] = {
        "isolation": {"family": 20, "conversation": 7, "no_conversation": 3},
        "value_mismatch": {"legacy_crossed_conversation": 2},
    }
    verdict = evaluate(summary(NEW_ONLY=phase), "NEW_ONLY", Thresholds())
    assert verdict.outcome == "pass", verdict.failed_rules
    assert dict(verdict.findings) == {
        "isolation_conversation": 7,
        "isolation_family": 20,
        "isolation_no_conversation": 3,
        "legacy_crossed_conversation": 2,
    }


def _frame(rows: list[tuple[str, str, str | None]]) -> pd.DataFrame:
    """A results frame of reads: (phase, class, reason) per row."""
    return pd.DataFrame(
        {
            "phase": [p for p, _, _ in rows],
            "seq": range(len(rows)),
            "t": 0.0,
            "op": "get_cached_signature",
            "kind": "read",
            "store": "main",
            "cls": [c for _, c, _ in rows],
            "reason": [r for _, _, r in rows],
            "stack_hit": True,
            "control_hit": True,
            "aa_equal": True,
            "recorded_equal": None,
            "source": None,
            "tier": None,
            "fallback": False,
            "read_repair": False,
            "shadow_error": False,
            "error": None,
            "latency_us": 1.0,
            "control_latency_us": 1.0,
            "text_hash": None,
        }
    )


def test_findings_and_new_cache_tables() -> None:
    frame = _frame(
        [("NEW_ONLY", "isolation", "family")] * 3
        + [("NEW_ONLY", "value_mismatch", "legacy_truncated")] * 2
        + [("NEW_ONLY", "legacy_only_hit", "legacy_truncated"), ("NEW_ONLY", "match", None)]
        + [("DUAL_WRITE", "match", "legacy_crossed_family")]
    )
    stats = {"NEW_ONLY": {"provenance_misses": 4, "provenance_misses_family": 3,
                          "rejected_prefix": 2, "hits": 99}, "LEGACY_ONLY": {}}  # fmt: skip
    result = summarize(frame, recording="r", recording_digest="d", new_cache_stats=stats)
    new_only = result["phases"]["NEW_ONLY"]
    assert new_only["findings"] == {"isolation_family": 3, "legacy_truncated": 3}
    assert result["phases"]["DUAL_WRITE"]["findings"] == {}
    assert new_only["new_cache"]["provenance_misses_family"] == 3
    assert "hits" not in new_only["new_cache"]  # only the provenance and refusal counters
    assert result["phases"]["DUAL_WRITE"]["new_cache"] == {}
    # A critical class's findings are no critical finding in the headline.
    row = headline(result).set_index("phase").loc["NEW_ONLY"]
    assert row["critical findings"] == 0 and row["legacy findings"] == 6
    table = findings_table(pd.DataFrame(
        {"phase": ["NEW_ONLY"] * 2, "cls": ["isolation", "both_miss"],
         "reason": ["owner", ""], "count": [5, 9], "rate": [0.5, 0.9]}
    ))  # fmt: skip
    assert table.to_dict("records") == [
        {"phase": "NEW_ONLY", "finding": "isolation_owner", "count": 5, "rate": 0.5}
    ]
    assert findings_matrix(table).loc["isolation_owner", "NEW_ONLY"] == 5
    assert new_cache_table(None).empty
    assert list(new_cache_table(stats).index) == ["NEW_ONLY"]  # LEGACY_ONLY built none
