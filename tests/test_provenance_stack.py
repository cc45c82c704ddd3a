"""Provenance through the stack (issue 13): router, read repair, facade, module API, recordings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sigcache import signature_cache as sc
from sigcache.adapter import LegacySignatureCacheAdapter
from sigcache.facade import CacheFacade, default_new_cache_factory
from sigcache.layered import LayeredSignatureCache
from sigcache.legacy import SignatureCache
from sigcache.migration_config import MigrationConfig
from sigcache.observers import OperationEvent
from sigcache.phases import MigrationFeatureFlags, MigrationPhase
from sigcache.provenance import model_family
from sigcache.recording import RecordedEvent
from sigcache.redaction import Redactor
from tests.contract import SIG_A, SIG_B, FakeClock

P = MigrationPhase
CLAUDE, GEMINI = "claude-sonnet-4-5", "gemini-3-pro-high"


class Stack:
    """A legacy cache and a real layered cache behind an adapter in one phase."""

    def __init__(self, tmp_path: Path, phase: MigrationPhase) -> None:
        self.clock = FakeClock()
        self.legacy = SignatureCache(clock=self.clock)
        self.new = LayeredSignatureCache(tmp_path / "l2.db", clock=self.clock)
        self.adapter = LegacySignatureCacheAdapter(
            self.legacy, lambda build: self.new, MigrationFeatureFlags(phase)
        )

    def close(self) -> None:
        self.new.close()


@pytest.fixture
def stacks(tmp_path: Path) -> Any:
    made: list[Stack] = []

    def build(phase: MigrationPhase) -> Stack:
        made.append(Stack(tmp_path / phase.name, phase))
        return made[-1]

    yield build
    for stack in made:
        stack.close()


@pytest.mark.parametrize("phase", [P.DUAL_WRITE, P.NEW_PREFERRED, P.NEW_ONLY])
def test_every_phase_writes_provenance_into_the_new_cache(
    stacks: Any, phase: MigrationPhase
) -> None:
    stack = stacks(phase)
    a = stack.adapter
    assert a.set("text", SIG_A, CLAUDE, "o", scope="acct", conversation_id="c1")
    assert a.cache_tool_signature("toolu_1", SIG_B, "o", model=GEMINI, conversation_id="c1")
    assert a.cache_session_signature("s", SIG_A, "t", "o", model=CLAUDE, scope="acct")
    new = stack.new
    assert new.get("text", "o", model=GEMINI) is None and new.get("text", "o") == SIG_A
    assert new.get("text", "o", scope="other") is None
    assert new.get_tool_signature("toolu_1", "o", model=CLAUDE) is None
    assert new.get_session_signature("s", "o", scope="other") is None
    assert new.get_last_signature("o", conversation_id="c1") == SIG_A


def test_reads_in_new_only_refuse_another_family(stacks: Any) -> None:
    stack = stacks(P.NEW_ONLY)
    a = stack.adapter
    a.set("text", SIG_A, CLAUDE, "o", conversation_id="c1")
    assert a.get("text", "o", model=GEMINI) is None
    assert a.get("text", "o", model=CLAUDE) == SIG_A
    assert a.get_last_signature("o") is None  # no conversation named: nothing
    assert a.get_last_signature("o", conversation_id="c1") == SIG_A
    assert a.get_recent_signature(owner_id="o", conversation_id="c2") is None


def test_legacy_authoritative_phases_answer_as_legacy(stacks: Any) -> None:
    stack = stacks(P.DUAL_WRITE)
    a = stack.adapter
    a.set("text", SIG_A, CLAUDE, "o")
    assert a.get("text", "o", model=GEMINI) == SIG_A  # legacy matches any family, as before
    assert a.get_last_signature("o") == SIG_A


def test_new_preferred_withholds_legacy_answers_of_another_family(stacks: Any) -> None:
    stack = stacks(P.NEW_PREFERRED)
    stack.legacy.set("older text", SIG_A, CLAUDE, "o")  # written before the new cache had it
    a = stack.adapter
    # The new cache misses; legacy's entry is Claude's, so a Gemini read gets nothing, counted ...
    assert a.get("older text", "o", model=GEMINI) is None
    reads = a.stats.snapshot()[1]
    assert reads["fallback_refused_legacy_family"] == reads["fallback_provenance_refusals"] == 1
    assert (reads["legacy_misses"], reads["fallback_hits"], reads["misses"]) == (1, 0, 1)
    # ... and nothing is copied into the new cache.
    assert stack.new.get("older text", "o") is None
    assert reads["read_repairs"] == 0
    # A Claude read gets it and repairs it; the copy keeps the model legacy stored.
    assert a.get("older text", "o", model=CLAUDE) == SIG_A
    assert stack.new.get("older text", "o") == SIG_A
    assert stack.new.get("older text", "o", model=GEMINI) is None
    # A repair never becomes a conversation's "last" signature (its conversation is unknown).
    assert stack.new.get_last_signature("o", conversation_id="c1") is None


def test_new_preferred_passes_legacy_answers_it_cannot_tell_apart(stacks: Any) -> None:
    stack = stacks(P.NEW_PREFERRED)
    a = stack.adapter
    stack.legacy.set("no model", SIG_A, None, "o")  # an entry without a model matches any read
    stack.legacy.set("claude", SIG_B, CLAUDE, "o")
    stack.legacy.cache_tool_signature("toolu_1", SIG_B, "o")  # legacy's tool entries: no model
    assert a.get("no model", "o", model=GEMINI) == SIG_A
    assert a.get("claude", "o", scope="acct") == SIG_B  # legacy keeps no scope to compare
    assert a.get("claude", "o") == SIG_B  # a read naming no model matches any family
    assert a.get_tool_signature("toolu_1", "o", model=GEMINI) == SIG_B
    assert a.stats.snapshot()[1]["fallback_provenance_refusals"] == 0


# One Claude write through the stack, then reads naming another model, per phase: legacy's own
# answer where legacy is primary (unchanged), nothing where the new cache answers.
_WRITES: dict[str, Callable[[Any], bool]] = {
    "main": lambda c: c.set("text", SIG_A, CLAUDE, "o"),
    "tool": lambda c: c.cache_tool_signature("toolu_1", SIG_A, "o", model=CLAUDE),
    "session": lambda c: c.cache_session_signature("s", SIG_A, "t", "o", model=CLAUDE),
}
_READS: dict[str, list[Callable[..., Any]]] = {
    "main": [lambda c, **kw: c.get("text", "o", **kw)],
    "tool": [
        lambda c, **kw: c.get_tool_signature("toolu_1", "o", **kw),
        lambda c, **kw: c.get_tool_signature_fuzzy("toolu_1", owner_id="o", **kw),
    ],
    "session": [
        lambda c, **kw: c.get_session_signature("s", "o", **kw),
        lambda c, **kw: c.get_session_signature_with_text("s", "o", **kw),
    ],
}


@pytest.mark.parametrize("store", sorted(_WRITES))
@pytest.mark.parametrize("phase", list(P), ids=[p.name for p in P])
def test_a_claude_signature_reaches_a_gemini_read_only_where_legacy_is_primary(
    stacks: Any, phase: MigrationPhase, store: str
) -> None:
    stack = stacks(phase)
    a, bare = stack.adapter, SignatureCache(clock=stack.clock)
    assert _WRITES[store](a) and _WRITES[store](bare)
    for read in _READS[store]:
        answer = read(a, model=GEMINI)
        if phase <= P.DUAL_WRITE:
            assert answer == read(bare, model=GEMINI) is not None  # legacy's answer, unchanged
        else:
            assert answer is None
        assert read(a, model=CLAUDE) == read(bare)  # the right family is answered everywhere
    reads, new = a.stats.snapshot()[1], stack.new.get_stats()
    refused = len(_READS[store]) if phase >= P.NEW_PREFERRED else 0
    assert new["provenance_misses_family"] == refused
    expected = refused if phase is P.NEW_PREFERRED else 0
    assert reads["fallback_refused_new_family"] == reads["fallback_provenance_refusals"] == expected
    if phase is P.NEW_PREFERRED:
        assert reads["legacy_hits"] == reads["legacy_misses"] == 0  # legacy was never asked


_MODELS = [CLAUDE, GEMINI, "gpt-5", None]


@pytest.mark.parametrize("phase", list(P), ids=[p.name for p in P])
def test_every_family_pairing_per_phase(tmp_path: Path, phase: MigrationPhase) -> None:
    cases = [(w, r, t) for w in _MODELS for r in _MODELS for t in ("stack", "legacy")]
    for n, (written, read, through) in enumerate(cases):
        stack = Stack(tmp_path / str(n), phase)
        try:
            target = stack.adapter if through == "stack" else stack.legacy
            assert target.set("text", SIG_A, written, "o")
            answer = stack.adapter.get("text", "o", model=read)
            fits = None in (written, read) or model_family(written) == model_family(read)
            in_new = through == "stack" and phase >= P.DUAL_WRITE
            expected = {
                P.LEGACY_ONLY: True,
                P.DUAL_WRITE: True,
                P.NEW_PREFERRED: fits,
                P.NEW_ONLY: fits and in_new,
            }[phase]
            assert answer == (SIG_A if expected else None), (written, read, through)
        finally:
            stack.close()


def test_new_preferred_scope_refusal_settles_the_read(stacks: Any) -> None:
    stack = stacks(P.NEW_PREFERRED)
    a = stack.adapter
    assert a.set("text", SIG_A, CLAUDE, "o", scope="acct-1")
    assert a.get("text", "o", scope="acct-2") is None  # legacy (no scopes) is not asked
    assert a.get("text", "o", scope="acct-1") == SIG_A
    reads = a.stats.snapshot()[1]
    assert reads["fallback_refused_new_scope"] == reads["fallback_provenance_refusals"] == 1
    assert reads["legacy_hits"] == reads["legacy_misses"] == 0


def test_new_preferred_last_recent_fall_back_to_legacy(stacks: Any) -> None:
    stack = stacks(P.NEW_PREFERRED)
    stack.adapter.set("text", SIG_A, CLAUDE, "o", conversation_id="c1")
    # The new cache refuses (no conversation named); legacy answers, as in every phase before.
    assert stack.adapter.get_last_signature("o") == SIG_A
    assert stack.new.get_stats()["provenance_misses_conversation"] == 1
    assert stack.adapter.stats.snapshot()[1]["fallback_hits"] == 1


def test_new_preferred_last_recent_withhold_legacy_answers_of_another_family(
    stacks: Any,
) -> None:
    stack = stacks(P.NEW_PREFERRED)
    a = stack.adapter
    a.set("text", SIG_A, CLAUDE, "o", conversation_id="c1")
    # No conversation: legacy is asked (the phase table), but its entry is Claude's.
    assert a.get_last_signature("o", model=GEMINI) is None
    assert a.get_last_signature_with_text("o", model=GEMINI) is None
    assert a.get_recent_signature(owner_id="o", model=GEMINI) is None
    assert a.get_recent_signature_with_text(owner_id="o", model=GEMINI) is None
    assert a.get_last_signature("o", model=CLAUDE) == SIG_A
    assert a.get_recent_signature_with_text(owner_id="o", model=CLAUDE) == (SIG_A, "text")
    assert a.stats.snapshot()[1]["fallback_refused_legacy_family"] == 4
    # The conversation's own newest entry is Claude's: the new cache settles it, legacy unasked.
    assert a.get_last_signature("o", model=GEMINI, conversation_id="c1") is None
    reads = a.stats.snapshot()[1]
    assert reads["fallback_refused_new_family"] == 1
    assert reads["fallback_provenance_refusals"] == 5
    # Legacy's tool entries carry no model: a recent answer from them is legacy's, as before.
    stack.legacy.cache_tool_signature("toolu_1", SIG_B, "o")
    assert a.get_recent_signature(owner_id="o", model=GEMINI) == SIG_B


def test_refused_fallbacks_are_sampled_as_isolation(tmp_path: Path) -> None:
    config = MigrationConfig(
        new_l2_db_path=str(tmp_path / "l2.db"),
        use_migration_adapter=True,
        consistency_sample_rate=1.0,
    )
    facade = CacheFacade(config, clock=FakeClock(), new_cache_factory=default_new_cache_factory)
    try:
        assert facade.cache_signature("old", SIG_A, CLAUDE, "o")  # legacy only
        for step in (P.DUAL_WRITE, P.NEW_PREFERRED):
            facade.set_migration_phase(step)
        assert facade.cache_signature("new", SIG_B, CLAUDE, "o")  # both caches
        assert facade.get_cached_signature("old", "o", model=GEMINI) is None  # legacy withheld
        assert facade.get_cached_signature("new", "o", model=GEMINI) is None  # new settles it
        assert facade.sampler.drain(30)
        classes = facade.get_migration_status()["live_consistency"]["classes"]
        assert classes["isolation"] == 2 and classes["legacy_only_hit"] == 0
    finally:
        facade.close()


def test_a_candidate_without_provenance_keywords_still_serves_plain_calls(tmp_path: Path) -> None:
    class OldCandidate(SignatureCache):
        def get(self, thinking_text: str, owner_id: str | None = None) -> Any:  # type: ignore[override]
            return super().get(thinking_text, owner_id)

    clock = FakeClock()
    legacy, new = SignatureCache(clock=clock), OldCandidate(clock=clock)
    adapter = LegacySignatureCacheAdapter(legacy, lambda b: new, MigrationFeatureFlags(P.NEW_ONLY))
    adapter.set("text", SIG_A)
    assert adapter.get("text") == SIG_A  # no provenance named: nothing new is passed
    assert adapter.get("text", model=CLAUDE) is None  # a TypeError inside: a counted failure


# -- the facade and the module API ------------------------------------------------------------


def _facade(tmp_path: Path, phase: MigrationPhase) -> CacheFacade:
    config = MigrationConfig(
        new_l2_db_path=str(tmp_path / "l2.db"), use_migration_adapter=True, initial_phase=phase
    )
    return CacheFacade(config, clock=FakeClock(), new_cache_factory=default_new_cache_factory)


def test_events_carry_provenance_arguments_only_when_given(tmp_path: Path) -> None:
    events: list[OperationEvent] = []
    with _facade(tmp_path, P.NEW_ONLY) as facade:
        facade.add_observer(events.append)
        facade.cache_signature("t", SIG_A, CLAUDE, "o")
        facade.cache_signature("t", SIG_A, CLAUDE, "o", conversation_id="c1", scope="acct")
        facade.get_cached_signature("t", "o")
        facade.get_cached_signature("t", "o", model=GEMINI)
        facade.get_last_signature()
        facade.get_last_signature(owner_id="o", conversation_id="c1")
        facade.cache_tool_signature("toolu_1", SIG_B, model=GEMINI)
        facade.get_tool_signature_fuzzy("toolu_1")
    args = [event.args for event in events]
    assert args[0] == {"thinking_text": "t", "signature": SIG_A, "model": CLAUDE, "owner_id": "o"}
    assert args[1]["conversation_id"] == "c1" and args[1]["scope"] == "acct"
    assert args[2] == {"thinking_text": "t", "owner_id": "o"}
    assert args[3] == {"thinking_text": "t", "owner_id": "o", "model": GEMINI}
    assert args[4] == {}
    assert args[5] == {"owner_id": "o", "conversation_id": "c1"}
    assert args[6] == {"tool_id": "toolu_1", "signature": SIG_B, "owner_id": None, "model": GEMINI}
    assert args[7] == {"tool_id": "toolu_1", "max_candidates": 5}
    assert [event.result for event in events[2:6]] == [SIG_A, None, None, SIG_A]


def test_module_functions_take_the_provenance_keywords(tmp_path: Path) -> None:
    env = {
        "CACHE_NEW_L2_DB_PATH": str(tmp_path / "l2.db"),
        "CACHE_USE_MIGRATION_ADAPTER": "true",
        "CACHE_MIGRATION_PHASE": "NEW_ONLY",
    }
    sc.reset_signature_cache(clock=FakeClock(), environ=env)
    try:
        assert sc.cache_signature("t", SIG_A, CLAUDE, "o", conversation_id="c1")
        assert sc.get_cached_signature("t", "o", model=GEMINI) is None
        assert sc.get_cached_signature("t", "o") == SIG_A
        assert sc.get_last_signature(owner_id="o") is None
        assert sc.get_last_signature(owner_id="o", conversation_id="c1") == SIG_A
        assert sc.get_last_signature_with_text(owner_id="o", conversation_id="c1") == (SIG_A, "t")
        assert sc.get_recent_signature(owner_id="o", conversation_id="c1", model=CLAUDE) == SIG_A
        assert sc.cache_tool_signature("toolu_01Z", SIG_B, "o", model=GEMINI)
        assert sc.get_tool_signature("call_01Z", "o") == SIG_B
        assert sc.get_tool_signature_fuzzy("call_01Z_retry1", owner_id="o") == SIG_B
        assert sc.cache_session_signature("s", SIG_B, "x", "o", conversation_id="c2")
        assert sc.get_session_signature("s", "o", model=CLAUDE) == SIG_B  # no model stored
        assert sc.get_recent_signature_with_text(owner_id="o", conversation_id="c2") == (SIG_B, "x")
        stats = sc.get_cache_stats()["new_cache_stats"]
        assert stats["provenance_misses_family"] == 1
        assert stats["provenance_misses_conversation"] == 1
        assert stats["tool_alias_hits"] == 2
    finally:
        sc.reset_signature_cache()


def test_redaction_hides_conversations_and_scopes_but_keeps_models() -> None:
    event = RecordedEvent(
        0,
        0.0,
        "get_cached_signature",
        {"thinking_text": "t", "owner_id": "o", "model": CLAUDE, "scope": "acct-9",
         "conversation_id": "conv-secret"},
        None,
        "w",
        "LEGACY_ONLY",
        1.0,
    )  # fmt: skip
    redacted = Redactor(b"k").event(event).args
    assert redacted["model"] == CLAUDE
    assert redacted["scope"] != "acct-9" and len(redacted["scope"]) == len("acct-9")
    assert redacted["conversation_id"] != "conv-secret"
