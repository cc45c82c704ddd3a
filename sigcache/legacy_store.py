"""The legacy tool and session stores: LRU-ordered dicts that know their newest entry.

`get_recent_signature` answers with the newest entry of each store (the first, in the store's
order, of those with the latest timestamp). Finding it by scanning a store of 10,000 entries on
every call was the largest single cost of a replay. The store counts how many entries hold the
latest timestamp, so the newest is found by walking back from the end only until all of them
were seen: the latest writes sit near the end (a write appends; reads move entries to the end,
so only entries read since then come after them). Any mutation keeps the count, or marks it
unknown for a full scan on the next look-up (after removing the last entry at the top).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from sigcache.legacy_stats import CacheEntry

__all__ = ["NewestStore"]

_UNKNOWN = -1


class NewestStore(OrderedDict[str, CacheEntry]):
    """An OrderedDict of entries with `newest()`: same answer as a max over timestamps.

    Every method that adds or removes an entry is overridden (the C OrderedDict's `pop`,
    `popitem` and `clear` bypass `__delitem__`); reordering (`move_to_end`) changes nothing
    the count depends on. Entries' timestamps are never changed in place.
    """

    def __init__(self) -> None:
        super().__init__()
        self._top = 0.0  # the latest timestamp held (meaningful while _at_top > 0)
        self._at_top = 0  # entries holding it; _UNKNOWN after the last of them left

    def _added(self, entry: CacheEntry) -> None:
        if self._at_top == _UNKNOWN:
            return
        stamp = entry.timestamp
        if self._at_top == 0 or stamp > self._top:
            self._top, self._at_top = stamp, 1
        elif stamp == self._top:
            self._at_top += 1

    def _removed(self, entry: CacheEntry) -> None:
        if self._at_top > 0 and entry.timestamp == self._top:
            self._at_top -= 1
            if self._at_top == 0 and len(self):
                self._at_top = _UNKNOWN  # the next top is somewhere: find it when asked

    def __setitem__(self, key: str, entry: CacheEntry) -> None:
        old = super().get(key)
        super().__setitem__(key, entry)
        if old is not None:
            self._removed(old)
        self._added(entry)

    def __delitem__(self, key: str) -> None:
        entry = super().__getitem__(key)
        super().__delitem__(key)
        self._removed(entry)

    def pop(self, key: str, *default: Any) -> Any:
        """As OrderedDict.pop, keeping the count of newest entries."""
        if key not in self:
            return super().pop(key, *default)
        entry = super().pop(key)
        self._removed(entry)
        return entry

    def popitem(self, last: bool = True) -> tuple[str, CacheEntry]:
        """As OrderedDict.popitem, keeping the count of newest entries."""
        key, entry = super().popitem(last)
        self._removed(entry)
        return key, entry

    def clear(self) -> None:
        """As OrderedDict.clear."""
        super().clear()
        self._at_top = 0

    def newest(self) -> CacheEntry | None:
        """The first entry, in store order, of those with the latest timestamp; None if empty."""
        if not len(self):
            return None
        if self._at_top <= 0:
            self._rescan()
        top, remaining = self._top, self._at_top
        found = None
        for entry in reversed(self.values()):
            if entry.timestamp == top:
                found = entry
                remaining -= 1
                if not remaining:
                    break
        return found

    def _rescan(self) -> None:
        top = max(entry.timestamp for entry in self.values())
        self._top = top
        self._at_top = sum(1 for entry in self.values() if entry.timestamp == top)
