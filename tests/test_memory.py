"""L1 tier: per-entry expiry on the injected clock, LRU bound, counters, last/recent order."""

from __future__ import annotations

import os
import time

import pytest

from sigcache.config import L1Settings
from sigcache.memory import MemoryTier
from sigcache.storage import MAIN, TOOL, Entry
from tests.contract import FakeClock


def _entry(store: str, key: str, written: float, owner: str = "", text: str = "t") -> Entry:
    return Entry(store, owner, key, "S" * 60, text, None, None, written, written + 100)


def _tier(clock: FakeClock, max_entries: int = 10) -> MemoryTier:
    return MemoryTier(L1Settings(max_entries=max_entries, ttl_seconds=100), clock)


def test_hit_miss_and_counts() -> None:
    clock = FakeClock()
    tier = _tier(clock)
    tier.put((MAIN, "", "a"), _entry(MAIN, "ka", clock()), clock() + 100)
    assert tier.get((MAIN, "", "a")) is not None
    assert tier.get((MAIN, "", "b")) is None
    assert tier.get((MAIN, "x", "a")) is None  # another owner is another key
    assert tier.counts["hits"] == 1 and tier.counts["misses"] == 2


def test_expiry_is_inclusive_like_legacy() -> None:
    clock = FakeClock()
    tier = _tier(clock)
    tier.put((MAIN, "", "a"), _entry(MAIN, "ka", clock()), clock() + 100)
    clock.advance(100)
    assert tier.get((MAIN, "", "a")) is not None  # live while now <= expiry
    clock.advance(0.001)
    assert tier.get((MAIN, "", "a")) is None  # lazy expiry: dropped (and counted) on read
    assert tier.counts["expirations"] == 1 and tier.counts["misses"] == 1
    assert tier.size() == 0


def test_expire_purges_unread_expired_entries_without_touching_lru() -> None:
    clock = FakeClock()
    tier = _tier(clock, max_entries=3)
    tier.put((MAIN, "", "old"), _entry(MAIN, "old", clock()), clock() + 10)
    tier.put((MAIN, "", "a"), _entry(MAIN, "a", clock()), clock() + 100)
    tier.put((MAIN, "", "b"), _entry(MAIN, "b", clock()), clock() + 100)
    clock.advance(11)
    assert tier.size() == 3  # expired but unread: still held
    assert tier.live_count(MAIN) == 2
    assert tier.expire() == 1
    assert tier.counts["expirations"] == 1 and tier.size() == 2
    tier.put((MAIN, "", "c"), _entry(MAIN, "c", clock()), clock() + 100)
    tier.put((MAIN, "", "d"), _entry(MAIN, "d", clock()), clock() + 100)
    assert tier.get((MAIN, "", "a")) is None  # expire() did not count as a touch: a was LRU
    assert tier.counts["evictions"] == 1
    assert tier.pop((MAIN, "", "b")) is True


def test_lru_bound_counts_evictions_and_keeps_recently_read() -> None:
    clock = FakeClock()
    tier = _tier(clock, max_entries=2)
    for name in ("a", "b"):
        tier.put((MAIN, "", name), _entry(MAIN, name, clock()), clock() + 100)
    assert tier.get((MAIN, "", "a")) is not None  # a becomes most recently used
    tier.put((MAIN, "", "c"), _entry(MAIN, "c", clock()), clock() + 100)
    assert tier.get((MAIN, "", "b")) is None
    assert tier.get((MAIN, "", "a")) is not None
    assert tier.counts["evictions"] == 1
    assert tier.size(MAIN) == 2


def test_last_is_touch_order_and_owner_scoped() -> None:
    clock = FakeClock()
    tier = _tier(clock)
    tier.put((MAIN, "", "a"), _entry(MAIN, "a", clock()), clock() + 100)
    clock.advance(1)
    tier.put((MAIN, "", "b"), _entry(MAIN, "b", clock()), clock() + 100)
    tier.put((MAIN, "o", "c"), _entry(MAIN, "c", clock(), owner="o"), clock() + 100)
    latest = tier.latest(MAIN, "")
    assert latest is not None and latest.key == "b"
    tier.get((MAIN, "", "a"))  # a read hit counts as a touch
    latest = tier.latest(MAIN, "")
    assert latest is not None and latest.key == "a"
    owned = tier.latest(MAIN, "o")
    assert owned is not None and owned.key == "c"
    assert tier.latest(MAIN, "nobody") is None


def test_tool_latest_is_newest_write_even_after_out_of_order_insert() -> None:
    clock = FakeClock()
    tier = _tier(clock)
    tier.put((TOOL, "", "new"), _entry(TOOL, "new", clock()), clock() + 100)
    tier.put((TOOL, "", "old"), _entry(TOOL, "old", clock() - 50), clock() + 50)  # a promotion
    latest = tier.latest(TOOL, "")
    assert latest is not None and latest.key == "new"
    assert tier.latest(TOOL, "", since=clock()) is None  # written_at must be after `since`


def test_pop_every_owner_and_clear() -> None:
    clock = FakeClock()
    tier = _tier(clock)
    for owner in ("", "a", "b"):
        tier.put((MAIN, owner, "t"), _entry(MAIN, "t", clock(), owner), clock() + 100)
    tier.put((TOOL, "", "id"), _entry(TOOL, "id", clock()), clock() + 100)
    assert tier.pop_every_owner(MAIN, "t") == 3
    assert tier.pop((MAIN, "", "t")) is False
    tier.put((MAIN, "", "u"), _entry(MAIN, "u", clock()), clock() + 100)
    assert tier.clear(MAIN) == 1
    assert tier.counts["evictions"] == 0  # clearing is not evicting
    assert tier.size(TOOL) == 1
    assert tier.live_count(MAIN) == 0


def test_search_newest_containing() -> None:
    clock = FakeClock()
    tier = _tier(clock)
    tier.put((TOOL, "", "call_abc_1"), _entry(TOOL, "call_abc_1", clock()), clock() + 100)
    clock.advance(1)
    tier.put((TOOL, "", "x_abc"), _entry(TOOL, "x_abc", clock()), clock() + 100)
    found = tier.search(TOOL, "", "abc", exclude="x_abc_9")
    assert found is not None and found.key == "x_abc"
    assert tier.search(TOOL, "other", "abc", exclude="") is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_lock_held_at_fork_is_fresh_in_the_child() -> None:
    clock = FakeClock()
    tier = _tier(clock)
    tier.put((MAIN, "", "a"), _entry(MAIN, "a", clock()), clock() + 100)
    tier._lock.acquire()  # as if another thread were inside the tier at the fork
    try:
        pid = os.fork()
        if pid == 0:  # child: would deadlock on the parent's held lock
            os._exit(0 if tier.get((MAIN, "", "a")) is not None else 1)
    finally:
        tier._lock.release()
    deadline = time.monotonic() + 20
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the child deadlocked on the L1 lock")
    assert os.waitstatus_to_exitcode(done[1]) == 0
