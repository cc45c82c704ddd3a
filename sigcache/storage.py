"""The L2 seam: the stored entry record and the storage protocols every L2 implements.

`LayeredSignatureCache(db_path, store=...)` accepts any `QueryStorage`; `SQLiteStore` is the
default. A shared store for multi-host deployments (Redis, later) implements the same methods
with the semantics documented on each one below. The contract, for every implementation:

- Keys. An entry is identified by `(store, owner, key)`: `store` is one of `STORES`, `owner` the
  namespace ("" = no owner, never None in a stored entry), `key` the SHA-256 hex of the
  normalised text (main) or the tool/session id itself. Owners never match each other.
- Time. `now` is passed in (the cache's clock); an entry is live while `now <= expires_at`.
  A look-up never returns an expired entry; only `cleanup` removes expired ones.
- Text. Any `str` (lone surrogates included) round-trips exactly in owner, key, text, model,
  conversation id and scope.
- Provenance (issue 13). `model`, `conversation_id` and `scope` are stored as given and never
  filter inside a store, except `latest(..., conversation=C)`, which considers only entries whose
  `conversation_id` is exactly C. The cache applies the matching rules (`sigcache.provenance`).
- Reads never write. Look-ups change nothing, not even an access time.
- Threads. Every method may be called from any thread concurrently: reads from request threads
  (and from `asyncio.to_thread` workers), writes only from the cache's one writer thread. A
  store must not be used after `close()`; it then raises `StorageError`.
- Errors. A method raises `sigcache.errors.StorageError` (or a subclass, e.g.
  `StorageBusyError`) for any failure of the backing store, never a driver's own exception;
  the cache counts it and degrades to L1. Construction may raise `StorageOpenError`.
- Fork. After `os.fork()` the child must not reuse the parent's connections; it opens its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol

from sigcache import forksafe
from sigcache.errors import StorageError
from sigcache.schema import bind_text, read_text

__all__ = [
    "ALIAS",
    "MAIN",
    "SESSION",
    "STORES",
    "TOOL",
    "BurstLog",
    "Entry",
    "QueryStorage",
    "Storage",
    "StorageRecreatedError",
]

MAIN = "main"
TOOL = "tool"
SESSION = "session"
# Tool-id aliases (issue 13): key = a rewritten form of a tool id (`provenance.tool_id_forms`),
# signature = the raw id it stands for ("" once two raw ids share the form: ambiguous). Never
# answered by last/recent or the fuzzy search, which name their stores.
ALIAS = "alias"
STORES = (MAIN, TOOL, SESSION, ALIAS)


_new_tuple = tuple.__new__


class StorageRecreatedError(StorageError):
    """The store's file was deleted or replaced under it and is recreated: retry the call once."""


# 2026-11: a NamedTuple, not a frozen dataclass: building one costs ~0.5 µs against ~2 µs for
# a frozen slots dataclass (nine object.__setattr__ calls), and an L2 hit and every write
# build one. It is as immutable; equality is by value.
class Entry(NamedTuple):
    """One stored signature, as L1 holds it and as L2 persists it."""

    store: str  # MAIN | TOOL | SESSION
    owner: str  # the namespace; "" = no owner
    # main: SHA-256 hex of the normalised text ("" in L1 for a write of this process: the
    # writer thread derives it off the request path); tool/session: the id itself.
    key: str
    signature: str
    text: str  # main: the thinking text as written; session: its optional text; tool: ""
    model: str | None
    conversation_id: str | None
    written_at: float  # epoch seconds, from the cache's clock
    expires_at: float  # epoch seconds; live while now <= expires_at
    # The provider or credential scope it was written under (issue 13); last, with a default,
    # so the nine-field constructions of earlier versions still build an entry.
    scope: str | None = None

    def as_row(self) -> tuple[object, ...]:
        """The column values in schema order (`schema.COLUMNS`)."""
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
            None if self.scope is None else bind_text(self.scope),
        )

    @classmethod
    def from_row(cls, row: Sequence[object]) -> Entry:
        """An entry from a row selected in schema order (`schema.COLUMNS`)."""
        store, owner, key, signature, text, model, conversation, written, expires, scope = row
        if (
            owner.__class__ is str
            and key.__class__ is str
            and text.__class__ is str
            and model.__class__ is not bytes
            and conversation.__class__ is not bytes
            and scope.__class__ is not bytes
        ):
            # The common case: nothing to decode. tuple.__new__ skips the generated __new__
            # (a Python call binding nine arguments): ~0.3 µs less per L2 hit.
            return _new_tuple(cls, row)
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
            None if scope is None else read_text(scope),
        )


class Storage(Protocol):
    """The minimal L2 store: what the background writer and a key look-up need.

    See the module docstring for the rules every method follows (keys, time, threads, errors).
    """

    path: str  # where the store lives, for messages (a file path, a URL without credentials)

    def get(self, store: str, owner: str, key: str, now: float) -> Entry | None:
        """The live entry for `(store, owner, key)` at `now`, or None. Never writes."""
        ...

    def get_many(self, store: str, owner: str, keys: Sequence[str], now: float) -> dict[str, Entry]:
        """Live entries of one store and owner for many keys, by key (absent = miss).

        Duplicated keys are allowed; any number of keys is allowed (chunk as needed).
        """
        ...

    def put_many(self, entries: Sequence[Entry]) -> int:
        """Upsert entries atomically (all or none) and durably once it returns; how many.

        An existing `(store, owner, key)` is replaced whole (signature, text, times, ...).
        Called only from the writer thread.
        """
        ...

    def delete(self, store: str, owner: str | None, key: str) -> int:
        """Delete a key of one owner, or of every owner when `owner` is None; rows removed."""
        ...

    def cleanup(self, now: float, max_rows: int) -> int:
        """Delete expired entries, then the oldest-written beyond `max_rows`; rows removed."""
        ...

    def close(self) -> None:
        """Release every connection of this process (idempotent); later calls raise."""
        ...


class QueryStorage(Storage, Protocol):
    """Storage plus the ordered look-ups and admin calls of the layered cache."""

    def latest(
        self,
        store: str,
        owner: str,
        since: float,
        now: float,
        with_text: bool = False,
        conversation: str | None = None,
    ) -> Entry | None:
        """The live entry with the greatest `written_at` > `since` (with a non-empty text if
        `with_text`; with `conversation_id == conversation` if one is given), or None.

        The cache passes `conversation` only when it has one, so a store written before issue
        13 keeps working for look-ups without it.
        """
        ...

    def search(
        self, store: str, owner: str, needle: str, exclude: str, limit: int, now: float
    ) -> list[Entry]:
        """Up to `limit` live entries whose key contains `needle` literally (no wildcards),
        other than `exclude`, newest write first."""
        ...

    def exists_any_owner(self, store: str, key: str, now: float) -> bool:
        """Whether any owner has a live entry for the key."""
        ...

    def count_live(self, store: str, now: float) -> int:
        """Live entries of one store, every owner."""
        ...

    def count_rows(self) -> int:
        """Every entry, live or expired, of every store."""
        ...

    def clear_store(self, store: str) -> int:
        """Delete every entry of one store; how many. Called only from the writer thread."""
        ...

    def scan(self, now: float) -> Iterator[Entry]:
        """Every live entry, oldest write first (lazily; for backfill)."""
        ...


class BurstLog:
    """Logs the first failure of a burst of failures (and the recovery), not every one."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._log = logger
        self._what = what
        self._lock = threading.Lock()
        self._failing = False
        forksafe.register(self)

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

    def after_fork_in_child(self) -> None:
        """A fresh lock: another thread of the parent may have held it at the fork."""
        self._lock = threading.Lock()
