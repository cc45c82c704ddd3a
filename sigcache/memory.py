"""L1: the in-memory tier, cachetools TLRU caches (one per store) under one lock.

Keys are `(store, owner or "", normalised text or id)` tuples: Python caches a str's hash, so
an L1 hit costs no digest. Each entry carries its own expiry on the injected clock (at most
the L1 TTL from write or promotion, never past its L2 row). Misses are never cached.

Besides the LRU order cachetools keeps, the tier keeps, per store and owner, the order the
last/recent look-ups need: touch order (write or read hit) for the main store, as legacy's
"last" scan, and write order for the tool and session stores.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cachetools import TLRUCache

from sigcache.config import L1Settings
from sigcache.storage import MAIN, STORES, Entry

__all__ = ["L1Key", "MemoryTier", "Slot"]

L1Key = tuple[str, str, str]  # (store, owner or "", normalised text or id)
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Slot:
    """An L1 value: the entry and its L1 expiry (epoch seconds, <= entry.expires_at)."""

    entry: Entry
    expires: float


def _time_to_use(key: L1Key, slot: Slot, now: float) -> float:
    # cachetools treats an item as live while now < ttu; legacy while now <= expiry.
    return math.nextafter(slot.expires, math.inf)


class _TimedLRU(TLRUCache[L1Key, Slot, float]):
    """TLRUCache reporting every eviction and expiry to its tier."""

    def __init__(self, maxsize: int, clock: Clock, dropped: Callable[[L1Key, bool], None]):
        super().__init__(maxsize, _time_to_use, timer=clock)
        self._dropped = dropped

    def expire(self, time: float | None = None) -> list[tuple[L1Key, Slot]]:
        expired = list(super().expire(time))
        for key, _ in expired:
            self._dropped(key, True)
        return expired

    def popitem(self) -> tuple[L1Key, Slot]:
        key, slot = super().popitem()
        self._dropped(key, False)
        return key, slot


class MemoryTier:
    """The L1 tier; every method takes the one lock and does bookkeeping only."""

    def __init__(self, settings: L1Settings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._caches = {store: self._new_cache() for store in STORES}
        self._order: dict[tuple[str, str], OrderedDict[str, Slot]] = {}
        self.counts = {"hits": 0, "misses": 0, "evictions": 0, "expirations": 0}

    def _new_cache(self) -> _TimedLRU:
        return _TimedLRU(self._settings.max_entries, self._clock, self._dropped)

    def _dropped(self, key: L1Key, expired: bool) -> None:
        # Runs inside cachetools calls, so already under self._lock.
        self.counts["expirations" if expired else "evictions"] += 1
        self._unorder(key)

    def _unorder(self, key: L1Key) -> None:
        order = self._order.get((key[0], key[1]))
        if order is not None:
            order.pop(key[2], None)
            if not order:
                del self._order[(key[0], key[1])]

    def get(self, key: L1Key) -> Entry | None:
        """The live entry for a key (a main hit counts as a touch for "last"), or None."""
        with self._lock:
            try:
                slot = self._caches[key[0]][key]
            except KeyError:
                self.counts["misses"] += 1
                return None
            self.counts["hits"] += 1
            order = self._order.get((MAIN, key[1])) if key[0] == MAIN else None
            if order is not None and key[2] in order:
                order.move_to_end(key[2])
        return slot.entry

    def put(self, key: L1Key, entry: Entry, expires: float) -> None:
        """Store an entry until `expires` (the caller never passes a past expiry)."""
        slot = Slot(entry, expires)
        with self._lock:
            self._caches[key[0]][key] = slot
            order = self._order.setdefault((key[0], key[1]), OrderedDict())
            order[key[2]] = slot
            order.move_to_end(key[2])

    def pop(self, key: L1Key) -> bool:
        """Remove a key; True if a live entry was removed."""
        with self._lock:
            self._unorder(key)
            try:
                del self._caches[key[0]][key]
            except KeyError:  # absent, or present but expired (TLRUCache raises then too)
                return False
        return True

    def pop_every_owner(self, store: str, ident: str) -> int:
        """Remove one text or id under every owner; returns how many live entries."""
        with self._lock:
            owners = [o for (s, o), order in self._order.items() if s == store and ident in order]
        return sum(self.pop((store, owner, ident)) for owner in owners)

    def clear(self, store: str) -> int:
        """Empty one store; returns how many entries it held (live or not yet purged)."""
        with self._lock:
            cache = self._caches[store]
            cache.expire()
            count = len(cache)
            self._caches[store] = self._new_cache()  # clear() would count every item evicted
            for owner_key in [k for k in self._order if k[0] == store]:
                del self._order[owner_key]
        return count

    def expire(self) -> int:
        """Purge expired entries of every store; returns how many."""
        with self._lock:
            return sum(len(cache.expire()) for cache in self._caches.values())

    def latest(
        self, store: str, owner: str, since: float = -math.inf, with_text: bool = False
    ) -> Entry | None:
        """Newest live entry written after `since`: main in touch order, others by write time."""
        now = self._clock()
        with self._lock:
            order = self._order.get((store, owner))
            if order is None:
                return None
            if store == MAIN:  # legacy: scan from the most recently touched end
                for slot in reversed(order.values()):
                    if _eligible(slot, now, since, with_text):
                        return slot.entry
                return None
            # Promotions append out of write order, so take the max rather than the last.
            best = None
            for slot in order.values():
                if _eligible(slot, now, since, with_text) and (
                    best is None or slot.entry.written_at >= best.written_at
                ):
                    best = slot.entry
            return best

    def search(self, store: str, owner: str, needle: str, exclude: str) -> Entry | None:
        """Newest live entry whose id contains `needle` (other than `exclude`)."""
        now = self._clock()
        with self._lock:
            order = self._order.get((store, owner))
            candidates = (
                []
                if order is None
                else [
                    slot.entry
                    for ident, slot in order.items()
                    if ident != exclude and needle in ident and now <= slot.expires
                ]
            )
        return max(candidates, key=lambda entry: entry.written_at, default=None)

    def live(self) -> Iterator[Entry]:
        """A snapshot of every live entry."""
        now = self._clock()
        with self._lock:
            slots = [slot for order in self._order.values() for slot in order.values()]
        return (slot.entry for slot in slots if now <= slot.expires)

    def size(self, store: str | None = None) -> int:
        """Entries held (live or not yet purged), in one store or all."""
        with self._lock:
            stores = [store] if store else list(STORES)
            return sum(len(self._caches[s]) for s in stores)

    def live_count(self, store: str) -> int:
        """Live entries of one store."""
        now = self._clock()
        with self._lock:
            return sum(
                1
                for (s, _), order in self._order.items()
                if s == store
                for slot in order.values()
                if now <= slot.expires
            )

    def reset_counts(self) -> None:
        """Zero the counters."""
        with self._lock:
            self.counts = dict.fromkeys(self.counts, 0)


def _eligible(slot: Slot, now: float, since: float, with_text: bool) -> bool:
    return (
        now <= slot.expires
        and slot.entry.written_at > since
        and (not with_text or bool(slot.entry.text))
    )
