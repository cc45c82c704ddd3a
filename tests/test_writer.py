"""The batching writer and the request path: keyed by L1 identity, L2 keys derived off-thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sigcache import layered_keys
from sigcache.config import L1Settings, L2Settings, LayeredConfig
from sigcache.errors import StorageError
from sigcache.keys import text_digest
from sigcache.layered import LayeredSignatureCache
from sigcache.sqlite import SQLiteStore
from sigcache.storage import MAIN, Entry
from sigcache.writer import BatchWriter
from tests.contract import SIG_A, SIG_B, FakeClock

NOW = 1_000_000.0


def _upper(store: str, ident: str) -> str:
    return ident.upper()


def test_writer_derives_l2_keys_and_overlays_by_ident(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "w.db")
    writer = BatchWriter(store, L2Settings(batch_interval_ms=60_000), _upper)
    entry = Entry(MAIN, "o", "", SIG_A, "text", None, None, NOW, NOW + 100)
    assert writer.put(entry, "abc")
    assert writer.lookup(MAIN, "o", "abc") == (True, entry)  # by ident, before any key exists
    assert writer.lookup(MAIN, "x", "abc") == (False, None)
    assert writer.flush(timeout=10)
    found = store.get(MAIN, "o", "ABC", NOW)
    assert found is not None and found.key == "ABC" and found.signature == SIG_A
    assert writer.lookup(MAIN, "o", "abc") == (False, None)  # committed: gone from the overlay
    assert writer.delete(MAIN, None, "abc") is False  # nothing pending to undo
    assert writer.lookup(MAIN, "o", "abc") == (True, None)  # a pending wildcard delete
    assert writer.flush(timeout=10)
    assert store.get(MAIN, "o", "ABC", NOW) is None
    writer.close(timeout=10)
    store.close()


def test_request_path_never_hashes_a_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []

    def digest(text: str) -> str:
        threads.append(threading.current_thread().name)
        return text_digest(text)

    monkeypatch.setattr(layered_keys, "text_digest", digest)
    config = LayeredConfig(L1Settings(max_entries=1), L2Settings(batch_interval_ms=60_000))
    with LayeredSignatureCache(tmp_path / "c.db", config=config, clock=FakeClock()) as cache:
        for i in range(3):
            assert cache.set(f"text {i}" + "x" * 3_000, SIG_A, owner_id="o")
        assert cache.get("text 0" + "x" * 3_000, owner_id="o") == SIG_A  # overlay, no digest
        assert cache.get_stats()["pending_hits"] == 1
        assert threads == []
        assert cache.flush(timeout=10)
        assert threads == ["sigcache-l2-writer"] * 3
        assert cache.get("text 1" + "x" * 3_000, owner_id="o") == SIG_A  # L2: digest here
        assert cache.read_tier() == "l2"
        assert threads[-1] == threading.current_thread().name


def test_backfill_from_l1_carries_l2_keys_when_l2_fails(tmp_path: Path) -> None:
    clock = FakeClock()
    config = LayeredConfig(L1Settings(), L2Settings(batch_interval_ms=60_000))
    cache = LayeredSignatureCache(tmp_path / "c.db", config=config, clock=clock)
    cache.set("<think>some text</think>", SIG_B)
    cache.close()  # L2 gone: entries() answers from L1
    (entry,) = list(cache.entries())
    assert entry.key == text_digest("some text") and entry.signature == SIG_B


class _FailingStore(SQLiteStore):
    """Fails every put_many while `failing` is set."""

    failing = False

    def put_many(self, entries: Any) -> int:
        if self.failing:
            raise StorageError("disk on fire", str(self.path))
        return super().put_many(entries)


def _wait(predicate: Any) -> bool:
    deadline = time.monotonic() + 10
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return bool(predicate())


def test_flush_reports_a_write_lost_before_it_was_called(tmp_path: Path) -> None:
    """The thread may fail a write before anyone flushes: the next flush still says so, once."""
    store = _FailingStore(tmp_path / "w.db")
    writer = BatchWriter(store, L2Settings(batch_interval_ms=1), _upper)
    store.failing = True
    assert writer.put(Entry(MAIN, "o", "", SIG_A, "text", None, None, NOW, NOW + 100), "a")
    assert _wait(lambda: writer.counts["write_errors"] == 1)  # failed, before any flush
    assert writer.settle(timeout=10)  # the cache's own wait leaves it to the caller's flush
    assert writer.flush(timeout=10) is False
    assert writer.flush(timeout=10) is True  # reported once; nothing failed since
    store.failing = False
    assert writer.put(Entry(MAIN, "o", "", SIG_B, "text", None, None, NOW, NOW + 100), "b")
    assert writer.flush(timeout=10) is True
    writer.close(timeout=10)
    store.close()
