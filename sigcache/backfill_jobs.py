"""Runs backfills for the facade: one at a time, in the caller's thread or a background one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sigcache.backfill import BackfillRefused, BackfillSummary, run_backfill
from sigcache.interface import SignatureCacheProtocol
from sigcache.legacy import SignatureCache

__all__ = ["BackfillJobs"]

log = logging.getLogger("sigcache.migration")

Cache = SignatureCacheProtocol
Audit = Callable[[str, str], None]  # (actor, reason) -> appended to the audit history


class BackfillJobs:
    """The facade's backfills: progress, the last summary, and their audit entries."""

    def __init__(
        self,
        legacy: Cache,
        new_cache: Callable[[], Cache | None],
        clock: Callable[[], float],
        audit: Audit,
    ) -> None:
        self._legacy, self._new, self._clock, self._audit = legacy, new_cache, clock, audit
        self._lock = threading.Lock()  # held for a whole run: one backfill at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.progress: BackfillSummary | None = None
        self.last: BackfillSummary | None = None

    def run(self, *, actor: str, reason: str = "", chunk_size: int = 256) -> BackfillSummary:
        """Backfill now, in this thread; BackfillRefused when one is running or nothing to copy."""
        if not self._lock.acquire(blocking=False):
            raise BackfillRefused("a backfill is already running")
        try:
            return self._run(actor, reason, chunk_size)
        finally:
            self._lock.release()

    def _run(self, actor: str, reason: str, chunk_size: int) -> BackfillSummary:
        legacy, new = self._legacy, self._new()
        if not isinstance(legacy, SignatureCache):
            raise BackfillRefused("the legacy cache cannot be enumerated")
        if new is None:
            raise BackfillRefused("the new cache is unavailable")
        self.progress = BackfillSummary(started_at=self._clock())
        summary = run_backfill(
            legacy,
            new,
            clock=self._clock,
            chunk_size=chunk_size,
            progress=self._progress,
            should_stop=self._stop.is_set,
        )
        self.progress, self.last = None, summary
        note = f"backfill: {summary.line()}"
        self._audit(actor, f"{note}; {reason}" if reason else note)
        return summary

    def _progress(self, summary: BackfillSummary) -> None:
        self.progress = summary
        log.info("[CACHE_MIGRATION] backfill progress: %d entries seen", summary.seen)

    def start(self, *, actor: str, reason: str = "") -> bool:
        """Backfill in a background thread; False when one is already running."""
        if self._lock.locked():
            return False

        def work() -> None:
            try:
                self.run(actor=actor, reason=reason)
            except BackfillRefused as exc:
                log.warning("[CACHE_MIGRATION] automatic backfill not run: %s", exc)
            except Exception:  # a background job must not die silently
                log.exception("[CACHE_MIGRATION] automatic backfill failed")

        self._thread = threading.Thread(target=work, name="sigcache-backfill", daemon=True)
        self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background backfill; False on timeout."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def status(self) -> dict[str, Any]:
        """Running or not, progress of a running one, the last summary."""
        progress, last = self.progress, self.last
        return {
            "running": self._lock.locked(),
            "progress": None if progress is None else replace(progress).to_dict(),
            "last": None if last is None else last.to_dict(),
        }

    def close(self, timeout: float = 5.0) -> None:
        """Ask a running backfill to stop after its chunk, and wait for it."""
        self._stop.set()
        self.wait(timeout)
