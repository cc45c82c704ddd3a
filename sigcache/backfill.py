"""Backfill: copy the legacy cache's live entries into the new cache, keeping owner and expiry.

Each entry keeps its owner and its remaining lifetime: it is written with the legacy expiry
(`expires_at`, never later), so backfill cannot extend a signature's life. That needs a new cache
whose writes take `expires_at=` (epoch seconds on the cache clock); without it nothing is copied
and the summary says `supported: false`. Idempotent: an entry the new cache already answers with
the same value is skipped. The legacy cache is only read, chunk by chunk
(`SignatureCache.iter_entries`), so its lock is never held for long, and a failure halfway leaves
both caches consistent: the new cache holds a subset of the legacy entries, each equal to it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal

from sigcache.errors import SigcacheError
from sigcache.interface import SignatureCacheProtocol
from sigcache.legacy import LegacyEntryCopy, SignatureCache

__all__ = [
    "BACKFILL_MODES",
    "BackfillRefused",
    "BackfillSummary",
    "Decision",
    "decide",
    "run_backfill",
    "supports_expiry",
]

log = logging.getLogger("sigcache.migration")

BACKFILL_MODES: Final = ("on_demand", "auto")  # auto: started on entering DUAL_WRITE
Decision = Literal["expired", "present", "copy", "replace"]
Cache = SignatureCacheProtocol
_WRITES: Final = ("set", "cache_tool_signature", "cache_session_signature")


class BackfillRefused(SigcacheError):
    """A backfill that cannot run now (mode off, a phase that does not write the new cache, ...)."""


@dataclass(slots=True)
class BackfillSummary:
    """What a backfill did; counts are entries of all three stores."""

    supported: bool = True  # False: the new cache cannot take an explicit expiry, nothing copied
    seen: int = 0
    copied: int = 0  # written (including `replaced`)
    replaced: int = 0  # the new cache answered another value; legacy's (authoritative) won
    skipped_expired: int = 0
    skipped_present: int = 0
    failed: int = 0
    chunks: int = 0
    aborted: bool = False  # stopped early: too many failures, or asked to stop
    error: str | None = None  # the last failure's exception type (never its text)
    started_at: float = 0.0
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return asdict(self)

    def line(self) -> str:
        """One line for logs and the audit history."""
        return (
            f"copied={self.copied} skipped_expired={self.skipped_expired} "
            f"skipped_present={self.skipped_present} failed={self.failed}"
            + ("" if self.supported else " (new cache takes no expires_at: nothing copied)")
            + (" (aborted)" if self.aborted else "")
        )


def _accepts(method: object, name: str) -> bool:
    try:
        return name in inspect.signature(method).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def supports_expiry(cache: object) -> bool:
    """True when the cache's three write methods take `expires_at=`."""
    return all(_accepts(getattr(cache, name, None), "expires_at") for name in _WRITES)


def decide(entry: LegacyEntryCopy, now: float, present: object) -> Decision:
    """What to do with one legacy entry, given what the new cache answers for it (pure)."""
    if now > entry.expires_at:
        return "expired"
    if present is None:
        return "copy"
    return "present" if present == _expected(entry) else "replace"


def _expected(entry: LegacyEntryCopy) -> object:
    return (entry.signature, entry.text) if entry.store == "session" else entry.signature


def _lookup(cache: Cache, entry: LegacyEntryCopy) -> object:
    if entry.store == "main":
        return cache.get(entry.key, entry.owner_id)
    if entry.store == "tool":
        return cache.get_tool_signature(entry.key, entry.owner_id)
    return cache.get_session_signature_with_text(entry.key, entry.owner_id)


def _write(cache: Any, entry: LegacyEntryCopy, extra: dict[str, Any]) -> bool:
    if entry.store == "main":
        return cache.set(entry.key, entry.signature, entry.model, entry.owner_id, **extra) is True
    if entry.store == "tool":
        return (
            cache.cache_tool_signature(entry.key, entry.signature, entry.owner_id, **extra) is True
        )
    return (
        cache.cache_session_signature(
            entry.key, entry.signature, entry.text, entry.owner_id, **extra
        )
        is True
    )


class _Run:
    """One backfill's state: the new cache, its optional write keywords, the summary."""

    def __init__(self, new: Cache, summary: BackfillSummary) -> None:
        self.new, self.summary = new, summary
        self.optional = {
            name: _accepts(getattr(new, "set", None), name) for name in ("written_at", "validated")
        }

    def copy_one(self, entry: LegacyEntryCopy, now: float) -> None:
        s = self.summary
        s.seen += 1
        try:
            decision = decide(
                entry, now, None if now > entry.expires_at else _lookup(self.new, entry)
            )
            if decision == "expired":
                s.skipped_expired += 1
                return
            if decision == "present":
                s.skipped_present += 1
                return
            extra: dict[str, Any] = {"expires_at": entry.expires_at}
            if self.optional["written_at"]:
                extra["written_at"] = entry.written_at  # "recent" look-ups keep the legacy age
            if self.optional["validated"]:
                extra["validated"] = True  # the legacy cache validated it on its way in
            ok = _write(self.new, entry, extra)
        except Exception as exc:  # a failing new cache is reported, never raised
            s.failed += 1
            s.error = type(exc).__name__
            return
        if not ok:
            s.failed += 1
            return
        s.copied += 1
        s.replaced += decision == "replace"


def run_backfill(
    legacy: SignatureCache,
    new: Cache,
    *,
    clock: Callable[[], float],
    chunk_size: int = 256,
    max_failures: int = 100,
    progress: Callable[[BackfillSummary], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> BackfillSummary:
    """Copy every live legacy entry into `new`; `progress` gets a copy after each chunk."""
    summary = BackfillSummary(started_at=clock())
    if not supports_expiry(new):
        summary.supported = False
        summary.finished_at = clock()
        log.warning("[CACHE_MIGRATION] backfill skipped: the new cache takes no expires_at")
        return summary
    run = _Run(new, summary)
    for chunk in legacy.iter_entries(chunk_size):
        now = clock()
        for entry in chunk:
            run.copy_one(entry, now)
        summary.chunks += 1
        if progress is not None:
            progress(replace(summary))
        if summary.failed > max_failures or should_stop():
            summary.aborted = True
            break
    summary.finished_at = clock()
    log.info("[CACHE_MIGRATION] backfill done: %s", summary.line())
    return summary
