"""The async bridge: core operations through aiosqlite, run with asyncio.run in sync tests."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from sigcache.aio import AsyncLayeredSignatureCache
from sigcache.config import L1Settings, L2Settings, LayeredConfig
from sigcache.layered import LayeredSignatureCache
from tests.contract import BAD_IDS, BAD_SIGNATURES, BAD_TEXTS, SIG_A, SIG_B, SIG_C, FakeClock


def test_async_core_contract(tmp_path: Path) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        async with AsyncLayeredSignatureCache.open(tmp_path / "a.db", clock=clock) as cache:
            c = "conversation"
            assert await cache.aset("  <think>thought</think>", SIG_A, conversation_id=c)
            assert await cache.aget("thought") == SIG_A
            assert await cache.aget("never") is None
            assert await cache.aset("thought", SIG_B, "claude-x", "alice", conversation_id=c)
            assert await cache.aget("thought", owner_id="alice", model="gemini-3") is None
            assert await cache.aget_many(["thought"], "alice", model="gemini-3") == [None]
            assert await cache.aget_many(["thought"], "alice", model="claude-y") == [SIG_B]
            assert await cache.aget("thought", owner_id="alice") == SIG_B
            assert await cache.aget("thought", owner_id="bob") is None
            assert await cache.acache_tool_signature("toolu_1", SIG_C, conversation_id=c)
            assert await cache.aget_tool_signature("toolu_1") == SIG_C
            assert await cache.aget_tool_signature("call_1") == SIG_C  # a rewritten form
            assert await cache.aget_tool_signature_fuzzy("toolu_1_retry2") == SIG_C
            assert await cache.acache_session_signature("s", SIG_A, "txt", model="gemini-3")
            assert await cache.aget_session_signature("s", model="claude-x") is None
            assert await cache.aget_session_signature("s") == SIG_A
            assert await cache.aget_session_signature_with_text("s") == (SIG_A, "txt")
            assert await cache.aget_last_signature() is None  # no conversation: nothing
            assert await cache.aget_last_signature(conversation_id=c) == SIG_A
            found = await cache.aget_last_signature_with_text("alice", conversation_id=c)
            assert found == (SIG_B, "thought")
            assert await cache.aget_recent_signature(conversation_id=c) == SIG_C
            assert await cache.aget_recent_signature_with_text(conversation_id=c) == (
                SIG_A,
                "  <think>thought</think>",
            )
            for bad in BAD_TEXTS:
                assert await cache.aset(bad, SIG_A) is False
                assert await cache.aget(bad) is None
            for bad_id in BAD_IDS:
                assert await cache.aget_tool_signature(bad_id) is None
                assert await cache.aget_session_signature_with_text(bad_id) is None
            for bad_sig in BAD_SIGNATURES:
                assert await cache.aset("x", bad_sig) is False
            assert await cache.ainvalidate("thought", owner_id="alice") is True
            assert await cache.aget("thought", owner_id="alice") is None
            assert await cache.aflush(10) is True
            assert await cache.aclear() == 1
            clock.advance(30 * 86_400)
            assert await cache.acleanup_expired() >= 1

    asyncio.run(scenario())


def test_async_reads_l2_after_restart_and_get_many(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "a.db"
    with LayeredSignatureCache(path, clock=clock) as sync_cache:
        for i in range(3):
            sync_cache.set(f"text {i}", SIG_A, owner_id="o")

    async def scenario(cache: AsyncLayeredSignatureCache) -> None:
        assert await cache.aget("text 0", owner_id="o") == SIG_A
        assert cache.cache.read_tier() == "l2"
        answers = await cache.aget_many(["text 1", "text 2", "nope", "text 0"], owner_id="o")
        assert answers == [SIG_A, SIG_A, None, SIG_A]
        assert await cache.aget_many([]) == []

    with LayeredSignatureCache(path, clock=clock) as sync_cache:
        wrapper = AsyncLayeredSignatureCache(sync_cache)
        asyncio.run(scenario(wrapper))
        asyncio.run(wrapper.aclose())
        stats: dict[str, Any] = sync_cache.get_stats()
        assert stats["l2_hits"] == 3 and stats["l1_hits"] == 1 and stats["l2_misses"] == 1


def test_async_read_fault_is_counted(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "a.db"
    config = LayeredConfig(L1Settings(), L2Settings(busy_timeout_ms=20))

    async def scenario() -> None:
        async with AsyncLayeredSignatureCache.open(path, config=config, clock=clock) as cache:
            await cache.aset("kept", SIG_A)
            with sqlite3.connect(path) as conn:
                conn.execute("DROP TABLE entries")
            conn.close()
            assert await cache.aget("kept") == SIG_A
            assert await cache.aget("missing") is None
            assert await cache.aget_many(["missing", "kept"]) == [None, SIG_A]
            assert int(cache.cache.get_stats()["l2_errors"]) >= 2  # type: ignore[call-overload]

    asyncio.run(scenario())


def test_async_over_another_store_reads_in_a_thread() -> None:
    from tests.test_storage_seam import DictStorage

    clock, shared = FakeClock(), DictStorage()
    with LayeredSignatureCache("unused", clock=clock, store=shared) as writer:
        writer.set("text", SIG_A, owner_id="o")

    async def scenario() -> None:
        cache = LayeredSignatureCache("unused", clock=clock, store=shared)
        async with AsyncLayeredSignatureCache(cache, owns_cache=True) as wrapper:
            assert await wrapper.aget("text", owner_id="o") == SIG_A
            assert cache.read_tier() == "l2"
            assert await wrapper.aget_many(["text", "nope"], owner_id="o") == [SIG_A, None]
            shared.fail = True
            assert await wrapper.aget("nope", owner_id="o") is None  # counted, not raised
            assert int(cache.get_stats()["l2_errors"]) == 1  # type: ignore[call-overload]

    asyncio.run(scenario())
