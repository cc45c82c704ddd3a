"""Stateful agreement machine: random traffic, phase changes, restarts and failures.

Runs through the module API (the process-default facade, rebuilt on "restart") over the real
layered cache in a temporary directory, wrapped so the new cache can be made to fail.
Invariants: the caller never sees an exception; with a pure legacy history, LEGACY_ONLY answers
equal a bare legacy cache fed the same calls; every answer was written for that key and owner
into the cache that answered; no answer outlives that cache's TTL.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from sigcache import signature_cache as sc
from sigcache.keys import normalize_thinking_text
from sigcache.legacy import SignatureCache
from sigcache.migration_config import MigrationConfig
from sigcache.observers import OperationEvent
from sigcache.phases import MigrationPhase
from sigcache.strategies import WRITE_TABLE, CacheSide
from tests.contract import SIG_A, SIG_B, SIG_C, FakeClock
from tests.test_adapter import FlakyCache

P = MigrationPhase
PREFIX = "alpha " * 90  # > 500 characters: the first two texts collide in the legacy key
TEXTS = [PREFIX + "one", PREFIX + "two", "<think>beta</think>", "beta", "gamma"]
SIGS = [SIG_A, SIG_B, SIG_C]
OWNERS = [None, "owner-a"]
IDS = ["call_x_1", "call_x_2", "s1"]
TTL = {"legacy": 3600.0, "new": 7200.0}  # the new cache answers until its L2 TTL
ENV = {
    "CACHE_USE_MIGRATION_ADAPTER": "on",
    "CACHE_LEGACY_MAX_SIZE": "3",
    "CACHE_NEW_L1_MAX_SIZE": "2",
    "CACHE_NEW_L1_TTL": "600",
    "CACHE_NEW_L2_TTL": "7200",
}


@dataclass(frozen=True)
class Write:
    """One write the model knows reached one cache."""

    cache: str
    store: str
    key: str
    signature: str
    owner: str | None
    t: float
    text: str = ""


class MigrationMachine(RuleBasedStateMachine):
    """Random interleavings against the phase proxy, checked against a model."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="sigcache-machine-")
        self.env = {**ENV, "CACHE_NEW_L2_DB_PATH": f"{self.dir}/l2.db"}
        self.clock = FakeClock()
        self.writes: list[Write] = []
        self.flaky: FlakyCache | None = None
        self.failing = False
        self._boot()

    # -- plumbing -----------------------------------------------------------------------------

    def _factory(self, db_path: str, *, config: MigrationConfig, clock: Any) -> Any:
        from sigcache.facade import default_new_cache_factory

        self.flaky = FlakyCache(default_new_cache_factory(db_path, config=config, clock=clock))
        self.flaky.failing = self.failing
        return self.flaky

    def _boot(self) -> None:
        """Start (or restart) the process: legacy memory is gone, L2 and the phase persist."""
        self.flaky, self.failing = None, False
        sc.reset_signature_cache(
            clock=self.clock, environ=self.env, new_cache_factory=self._factory
        )
        self.events: list[OperationEvent] = []
        self.record = self.events.append
        sc.add_observer(self.record)
        self.reference = SignatureCache(3, TTL["legacy"], clock=self.clock)
        self.pure = self._phase() is P.LEGACY_ONLY
        self.writes = [w for w in self.writes if w.cache == "new"]

    def _phase(self) -> MigrationPhase:
        return sc.get_cache_facade().effective_phase

    def _mirror(self, call: Any) -> Any:
        """Feed the bare legacy reference while the facade's legacy history is pure."""
        return call(self.reference) if self.pure else None

    def _record_write(self, store: str, key: str, sig: str, owner: str | None, text: str) -> None:
        for index, side in enumerate(WRITE_TABLE[self._phase()].targets):
            if side is CacheSide.NEW and self.failing:
                if index == 0:
                    return  # the authoritative write failed: the other side is skipped
                continue
            self.writes.append(Write(side.value, store, key, sig, owner, self.clock(), text))

    def _check(self, store: str, key: str | None, owner: str | None, answer: Any) -> None:
        event = self.events[-1]
        if answer is None:
            return
        sig = answer[0] if isinstance(answer, tuple) else answer
        source = event.source
        assert source in ("legacy", "new"), event
        now = self.clock()
        matches = [
            w
            for w in self.writes
            if w.cache == source
            and w.signature == sig
            and (key is None or (w.store == store and w.key == key))
            and (key is None or _owner_ok(source, owner, w.owner))
            and now - w.t <= TTL[source]
        ]
        assert matches, f"{event.op} answered {source} {sig[:12]} never written (or expired)"
        if isinstance(answer, tuple) and key is not None:
            assert any(w.text == answer[1] for w in matches)
        if event.read_repair and key is not None:
            other = "new" if source == "legacy" else "legacy"
            # A session repair copies the answering cache's text even for a read without it.
            text = answer[1] if isinstance(answer, tuple) else matches[-1].text
            self.writes.append(Write(other, store, key, sig, owner, now, text))

    @initialize(phase=st.sampled_from(list(P)))
    def start_in(self, phase: MigrationPhase) -> None:
        """The environment's initial phase of a new database."""
        self.env["CACHE_MIGRATION_PHASE"] = phase.name
        self._boot()

    # -- writes -----------------------------------------------------------------------------

    @rule(text=st.sampled_from(TEXTS), sig=st.sampled_from(SIGS), owner=st.sampled_from(OWNERS))
    def write_main(self, text: str, sig: str, owner: str | None) -> None:
        result = sc.cache_signature(text, sig, owner_id=owner)
        assert result is True or self.failing
        expected = self._mirror(lambda c: c.set(text, sig, None, owner))
        assert expected is None or expected == result
        if result:
            self._record_write("main", normalize_thinking_text(text), sig, owner, text)

    @rule(ident=st.sampled_from(IDS), sig=st.sampled_from(SIGS), owner=st.sampled_from(OWNERS))
    def write_tool(self, ident: str, sig: str, owner: str | None) -> None:
        if sc.cache_tool_signature(ident, sig, owner):
            self._mirror(lambda c: c.cache_tool_signature(ident, sig, owner))
            self._record_write("tool", ident, sig, owner, "")

    @rule(ident=st.sampled_from(IDS), sig=st.sampled_from(SIGS), owner=st.sampled_from(OWNERS),
          text=st.sampled_from(TEXTS))  # fmt: skip
    def write_session(self, ident: str, sig: str, owner: str | None, text: str) -> None:
        if sc.cache_session_signature(ident, sig, text, owner):
            self._mirror(lambda c: c.cache_session_signature(ident, sig, text, owner))
            self._record_write("session", ident, sig, owner, text)

    # -- reads ------------------------------------------------------------------------------

    def _read(self, store: str, key: str | None, owner: str | None, call: Any) -> None:
        answer = call(sc)
        expected = self._mirror(call)
        if self.pure and self._phase() is P.LEGACY_ONLY:
            assert answer == expected, (store, key, answer, expected)
        if self._phase() is P.LEGACY_ONLY and answer is not None:
            assert self.events[-1].source == "legacy" and not self.events[-1].fallback
        self._check(store, key, owner, answer)

    @rule(text=st.sampled_from(TEXTS), owner=st.sampled_from(OWNERS))
    def read_main(self, text: str, owner: str | None) -> None:
        key = normalize_thinking_text(text)
        self._read("main", key, owner, lambda m: _call(m, "get_cached_signature", text, owner))

    @rule(ident=st.sampled_from(IDS), owner=st.sampled_from(OWNERS))
    def read_tool(self, ident: str, owner: str | None) -> None:
        self._read("tool", ident, owner, lambda m: _call(m, "get_tool_signature", ident, owner))

    @rule(ident=st.sampled_from(IDS), owner=st.sampled_from(OWNERS), text=st.booleans())
    def read_session(self, ident: str, owner: str | None, text: bool) -> None:
        op = "get_session_signature_with_text" if text else "get_session_signature"
        self._read("session", ident, owner, lambda m: _call(m, op, ident, owner))

    @rule(op=st.sampled_from(["get_last_signature", "get_recent_signature"]))
    def read_last(self, op: str) -> None:
        self._read("any", None, None, lambda m: _call(m, op))

    # -- admin ------------------------------------------------------------------------------

    @rule(text=st.sampled_from(TEXTS))
    def invalidate(self, text: str) -> None:
        sc.invalidate(text)
        self._mirror(lambda c: c.invalidate(text))
        key = normalize_thinking_text(text)
        self.writes = [
            w
            for w in self.writes
            if not (
                w.store == "main" and w.key == key and (w.cache == "legacy" or not self.failing)
            )
        ]

    @rule()
    def clear(self) -> None:
        sc.clear()
        self._mirror(lambda c: c.clear())
        self.writes = [
            w
            for w in self.writes
            if not (w.store == "main" and (w.cache == "legacy" or not self.failing))
        ]

    @rule()
    def cleanup(self) -> None:
        sc.cleanup_expired()
        self._mirror(lambda c: c.cleanup_expired())

    @rule(seconds=st.sampled_from([1.0, 1.0, 60.0, 700.0, 3000.0, 4000.0, 8000.0]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def promote(self) -> None:
        current = sc.get_cache_facade().phase
        if current < P.NEW_ONLY:
            sc.set_migration_phase(current + 1, actor="machine", force=True)
        self.pure = self.pure and self._phase() is P.LEGACY_ONLY

    @rule(data=st.data())
    def rollback(self, data: st.DataObject) -> None:
        current = sc.get_cache_facade().phase
        sc.set_migration_phase(data.draw(st.sampled_from([p for p in P if p <= current])))

    @rule(on=st.sampled_from([True, True, False]))
    def toggle_mode(self, on: bool) -> None:
        if on:
            sc.enable_migration_mode(actor="machine")
        else:
            sc.disable_migration_mode(actor="machine")
        self.pure = self.pure and self._phase() is P.LEGACY_ONLY

    @precondition(lambda self: self.flaky is not None)
    @rule()
    def toggle_new_cache_failure(self) -> None:
        self.failing = not self.failing
        assert self.flaky is not None
        self.flaky.failing = self.failing

    @rule()
    def restart(self) -> None:
        self._boot()

    @invariant()
    def status_is_numeric(self) -> None:
        reads = sc.get_migration_status()["read_stats"]
        assert isinstance(reads["hit_rate"], float) and 0.0 <= reads["hit_rate"] <= 1.0

    def teardown(self) -> None:
        sc.reset_signature_cache()
        shutil.rmtree(self.dir, ignore_errors=True)


def _owner_ok(source: str, caller: str | None, stored: str | None) -> bool:
    if source == "new":
        return caller == stored  # strict isolation
    return not caller or not stored or caller == stored  # the legacy permissive rule


def _call(target: Any, op: str, *args: Any) -> Any:
    """Call a module function, or the same operation on a bare legacy cache."""
    if isinstance(target, SignatureCache):
        op = {"get_cached_signature": "get"}.get(op, op)
    return getattr(target, op)(*args)


MigrationMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMigrationMachine = MigrationMachine.TestCase
