"""Read and write counters of the layered cache, and the numbers-only stats it reports."""

from __future__ import annotations

import threading

from sigcache import forksafe
from sigcache.provenance import PROVENANCE_REASONS, REJECTION_REASONS
from sigcache.storage import MAIN, SESSION, TOOL

__all__ = ["Counters"]

_SOURCES = ("l1", "pending", "l2", "error")


class Counters:
    """Counters, each changed under one lock by the code that knows the outcome."""

    NAMES = (
        "hits",
        "misses",
        *(
            f"{store}_{what}"
            for store in (MAIN, TOOL, SESSION)
            for what in ("hits", "misses", "writes")
        ),
        *(f"{source}_{what}" for source in ("pending", "l2") for what in ("hits", "misses")),
        "l2_errors",
        "rejected_writes",
        *(f"rejected_{reason}" for reason in REJECTION_REASONS),
        # Reads refused for their provenance (issue 13): the entry exists but belongs to another
        # model family or scope, or a last/recent look-up named no conversation.
        "provenance_misses",
        *(f"provenance_misses_{reason}" for reason in PROVENANCE_REASONS),
        "alias_writes",  # tool-id alias rows queued for L2 (one per new form of a tool id)
        "tool_alias_hits",  # tool reads answered through a rewritten form of the id
        "tool_alias_ambiguous",  # tool reads whose form two different raw ids share
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.NAMES, 0)
        # The counter names of every outcome, built once: no string formatting per call.
        self._outcomes = {
            (store, hit, source): _outcome_names(store, hit, source)
            for store in (MAIN, TOOL, SESSION)
            for hit in (True, False)
            for source in _SOURCES
        }
        forksafe.register(self)

    def after_fork_in_child(self) -> None:
        """A fresh lock: another thread of the parent may have held it at the fork."""
        self._lock = threading.Lock()

    def add(self, name: str, amount: int = 1) -> None:
        """Add to one counter."""
        with self._lock:
            self._counts[name] += amount

    def rejected(self, reason: str) -> None:
        """Count one refused write, overall and by reason (`REJECTION_REASONS`)."""
        with self._lock:
            self._counts["rejected_writes"] += 1
            self._counts[f"rejected_{reason}"] += 1

    def refused(self, store: str | None, reason: str) -> None:
        """Count a read refused for its provenance; a keyed read's tier hit becomes a miss.

        `store` None: a last/recent look-up, which the hit/miss counters do not count.
        """
        with self._lock:
            counts = self._counts
            counts["provenance_misses"] += 1
            counts[f"provenance_misses_{reason}"] += 1
            if store is not None:
                counts["hits"] -= 1
                counts[f"{store}_hits"] -= 1
                counts["misses"] += 1
                counts[f"{store}_misses"] += 1

    def alias_hit(self) -> None:
        """Count a tool read answered through an alias: its raw-id miss becomes a hit."""
        with self._lock:
            counts = self._counts
            counts["tool_alias_hits"] += 1
            counts["misses"] -= 1
            counts["tool_misses"] -= 1
            counts["hits"] += 1
            counts["tool_hits"] += 1

    def answered(self, store: str, hit: bool, source: str) -> None:
        """Count one look-up: overall, per store, per source ("l1", "pending", "l2", "error")."""
        names = self._outcomes[(store, hit, source)]
        with self._lock:
            counts = self._counts
            for name in names:
                counts[name] += 1

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter."""
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._counts = dict.fromkeys(self.NAMES, 0)


def _outcome_names(store: str, hit: bool, source: str) -> tuple[str, ...]:
    outcome = "hits" if hit else "misses"
    names = (outcome, f"{store}_{outcome}")
    return (*names, f"{source}_{outcome}") if source in ("pending", "l2") else names
