"""The L2 seam: the stored entry record and the small storage protocols every L2 implements.

`Storage` is what the background writer and a plain key look-up need (get, get_many, put_many,
delete, cleanup, close), so another shared store (for multi-host deployments) can follow SQLite.
`QueryStorage` adds the few ordered look-ups the layered cache needs across a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from sigcache.schema import bind_text, read_text

__all__ = [
    "MAIN",
    "SESSION",
    "STORES",
    "TOOL",
    "BurstLog",
    "Entry",
    "QueryStorage",
    "Storage",
]

MAIN = "main"
TOOL = "tool"
SESSION = "session"
STORES = (MAIN, TOOL, SESSION)


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored signature, as L1 holds it and as L2 persists it."""

    store: str  # MAIN | TOOL | SESSION
    owner: str  # the namespace; "" = no owner
    key: str  # main: SHA-256 hex of the normalised text; tool/session: the id itself
    signature: str
    text: str  # main: the thinking text as written; session: its optional text; tool: ""
    model: str | None
    conversation_id: str | None
    written_at: float  # epoch seconds, from the cache's clock
    expires_at: float  # epoch seconds; live while now <= expires_at

    def as_row(self) -> tuple[object, ...]:
        """The column values in schema order."""
        return (
            self.store,
            bind_text(self.owner),
            bind_text(self.key),
            self.signature,
            bind_text(self.text),
            None if self.model is None else bind_text(self.model),
            None if self.conversation_id is None else bind_text(self.conversation_id),
            self.written_at,
            self.expires_at,
        )

    @classmethod
    def from_row(cls, row: Sequence[object]) -> Entry:
        """An entry from a row selected in schema order."""
        store, owner, key, signature, text, model, conversation, written, expires = row
        return cls(
            str(store),
            read_text(owner),
            read_text(key),
            str(signature),
            read_text(text),
            None if model is None else read_text(model),
            None if conversation is None else read_text(conversation),
            float(written),  # type: ignore[arg-type]
            float(expires),  # type: ignore[arg-type]
        )


class Storage(Protocol):
    """The minimal L2 store. Methods raise `StorageError`; the cache turns that into a miss."""

    path: str

    def get(self, store: str, owner: str, key: str, now: float) -> Entry | None:
        """The live entry for a key, or None."""
        ...

    def get_many(self, store: str, owner: str, keys: Sequence[str], now: float) -> dict[str, Entry]:
        """Live entries for many keys of one store and owner, by key."""
        ...

    def put_many(self, entries: Sequence[Entry]) -> int:
        """Upsert entries in one transaction; returns how many."""
        ...

    def delete(self, store: str, owner: str | None, key: str) -> int:
        """Delete a key (owner None = every owner); returns rows removed."""
        ...

    def cleanup(self, now: float, max_rows: int) -> int:
        """Delete expired rows, then the oldest-written beyond `max_rows`; returns rows removed."""
        ...

    def close(self) -> None:
        """Release every connection."""
        ...


class QueryStorage(Storage, Protocol):
    """Storage plus the ordered look-ups of the layered cache."""

    def latest(
        self, store: str, owner: str, since: float, now: float, with_text: bool = False
    ) -> Entry | None:
        """The newest live entry written after `since` (optionally with a non-empty text)."""
        ...

    def search(
        self, store: str, owner: str, needle: str, exclude: str, limit: int, now: float
    ) -> list[Entry]:
        """Live entries whose key contains `needle` (not `exclude`), newest first."""
        ...

    def exists_any_owner(self, store: str, key: str, now: float) -> bool:
        """Whether any owner has a live entry for the key."""
        ...

    def count_live(self, store: str, now: float) -> int:
        """Live rows of one store."""
        ...

    def count_rows(self) -> int:
        """Every row, live or not."""
        ...

    def clear_store(self, store: str) -> int:
        """Delete every row of one store; returns how many."""
        ...

    def scan(self, now: float) -> Iterator[Entry]:
        """Every live entry, oldest write first."""
        ...


class BurstLog:
    """Logs the first failure of a burst of failures (and the recovery), not every one."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._log = logger
        self._what = what
        self._lock = threading.Lock()
        self._failing = False

    def failure(self, detail: str) -> None:
        """Record a failure; logs a warning only when a burst starts."""
        with self._lock:
            first, self._failing = not self._failing, True
        if first:
            self._log.warning("[LAYERED_CACHE] %s failing: %s", self._what, detail)

    def success(self) -> None:
        """Record a success; ends a burst (logged once)."""
        if not self._failing:  # unlocked fast path: the common case on every call
            return
        with self._lock:
            ended, self._failing = self._failing, False
        if ended:
            self._log.warning("[LAYERED_CACHE] %s recovered", self._what)
