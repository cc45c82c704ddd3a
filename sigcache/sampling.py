"""Live consistency sampling: 1 in N keyed reads also read the other cache, off the caller's path.

In DUAL_WRITE and NEW_PREFERRED (both caches readable) the router draws for each read and hands
1 in N keyed reads to :class:`LiveSampler`, which queues them (bounded, never blocking: a full
queue drops and counts); a worker thread reads the non-authoritative cache, then classifies the
pair with the replay's classes (:func:`classify_live`, pure). The caller pays one random draw
and, when sampled, one non-blocking enqueue; nothing here ever raises into a cache call.

This module duplicates, minimally, the live subset of `harness.compare.classify` on purpose:
sigcache never imports harness. Samples read the caches like any caller, so they move the caches'
own hit/miss counters (about `rate` extra reads), and an owner check probes the legacy cache.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sigcache.interface import SignatureCacheProtocol
from sigcache.keys import short_hash
from sigcache.migration_stats import CacheSide
from sigcache.provenance import model_family
from sigcache.routing import ABSENT, SAMPLED_READS

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "LIVE_CLASSES",
    "LiveSampler",
    "SampleJob",
    "classify_live",
]

log = logging.getLogger("sigcache.migration")

DEFAULT_SAMPLE_RATE: Final = 0.01  # the replaced system's validate_consistency sampling, 1 in 100
LIVE_CLASSES: Final = (
    "match",
    "both_miss",
    "new_only_hit",
    "legacy_only_hit",
    "value_mismatch",
    "isolation",
)
_PEEK_STORES: Final = {
    "get": "main",
    "get_tool_signature": "tool",
    "get_session_signature": "session",
    "get_session_signature_with_text": "session",
}
# An owner id no caller uses: a legacy entry answers it only when it was written with no owner.
_PROBE_OWNER: Final = "\x00sigcache-owner-probe"
Cache = SignatureCacheProtocol


def classify_live(new: object, legacy: object, legacy_crossed: bool = False) -> str:
    """The replay's class of one read: the new cache's answer against the legacy cache's (pure).

    `legacy_crossed`: the legacy answer was another owner's entry (legacy matches owners
    permissively, the new cache strictly); only consulted when the answers differ.
    """
    if new == legacy:
        return "both_miss" if new is None else "match"
    if legacy is not None and legacy_crossed:
        return "isolation"
    if new is not None and legacy is not None:
        return "value_mismatch"
    return "legacy_only_hit" if legacy is not None else "new_only_hit"


@dataclass(frozen=True, slots=True)
class SampleJob:
    """One sampled read: what the caller's path knew when it was queued."""

    phase: str
    op: str
    args: tuple[Any, ...]  # (key, owner_id)
    primary: CacheSide
    primary_value: Any
    other_value: Any  # the fallback's answer, or ABSENT when it was not consulted
    # The caller's provenance keywords (issue 13), passed to the new cache when it is read.
    kwargs: Mapping[str, Any] = field(default_factory=dict)


class _Counts:
    """Per-phase class counts, dropped jobs and errors, under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_phase: dict[str, dict[str, int]] = {}
        self.dropped = 0
        self.errors = 0

    def add(self, phase: str, cls: str) -> None:
        with self._lock:
            row = self.by_phase.setdefault(phase, dict.fromkeys(LIVE_CLASSES, 0))
            row[cls] += 1

    def bump(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def snapshot(self) -> tuple[dict[str, dict[str, int]], int, int]:
        with self._lock:
            phases = {phase: dict(row) for phase, row in self.by_phase.items()}
            return phases, self.dropped, self.errors


class LiveSampler:
    """The router's sampling hook, its bounded queue and its worker thread."""

    def __init__(
        self,
        legacy: Cache,
        new_cache: Callable[[bool], Cache | None],
        phase: Callable[[], str],
        rate: float = DEFAULT_SAMPLE_RATE,
        *,
        queue_size: int = 1024,
        rng: random.Random | None = None,
    ) -> None:
        self.rate = rate
        self._legacy, self._new, self._phase = legacy, new_cache, phase
        self.draw = (rng or random.Random()).random  # the router samples when draw() < rate
        self._queue: queue.Queue[SampleJob | None] = queue.Queue(queue_size)
        self._counts = _Counts()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False

    def submit(
        self,
        op: str,
        args: tuple[Any, ...],
        primary: CacheSide,
        value: Any,
        other: Any,
        kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one drawn read for comparison (the caller's path: a non-blocking enqueue)."""
        if op not in SAMPLED_READS or self._closed:
            return
        try:
            job = SampleJob(self._phase(), op, args, primary, value, other, kwargs or {})
            self._queue.put_nowait(job)
        except queue.Full:
            self._counts.bump("dropped")
            return
        except Exception:  # sampling never breaks a cache call
            self._counts.bump("errors")
            return
        if self._worker is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._worker is None and not self._closed:
                self._worker = threading.Thread(
                    target=self._run, name="sigcache-live-sampler", daemon=True
                )
                self._worker.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._compare(job)
            except Exception:  # an observation failed; the worker lives on
                self._counts.bump("errors")
                log.debug("[CACHE_MIGRATION] live sample failed", exc_info=True)
            finally:
                self._queue.task_done()

    def _compare(self, job: SampleJob) -> None:
        other = job.other_value
        if other is ABSENT:
            side = CacheSide.NEW if job.primary is CacheSide.LEGACY else CacheSide.LEGACY
            cache = self._legacy if side is CacheSide.LEGACY else self._new(False)
            if cache is None:
                self._counts.bump("errors")
                return
            kwargs = job.kwargs if side is CacheSide.NEW else {}  # legacy ignores them anyway
            other = getattr(cache, job.op)(*job.args, **kwargs)
        new, legacy = (
            (other, job.primary_value)
            if job.primary is CacheSide.LEGACY
            else (job.primary_value, other)
        )
        crossed = legacy is not None and new != legacy and self._crossed(job)
        cls = classify_live(new, legacy, crossed)
        self._counts.add(job.phase, cls)
        if cls == "value_mismatch":
            _warn_mismatch(job, new, legacy)

    def _crossed(self, job: SampleJob) -> bool:
        """Did the legacy answer come from another owner's or model family's entry?"""
        key, owner = job.args[0], job.args[1]
        wanted = model_family(job.kwargs.get("model"))
        peek = getattr(self._legacy, "peek_provenance", None)
        if wanted is not None and callable(peek) and job.op in _PEEK_STORES:
            held = model_family(peek(_PEEK_STORES[job.op], key)[2])
            if held is not None and held != wanted:
                return True  # the new cache refused it by design (issue 13)
        ownerless_entry = getattr(self._legacy, job.op)(key, _PROBE_OWNER) is not None
        return ownerless_entry if owner else not ownerless_entry

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued sample is classified; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop sampling; the worker finishes what is queued (up to `timeout`)."""
        with self._lock:
            self._closed, worker = True, self._worker
        if worker is not None:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                return  # the daemon worker dies with the process
            worker.join(timeout)

    def stats(self) -> dict[str, Any]:
        """Numbers: rate, samples and class counts (overall and per phase), dropped, errors."""
        phases, dropped, errors = self._counts.snapshot()
        classes = dict.fromkeys(LIVE_CLASSES, 0)
        for row in phases.values():
            for cls, count in row.items():
                classes[cls] += count
        samples = sum(classes.values())
        return {
            "enabled": self.rate > 0,
            "sample_rate": self.rate,
            "samples": samples,
            "classes": classes,
            "value_mismatch_rate": classes["value_mismatch"] / samples if samples else 0.0,
            "legacy_only_hit_rate": classes["legacy_only_hit"] / samples if samples else 0.0,
            "dropped": dropped,
            "errors": errors,
            "queued": self._queue.qsize(),
            "by_phase": {
                phase: {"samples": sum(row.values()), "classes": row}
                for phase, row in phases.items()
            },
        }


def _signature(value: object) -> str:
    return value[0] if isinstance(value, tuple) else str(value)


def _warn_mismatch(job: SampleJob, new: object, legacy: object) -> None:
    key, owner = job.args[0], job.args[1]
    log.warning(
        "[CACHE_MIGRATION] live value_mismatch in %s (phase=%s): key=%s owner=%s legacy=%s new=%s",
        job.op,
        job.phase,
        short_hash(key) if isinstance(key, str) else "-",
        short_hash(owner) if isinstance(owner, str) and owner else "-",
        short_hash(_signature(legacy)),
        short_hash(_signature(new)),
    )
