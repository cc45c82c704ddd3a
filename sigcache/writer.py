"""The background L2 writer: a bounded queue, batched commits, and the pending-writes overlay.

Request threads only append to the queue (and the overlay) under one short lock; one daemon
thread commits batches. Queued operations are keyed by the L1 identity `(store, owner, ident)`
(ident = the normalised text of a main entry, the id of a tool or session entry), and the L2 key
is derived on the writer thread (`l2_key`, e.g. the SHA-256 of a main text).

2026-11: the SHA-256 used to run on the request path. hashlib releases the GIL for inputs of
2048 bytes or more, and while this thread was busy the request thread then waited up to a whole
switch interval (5 ms) to get the GIL back: `set` p99 ~530 µs. Now a request never hashes for
a write, and a read hashes only when it must ask L2.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from sigcache import forksafe
from sigcache.config import L2Settings
from sigcache.storage import BurstLog, Entry, Storage, StorageRecreatedError

__all__ = ["BatchWriter", "PendingKey", "same_key"]

log = logging.getLogger("sigcache.writer")

PendingKey = tuple[str, str | None, str]  # (store, owner or None = every owner, ident)
L2Key = Callable[[str, str], str]  # (store, ident) -> the L2 key
_T = TypeVar("_T")


def same_key(store: str, ident: str) -> str:
    """The identity mapping: the ident is the L2 key."""
    return ident


class _Call:
    """An admin operation run on the writer thread, in queue order, with its result."""

    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[Storage], object]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None


# One queued operation: (seq, key, payload): a put (key, Entry), a delete (key, None) or an
# admin call (None, _Call).
_Op = tuple[int, PendingKey | None, Entry | _Call | None]


class BatchWriter:
    """Commits queued L2 writes on one background thread, in batches; callers never wait.

    A batch closes at `batch_size` operations or `batch_interval_ms` after the writer woke,
    whichever comes first, and is committed with one executemany in one transaction. Puts beyond
    `max_pending` queued operations are dropped and counted (`dropped_writes`, a warning once
    per burst); deletes and admin calls are always queued, since dropping a delete could let
    an invalidated signature come back from L2. A failed batch is counted (`write_errors`
    rows, `l2_errors` events), logged once per burst and dropped; its entries stay in L1.
    """

    def __init__(self, storage: Storage, settings: L2Settings, l2_key: L2Key = same_key) -> None:
        self._storage = storage
        self._settings = settings
        self._l2_key = l2_key
        self._failures = BurstLog(log, f"L2 writes to {storage.path!r}")
        self._overflow = BurstLog(log, "L2 write queue (full: dropping writes)")
        self._atexit: Callable[[], None] | None = None
        self._reset()
        forksafe.register(self)

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[_Op] = deque()
        self._pending: dict[PendingKey, tuple[int, Entry | None]] = {}  # None = pending delete
        self._seq = self._done = self._flushers = 0
        self._acknowledged = 0  # write_errors when the last flush returned (it reported them)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.counts = {"writes_batched": 0, "batches": 0, "dropped_writes": 0, "write_errors": 0}
        self.error_events = 0

    def after_fork_in_child(self) -> None:
        """Start empty: the parent's queue and thread belong to the parent."""
        self._reset()

    # -- request side ---------------------------------------------------------------------

    def put(self, entry: Entry, ident: str | None = None) -> bool:
        """Queue an upsert (`ident` defaults to the entry's key); False (counted) when full."""
        key = (entry.store, entry.owner, entry.key if ident is None else ident)
        limit = self._settings.max_pending
        with self._cond:
            accepted = not self._stopping and len(self._queue) < limit
            if accepted:
                self._seq += 1
                self._queue.append((self._seq, key, entry))
                self._pending[key] = (self._seq, entry)
                self._wake()
            else:
                self.counts["dropped_writes"] += 1
            overflowing = not accepted and not self._stopping
            # Hysteresis: a burst of drops ends once the queue is half empty, not at the first
            # accepted write, so a saturated queue warns once rather than once per drop.
            drained = accepted and len(self._queue) * 2 < limit
        if overflowing:
            self._overflow.failure(f"{limit} writes queued")
        elif drained:
            self._overflow.success()
        return accepted

    def delete(self, store: str, owner: str | None, ident: str) -> bool:
        """Queue a delete (owner None = every owner), never dropped; True if it undid a put."""
        with self._cond:
            if self._stopping:
                return False
            if owner is None:  # a wildcard delete supersedes every owner's pending write
                keys = [k for k in self._pending if k[0] == store and k[2] == ident]
            else:
                keys = [(store, owner, ident)] if (store, owner, ident) in self._pending else []
            undone = any(self._pending.pop(k)[1] is not None for k in keys)
            key = (store, owner, ident)
            self._seq += 1
            self._queue.append((self._seq, key, None))
            self._pending[key] = (self._seq, None)
            self._wake()
        return undone

    def call(self, fn: Callable[[Storage], object], timeout: float | None) -> _Call | None:
        """Run `fn(storage)` on the writer thread after every queued write; None on timeout."""
        op = _Call(fn)
        with self._cond:
            if self._stopping:
                return None
            self._seq += 1
            self._queue.append((self._seq, None, op))
            self._wake()
            self._flushers += 1  # no reason to wait for the batch timer
            self._cond.notify_all()
        try:
            return op if op.done.wait(timeout) else None
        finally:
            with self._cond:
                self._flushers -= 1

    def _wake(self) -> None:
        """Start the thread, or wake it for a first operation or a full batch (lock held)."""
        if self._thread is None:
            self._start()
        elif len(self._queue) == 1 or len(self._queue) >= self._settings.batch_size:
            self._cond.notify()

    def lookup(self, store: str, owner: str, ident: str) -> tuple[bool, Entry | None]:
        """(found, entry) from queued-but-uncommitted writes; found with None = pending delete."""
        pending = self._pending
        if not pending:  # unlocked fast path: nothing queued
            return False, None
        with self._cond:
            item = pending.get((store, owner, ident)) or pending.get((store, None, ident))
        return (False, None) if item is None else (True, item[1])

    def has_pending(self) -> bool:
        """Whether writes or deletes are queued but not yet committed (unlocked, cheap)."""
        return bool(self._pending)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every write queued before the call is committed; False on a timeout, or
        when a write failed since the previous flush returned (that flush reported it)."""
        with self._cond:
            done = self._wait_committed(timeout)
            # From the previous flush, not from this call: a write the thread failed before the
            # call was lost all the same, and a flush must never acknowledge it.
            errors = self.counts["write_errors"]
            clean, self._acknowledged = errors == self._acknowledged, errors
            return done and clean

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until every write queued before the call is committed; False on a timeout or a
        write failed meanwhile. For the cache's own reads (size, ordered look-ups): it leaves
        earlier failures for the caller's `flush` to report."""
        with self._cond:
            errors = self.counts["write_errors"]
            return self._wait_committed(timeout) and self.counts["write_errors"] == errors

    def _wait_committed(self, timeout: float | None) -> bool:
        """Wake the thread and wait for what is queued now (lock held)."""
        target = self._seq
        self._flushers += 1
        self._cond.notify_all()
        try:
            return self._cond.wait_for(lambda: self._done >= target, timeout)
        finally:
            self._flushers -= 1

    def reset_counts(self) -> None:
        """Zero the counters."""
        with self._cond:
            self.counts = dict.fromkeys(self.counts, 0)
            self._acknowledged = 0
            self.error_events = 0

    def depth(self) -> int:
        """Operations queued and not yet committed."""
        with self._cond:
            return self._seq - self._done

    # -- writer thread ----------------------------------------------------------------------

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sigcache-l2-writer", daemon=True)
        self._thread.start()
        if self._settings.flush_on_exit and self._atexit is None:
            ref = weakref.ref(self)
            timeout = self._settings.close_timeout_s

            def flush_at_exit() -> None:
                writer = ref()
                if writer is not None:
                    writer.close(timeout)

            self._atexit = flush_at_exit
            atexit.register(flush_at_exit)

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._apply(batch)
            with self._cond:
                pending = self._pending
                for seq, key, _ in batch:
                    if key is not None and pending.get(key, (0, None))[0] == seq:
                        del pending[key]
                self._done = batch[-1][0]
                self._cond.notify_all()

    def _next_batch(self) -> list[_Op] | None:
        size = self._settings.batch_size
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return None
            deadline = time.monotonic() + self._settings.batch_interval_ms / 1000
            while len(self._queue) < size and not self._stopping and not self._flushers:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return [self._queue.popleft() for _ in range(min(size, len(self._queue)))]

    def _apply(self, batch: list[_Op]) -> None:
        puts: list[Entry] = []
        l2_key = self._l2_key
        for _, key, payload in batch:
            if isinstance(payload, Entry):
                assert key is not None
                digest = l2_key(key[0], key[2])
                puts.append(payload if digest == payload.key else payload._replace(key=digest))
                continue
            self._write(puts)
            puts = []
            if isinstance(payload, _Call):
                self._call(payload)
            elif key is not None:
                self._delete(key[0], key[1], l2_key(key[0], key[2]))
        self._write(puts)

    def _call(self, op: _Call) -> None:
        try:
            op.result = self._attempt(lambda: op.fn(self._storage))
        except Exception as exc:  # handed back to the waiting caller
            op.error = exc
            self._record_failure(0, exc)
        op.done.set()

    def _write(self, puts: list[Entry]) -> None:
        if not puts:
            return
        try:
            self._attempt(lambda: self._storage.put_many(puts))
        except Exception as exc:  # the writer thread must survive any store failure
            self._record_failure(len(puts), exc)
            return
        self._failures.success()
        with self._cond:
            self.counts["writes_batched"] += len(puts)
            self.counts["batches"] += 1

    def _delete(self, store: str, owner: str | None, key: str) -> None:
        try:
            self._attempt(lambda: self._storage.delete(store, owner, key))
        except Exception as exc:  # counted as one failed write
            self._record_failure(1, exc)
            return
        self._failures.success()

    def _attempt(self, action: Callable[[], _T]) -> _T:
        """Run one store call; a store that recreated its file counts an error and retries once."""
        try:
            return action()
        except StorageRecreatedError as exc:  # the write lands in the new file, not the void
            self._record_failure(0, exc)
            return action()

    def _record_failure(self, rows: int, exc: Exception) -> None:
        with self._cond:
            self.counts["write_errors"] += rows
            self.error_events += 1
        self._failures.failure(f"{type(exc).__name__}: {exc}")

    def close(self, timeout: float | None = None) -> bool:
        """Commit what is queued, stop the thread; True when it stopped in time."""
        if self._atexit is not None:
            atexit.unregister(self._atexit)
            self._atexit = None
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()
