"""L1 tier: per-entry expiry on the injected clock, LRU bound, counters, last/recent order."""

from __future__ import annotations

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
    assert tier.get((MAIN, "", "a")) is None
    assert tier.expire() == 1
    assert tier.counts["expirations"] == 1
    assert tier.size() == 0


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
