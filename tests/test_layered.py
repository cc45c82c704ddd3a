"""LayeredSignatureCache: tiers, restart, overlay, stats, isolation, L2 faults, config."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigcache import schema
from sigcache.config import L1Settings, L2Settings, LayeredConfig, default_db_path
from sigcache.errors import ConfigError, StorageOpenError
from sigcache.layered import LayeredSignatureCache
from tests.contract import SIG_A, SIG_B, SIG_C, FakeClock

DAY = 86_400.0


def _cache(path: Path, clock: FakeClock, **l2: object) -> LayeredSignatureCache:
    config = LayeredConfig(L1Settings(max_entries=100, ttl_seconds=60), L2Settings(**l2))  # type: ignore[arg-type]
    return LayeredSignatureCache(path, config=config, clock=clock)


def _stats(cache: LayeredSignatureCache) -> dict[str, Any]:
    return cache.get_stats()


def test_restart_serves_flushed_entries_from_l2(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "c.db"
    with _cache(path, clock, ttl_seconds=DAY) as cache:
        cache.set("<think>kept</think>", SIG_A, "claude", "alice", conversation_id="c1")
        cache.set("short lived", SIG_B, conversation_id="c0")
        cache.cache_tool_signature("toolu_1", SIG_C)
        cache.cache_session_signature("sess", SIG_A, "session text", "bob", conversation_id="c2")
    clock.advance(DAY / 2)
    with _cache(path, clock, ttl_seconds=DAY) as cache:
        assert cache.get("kept", owner_id="alice") == SIG_A
        assert cache.read_tier() == "l2"
        assert cache.get("kept", owner_id="alice") == SIG_A
        assert cache.read_tier() == "l1"  # promoted
        assert cache.get("kept") is None
        assert cache.get_tool_signature("toolu_1") == SIG_C
        assert cache.get_session_signature_with_text("sess", "bob") == (SIG_A, "session text")
        found = cache.get_last_signature_with_text("alice", conversation_id="c1")
        assert found == (SIG_A, "<think>kept</think>")
        assert cache.get_recent_signature(DAY, owner_id="bob", conversation_id="c2") == SIG_A
        assert cache.get_tool_signature("call_toolu_1_retry2") == SIG_C  # a form, from L2
        clock.advance(DAY)
        assert cache.get("short lived") is None  # expired in L2 too
        assert cache.get_last_signature(conversation_id="c0") is None
        assert cache.size == 0


def test_promotion_never_outlives_the_row(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "c.db"
    with _cache(path, clock, ttl_seconds=100) as cache:
        cache.set("text", SIG_A)
    clock.advance(90)
    with _cache(path, clock, ttl_seconds=100) as cache:
        assert cache.get("text") == SIG_A and cache.read_tier() == "l2"
        clock.advance(10)
        assert cache.get("text") == SIG_A and cache.read_tier() == "l1"
        clock.advance(1)  # past the row's expiry, though within L1's 60 s from promotion
        assert cache.get("text") is None


def test_read_your_writes_after_l1_eviction_before_flush(tmp_path: Path) -> None:
    clock = FakeClock()
    config = LayeredConfig(L1Settings(max_entries=2), L2Settings(batch_interval_ms=60_000))
    with LayeredSignatureCache(tmp_path / "c.db", config=config, clock=clock) as cache:
        for i in range(5):
            cache.set(f"text {i}", SIG_A)
        assert cache.get("text 0") == SIG_A  # evicted from L1, still queued
        assert cache.get_stats()["pending_hits"] == 1
        assert cache.invalidate("text 1") is True
        assert cache.get("text 1") is None  # a pending delete hides the pending put
        assert cache.flush(timeout=10)
        assert cache.get("text 1") is None


def test_get_many_and_stats_add_up(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "c.db"
    with _cache(path, clock) as cache:
        for i in range(4):
            cache.set(f"t{i}", SIG_A)
    with _cache(path, clock) as cache:
        cache.set("t9", SIG_B)
        answers = cache.get_many(["t0", "t1", "t9", "nope", None, "t0"])
        assert answers == [SIG_A, SIG_A, SIG_B, None, None, SIG_A]
        stats: dict[str, Any] = cache.get_stats()
        assert all(isinstance(v, int | float) for v in stats.values())
        assert stats["hits"] == 4 and stats["misses"] == 1
        assert stats["l1_hits"] + stats["pending_hits"] + stats["l2_hits"] == stats["hits"]
        assert stats["l1_misses"] == stats["pending_hits"] + stats["l2_hits"] + stats["l2_misses"]
        assert stats["hit_rate"] == pytest.approx(0.8)
        cache.flush()
        assert cache.get_stats()["l2_rows"] == 5
        cache.reset_stats()
        assert cache.get_stats()["hits"] == 0 and cache.get_stats()["hit_rate"] == 0.0


def test_invalidate_every_owner_and_clear(tmp_path: Path) -> None:
    clock = FakeClock()
    with _cache(tmp_path / "c.db", clock) as cache:
        for owner in (None, "a", "b"):
            cache.set("shared", SIG_A, owner_id=owner)
        cache.set("other", SIG_B, owner_id="a")
        cache.flush()
        assert cache.invalidate("shared", owner_id="a") is True
        assert cache.get("shared", owner_id="b") == SIG_A
        assert cache.invalidate("shared") is True  # None: every owner
        assert cache.get("shared", owner_id="b") is None and cache.get("shared") is None
        cache.cache_tool_signature("toolu", SIG_C)
        assert cache.clear() == 1
        assert cache.get_tool_signature("toolu") == SIG_C  # clear is main-store only


def test_cleanup_covers_every_store_and_tier(tmp_path: Path) -> None:
    clock = FakeClock()
    with _cache(tmp_path / "c.db", clock, ttl_seconds=100) as cache:
        cache.set("m", SIG_A)
        cache.cache_tool_signature("t", SIG_A)
        cache.cache_session_signature("s", SIG_A)
        cache.flush()
        clock.advance(101)
        # Three in L1, three rows in L2, and the tool id's alias (issue 13) in each tier.
        assert cache.cleanup_expired() == 3 + 3 + 2
        assert cache.get_stats()["l2_rows"] == 0


def test_entries_for_backfill(tmp_path: Path) -> None:
    clock = FakeClock()
    with _cache(tmp_path / "c.db", clock) as cache:
        cache.set("first", SIG_A, owner_id="o")
        clock.advance(1)
        cache.cache_tool_signature("toolu", SIG_B)
        found = [(e.store, e.owner, e.text or e.key, e.signature) for e in cache.entries()]
        assert found == [("main", "o", "first", SIG_A), ("tool", "", "toolu", SIG_B)]


def test_fuzzy_and_recent_are_owner_strict(tmp_path: Path) -> None:
    clock = FakeClock()
    with _cache(tmp_path / "c.db", clock) as cache:
        cache.cache_tool_signature("call_abc", SIG_A, owner_id="a", conversation_id="c")
        assert cache.get_tool_signature_fuzzy("call_abc_2", owner_id="a") == SIG_A
        assert cache.get_tool_signature_fuzzy("call_abc_2", owner_id="b") is None
        assert cache.get_tool_signature_fuzzy("call_abc_2") is None
        assert cache.get_recent_signature(owner_id="b", conversation_id="c") is None
        assert cache.get_recent_signature(owner_id="a", conversation_id="c") == SIG_A
        found = cache.get_recent_signature(client_type="cursor", owner_id="a", conversation_id="c")
        assert found == SIG_A
        bad: Any = "bad"
        assert cache.get_recent_signature(bad, owner_id="a", conversation_id="c") is None


owners = st.sampled_from([None, "a", "b"])
texts = st.sampled_from(["t1", "t2", "<think>t1</think>"])
ops = st.lists(st.tuples(st.sampled_from(["set", "tool", "session"]), texts, owners), max_size=12)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(writes=ops, restart=st.booleans())
def test_no_answer_crosses_owners(
    tmp_path: Path, writes: list[tuple[str, str, str | None]], restart: bool
) -> None:
    """Every signature encodes its writer; a read must only ever see its own owner's."""
    clock = FakeClock()
    path = tmp_path / f"iso-{uuid.uuid4().hex}.db"  # a fresh file per example

    def sig(owner: str | None) -> str:
        return "S" * 60 + (owner or "none")

    cache = _cache(path, clock)
    writers: dict[str, Callable[..., bool]] = {
        "set": cache.set,
        "tool": cache.cache_tool_signature,
        "session": cache.cache_session_signature,
    }
    for op, text, owner in writes:
        writers[op](text, sig(owner), owner_id=owner)
    if restart:
        cache.close()
        cache = _cache(path, clock)
    try:
        for owner in (None, "a", "b"):
            for text in ("t1", "t2"):
                for answer in (
                    cache.get(text, owner),
                    cache.get_tool_signature(text, owner),
                    cache.get_session_signature(text, owner),
                    cache.get_tool_signature_fuzzy(text + "_1", owner_id=owner),
                    *cache.get_many([text], owner),
                ):
                    assert answer in (None, sig(owner))
            assert cache.get_last_signature(owner) in (None, sig(owner))
            assert cache.get_recent_signature(owner_id=owner) in (None, sig(owner))
            recent = cache.get_recent_signature_with_text(owner_id=owner)
            assert recent is None or recent[0] == sig(owner)
    finally:
        cache.close()


def test_l2_write_fault_degrades_to_l1_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    path = tmp_path / "c.db"
    with _cache(path, clock, busy_timeout_ms=20, batch_interval_ms=1) as cache:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        for i in range(3):
            assert cache.set(f"during {i}", SIG_A) is True
            assert cache.flush(timeout=5) is False
        assert cache.get("during 2") == SIG_A  # L1 keeps serving
        stats: dict[str, Any] = cache.get_stats()
        assert stats["write_errors"] == 3 and stats["l2_errors"] >= 3
        failing = [
            r
            for r in caplog.records
            if "[LAYERED_CACHE]" in r.getMessage() and "failing" in r.getMessage()
        ]
        assert len(failing) == 1  # once per burst
        blocker.execute("ROLLBACK")
        blocker.close()
        cache.set("after", SIG_B)
        assert cache.flush(timeout=5) is True
    with _cache(path, clock) as reopened:
        assert reopened.get("after") == SIG_B


def test_l2_read_fault_is_a_counted_miss_and_recovers(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "c.db"
    with _cache(path, clock) as cache:
        cache.set("text", SIG_A)
        cache.flush()
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TABLE entries")  # the file loses its table under the cache
        conn.close()
        assert cache.get("text") == SIG_A  # L1
        assert cache.get("never written") is None  # L2 read fails: a miss, not an exception
        assert cache.get_last_signature("nobody", conversation_id="c") is None
        assert _stats(cache)["l2_errors"] >= 2
        with sqlite3.connect(path) as conn:
            for statement in (*schema.DDL_V1, *schema.migration_steps(1)):
                conn.execute(statement)
        conn.close()
        cache.set("later", SIG_B)
        assert cache.flush(timeout=5)
    with _cache(path, clock) as reopened:
        assert reopened.get("later") == SIG_B


def test_open_errors_and_config_validation(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageOpenError, match="file"):
        LayeredSignatureCache(blocker / "c.db")
    with pytest.raises(ConfigError, match=r"l1\.ttl_seconds"):
        LayeredConfig(L1Settings(ttl_seconds=10), L2Settings(ttl_seconds=5))
    with pytest.raises(ConfigError):
        LayeredConfig(L1Settings(max_entries=0))
    path = default_db_path()
    assert path.is_absolute() and "sigcache" in str(path)
    assert not str(path).startswith(str(Path.cwd()))


def test_closed_cache_refuses_quietly(tmp_path: Path) -> None:
    cache = _cache(tmp_path / "c.db", FakeClock())
    cache.set("t", SIG_A)
    cache.close()
    cache.close()
    assert cache.set("u", SIG_A) is False
    assert cache.get("u") is None
    assert cache.get("t") == SIG_A  # L1 still answers
    assert isinstance(cache.get_stats()["l2_rows"], int)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_cache_keeps_working_in_a_forked_child(tmp_path: Path) -> None:
    clock = FakeClock()
    with _cache(tmp_path / "c.db", clock) as cache:
        cache.set("parent", SIG_A)
        assert cache.flush(timeout=10)
        assert cache.get("parent") == SIG_A
        pid = os.fork()
        if pid == 0:  # child: fresh locks, connections and writer thread
            ok = cache.get("parent") == SIG_A and cache.set("child", SIG_B)
            ok = ok and cache.flush(timeout=10) and cache.get_stats()["write_errors"] == 0
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    with _cache(tmp_path / "c.db", clock) as reopened:
        assert reopened.get("child") == SIG_B and reopened.read_tier() == "l2"


def test_last_never_returns_an_entry_invalidated_while_its_delete_is_queued(
    tmp_path: Path,
) -> None:
    # Found by the migration state machine: put committed to L2, delete still queued, L1 empty.
    from tests.contract import SIG_A, FakeClock

    with LayeredSignatureCache(tmp_path / "l2.db", clock=FakeClock()) as cache:
        text = "alpha " * 90 + "one"
        assert cache.set(text, SIG_A)
        cache.cleanup_expired()
        assert cache.invalidate(text)
        assert cache.get_last_signature() is None
        assert cache.get_recent_signature() is None
