"""LayeredSignatureCache: L1 memory (cachetools) over an L2 store, owner-strict, restart-proof.

Read path: L1, else the writer's pending overlay (queued, uncommitted writes, keyed like L1),
else L2 with promotion to L1 (expiry = min(now + L1 TTL, the row's expiry)), else a miss,
never cached. Write path: L1 at once, L2 through the background `BatchWriter`; a write never
waits for the store and never hashes (the writer derives the L2 key). An L2 failure is counted
(`l2_errors`), logged once per burst with `[LAYERED_CACHE]` and answered from L1; nothing
raises into a cache call.

Keys: legacy normalisation, then the whole normalised text (no 500-character prefix), under the
owner as namespace. Strict isolation: an entry written by owner A answers only owner A; an
entry written with no owner answers only callers with no owner.

Provenance (issue 13, `sigcache.provenance`): every entry records its model, optional scope and
conversation; every read takes the keyword-only `model`, `scope` and `conversation_id`, and an
entry of another model family or scope is a miss (`provenance_misses_*`). Tool ids are found by
their rewritten forms too. Placeholders, invalid, truncated signatures and strict prefixes of a
held value are refused and counted (`rejected_*`).

L2 is `SQLiteStore` by default; any `storage.QueryStorage` plugs in through `store=`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType

from sigcache.errors import StorageError
from sigcache.layered_keys import id_key, l2_key, main_key, window_start
from sigcache.lookups import OrderedLookups
from sigcache.storage import ALIAS, MAIN, SESSION, TOOL, Entry
from sigcache.tiers import log

# main_key, id_key, l2_key and window_start stay importable from here (benchmarks, aio).
__all__ = ["LayeredSignatureCache", "id_key", "l2_key", "main_key", "window_start"]


class LayeredSignatureCache(OrderedLookups):
    """The new cache: L1 + L2, main/tool/session stores, owner-strict; see the module doc.

    `LayeredSignatureCache(db_path, *, config=None, clock=time.time, store=None)`: `store`, any
    `storage.QueryStorage`, replaces the default `SQLiteStore(db_path)`.
    """

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
        expires_at: float | None = None,
        written_at: float | None = None,
        validated: bool = False,
    ) -> bool:
        """Cache a signature for a thinking text; False for empty or invalid input.

        `model`, `scope` and `conversation_id` are its provenance. `expires_at` (epoch seconds,
        cache clock) can only shorten the entry's life and must lie ahead; `written_at` is the
        write time for last/recent look-ups (default now); `validated=True` skips the signature
        pattern check (the caller already ran it).
        """
        key = main_key(thinking_text, owner_id)
        if key is None:
            return self._refuse_key(owner_id, "empty_text")
        if not self._acceptable(key, signature, validated):
            return False
        return self._write(
            key, signature, thinking_text, model, conversation_id, expires_at, written_at, scope
        )

    def get(
        self,
        thinking_text: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The signature for a thinking text under this owner (and model family, scope), or None.

        `conversation_id` never filters a keyed read (forks resend the same text).
        """
        key = main_key(thinking_text, owner_id)
        if key is None:
            self._no_read()
            return None
        entry = self._read(key)
        if entry is None:
            return None
        if model is None and scope is None:  # the common, provenance-free read
            return entry.signature
        entry = self.admit(MAIN, entry, model, scope)
        return None if entry is None else entry.signature

    def get_many(
        self,
        texts: Iterable[object],
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> list[str | None]:
        """Signatures for many texts (aligned with `texts`); L2 misses of L1 in one query."""
        keys = [main_key(text, owner_id) for text in texts]
        found: list[Entry | None] = [None] * len(keys)
        wanted: dict[str, list[int]] = {}
        for index, key in enumerate(keys):
            if key is not None:
                answered, entry, digest = self.before_l2(key)
                if answered:
                    found[index] = entry
                else:
                    wanted.setdefault(digest, []).append(index)
        if wanted:
            owner = next(key[1] for key in keys if key is not None)
            rows, error = self._get_many_l2(owner, list(wanted))
            for digest, indexes in wanted.items():
                for index in indexes:
                    found[index] = self.after_l2(keys[index], rows.get(digest), error)  # type: ignore[arg-type]
        if model is not None or scope is not None:
            found = [self.admit(MAIN, entry, model, scope) for entry in found]
        return [None if entry is None else entry.signature for entry in found]

    def _get_many_l2(
        self, owner: str, digests: list[str]
    ) -> tuple[dict[str, Entry], Exception | None]:
        if self._closed:
            return {}, None
        try:
            return self._l2.get_many(MAIN, owner, digests, self._clock()), None
        except StorageError as exc:
            return {}, exc

    def invalidate(self, thinking_text: str, owner_id: str | None = None) -> bool:
        """Delete a text's entry in both tiers; owner None = every owner. True if one existed."""
        key = main_key(thinking_text, owner_id)
        if key is None or self._closed:
            return False
        digest, now = l2_key(key), self._clock()
        if owner_id is None:
            removed = self._l1.pop_every_owner(MAIN, key[2]) > 0
            in_l2 = self._guarded(lambda: self._l2.exists_any_owner(MAIN, digest, now), False)
            pending = self._writer.delete(MAIN, None, key[2])
        else:
            removed = self._l1.pop(key)
            in_l2 = self._guarded(lambda: self._l2.get(MAIN, key[1], digest, now), None) is not None
            pending = self._writer.delete(MAIN, key[1], key[2])
        return removed or bool(in_l2) or pending

    def clear(self) -> int:
        """Empty the main store in both tiers; returns max(L1 entries, L2 rows) removed.

        After queued writes commit, L2 holds every L1 entry (unless L2 failed), so the larger
        count is the number of distinct entries removed.
        """
        removed = self._l1.clear(MAIN)
        done = self._writer.call(lambda _: self._l2.clear_store(MAIN), self._timeout)
        return max(removed, self._call_result(done))

    def cleanup_expired(self) -> int:
        """Remove expired entries of every store in both tiers and trim L2 to `l2.max_rows`.

        Returns L1 removals plus L2 rows removed (an entry can count once per tier).
        """
        removed = self._l1.expire()
        now, max_rows = self._clock(), self._config.l2.max_rows
        done = self._writer.call(lambda _: self._l2.cleanup(now, max_rows), self._timeout)
        return removed + self._call_result(done)

    # -- size and stats -----------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Live main entries across both tiers (flushes first); L1's count if L2 is failing."""
        if not self._closed and self._writer.settle(self._timeout):
            now = self._clock()
            count = self._guarded(lambda: self._l2.count_live(MAIN, now), -1)
            if count >= 0:
                return count
        return self._l1.live_count(MAIN)

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        # An empty cache is still a cache (the origin's facade was falsy while empty).
        return True

    def get_stats(self) -> dict[str, object]:
        """Numbers only: per tier, per store and overall; `hit_rate` a float in [0, 1]."""
        stats: dict[str, int | float] = dict(self._stats.snapshot())
        stats.update({f"l1_{name}": value for name, value in self._l1.counts.items()})
        stats["l1_size"] = self._l1.size()
        stats["l1_main_size"] = self._l1.size(MAIN)
        writer = dict(self._writer.counts)
        stats["l2_writes_batched"] = writer["writes_batched"]
        stats["l2_batches"] = writer["batches"]
        stats["dropped_writes"] = writer["dropped_writes"]
        stats["write_errors"] = writer["write_errors"]
        stats["l2_errors"] += self._writer.error_events
        stats["l2_queue_depth"] = self._writer.depth()
        stats["l2_rows"] = -1 if self._closed else self._guarded(self._l2.count_rows, -1)
        hits, misses = stats["hits"], stats["misses"]
        stats["hit_rate"] = hits / (hits + misses) if hits + misses else 0.0
        return dict(stats)

    def reset_stats(self) -> None:
        """Zero the counters of both tiers (sizes and queue depth are states, not counters)."""
        self._stats.reset()
        self._l1.reset_counts()
        self._writer.reset_counts()

    # -- tool and session stores --------------------------------------------------------------

    def cache_tool_signature(
        self,
        tool_id: str,
        signature: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
        expires_at: float | None = None,
        written_at: float | None = None,
        validated: bool = False,
    ) -> bool:
        """Cache a signature for a tool-call id, found later by its rewritten forms too
        (keywords as for `set`)."""
        key = id_key(TOOL, tool_id, owner_id)
        if key is None:
            return self._refuse_key(owner_id, "empty_id")
        if not self._acceptable(key, signature, validated):
            return False
        written = self._write(
            key, signature, "", model, conversation_id, expires_at, written_at, scope
        )
        if written:
            self._write_aliases(key, expires_at, written_at)
        return written

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
        expires_at: float | None = None,
        written_at: float | None = None,
        validated: bool = False,
    ) -> bool:
        """Cache a signature (and optionally its thinking text) for a session id."""
        key = id_key(SESSION, session_id, owner_id)
        if key is None:
            return self._refuse_key(owner_id, "empty_id")
        if not isinstance(thinking_text, str | None):
            return False
        if not self._acceptable(key, signature, validated):
            return False
        text = thinking_text or ""
        return self._write(
            key, signature, text, model, conversation_id, expires_at, written_at, scope
        )

    def get_session_signature(
        self,
        session_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The signature for a session id under this owner (and model family, scope), or None."""
        found = self.get_session_signature_with_text(session_id, owner_id, model=model, scope=scope)
        return found[0] if found else None

    def get_session_signature_with_text(
        self,
        session_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> tuple[str, str] | None:
        """(signature, thinking text) for a session id under this owner, or None."""
        key = id_key(SESSION, session_id, owner_id)
        if key is None:
            self._no_read()
            return None
        entry = self.admit(SESSION, self._read(key), model, scope)
        return (entry.signature, entry.text) if entry else None

    # -- lifecycle ------------------------------------------------------------------------------

    def entries(self) -> Iterator[Entry]:
        """Every live main, tool and session entry (L2 after a flush, oldest write first; L1's
        if L2 is failing)."""
        self._writer.settle(self._timeout)
        now, yielded = self._clock(), False
        try:
            for entry in self._l2.scan(now):
                yielded = True
                if entry.store != ALIAS:  # the cache's own index of tool ids, not an entry
                    yield entry
        except StorageError as exc:
            self._l2_failed(exc)
            if not yielded:
                for key, entry in self._l1.live():
                    if entry.store != ALIAS:
                        yield entry if entry.key else entry._replace(key=l2_key(key))

    def close(self) -> None:
        """Commit queued writes (up to `l2.close_timeout_s`) and close every connection."""
        if self._closed:
            return
        self._closed = True
        if not self._writer.close(self._timeout):
            log.warning("[LAYERED_CACHE] writer did not finish within %ss", self._timeout)
        self._l2.close()

    def __enter__(self) -> LayeredSignatureCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LayeredSignatureCache(path={self.path!r}, l1_size={self._l1.size()})"
