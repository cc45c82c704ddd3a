"""Deferred shadow writes: DUAL_WRITE's new-cache write applied off the caller's path, in order.

In DUAL_WRITE the legacy cache answers; the new cache only shadows it. Writing the shadow inline
costs the caller a second cache's whole write (validation, L1, the L2 queue): a DUAL_WRITE write
measured ~3x a legacy set, and legacy plus the bare layered write alone is ~2.4x, so no inline
trimming reaches the 1.5x goal of issue 8. With `async_write_to_new` on, the caller pays the
legacy write and one append; a daemon thread applies the queued writes to the new cache.

Nothing may look different from inline writes, only later:
- order: one applier at a time (the apply lock), oldest first, so the new cache sees the
  writes in the order callers made them;
- read-your-writes: whoever asks for the new cache drains the queue first (`drain`), in its own
  thread, so a read, a stat or a phase change never overtakes a queued write;
- time: each write carries the moment it was made (`written_at`), not the moment it lands;
- nothing lost: a full queue drains in the caller (back-pressure) instead of dropping, and
  `close` drains before the thread stops.
The replaced system started one thread per write and reported success before trying
(reference/origin-behaviour.md 3.4); this keeps its option name and none of that.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from sigcache import forksafe

__all__ = ["ShadowWrite", "ShadowWriter"]

# (op, positional args, keyword args, written_at): one new-cache write as the caller made it.
ShadowWrite = tuple[str, tuple[Any, ...], Mapping[str, Any], float]
Apply = Callable[[ShadowWrite], None]
# The thread wakes every TICK_S, or as soon as BATCH writes wait: one wake-up per batch, not per
# write (a wake-up per write cost the caller more than the write it moved).
TICK_S = 0.005
BATCH = 256
IDLE_S = 1.0  # an idle thread sleeps until a write comes (this only bounds a lost wake-up)


class ShadowWriter:
    """A FIFO of new-cache writes, applied by a daemon thread or by whoever drains first."""

    def __init__(self, apply: Apply, max_pending: int = 10_000) -> None:
        self._apply = apply
        self._max_pending = max_pending
        self._reset()
        forksafe.register(self)

    def _reset(self) -> None:
        self._queue: deque[ShadowWrite] = deque()
        self._apply_lock = threading.Lock()
        self._applier: int | None = None  # thread id applying now (a drain from it is a no-op)
        self._wakeup = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._idle = False  # the thread sleeps on an empty queue: the next write wakes it
        self._stopping = False
        # Changed under the apply lock only, so each is counted once whatever thread applies.
        self.counts = {"applied": 0, "applied_inline": 0, "backpressure": 0}

    def after_fork_in_child(self) -> None:
        """Start empty: the parent's queued writes and thread belong to the parent."""
        self._reset()

    @property
    def pending(self) -> int:
        """Writes queued and not yet applied."""
        return len(self._queue)

    def stats(self) -> dict[str, int]:
        """Pending writes and the applied counts (`applied_inline`: by a drain or back-pressure)."""
        return {"pending": len(self._queue), **self.counts}

    def submit(self, write: ShadowWrite) -> None:
        """Queue one write; with the queue full (or closed), apply the queue here instead."""
        self._queue.append(write)
        if self._stopping:
            self._apply_all(inline=True)
            return
        if len(self._queue) > self._max_pending:
            # The thread is behind: this caller applies the oldest writes until one slot is free,
            # so a saturated process degrades to inline writes instead of stalling one caller.
            self._apply_all(inline=True, limit=len(self._queue) - self._max_pending)
            return
        if self._thread is None:
            self._start()
        elif self._idle or len(self._queue) == BATCH:  # else the thread's next tick takes it
            with self._wakeup:
                self._wakeup.notify()

    def drain(self) -> int:
        """Apply every queued write in this thread, oldest first; how many it applied.

        A no-op on the thread that is applying a write now (the new cache's provider may drain).
        """
        if not self._queue or self._applier == threading.get_ident():
            return 0
        return self._apply_all(inline=True)

    def _apply_all(self, *, inline: bool = False, limit: int | None = None) -> int:
        applied = 0
        with self._apply_lock:
            self._applier = threading.get_ident()
            try:
                while limit is None or applied < limit:
                    try:
                        write = self._queue.popleft()
                    except IndexError:
                        break
                    self._apply(write)  # the apply callback counts and swallows failures
                    applied += 1
            finally:
                self._applier = None
                counts = self.counts
                counts["applied"] += applied
                counts["applied_inline"] += applied if inline else 0
                counts["backpressure"] += limit is not None and applied > 0
        return applied

    def _start(self) -> None:
        with self._wakeup:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name="sigcache-shadow-writes", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wakeup:
                # Idle before looking: a write queued after the look then sees `_idle` and
                # wakes the thread (set after the look, that wake-up could be lost).
                self._idle = True
                if not self._queue and not self._stopping:
                    self._wakeup.wait(IDLE_S)
                self._idle = False
                if 0 < len(self._queue) < BATCH and not self._stopping:
                    self._wakeup.wait(TICK_S)  # let a batch gather: one wake-up, many writes
                if self._stopping and not self._queue:
                    return
            self._apply_all()

    def close(self, timeout: float | None = 5.0) -> None:
        """Apply what is queued, then stop the thread; later writes are applied inline."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()
            thread = self._thread
        self.drain()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
