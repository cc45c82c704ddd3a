"""Deferred shadow writes (`async_write_to_new`): same answers and counts as inline, only later."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigcache.facade import CacheFacade
from sigcache.migration_config import MigrationConfig
from sigcache.phases import MigrationPhase
from sigcache.shadow import ShadowWrite, ShadowWriter
from tests.contract import SIG_A, SIG_B, SIG_C, FakeClock

P = MigrationPhase
TEXTS = [f"the model reasons about question {i} at some length" for i in range(4)]
SIGS = [SIG_A, SIG_B, SIG_C]


def write(n: int) -> ShadowWrite:
    return ("set", (n,), {}, float(n))


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


# -- the queue ------------------------------------------------------------------------------


def test_the_thread_applies_writes_in_order() -> None:
    seen: list[int] = []
    shadow = ShadowWriter(lambda w: seen.append(w[1][0]))
    for n in range(1_000):
        shadow.submit(write(n))
    assert wait_for(lambda: len(seen) == 1_000)
    assert seen == list(range(1_000))
    assert shadow.stats()["pending"] == 0 and shadow.stats()["applied"] == 1_000
    shadow.close()


def test_a_drain_applies_everything_queued_in_the_callers_thread() -> None:
    gate = threading.Event()
    threads: list[str] = []

    def apply(w: ShadowWrite) -> None:
        gate.wait(5)  # the writer thread's first write blocks until the test lets it go
        threads.append(threading.current_thread().name)

    shadow = ShadowWriter(apply)
    shadow.submit(write(0))
    for n in range(1, 5):
        shadow.submit(write(n))
    gate.set()
    shadow.drain()  # waits for the thread's batch, then applies whatever is left itself
    assert shadow.pending == 0
    assert len(threads) == 5
    shadow.close()


def test_a_full_queue_makes_the_caller_apply_the_oldest_write() -> None:
    blocked, seen = threading.Event(), []
    shadow = ShadowWriter(lambda w: seen.append(w[1][0]), max_pending=3)
    shadow._start = lambda: None  # type: ignore[method-assign]  # no thread: only back-pressure
    shadow._thread = threading.current_thread()  # looks started
    for n in range(5):
        shadow.submit(write(n))
    assert seen == [0, 1] and shadow.pending == 3  # nothing dropped, order kept
    assert shadow.stats()["backpressure"] == 2
    shadow._thread = None
    shadow.drain()
    assert seen == [0, 1, 2, 3, 4]
    assert not blocked.is_set()


def test_close_applies_the_queue_and_later_writes_inline() -> None:
    seen: list[int] = []
    shadow = ShadowWriter(lambda w: seen.append(w[1][0]))
    for n in range(10):
        shadow.submit(write(n))
    shadow.close()
    assert seen == list(range(10))
    shadow.submit(write(10))
    assert seen[-1] == 10 and shadow.pending == 0


def test_a_drain_from_inside_an_apply_is_a_no_op() -> None:
    seen: list[int] = []
    shadow: ShadowWriter

    def apply(w: ShadowWrite) -> None:
        assert shadow.drain() == 0  # would deadlock or reorder if it applied
        seen.append(w[1][0])

    shadow = ShadowWriter(apply)
    for n in range(3):
        shadow.submit(write(n))
    shadow.drain()
    assert seen == [0, 1, 2]
    shadow.close()


# -- through the facade -----------------------------------------------------------------------


def make(tmp_path: Path, clock: FakeClock, name: str = "l2.db", **config: Any) -> CacheFacade:
    # No live sampling: its worker reads the new cache at moments (and with a draw) that differ
    # between two facades, which would make the side-by-side comparison depend on timing.
    cfg = MigrationConfig(
        new_l2_db_path=str(tmp_path / name), consistency_sample_rate=0.0, **config
    )
    facade = CacheFacade(cfg, clock=clock)
    facade.enable_migration_mode()
    facade.set_migration_phase(P.DUAL_WRITE, force=True)
    return facade


def test_config_from_env_and_status(tmp_path: Path) -> None:
    cfg = MigrationConfig.from_env({"CACHE_ASYNC_WRITE_TO_NEW": "yes"})
    assert cfg.async_write_to_new is True
    assert MigrationConfig.from_env({}).async_write_to_new is False
    with make(tmp_path, FakeClock(), async_write_to_new=True) as facade:
        status = facade.get_migration_status()
        assert status["flags"]["write"]["async_to_new"] is True
        assert status["shadow_writes"]["async"] is True
    with make(tmp_path, FakeClock(), "other.db") as facade:
        assert facade.get_migration_status()["flags"]["write"]["async_to_new"] is False


def test_a_deferred_write_is_read_back_from_the_new_cache(tmp_path: Path) -> None:
    clock = FakeClock()
    with make(tmp_path, clock, async_write_to_new=True) as facade:
        assert facade.cache_signature(TEXTS[0], SIG_A)
        new = facade.new_cache()
        assert new is not None and new.get(TEXTS[0]) == SIG_A
        status = facade.get_migration_status()
        assert status["dual_write_stats"]["new_writes"] == 1
        assert status["dual_write_stats"]["dual_writes"] == 1
        assert status["shadow_writes"]["pending"] == 0


def hold(facade: CacheFacade) -> None:
    """Keep deferred writes queued: no thread applies them until something drains."""
    shadow = facade.adapter.shadow
    assert shadow is not None
    shadow.close()  # stops the thread (after applying what is queued)
    shadow._stopping = False  # ...and takes its place: queued writes wait for a drain
    shadow._thread = threading.current_thread()


def test_deferred_writes_keep_their_write_time(tmp_path: Path) -> None:
    clock = FakeClock()
    with make(tmp_path, clock, async_write_to_new=True) as facade:
        assert facade.cache_signature(TEXTS[0], SIG_A)  # builds the new cache (inline)
        hold(facade)
        made = clock()
        assert facade.cache_signature(TEXTS[1], SIG_B, conversation_id="c1")
        assert facade.adapter.shadow is not None and facade.adapter.shadow.pending == 1
        clock.advance(30)
        new = facade.new_cache()  # applies it, 30 s after it was made
        assert new is not None
        written = {e.text: e.written_at for e in new.entries()}  # type: ignore[attr-defined]
        assert written[TEXTS[1]] == made


def test_a_failing_new_cache_never_reaches_the_caller(tmp_path: Path) -> None:
    class Broken:
        def set(
            self, *a: Any, validated: bool = False, written_at: float | None = None, **k: Any
        ) -> bool:
            raise RuntimeError("disk on fire")

        def __getattr__(self, name: str) -> Any:
            raise AttributeError(name)

    cfg = MigrationConfig(new_l2_db_path=str(tmp_path / "l2.db"), async_write_to_new=True)
    facade = CacheFacade(cfg, clock=FakeClock(), new_cache_factory=lambda *a, **k: Broken())
    facade.enable_migration_mode()
    facade.set_migration_phase(P.DUAL_WRITE, force=True)
    for text in TEXTS:
        assert facade.cache_signature(text, SIG_A) is True
    assert facade.get_cached_signature(TEXTS[0]) == SIG_A  # legacy answers
    stats = facade.get_migration_status()["dual_write_stats"]
    assert stats["new_failures"] >= len(TEXTS) - 1  # the first write built the cache inline
    assert stats["legacy_writes"] == len(TEXTS)
    facade.close()


def test_a_promotion_applies_queued_writes_first(tmp_path: Path) -> None:
    with make(tmp_path, FakeClock(), async_write_to_new=True) as facade:
        assert facade.cache_signature(TEXTS[0], SIG_A)
        hold(facade)
        assert facade.cache_signature(TEXTS[1], SIG_B)
        assert facade.adapter.shadow.pending == 1  # type: ignore[union-attr]
        facade.set_migration_phase(P.NEW_PREFERRED, force=True)
        assert facade.adapter.shadow.pending == 0  # type: ignore[union-attr]
        facade.legacy.clear()
        assert facade.get_cached_signature(TEXTS[1]) == SIG_B  # the new cache has it


def test_close_commits_queued_writes_to_l2(tmp_path: Path) -> None:
    clock = FakeClock()
    facade = make(tmp_path, clock, async_write_to_new=True)
    for text, sig in zip(TEXTS, SIGS, strict=False):
        assert facade.cache_signature(text, sig)
    facade.close()
    with make(tmp_path, clock) as reopened:  # a fresh process: legacy is empty
        new = reopened.new_cache(True)
        assert new is not None
        assert [new.get(t) for t in TEXTS[:3]] == SIGS


# -- the same answers as inline -----------------------------------------------------------------

OPS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(TEXTS), st.sampled_from(SIGS)),
    st.tuples(st.just("get"), st.sampled_from(TEXTS), st.none()),
    st.tuples(st.just("tool"), st.sampled_from(["toolu_1", "toolu_2"]), st.sampled_from(SIGS)),
    st.tuples(st.just("get_tool"), st.sampled_from(["toolu_1", "toolu_2"]), st.none()),
    st.tuples(st.just("forget_legacy"), st.none(), st.none()),
    st.tuples(st.just("promote"), st.none(), st.none()),
    st.tuples(st.just("tick"), st.none(), st.none()),
)


def _run(facade: CacheFacade, clock: FakeClock, ops: list[tuple[Any, Any, Any]]) -> list[Any]:
    answers: list[Any] = []
    for op, a, b in ops:
        if op == "set":
            answers.append(facade.cache_signature(a, b))
        elif op == "get":
            answers.append(facade.get_cached_signature(a))
        elif op == "tool":
            answers.append(facade.cache_tool_signature(a, b))
        elif op == "get_tool":
            answers.append(facade.get_tool_signature(a))
        elif op == "forget_legacy":
            facade.legacy.clear()  # legacy loses everything: reads now reach the new cache
        elif op == "promote" and facade.effective_phase is P.DUAL_WRITE:
            facade.set_migration_phase(P.NEW_PREFERRED, force=True)
        clock.advance(1)
    status = facade.get_migration_status()
    answers.append((status["dual_write_stats"], status["read_stats"]))
    return answers


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(OPS, max_size=40))
def test_deferred_and_inline_writes_answer_alike(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[Any, Any, Any]]
) -> None:
    root = tmp_path_factory.mktemp("shadow")
    results = []
    for deferred in (False, True):
        clock = FakeClock()
        with make(root, clock, f"l2-{deferred}.db", async_write_to_new=deferred) as facade:
            results.append(_run(facade, clock, ops))
    assert results[0] == results[1]
