"""Tests of harness.compare: classification of one read and the oracle of writes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.compare import (
    CLASSES,
    Comparison,
    Observation,
    Oracle,
    ReadFacts,
    classify,
    signature_of,
)

SIG_A = "A" * 60
SIG_B = "B" * 60
LEGIT = ReadFacts(stack_answer_legitimate=True)

hit_a = Observation(SIG_A, latency_us=3.0)
hit_b = Observation(SIG_B)
miss = Observation()
boom = Observation(error="RuntimeError: boom")


@pytest.mark.parametrize(
    ("stack", "control", "facts", "expected"),
    [
        (hit_a, hit_a, LEGIT, ("match", None)),
        (miss, miss, LEGIT, ("both_miss", None)),
        (hit_a, miss, ReadFacts(True, miss_reason="prefix"), ("new_only_hit", "prefix")),
        (miss, hit_a, ReadFacts(True, miss_reason="eviction"), ("legacy_only_hit", "eviction")),
        (hit_a, hit_b, LEGIT, ("value_mismatch", None)),
        (miss, hit_a, ReadFacts(True, control_crossed="owner"), ("isolation", "owner")),
        (hit_a, hit_b, ReadFacts(True, control_crossed="family"), ("isolation", "family")),
        (hit_a, miss, ReadFacts(False, foreign_reason="owner"), ("foreign", "owner")),
        (hit_a, hit_a, ReadFacts(False), ("foreign", "never_written")),
        (boom, hit_a, LEGIT, ("error", "RuntimeError: boom")),
        (hit_a, boom, LEGIT, ("new_only_hit", "control_error")),
        (miss, boom, LEGIT, ("both_miss", "control_error")),
        # A miss is never foreign, whatever the facts say.
        (miss, miss, ReadFacts(False), ("both_miss", None)),
    ],
)  # fmt: skip
def test_classify_table(
    stack: Observation, control: Observation, facts: ReadFacts, expected: tuple[str, str | None]
) -> None:
    assert classify(stack, control, facts) == Comparison(*expected)


answers = st.one_of(
    st.none(),
    st.sampled_from([SIG_A, SIG_B, (SIG_A, "text"), (SIG_B, "text")]),
)
observations = st.builds(
    Observation,
    value=answers,
    error=st.one_of(st.none(), st.just("ValueError: x")),
    latency_us=st.floats(0, 1e6),
)
facts_st = st.builds(
    ReadFacts,
    stack_answer_legitimate=st.booleans(),
    control_crossed=st.one_of(st.none(), st.sampled_from(["owner", "family", "conversation"])),
    foreign_reason=st.one_of(st.none(), st.sampled_from(["owner", "pairing"])),
    miss_reason=st.one_of(st.none(), st.sampled_from(["eviction", "expiry", "capacity"])),
)


@given(observations, observations, facts_st)
def test_exactly_one_known_class(
    stack: Observation, control: Observation, facts: ReadFacts
) -> None:
    result = classify(stack, control, facts)
    assert result.cls in CLASSES
    assert isinstance(result, tuple) and len(result) == 2


@given(observations, observations, facts_st)
def test_foreign_takes_precedence(
    stack: Observation, control: Observation, facts: ReadFacts
) -> None:
    result = classify(stack, control, facts)
    illegitimate = stack.hit and not facts.stack_answer_legitimate
    assert (result.cls == "foreign") == illegitimate
    if result.cls in ("new_only_hit", "match"):
        # An improvement or agreement is only ever a legitimate stack answer.
        assert stack.hit and facts.stack_answer_legitimate


@given(observations, observations, facts_st)
def test_classes_agree_with_hits(
    stack: Observation, control: Observation, facts: ReadFacts
) -> None:
    cls = classify(stack, control, facts).cls
    if cls == "error":
        assert stack.error is not None
    if cls in ("match", "value_mismatch", "new_only_hit"):
        assert stack.hit
    if cls in ("legacy_only_hit", "value_mismatch", "isolation"):
        assert control.hit
    if cls in ("both_miss", "legacy_only_hit"):
        assert not stack.hit
    if cls == "both_miss":
        assert not control.hit


SWAPPED = {
    "match": "match",
    "both_miss": "both_miss",
    "value_mismatch": "value_mismatch",
    "new_only_hit": "legacy_only_hit",
    "legacy_only_hit": "new_only_hit",
}


@given(
    st.builds(Observation, value=answers, latency_us=st.floats(0, 1e6)),
    st.builds(Observation, value=answers, latency_us=st.floats(0, 1e6)),
)
def test_symmetric_when_both_legitimate(left: Observation, right: Observation) -> None:
    forward = classify(left, right, LEGIT).cls
    backward = classify(right, left, LEGIT).cls
    assert SWAPPED[forward] == backward


def test_signature_of() -> None:
    assert signature_of(None) is None
    assert signature_of(SIG_A) == SIG_A
    assert signature_of((SIG_A, "text")) == SIG_A


class TestOracle:
    def test_written_for_normalises_main_keys(self) -> None:
        oracle = Oracle()
        oracle.record_write("main", "<think> hello </think>", SIG_A, "alice", 1.0)
        assert oracle.written_for("main", "hello", "alice", SIG_A)
        assert not oracle.written_for("main", "hello", "bob", SIG_A)
        assert not oracle.written_for("main", "hello", None, SIG_A)
        assert oracle.write_times("main", "  hello", "alice", SIG_A) == (1.0,)

    def test_tool_ids_are_not_normalised(self) -> None:
        oracle = Oracle()
        oracle.record_write("tool", " call_1", SIG_A, None, 0.0)
        assert not oracle.written_for("tool", "call_1", None, SIG_A)

    def test_writers_and_signatures(self) -> None:
        oracle = Oracle()
        oracle.record_write("main", "t1", SIG_A, "alice", 1.0)
        oracle.record_write("main", "t2", SIG_A, None, 2.0)
        oracle.record_write("main", "t1", SIG_A, "alice", 3.0)
        oracle.record_write("session", "s1", SIG_B, "bob", 4.0)
        assert oracle.writers_of("main", SIG_A) == frozenset({"alice", None})
        assert oracle.writers_of("main", SIG_B) == frozenset()
        assert oracle.written_by("session", "bob", SIG_B)
        assert oracle.signatures_for("main", "t1", "alice") == frozenset({SIG_A})
        assert oracle.write_times("main", "t1", "alice", SIG_A) == (1.0, 3.0)
        assert len(oracle) == 3

    def test_explain(self) -> None:
        oracle = Oracle()
        oracle.record_write("main", "t1", SIG_A, "alice", 1.0)
        assert oracle.explain("main", "t1", "alice", SIG_A) is None
        assert oracle.explain("main", "t1", "alice", None) is None
        assert oracle.explain("main", "t1", "bob", (SIG_A, "t1")) == "owner"
        assert oracle.explain("main", "t2", "alice", SIG_A) == "pairing"
        assert oracle.explain("main", "t1", "alice", SIG_B) == "never_written"

    def test_facts_for_a_cross_owner_control_answer(self) -> None:
        oracle = Oracle()
        oracle.record_write("main", "t", SIG_A, "alice", 1.0)
        facts = oracle.facts("main", "t", "bob", miss, hit_a)
        assert facts == ReadFacts(True, control_crossed="owner")
        assert classify(miss, hit_a, facts) == ("isolation", "owner")


# A toy model of the replay: an owner-strict cache never yields `foreign`; an owner-blind one
# is caught exactly when it hands out another owner's signature.
TEXTS = st.sampled_from(["t1", "t2"])
OWNERS = st.sampled_from([None, "alice", "bob"])
writes = st.lists(st.tuples(TEXTS, OWNERS, st.sampled_from([SIG_A, SIG_B])), max_size=12)


@given(writes, TEXTS, OWNERS)
def test_oracle_catches_owner_blind_cache(
    history: list[tuple[str, str | None, str]], text: str, owner: str | None
) -> None:
    oracle = Oracle()
    strict: dict[tuple[str, str | None], str] = {}
    blind: dict[str, tuple[str, str | None]] = {}
    for t, (key, writer, sig) in enumerate(history):
        oracle.record_write("main", key, sig, writer, float(t))
        strict[(key, writer)] = sig
        blind[key] = (sig, writer)
    control = Observation(blind[text][0] if text in blind else None)
    good = Observation(strict.get((text, owner)))
    result = classify(good, control, oracle.facts("main", text, owner, good, control))
    assert result.cls != "foreign"
    blind_answer = blind.get(text)
    bad = Observation(blind_answer[0] if blind_answer else None)
    result = classify(bad, control, oracle.facts("main", text, owner, bad, control))
    leaked = blind_answer is not None and not oracle.written_for(
        "main", text, owner, blind_answer[0]
    )
    assert (result.cls == "foreign") == leaked


def test_oracle_prune_forgets_only_old_writes() -> None:
    oracle = Oracle()
    oracle.record_write("main", "a", "S1", None, 1.0)
    oracle.record_write("main", "a", "S1", None, 10.0)
    oracle.record_write("main", "b", "S2", "x", 2.0)
    assert oracle.prune(5.0) == 1
    assert oracle.written_for("main", "a", None, "S1")
    assert oracle.write_times("main", "a", None, "S1") == (10.0,)
    assert not oracle.written_for("main", "b", "x", "S2")
    assert oracle.writers_of("main", "S2") == frozenset()
    assert len(oracle) == 1
