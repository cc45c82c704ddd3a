"""The legacy in-memory `SignatureCache`: the replaced system's behaviour, frozen.

Observable behaviour follows `reference/origin-behaviour.md` sections 1.1-1.5: MD5 of the first 500
normalised characters as the key, a full-text collision guard, LRU of `max_size`, TTL from write
time, permissive owner matching, the legacy stats shapes.

Deliberate fixes, each tested:

* The tool and session stores are bounded (LRU, the same `max_size`); the origin let them grow.
* `get_tool_signature_fuzzy` works as intended (exact id, base id, then candidates whose id starts
  with or contains the base id, newest first); the origin raised AttributeError.
* Nothing raises on bad input (None, wrong types, lone surrogates, huge texts): writes return False,
  reads None, and nothing else in the cache changes.
* No lock is held across an import or any work that is not bookkeeping: the model family is
  derived before the lock is taken.
* One lock guards all three stores and every counter, so the tool and session counters no longer
  race `get_stats` / `reset_stats`.
* Hits log at DEBUG with a short hash, never the thinking text (the origin logged 50-character
  previews at INFO on every hit).
* Time comes only from the injected `clock`.
"""

from __future__ import annotations

import logging
import operator
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sigcache.fingerprints import extract_base_tool_id, model_family, recent_window
from sigcache.keys import (
    DEFAULT_KEY_PREFIX_LENGTH,
    is_valid_signature,
    legacy_key,
    normalize_thinking_text,
    short_hash,
)
from sigcache.legacy_stats import (
    CacheEntry,
    CacheStats,
    StoreCounters,
    layer_rates,
    new_layer_stats,
)
from sigcache.legacy_store import NewestStore

__all__ = ["CacheEntry", "LegacyEntryCopy", "SignatureCache"]

log = logging.getLogger("sigcache.legacy")

Clock = Callable[[], float]
_PREVIEW = 200


def _text(value: object) -> str | None:
    """The value if it is a non-empty str, else None."""
    return value if isinstance(value, str) and value else None


def _owner_ok(owner_id: object) -> bool:
    return owner_id is None or isinstance(owner_id, str)


def _owners_conflict(query: str | None, stored: str | None) -> bool:
    """Permissive legacy matching: only two non-empty, different owners conflict."""
    return bool(query) and bool(stored) and query != stored


@dataclass(frozen=True, slots=True)
class LegacyEntryCopy:
    """A copy of one legacy entry, as backfill needs it: where, whose, what, and how long."""

    store: str  # "main" | "tool" | "session"
    key: str  # main: the thinking text as written; tool and session: the id
    signature: str
    text: str  # main: the thinking text; session: its optional text; tool: ""
    model: str | None
    owner_id: str | None
    written_at: float  # the cache clock at write time
    expires_at: float  # live while now <= expires_at (legacy: now - written_at <= ttl)


class SignatureCache:
    """Thread-safe LRU + TTL cache of thinking text -> signature, with tool and session stores."""

    DEFAULT_MAX_SIZE = 10000
    DEFAULT_TTL_SECONDS = 3600
    DEFAULT_KEY_PREFIX_LENGTH = DEFAULT_KEY_PREFIX_LENGTH

    def __init__(
        self,
        max_size: int = DEFAULT_MAX_SIZE,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        key_prefix_length: int = DEFAULT_KEY_PREFIX_LENGTH,
        *,
        clock: Clock = time.time,
    ) -> None:
        self._max_size = max_size
        self._ttl_seconds = ttl_seconds
        self._key_prefix_length = key_prefix_length
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, CacheEntry] = OrderedDict()
        # Tool and session stores know their newest entry (`get_recent_signature`).
        self._tool_signatures = NewestStore()
        self._session_signatures = NewestStore()
        self._stats = CacheStats()
        self._layer_stats = new_layer_stats()
        self._store_counters = StoreCounters()
        self._answered = threading.local()  # the entry behind this thread's last/recent answer
        log.info(
            "[SIGNATURE_CACHE] cache created: max_size=%s ttl=%ss key_prefix=%s",
            max_size,
            ttl_seconds,
            key_prefix_length,
        )

    # -- keys -------------------------------------------------------------------------------

    def _key(self, thinking_text: object) -> str:
        text = _text(thinking_text)
        if text is None:
            return ""
        return legacy_key(normalize_thinking_text(text), self._key_prefix_length)

    def _expired(self, entry: CacheEntry, now: float) -> bool:
        return entry.is_expired(self._ttl_seconds, now)

    # -- main store -------------------------------------------------------------------------

    def set(
        self,
        thinking_text: str,
        signature: str,
        model: str | None = None,
        owner_id: str | None = None,
        *,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> bool:
        """Cache a signature for a thinking text; False for empty or invalid input.

        `scope` and `conversation_id` are accepted and ignored (the legacy cache has no
        provenance beyond the model it stores; issue 13).
        """
        text = _text(thinking_text)
        if text is None or not _text(signature) or not _owner_ok(owner_id):
            return False
        if not is_valid_signature(signature):
            log.debug("[SIGNATURE_CACHE] write skipped: invalid signature format")
            return False
        key = self._key(text)
        if not key:
            return False
        family = model_family(model)  # derived outside the lock (the origin imported under it)
        with self._lock:
            entry = CacheEntry(
                signature=signature,
                thinking_text=text,
                thinking_text_preview=text[:_PREVIEW],
                timestamp=self._clock(),
                model=model if isinstance(model, str) else None,
                model_family=family,
                owner_id=owner_id,
            )
            self._cache.pop(key, None)
            self._cache[key] = entry
            self._stats.writes += 1
            while len(self._cache) > self._max_size:
                self._cache.popitem(last=False)
                self._stats.evictions += 1
        return True

    def get(
        self,
        thinking_text: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The signature cached for a thinking text, or None (miss, expired, owner, collision).

        The provenance keywords are accepted and ignored: a legacy read matches any model
        family, scope and conversation, as the replaced system did (issue 13).
        """
        text = _text(thinking_text)
        normalized = normalize_thinking_text(text) if text is not None else ""
        key = legacy_key(normalized, self._key_prefix_length)  # as _key(), normalising once
        if not key or not _owner_ok(owner_id):
            return None
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None and self._expired(entry, self._clock()):
                del self._cache[key]
                self._stats.expirations += 1
                entry = None
            if entry is not None and _owners_conflict(owner_id, entry.owner_id):
                entry = None
            if (
                entry is not None
                and entry.thinking_text != thinking_text  # the same text normalises the same
                and normalize_thinking_text(entry.thinking_text) != normalized
            ):
                log.debug("[SIGNATURE_CACHE] key collision: key=%s", key[:16])
                entry = None
            if entry is None:
                self._stats.misses += 1
                self._layer_stats["cache_misses"] += 1
                return None
            self._cache.move_to_end(key)
            entry.access_count += 1
            self._stats.hits += 1
            self._layer_stats["cache_hits"] += 1
        log.debug("[SIGNATURE_CACHE] hit: key=%s", key[:16])
        return entry.signature

    def invalidate(self, thinking_text: str, owner_id: str | None = None) -> bool:
        """Delete the entry for a thinking text (any owner, as the origin); True if one existed."""
        key = self._key(thinking_text)
        if not key:
            return False
        with self._lock:
            return self._cache.pop(key, None) is not None

    def clear(self) -> int:
        """Empty the main store only (legacy contract) and return how many entries it held."""
        with self._lock:
            count = len(self._cache)
            self._cache.clear()
        log.info("[SIGNATURE_CACHE] cleared %d entries", count)
        return count

    def cleanup_expired(self) -> int:
        """Remove expired main-store entries and return how many."""
        with self._lock:
            now, ttl = self._clock(), self._ttl_seconds
            # `_expired` inlined (the same float comparison): two calls per entry over a full
            # store were most of the scan.
            expired = [k for k, e in self._cache.items() if now - e.timestamp > ttl]
            for key in expired:
                del self._cache[key]
            self._stats.expirations += len(expired)
        return len(expired)

    def peek_owner(self, store: str, key: object) -> tuple[bool, str | None]:
        """(found, stored owner) of the live entry a read of `key` would find; no side effects.

        Read repair asks this before copying a legacy answer into the owner-strict new cache:
        legacy matches owners permissively, so its answer may be another owner's entry.
        """
        found, owner, _ = self.peek_provenance(store, key)
        return found, owner

    def peek_provenance(self, store: str, key: object) -> tuple[bool, str | None, str | None]:
        """(found, stored owner, stored model) of the live entry a read of `key` would find.

        No side effects. Read repair copies a legacy answer into the new cache with the model
        legacy stored, and never across model families (issue 13).
        """
        if _text(key) is None:
            return False, None, None
        assert isinstance(key, str)
        with self._lock:
            now = self._clock()
            if store == "main":
                entry = self._cache.get(self._key(key))
                same = entry is not None and normalize_thinking_text(
                    entry.thinking_text
                ) == normalize_thinking_text(key)
                entry = entry if same else None
            else:
                stores = {"tool": self._tool_signatures, "session": self._session_signatures}
                entry = stores[store].get(key) if store in stores else None
            if entry is None or self._expired(entry, now):
                return False, None, None
            return True, entry.owner_id, entry.model

    def answer_provenance(self) -> tuple[str | None, str | None] | None:
        """(owner, model) of the entry behind this thread's last last/recent answer; None: miss."""
        # The unkeyed look-ups name no key to peek at; they note the entry that answered instead
        # (a thread-local reference, invisible to every caller), off the keyed hot path.
        entry: CacheEntry | None = getattr(self._answered, "entry", None)
        return None if entry is None else (entry.owner_id, entry.model)

    # -- stats ------------------------------------------------------------------------------

    def get_stats(self) -> dict[str, object]:
        """Counters in the legacy shape, plus numeric `hit_ratio` and store eviction counts."""
        with self._lock:
            stats = self._stats.to_dict()
            stats["hit_ratio"] = self._stats.hit_rate
            stats["cache_size"] = len(self._cache)
            stats["max_size"] = self._max_size
            stats["ttl_seconds"] = self._ttl_seconds
            layer: dict[str, object] = dict(self._layer_stats)
            layer.update(layer_rates(self._layer_stats))
            stats["layer_stats"] = layer
            stats["tool_cache_size"] = len(self._tool_signatures)
            stats["session_cache_size"] = len(self._session_signatures)
            stats["tool_cache_evictions"] = self._store_counters.tool_evictions
            stats["session_cache_evictions"] = self._store_counters.session_evictions
        return stats

    def reset_stats(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._stats = CacheStats()
            self._layer_stats = new_layer_stats()
            self._store_counters = StoreCounters()

    @property
    def size(self) -> int:
        """Entries in the main store."""
        with self._lock:
            return len(self._cache)

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        # An empty cache is still a cache: the origin's facade was falsy while empty (section 0).
        return True

    def __repr__(self) -> str:
        return (
            f"SignatureCache(size={self.size}, max_size={self._max_size}, "
            f"ttl={self._ttl_seconds}s, hit_rate={self._stats.hit_rate:.2%})"
        )

    def iter_entries(self, chunk_size: int = 256) -> Iterator[list[LegacyEntryCopy]]:
        """Copies of every entry of the three stores (expired ones too), chunk by chunk.

        The lock is held to copy the key list of a store (a C-level copy, ~0.1 ms per 10,000 keys)
        and then once per chunk, never across a yield: callers may write into another cache
        between chunks while traffic goes on. Entries removed meanwhile are skipped.
        """
        size = max(int(chunk_size), 1)
        stores = (
            ("main", self._cache),
            ("tool", self._tool_signatures),
            ("session", self._session_signatures),
        )
        for name, store in stores:
            with self._lock:
                keys = list(store)
            for start in range(0, len(keys), size):
                with self._lock:
                    found = [(k, store.get(k)) for k in keys[start : start + size]]
                chunk = [self._copy(name, k, e) for k, e in found if e is not None]
                if chunk:
                    yield chunk

    def _copy(self, store: str, key: str, entry: CacheEntry) -> LegacyEntryCopy:
        return LegacyEntryCopy(
            store,
            entry.thinking_text if store == "main" else key,
            entry.signature,
            entry.thinking_text,
            entry.model,
            entry.owner_id,
            entry.timestamp,
            entry.timestamp + self._ttl_seconds,
        )

    # -- tool and session stores --------------------------------------------------------------

    def _put_bounded(self, store: OrderedDict[str, CacheEntry], key: str, entry: CacheEntry) -> int:
        store.pop(key, None)
        store[key] = entry
        evicted = 0
        while len(store) > self._max_size:
            store.popitem(last=False)
            evicted += 1
        return evicted

    def _new_entry(self, signature: str, text: str, owner_id: str | None) -> CacheEntry:
        return CacheEntry(
            signature=signature,
            thinking_text=text,
            thinking_text_preview=text[:_PREVIEW],
            timestamp=self._clock(),
            owner_id=owner_id,
        )

    def cache_tool_signature(
        self,
        tool_id: str,
        signature: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> bool:
        """Cache a signature for a tool-call id (provenance keywords ignored)."""
        if _text(tool_id) is None or not is_valid_signature(signature) or not _owner_ok(owner_id):
            return False
        with self._lock:
            entry = self._new_entry(signature, "", owner_id)
            evicted = self._put_bounded(self._tool_signatures, tool_id, entry)
            self._store_counters.tool_evictions += evicted
        return True

    def _lookup(
        self,
        store: OrderedDict[str, CacheEntry],
        key: str,
        owner_id: str | None,
        counter: str | None,
    ) -> CacheEntry | None:
        """Shared tool/session read under the lock; `counter` names the layer stat (or None)."""
        if _text(key) is None or not _owner_ok(owner_id):
            return None
        with self._lock:
            entry = store.get(key)
            if entry is not None and self._expired(entry, self._clock()):
                del store[key]
                entry = None
            if entry is not None and _owners_conflict(owner_id, entry.owner_id):
                entry = None
            if entry is not None:
                store.move_to_end(key)
            if counter is not None:
                self._layer_stats[f"{counter}_{'hits' if entry else 'misses'}"] += 1
        return entry

    def get_tool_signature(
        self,
        tool_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The signature cached for a tool-call id, or None (provenance keywords ignored)."""
        entry = self._lookup(self._tool_signatures, tool_id, owner_id, "tool_cache")
        return entry.signature if entry else None

    def get_tool_signature_fuzzy(
        self,
        tool_id: str,
        max_candidates: int = 5,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """Exact id, then its base id, then ids starting with or containing it, newest first."""
        exact = self.get_tool_signature(tool_id, owner_id)
        if exact is not None or _text(tool_id) is None:
            return exact
        base = extract_base_tool_id(tool_id)
        if base == tool_id:
            return None
        found = self.get_tool_signature(base, owner_id)
        if found is not None:
            return found
        return self._fuzzy_candidate(tool_id, base, max_candidates, owner_id)

    def _fuzzy_candidate(
        self, tool_id: str, base: str, max_candidates: int, owner_id: str | None
    ) -> str | None:
        with self._lock:
            now = self._clock()
            candidates = [
                entry
                for key, entry in self._tool_signatures.items()
                if key != tool_id
                and (key.startswith(base) or base in key)
                and not self._expired(entry, now)
                and not _owners_conflict(owner_id, entry.owner_id)
            ]
            candidates.sort(key=lambda e: e.timestamp, reverse=True)
            best = candidates[: max(int(max_candidates), 0)]
            if best:
                self._layer_stats["tool_cache_hits"] += 1
                return best[0].signature
        return None

    def cache_session_signature(
        self,
        session_id: str,
        signature: str,
        thinking_text: str = "",
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> bool:
        """Cache a signature (and optionally its thinking text) for a session id."""
        if _text(session_id) is None or not is_valid_signature(signature):
            return False
        if not _owner_ok(owner_id) or not isinstance(thinking_text, str | None):
            return False
        with self._lock:
            entry = self._new_entry(signature, thinking_text or "", owner_id)
            evicted = self._put_bounded(self._session_signatures, session_id, entry)
            self._store_counters.session_evictions += evicted
        log.debug("[SIGNATURE_CACHE] session write: session=%s", short_hash(session_id))
        return True

    def get_session_signature(
        self,
        session_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The signature cached for a session id, or None (provenance keywords ignored)."""
        entry = self._lookup(self._session_signatures, session_id, owner_id, "session_cache")
        return entry.signature if entry else None

    def get_session_signature_with_text(
        self,
        session_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> tuple[str, str] | None:
        """(signature, thinking_text) for a session id, counting nothing (as the origin)."""
        entry = self._lookup(self._session_signatures, session_id, owner_id, None)
        return (entry.signature, entry.thinking_text) if entry else None

    # -- last / recent ------------------------------------------------------------------------

    def _live_main_newest_first(self, now: float) -> Iterator[CacheEntry]:
        for entry in reversed(self._cache.values()):
            if not self._expired(entry, now):
                yield entry

    def get_last_signature(
        self,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The most recently written or read live main entry's signature; no owner filter.

        No conversation or family filter either: the replaced system's fallback that hands a
        stranger's signature over (issue 13); the replay reports it as `isolation`.
        """
        found = self.get_last_signature_with_text(owner_id)
        return found[0] if found else None

    def get_last_signature_with_text(
        self,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> tuple[str, str] | None:
        """(signature, full thinking text) of the MRU live main entry; no owner filter."""
        with self._lock:
            entry = next(self._live_main_newest_first(self._clock()), None)
            self._answered.entry = entry
            return (entry.signature, entry.thinking_text) if entry else None

    def get_recent_signature(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """A signature written within the window: tool store, session store, then main store."""
        window = _window(time_window_seconds, client_type)
        entry = None if window is None else self._recent_entry(window, owner_id)
        self._answered.entry = entry
        return entry.signature if entry else None

    def _recent_entry(self, window: float, owner_id: str | None) -> CacheEntry | None:
        """The entry `get_recent_signature` answers with."""
        with self._lock:
            now = self._clock()
            # The origin sorted each store newest first and took the first entry inside the
            # window; the window test only gets likelier for newer entries, so the newest entry
            # (the first of equal timestamps, as the stable sort kept) decides. The stores track
            # it (`NewestStore`): a sort, then a max, per call was the replay's largest cost.
            for store in (self._tool_signatures, self._session_signatures):
                newest = store.newest()
                if newest is not None and now - newest.timestamp < window:
                    return newest
            for entry in reversed(self._cache.values()):
                if now - entry.timestamp < window and _strict_owner(owner_id, entry):
                    return entry
        return None

    def get_recent_signature_with_text(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> tuple[str, str] | None:
        """(signature, text) written within the window: main store, then session store."""
        window = _window(time_window_seconds, client_type)
        entry = None if window is None else self._recent_text_entry(window, owner_id)
        self._answered.entry = entry
        return (entry.signature, entry.thinking_text) if entry else None

    def _recent_text_entry(self, window: float, owner_id: str | None) -> CacheEntry | None:
        """The entry `get_recent_signature_with_text` answers with."""
        with self._lock:
            now = self._clock()
            for entry in reversed(self._cache.values()):
                if now - entry.timestamp < window and _strict_owner(owner_id, entry):
                    return entry
            eligible = (
                entry
                for entry in self._session_signatures.values()
                if entry.thinking_text and _strict_owner(owner_id, entry)
            )
            newest = max(eligible, key=_timestamp, default=None)  # as above: newest decides
            if newest is not None and now - newest.timestamp < window:
                return newest
        return None


# The key of the newest-entry scan of `get_recent_signature_with_text`: a C-level getter.
_timestamp: Callable[[CacheEntry], float] = operator.attrgetter("timestamp")


def _window(time_window_seconds: object, client_type: object) -> float | None:
    if not isinstance(client_type, str | None):
        return None
    if isinstance(time_window_seconds, bool) or not isinstance(time_window_seconds, int | float):
        return None
    return recent_window(time_window_seconds, client_type)


def _strict_owner(owner_id: str | None, entry: CacheEntry) -> bool:
    """The main-store owner filter of the recent look-ups: exact match when an owner is given."""
    return not owner_id or entry.owner_id == owner_id
