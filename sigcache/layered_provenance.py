"""Provenance in the layered cache: refused reads, refused writes and tool-id aliases (issue 13).

`ProvenanceCore` sits between the tiered core and the public cache. It applies the matching
rules of `sigcache.provenance` to what the tiers found (a mismatch is a miss, counted as
`provenance_misses_<reason>`), counts every refused write by reason, and keeps the tool-id
aliases: for each written tool id, one `ALIAS` entry per rewritten form (`tool_id_forms`) naming
the raw id, persisted in L2 like any entry, so a rewritten id is found after a restart too. When
two different raw ids share a form, the alias is rewritten as ambiguous ("" as its raw id) and
the form answers nothing from then on (until it expires): a read never gets another call's
signature.

Alias writes read the existing alias first (L1, the write queue, then L2: one point read per form
of a tool write, off the hot main path). The check and the write run under one lock in the
process; two processes writing two raw ids of one form within the same moment may both see no
alias (the later write then wins), a limit of a read-then-write over a shared L2.
"""

from __future__ import annotations

import os
import threading
import time

from sigcache import forksafe
from sigcache.config import LayeredConfig
from sigcache.layered_keys import l2_key, owner_namespace
from sigcache.memory import L1Key
from sigcache.provenance import (
    mismatch,
    rejection_reason,
    shortens,
    tool_id_forms,
    tool_id_lookup_forms,
    want,
)
from sigcache.storage import ALIAS, TOOL, Entry, QueryStorage
from sigcache.tiers import Clock, TieredCore, _entry_times

__all__ = ["ProvenanceCore"]


class _Lock:
    """A lock re-created in a forked child (another thread may hold it at the fork)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        forksafe.register(self)

    def after_fork_in_child(self) -> None:
        """A fresh lock in the child."""
        self.lock = threading.Lock()


class ProvenanceCore(TieredCore):
    """Provenance checks, write refusals and tool-id aliases over the tiered core."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        config: LayeredConfig | None = None,
        clock: Clock = time.time,
        store: QueryStorage | None = None,
    ) -> None:
        super().__init__(db_path, config=config, clock=clock, store=store)
        self._alias_lock = _Lock()

    # -- reads --------------------------------------------------------------------------------

    def admit(
        self, store: str | None, entry: Entry | None, model: object, scope: object
    ) -> Entry | None:
        """`entry` if its provenance matches the read's model and scope, else None (counted).

        `store`: the keyed store whose tier hit becomes a miss; None for last/recent and fuzzy
        candidates, which the hit/miss counters do not count.
        """
        if entry is None or (model is None and scope is None):
            return entry
        reason = mismatch(want(model, scope), entry.model, entry.scope)
        if reason is None:
            return entry
        self._stats.refused(store, reason)
        local = self._local
        local.tier, local.refused = None, reason  # read_refusal(): the phase router asks
        return None

    def _quiet(self, key: L1Key) -> tuple[Entry | None, str | None]:
        """(entry, tier) of a key without counting a read: L1, the write queue, then L2."""
        entry = self._l1.peek(key)
        if entry is not None:
            return entry, "l1"
        found, pending = self._writer.lookup(*key)
        if found:
            live = pending is not None and self._clock() <= pending.expires_at
            return (pending, "l2") if live else (None, None)
        if self._closed:
            return None, None
        now = self._clock()
        row = self._guarded(lambda: self._l2.get(key[0], key[1], l2_key(key), now), None)
        if row is not None:
            self._promote(key, row)
        return row, "l2" if row is not None else None

    def _tool_entry(self, key: L1Key) -> Entry | None:
        """The tool entry of an id: the raw id, else a rewritten form of it (an alias)."""
        entry = self._read(key)
        return entry if entry is not None else self.tool_alias_entry(key)

    def tool_alias_entry(self, key: L1Key) -> Entry | None:
        """After a raw tool id missed: the entry a rewritten form of it names, or None.

        May read L2 (blocking); the async bridge runs it in a worker thread.
        """
        owner, raw = key[1], key[2]
        for form in tool_id_lookup_forms(raw):
            alias, _ = self._quiet((ALIAS, owner, form))
            if alias is None:
                continue
            if not alias.signature:  # two raw ids share this form: it answers nothing
                self._stats.add("tool_alias_ambiguous")
                return None
            if alias.signature == raw:  # the id's own form; its entry has just missed
                continue
            # The most specific form that exists decides; a less specific one is not tried.
            found, tier = self._quiet((TOOL, owner, alias.signature))
            if found is not None:
                self._stats.alias_hit()
                self._local.tier = tier
            return found
        return None

    # -- writes -------------------------------------------------------------------------------

    def _refuse_key(self, owner_id: object, reason: str) -> bool:
        """Count a write refused for its key (no usable text or id, or a bad owner)."""
        if not self._closed:
            self._stats.rejected("invalid_owner" if owner_namespace(owner_id) is None else reason)
        return False

    def _acceptable(self, key: L1Key, signature: object, validated: object) -> bool:
        """Whether a write may go ahead; a refused signature is counted by reason."""
        if self._closed:
            return False
        config = self._config
        reason = rejection_reason(
            signature, validated=validated is True, reject_truncated=config.reject_truncated
        )
        if (
            reason is None and config.reject_prefix_overwrite and self._shortens(key, signature)  # type: ignore[arg-type]  # a str by now
        ):
            reason = "prefix"
        if reason is not None:
            self._stats.rejected(reason)
        return reason is None

    def _shortens(self, key: L1Key, signature: str) -> bool:
        """Whether `signature` is a strict prefix of the value L1 holds for the key.

        An aborted stream re-sent later must not replace the whole value. Only L1 is asked: L2
        would make every write wait for the store, and the write queue made the answer depend
        on the writer thread's timing (a replay on Redis refused a different number of writes
        than on SQLite). A value only L2 holds (after a restart or an L1 eviction) is
        overwritten.
        """
        held = self._l1.peek(key)
        return shortens(None if held is None else held.signature, signature)

    def _write_aliases(self, key: L1Key, expires_at: object, written_at: object) -> None:
        """Record the forms of a written tool id (ambiguous where another raw id has one)."""
        times = _entry_times(self._clock(), self._l2_ttl, expires_at, written_at)
        if times is None:
            return
        written, expires = times
        owner, raw = key[1], key[2]
        with self._alias_lock.lock:
            for form in tool_id_forms(raw):
                akey = (ALIAS, owner, form)
                held, _ = self._quiet(akey)
                target, until = raw, expires
                if held is not None:
                    target = raw if held.signature == raw else ""
                    until = max(expires, held.expires_at)
                    if held.signature == target and held.expires_at >= until:
                        continue  # nothing new to record
                alias = Entry(ALIAS, owner, form, target, "", None, None, written, until)
                l1_expires = min(self._clock() + self._l1_ttl, until)
                if l1_expires >= self._clock():
                    self._l1.put(akey, alias, l1_expires)
                self._writer.put(alias, form)
                self._stats.add("alias_writes")
