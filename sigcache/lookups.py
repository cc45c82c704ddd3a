"""The ordered look-ups of the layered cache: last, recent and fuzzy tool ids, owner-strict.

Each asks L1 first (touch order for main "last", write time otherwise) and falls back to L2's
ordered queries, which answer after a restart or an L1 eviction. A failing L2 is a miss here.

Provenance (issue 13, `sigcache.provenance`): last/recent look at the caller's conversation only,
and answer nothing when the caller names none (`LayeredConfig.strict_conversation_fallbacks`);
the newest entry of each store they consult answers only if its model family and scope match the
caller's, never an older or another conversation's entry in its place.
"""

from __future__ import annotations

import math

from sigcache.layered_keys import id_key, owner_namespace, window_start
from sigcache.layered_provenance import ProvenanceCore
from sigcache.provenance import extract_base_tool_id
from sigcache.storage import MAIN, SESSION, TOOL, Entry

__all__ = ["OrderedLookups"]

_ORDERED_FLUSH_TIMEOUT_S = 1.0  # a stuck L2 degrades the look-up, never blocks it for long


class OrderedLookups(ProvenanceCore):
    """Last/recent signatures and the tool look-ups (exact, aliases, fuzzy), over the core."""

    def get_tool_signature(
        self,
        tool_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The signature for a tool-call id (or a rewritten form of it) under this owner."""
        key = id_key(TOOL, tool_id, owner_id)
        if key is None:
            self._no_read()
            return None
        entry = self._tool_entry(key)
        return self._signature_if_admitted(TOOL, entry, model, scope)

    def _signature_if_admitted(
        self, store: str | None, entry: Entry | None, model: object, scope: object
    ) -> str | None:
        admitted = self.admit(store, entry, model, scope)
        return admitted.signature if admitted else None

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
        """Exact id or its forms, its base id, then ids containing the base id, newest first."""
        key = id_key(TOOL, tool_id, owner_id)
        if key is None:
            self._no_read()
            return None
        entry = self._tool_entry(key)
        if entry is not None:  # this call's own entry decides, even when it is refused
            return self._signature_if_admitted(TOOL, entry, model, scope)
        base = extract_base_tool_id(tool_id)
        if base == tool_id:
            return None
        base_key = id_key(TOOL, base, owner_id)
        entry = None if base_key is None else self._tool_entry(base_key)
        if entry is not None:
            return self._signature_if_admitted(TOOL, entry, model, scope)
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
        return self._signature_if_admitted(None, entry, model, scope)

    def _latest(
        self,
        store: str,
        owner: str,
        since: float,
        with_text: bool = False,
        conversation: str | None = None,
    ) -> Entry | None:
        """L1's newest eligible entry, else L2's (by write time, e.g. after a restart)."""
        entry = self._l1.latest(store, owner, since, with_text, conversation)
        if entry is not None:
            return entry
        if self._writer.has_pending():
            # L2's ordered query cannot see queued writes and deletes (an invalidated entry
            # would come back): commit them first. Only this fallback path waits, never a get/set.
            self._writer.settle(_ORDERED_FLUSH_TIMEOUT_S)
        now = self._clock()
        if conversation is not None:
            try:
                return self._guarded(
                    lambda: self._l2.latest(store, owner, since, now, with_text, conversation),
                    None,
                )
            except TypeError:  # a store written before issue 13: filter its newest entry
                entry = self._latest_l2(store, owner, since, now, with_text)
                return entry if entry and entry.conversation_id == conversation else None
        return self._latest_l2(store, owner, since, now, with_text)

    def _latest_l2(
        self, store: str, owner: str, since: float, now: float, with_text: bool
    ) -> Entry | None:
        return self._guarded(lambda: self._l2.latest(store, owner, since, now, with_text), None)

    def _caller(self, owner_id: object, conversation_id: object) -> tuple[str, str | None] | None:
        """(owner, conversation) of a last/recent call, or None when it may not be answered."""
        self._local.refused = None  # this look-up's own refusals only (read_refusal)
        owner = owner_namespace(owner_id)
        if owner is None:
            return None
        conversation = conversation_id if isinstance(conversation_id, str) else None
        if not conversation:
            if self._config.strict_conversation_fallbacks and not self._closed:
                self._stats.refused(None, "conversation")  # never a stranger's signature
                self._local.refused = "conversation"
                return None
            conversation = None
        return owner, conversation

    def get_last_signature(
        self,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The most recently written or read live main entry of this owner and conversation."""
        found = self.get_last_signature_with_text(
            owner_id, model=model, scope=scope, conversation_id=conversation_id
        )
        return found[0] if found else None

    def get_last_signature_with_text(
        self,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> tuple[str, str] | None:
        """(signature, thinking text) of the most recently touched live main entry."""
        caller = self._caller(owner_id, conversation_id)
        if caller is None:
            return None
        entry = self._latest(MAIN, caller[0], -math.inf, conversation=caller[1])
        entry = self.admit(None, entry, model, scope)
        return (entry.signature, entry.text) if entry else None

    def _window(
        self,
        time_window_seconds: object,
        client_type: object,
        owner_id: object,
        conversation: object,
    ) -> tuple[str, float, str | None] | None:
        since = window_start(self._clock(), time_window_seconds, client_type)
        if since is None:
            self._local.refused = None  # a bad window: nothing was looked at
            return None
        caller = self._caller(owner_id, conversation)
        return None if caller is None else (caller[0], since, caller[1])

    def _recent(
        self,
        window: tuple[str, float, str | None],
        stores: tuple[tuple[str, bool], ...],
        want: tuple[object, object],
    ) -> Entry | None:
        """The first store's newest entry in the window whose provenance matches, or None."""
        owner, since, conversation = window
        for store, with_text in stores:
            entry = self._latest(store, owner, since, with_text, conversation)
            if entry is not None:
                admitted = self.admit(None, entry, *want)
                if admitted is not None:
                    return admitted
        return None

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
        """A signature of this owner and conversation written within the window: tool, session,
        then main."""
        window = self._window(time_window_seconds, client_type, owner_id, conversation_id)
        if window is None:
            return None
        stores = ((TOOL, False), (SESSION, False), (MAIN, False))
        entry = self._recent(window, stores, (model, scope))
        return entry.signature if entry else None

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
        """(signature, text) of this owner and conversation within the window: main, then
        session."""
        window = self._window(time_window_seconds, client_type, owner_id, conversation_id)
        if window is None:
            return None
        entry = self._recent(window, ((MAIN, False), (SESSION, True)), (model, scope))
        return (entry.signature, entry.text) if entry else None
