"""The ordered look-ups of the layered cache: last, recent and fuzzy tool ids, owner-strict.

Each asks L1 first (touch order for main "last", write time otherwise) and falls back to L2's
ordered queries, which answer after a restart or an L1 eviction. A failing L2 is a miss here.
"""

from __future__ import annotations

import math

from sigcache.fingerprints import extract_base_tool_id
from sigcache.layered_keys import id_key, owner_namespace, window_start
from sigcache.storage import MAIN, SESSION, TOOL, Entry
from sigcache.tiers import TieredCore

__all__ = ["OrderedLookups"]

_ORDERED_FLUSH_TIMEOUT_S = 1.0  # a stuck L2 degrades the look-up, never blocks it for long


class OrderedLookups(TieredCore):
    """Last/recent signatures and the fuzzy tool look-up, over the tiered core."""

    def get_tool_signature(self, tool_id: str, owner_id: str | None = None) -> str | None:
        """The signature for a tool-call id under this owner, or None."""
        key = id_key(TOOL, tool_id, owner_id)
        entry = self._read(key) if key else None
        return entry.signature if entry else None

    def get_tool_signature_fuzzy(
        self, tool_id: str, max_candidates: int = 5, owner_id: str | None = None
    ) -> str | None:
        """Exact id, its base id, then ids containing the base id, newest first (owner-strict)."""
        exact = self.get_tool_signature(tool_id, owner_id)
        key = id_key(TOOL, tool_id, owner_id)
        if exact is not None or key is None:
            return exact
        base = extract_base_tool_id(tool_id)
        if base == tool_id:
            return None
        found = self.get_tool_signature(base, owner_id)
        if found is not None:
            return found
        if isinstance(max_candidates, bool) or not isinstance(max_candidates, int):
            return None
        if max_candidates <= 0:
            return None
        entry = self._l1.search(TOOL, key[1], base, tool_id)
        if entry is None:
            now = self._clock()
            hits: list[Entry] = self._guarded(
                lambda: self._l2.search(TOOL, key[1], base, tool_id, max_candidates, now),
                list[Entry](),
            )
            entry = hits[0] if hits else None
        return entry.signature if entry else None

    def _latest(
        self, store: str, owner: str, since: float, with_text: bool = False
    ) -> Entry | None:
        """L1's newest eligible entry, else L2's (by write time, e.g. after a restart)."""
        entry = self._l1.latest(store, owner, since, with_text)
        if entry is not None:
            return entry
        if self._writer.has_pending():
            # L2's ordered query cannot see queued writes and deletes (an invalidated entry
            # would come back): commit them first. Only this fallback path waits, never a get/set.
            self._writer.flush(_ORDERED_FLUSH_TIMEOUT_S)
        now = self._clock()
        return self._guarded(lambda: self._l2.latest(store, owner, since, now, with_text), None)

    def get_last_signature(self, owner_id: str | None = None) -> str | None:
        """The most recently written or read live main entry of this owner (legacy "last")."""
        found = self.get_last_signature_with_text(owner_id)
        return found[0] if found else None

    def get_last_signature_with_text(self, owner_id: str | None = None) -> tuple[str, str] | None:
        """(signature, thinking text) of this owner's most recently touched live main entry."""
        owner = owner_namespace(owner_id)
        entry = None if owner is None else self._latest(MAIN, owner, -math.inf)
        return (entry.signature, entry.text) if entry else None

    def _window(
        self, time_window_seconds: object, client_type: object, owner_id: object
    ) -> tuple[str, float] | None:
        owner = owner_namespace(owner_id)
        since = window_start(self._clock(), time_window_seconds, client_type)
        return None if owner is None or since is None else (owner, since)

    def get_recent_signature(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
    ) -> str | None:
        """A signature of this owner written within the window: tool, session, then main."""
        window = self._window(time_window_seconds, client_type, owner_id)
        if window is None:
            return None
        for store in (TOOL, SESSION, MAIN):
            entry = self._latest(store, *window)
            if entry is not None:
                return entry.signature
        return None

    def get_recent_signature_with_text(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
    ) -> tuple[str, str] | None:
        """(signature, text) of this owner written within the window: main, then session."""
        window = self._window(time_window_seconds, client_type, owner_id)
        if window is None:
            return None
        entry = self._latest(MAIN, *window) or self._latest(SESSION, *window, True)
        return (entry.signature, entry.text) if entry else None
