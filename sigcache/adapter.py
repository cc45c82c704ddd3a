"""LegacySignatureCacheAdapter: the legacy cache interface routed through the phase strategies.

Every store (main, tool, session) and every last/recent look-up obeys the phase: writes go to the
write plan's caches, authoritative first; reads ask the primary and, on a miss, the fallback,
writing a fallback hit back into the cache that missed (read repair). The non-authoritative side
never reaches the caller: its exceptions and False results are counted and logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sigcache.interface import SignatureCacheProtocol, SignatureWithText
from sigcache.keys import is_valid_signature, normalize_thinking_text
from sigcache.phases import MigrationFeatureFlags
from sigcache.strategies import (
    CacheSide,
    MigrationStats,
    ReadOutcome,
    read_plan,
    write_plan,
)

__all__ = ["CallDiagnostics", "LegacySignatureCacheAdapter", "NewCacheProvider"]

log = logging.getLogger("sigcache.adapter")

R = TypeVar("R")
Cache = SignatureCacheProtocol
Repair = Callable[[Cache, Cache, Any], bool]  # (cache that missed, cache that answered, value)
# new_cache(build) -> the new cache, built first when `build`; None while unavailable or unbuilt.
NewCacheProvider = Callable[[bool], Cache | None]


@dataclass(frozen=True, slots=True)
class CallDiagnostics:
    """Where the last routed call on this thread was answered (for observers)."""

    source: str | None = None  # "legacy" | "new"
    tier: str | None = None  # "legacy" | "l1" | "l2"
    fallback: bool = False
    read_repair: bool = False
    shadow_error: bool = False


class _ShadowLog:
    """Logs the first failure of a burst and then every 100th, so a dead cache cannot flood logs."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._count = 0

    def failure(self, side: CacheSide, op: str, detail: str) -> None:
        self._count += 1  # racy by design: only decides whether to log, counts live in stats
        if self.enabled and (self._count == 1 or self._count % 100 == 0):
            log.warning(
                "[LEGACY_ADAPTER] %s cache failed in %s (%s); failures so far: %d",
                side.value,
                op,
                detail,
                self._count,
            )


class LegacySignatureCacheAdapter:
    """The legacy interface (SignatureCacheProtocol) routed through the phase strategies."""

    def __init__(
        self,
        legacy: Cache,
        new_cache: NewCacheProvider,
        flags: MigrationFeatureFlags,
        *,
        stats: MigrationStats | None = None,
        read_repair: bool = True,
        failure_policy: str = "log",
    ) -> None:
        self.legacy = legacy
        self._new = new_cache
        self.flags = flags
        self.stats = stats or MigrationStats()
        self.read_repair = read_repair
        self._shadow_log = _ShadowLog(failure_policy != "ignore")
        self._local = threading.local()

    def __bool__(self) -> bool:
        # Never falsy because it is empty: the replaced system's proxy died of exactly that.
        return True

    def last_diagnostics(self) -> CallDiagnostics:
        """Diagnostics of this thread's last routed call."""
        diag: CallDiagnostics = getattr(self._local, "diag", _NO_DIAG)
        return diag

    # -- routing ------------------------------------------------------------------------------

    def _cache(self, side: CacheSide, build: bool = True) -> Cache | None:
        return self.legacy if side is CacheSide.LEGACY else self._new(build)

    def _attempt(
        self, side: CacheSide, op: str, call: Callable[[Cache], R]
    ) -> tuple[R | None, bool]:
        """(result, raised): run `call` on one cache; an unavailable cache counts as raised."""
        cache = self._cache(side)
        if cache is None:
            return None, True
        try:
            return call(cache), False
        except Exception as exc:  # the caller never sees a cache's exception
            self._shadow_log.failure(side, op, type(exc).__name__)
            return None, True

    def _write(self, op: str, call: Callable[[Cache], bool]) -> bool:
        plan = write_plan(self.flags.effective)
        attempted: dict[CacheSide, bool] = {}
        result, shadow, skipped = False, False, 0
        for index, side in enumerate(plan.targets):
            if index and not result:
                skipped = len(plan.targets) - index  # not attempted: never a failure
                break
            value, _ = self._attempt(side, op, call)
            attempted[side] = ok = value is True
            if index == 0:
                result = ok
            elif not ok:
                shadow = True
                self._shadow_log.failure(side, op, "write refused")
        if plan.authoritative is not None:
            self.stats.record_write(attempted, plan.authoritative, skipped)
        source = plan.authoritative.value if result and plan.authoritative else None
        self._local.diag = CallDiagnostics(source=source, shadow_error=shadow)
        return result

    def _reject(self) -> bool:
        self.stats.record_rejected_write()
        self._local.diag = _NO_DIAG
        return False

    def _tier(self, side: CacheSide) -> str | None:
        if side is CacheSide.LEGACY:
            return "legacy"
        read_tier = getattr(self._new(False), "read_tier", None)
        tier = read_tier() if callable(read_tier) else None
        return tier if isinstance(tier, str) else "new"

    def _read(
        self,
        op: str,
        call: Callable[[Cache], R | None],
        repair: Repair | None,
        owner_id: str | None = None,
    ) -> R | None:
        plan = read_plan(self.flags.effective)
        if plan.primary is None:
            self._local.diag = _NO_DIAG
            return None
        value, raised = self._attempt(plan.primary, op, call)
        if value is not None or plan.fallback is None:
            self.stats.record_primary(plan.primary, value is not None, int(raised))
            if value is None:
                self._local.diag = CallDiagnostics(shadow_error=raised)
            elif plan.primary is CacheSide.LEGACY and not raised:
                self._local.diag = _LEGACY_HIT
            else:
                self._local.diag = CallDiagnostics(plan.primary.value, self._tier(plan.primary))
            return value
        return self._read_fallback(
            plan.primary, plan.fallback, op, call, repair, owner_id, int(raised)
        )

    def _read_fallback(
        self,
        primary: CacheSide,
        fallback: CacheSide,
        op: str,
        call: Callable[[Cache], R | None],
        repair: Repair | None,
        owner_id: str | None,
        errors: int,
    ) -> R | None:
        """After a primary miss: ask the fallback, repair the primary, count the read once."""
        value, fallback_raised = self._attempt(fallback, op, call)
        errors += fallback_raised
        tier = self._tier(fallback) if value is not None else None
        repaired = repair_failed = skipped = False
        if value is not None and repair is not None and self.read_repair:
            if primary is CacheSide.NEW and not owner_id:
                # A permissive legacy answer to an ownerless caller may be any owner's entry:
                # copied ownerless into the strict cache it would answer every ownerless caller.
                skipped = True
            else:
                repaired = self._repair(primary, fallback, op, repair, value)
                repair_failed = not repaired
        outcome = ReadOutcome(
            primary,
            False,
            fallback,
            fallback_hit=value is not None,
            repaired=repaired,
            repair_failed=repair_failed,
            repair_skipped=skipped,
            errors=errors,
        )
        self.stats.record_read(outcome)
        self._local.diag = CallDiagnostics(
            fallback.value if value is not None else None,
            tier,
            fallback=value is not None,
            read_repair=repaired,
            shadow_error=bool(errors) or repair_failed,
        )
        return value

    def _repair(
        self, missed: CacheSide, answered: CacheSide, op: str, repair: Repair, value: object
    ) -> bool:
        target, source = self._cache(missed), self._cache(answered)
        if target is None or source is None:
            return False
        try:
            return repair(target, source, value) is True
        except Exception as exc:  # a failed repair is a counted observation, not an error
            self._shadow_log.failure(missed, f"{op} read repair", type(exc).__name__)
            return False

    def _each(self, op: str, call: Callable[[Cache], int | bool]) -> int | bool:
        """Run on every cache that exists; return the authoritative one's result."""
        plan = write_plan(self.flags.effective)
        order = [*plan.targets, *(s for s in CacheSide if s not in plan.targets)]
        results: list[int | bool] = []
        for side in order:
            if self._cache(side, build=False) is None:
                continue
            value, _ = self._attempt(side, op, call)
            results.append(value if value is not None else 0)
        self._local.diag = CallDiagnostics(source=order[0].value if order else None)
        return results[0] if results else 0

    # -- main store -----------------------------------------------------------------------------

    def set(
        self,
        thinking_text: str,
        signature: str,
        model: str | None = None,
        owner_id: str | None = None,
    ) -> bool:
        """Cache a signature in the phase's caches; the authoritative result is returned."""
        if not isinstance(thinking_text, str) or not normalize_thinking_text(thinking_text):
            return self._reject()
        if not is_valid_signature(signature):
            return self._reject()
        return self._write("set", lambda c: c.set(thinking_text, signature, model, owner_id))

    def get(self, thinking_text: str, owner_id: str | None = None) -> str | None:
        """The signature for a thinking text from the phase's primary, then fallback cache."""

        def repair(missed: Cache, _src: Cache, sig: str) -> bool:
            return missed.set(thinking_text, sig, None, owner_id)

        return self._read("get", lambda c: c.get(thinking_text, owner_id), repair, owner_id)

    def invalidate(self, thinking_text: str, owner_id: str | None = None) -> bool:
        """Forget a thinking text in every cache (so a fallback cannot bring it back)."""
        return bool(self._each("invalidate", lambda c: c.invalidate(thinking_text, owner_id)))

    def clear(self) -> int:
        """Empty the main store of every cache; the authoritative count is returned."""
        return int(self._each("clear", lambda c: c.clear()))

    def cleanup_expired(self) -> int:
        """Remove expired entries in every cache; the authoritative count is returned."""
        return int(self._each("cleanup_expired", lambda c: c.cleanup_expired()))

    def get_stats(self) -> dict[str, object]:
        """The legacy stats shape plus the migration counters (numbers only)."""
        stats: dict[str, object] = dict(self.legacy.get_stats())
        writes, reads = self.stats.snapshot()
        for key in ("legacy_hits", "new_hits", "fallback_hits", "read_repairs"):
            stats[key] = reads[key]
        stats["hit_rate"] = reads["hit_rate"]
        stats["dual_write_stats"] = writes
        stats["read_stats"] = reads
        return stats

    def reset_stats(self) -> None:
        """Zero the migration counters and both caches' counters."""
        self.stats.reset()
        self.legacy.reset_stats()
        new = self._new(False)
        if new is not None:
            new.reset_stats()

    @property
    def size(self) -> int:
        """Main-store entries of the cache reads ask first."""
        primary = read_plan(self.flags.effective).primary
        cache = self._cache(primary, build=False) if primary else None
        return cache.size if cache is not None else 0

    def __len__(self) -> int:
        return self.size

    # -- tool and session stores ------------------------------------------------------------------

    def cache_tool_signature(
        self, tool_id: str, signature: str, owner_id: str | None = None
    ) -> bool:
        """Cache a signature for a tool-call id in the phase's caches."""
        if not isinstance(tool_id, str) or not tool_id or not is_valid_signature(signature):
            return self._reject()
        return self._write(
            "cache_tool_signature", lambda c: c.cache_tool_signature(tool_id, signature, owner_id)
        )

    def get_tool_signature(self, tool_id: str, owner_id: str | None = None) -> str | None:
        """The signature for a tool-call id (primary, then fallback with read repair)."""

        def repair(missed: Cache, _src: Cache, sig: str) -> bool:
            return missed.cache_tool_signature(tool_id, sig, owner_id)

        return self._read(
            "get_tool_signature",
            lambda c: c.get_tool_signature(tool_id, owner_id),
            repair,
            owner_id,
        )

    def get_tool_signature_fuzzy(
        self, tool_id: str, max_candidates: int = 5, owner_id: str | None = None
    ) -> str | None:
        """Fuzzy tool look-up in the primary, then the fallback (no repair: the id is unknown)."""
        return self._read(
            "get_tool_signature_fuzzy",
            lambda c: c.get_tool_signature_fuzzy(tool_id, max_candidates, owner_id),
            None,
        )

    def cache_session_signature(
        self,
        session_id: str,
        signature: str,
        thinking_text: str = "",
        owner_id: str | None = None,
    ) -> bool:
        """Cache a signature (and its thinking text) for a session id in the phase's caches."""
        if not isinstance(session_id, str) or not session_id or not is_valid_signature(signature):
            return self._reject()
        if not isinstance(thinking_text, str | None):
            return self._reject()
        return self._write(
            "cache_session_signature",
            lambda c: c.cache_session_signature(session_id, signature, thinking_text, owner_id),
        )

    def get_session_signature(self, session_id: str, owner_id: str | None = None) -> str | None:
        """The signature for a session id (primary, then fallback with read repair)."""

        def repair(missed: Cache, src: Cache, sig: str) -> bool:
            found = src.get_session_signature_with_text(session_id, owner_id)
            text = found[1] if found and found[0] == sig else ""
            return missed.cache_session_signature(session_id, sig, text, owner_id)

        return self._read(
            "get_session_signature",
            lambda c: c.get_session_signature(session_id, owner_id),
            repair,
            owner_id,
        )

    def get_session_signature_with_text(
        self, session_id: str, owner_id: str | None = None
    ) -> SignatureWithText | None:
        """(signature, text) for a session id (primary, then fallback with read repair)."""

        def repair(missed: Cache, _src: Cache, value: SignatureWithText) -> bool:
            return missed.cache_session_signature(session_id, value[0], value[1], owner_id)

        return self._read(
            "get_session_signature_with_text",
            lambda c: c.get_session_signature_with_text(session_id, owner_id),
            repair,
            owner_id,
        )

    # -- last / recent (no key to repair under) -------------------------------------------------

    def get_last_signature(self, owner_id: str | None = None) -> str | None:
        """The last signature from the primary cache, else the fallback."""
        return self._read("get_last_signature", lambda c: c.get_last_signature(owner_id), None)

    def get_last_signature_with_text(self, owner_id: str | None = None) -> SignatureWithText | None:
        """(signature, text) of the last entry from the primary cache, else the fallback."""
        return self._read(
            "get_last_signature_with_text", lambda c: c.get_last_signature_with_text(owner_id), None
        )

    def get_recent_signature(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
    ) -> str | None:
        """A signature written within the window, from the primary cache, else the fallback."""
        return self._read(
            "get_recent_signature",
            lambda c: c.get_recent_signature(time_window_seconds, client_type, owner_id),
            None,
        )

    def get_recent_signature_with_text(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
    ) -> SignatureWithText | None:
        """(signature, text) written within the window, from the primary, else the fallback."""
        return self._read(
            "get_recent_signature_with_text",
            lambda c: c.get_recent_signature_with_text(time_window_seconds, client_type, owner_id),
            None,
        )


_NO_DIAG = CallDiagnostics()
_LEGACY_HIT = CallDiagnostics("legacy", "legacy")
