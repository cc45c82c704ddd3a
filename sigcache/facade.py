"""CacheFacade: owns the legacy and new caches, the phase state, stats, audit and observers."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sigcache.adapter import CallDiagnostics, LegacySignatureCacheAdapter
from sigcache.interface import SignatureCacheProtocol, SignatureWithText
from sigcache.legacy import SignatureCache
from sigcache.migration_config import MigrationConfig
from sigcache.migration_control import GuardDecision, MigrationControl, PromotionGuard
from sigcache.observers import Observer, ObserverList, OperationEvent
from sigcache.phase_store import PhaseStore
from sigcache.phases import MigrationFeatureFlags, MigrationPhase
from sigcache.strategies import MigrationStats

__all__ = [
    "CacheFacade",
    "GuardDecision",
    "LazyCache",
    "NewCacheFactory",
    "PromotionGuard",
    "default_new_cache_factory",
]

log = logging.getLogger("sigcache.facade")

R = TypeVar("R")
Clock = Callable[[], float]
Cache = SignatureCacheProtocol


class NewCacheFactory(Protocol):
    """Builds the new cache: `factory(db_path, config=MigrationConfig, clock=clock)`."""

    def __call__(self, db_path: str, *, config: MigrationConfig, clock: Clock) -> Cache: ...


def default_new_cache_factory(db_path: str, *, config: MigrationConfig, clock: Clock) -> Cache:
    """A LayeredSignatureCache sized from the migration settings (imported on first need)."""
    from sigcache.config import L1Settings, L2Settings, LayeredConfig
    from sigcache.layered import LayeredSignatureCache  # deferred: legacy-only use never loads it

    layered = LayeredConfig(
        l1=L1Settings(max_entries=config.new_l1_max_size, ttl_seconds=config.new_l1_ttl_seconds),
        l2=L2Settings(ttl_seconds=config.new_l2_ttl_seconds, max_rows=config.new_l2_max_size),
    )
    cache: Cache = LayeredSignatureCache(db_path, config=layered, clock=clock)
    return cache


class LazyCache:
    """The new cache, built on first need; a failed build is remembered and logged once."""

    def __init__(self, factory: Callable[[], Cache]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._cache: Cache | None = None
        self._closed = False
        self.error: str | None = None

    def get(self, build: bool = True) -> Cache | None:
        """The cache, built first if `build`; None while unbuilt, failed or closed."""
        cache = self._cache
        if cache is not None or not build or self.error is not None or self._closed:
            return cache
        with self._lock:
            if self._cache is None and self.error is None and not self._closed:
                try:
                    self._cache = self._factory()
                except Exception as exc:  # a broken new cache must not break cache calls
                    self.error = f"{type(exc).__name__}: {exc}"
                    log.error("[LEGACY_ADAPTER] new cache unavailable: %s", self.error)
            return self._cache

    @property
    def built(self) -> bool:
        """True once the cache exists."""
        return self._cache is not None

    def retry(self) -> None:
        """Forget a failed build so the next `get` tries again."""
        with self._lock:
            self.error = None

    def close(self) -> None:
        """Flush and close the cache if built; later `get`s return None."""
        with self._lock:
            cache, self._cache, self._closed = self._cache, None, True
        close = getattr(cache, "close", None)
        if callable(close):
            try:
                close()
            except Exception as exc:  # shutting down must work even with a broken new cache
                log.error("[LEGACY_ADAPTER] new cache failed to close: %s", type(exc).__name__)


class CacheFacade:
    """The phase proxy: module functions as methods, plus the migration control plane."""

    def __init__(
        self,
        config: MigrationConfig | None = None,
        *,
        clock: Clock = time.time,
        new_cache_factory: NewCacheFactory | None = None,
        legacy: Cache | None = None,
        promotion_guard: PromotionGuard | None = None,
    ) -> None:
        self.config = cfg = config or MigrationConfig()
        self._clock = clock
        self.legacy: Cache = legacy or SignatureCache(
            cfg.legacy_max_size, cfg.legacy_ttl_seconds, cfg.legacy_key_prefix_length, clock=clock
        )
        self.db_path = cfg.resolved_l2_db_path()
        factory = new_cache_factory or default_new_cache_factory
        self._new = LazyCache(lambda: factory(self.db_path, config=cfg, clock=clock))
        self.stats = MigrationStats()
        self.flags = MigrationFeatureFlags(cfg.initial_phase)
        self.adapter = LegacySignatureCacheAdapter(
            self.legacy,
            self._new_cache,
            self.flags,
            stats=self.stats,
            read_repair=cfg.read_repair,
            failure_policy=cfg.dual_write_failure_policy,
        )
        self.observers = ObserverList()
        self.fast = False  # True: mode off and nobody observing
        # What module functions may call directly (legacy or the adapter); None: go through run()
        self.direct: Cache | None = None
        self.control = MigrationControl(
            cfg,
            self.flags,
            PhaseStore(self.db_path),
            clock=clock,
            guard=promotion_guard,
            new_cache_ready=self._new_cache_ready,
            on_change=self._refresh_fast,
        )
        self._refresh_fast()

    def __bool__(self) -> bool:
        # Never falsy: the replaced system's proxy was dead because its empty facade was falsy.
        return True

    def __enter__(self) -> CacheFacade:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _new_cache(self, build: bool) -> Cache | None:
        # An existing L2 file may hold entries from an earlier run: invalidate and clear must
        # reach them even before any read or write has built the new cache.
        return self._new.get(build or (not self._new.built and os.path.exists(self.db_path)))

    def _new_cache_ready(self) -> str | None:
        self._new.retry()
        return None if self._new.get() is not None else self._new.error or "unavailable"

    def _refresh_fast(self) -> None:
        enabled, observed = self.control.enabled, bool(self.observers)
        self.fast = not enabled and not observed
        self.direct = None if observed else (self.adapter if enabled else self.legacy)

    @property
    def phase(self) -> MigrationPhase:
        """The configured phase (in force while migration mode is on)."""
        return self.flags.phase

    @property
    def effective_phase(self) -> MigrationPhase:
        """The phase traffic obeys now: LEGACY_ONLY while migration mode is off."""
        return self.control.effective_phase

    # -- control plane ----------------------------------------------------------------------------

    def set_migration_phase(
        self, phase: object, *, actor: str = "code", reason: str = "", force: bool = False
    ) -> None:
        """Move to a phase (name, 1-4, MigrationPhase): one step forward, gated, or any back."""
        self.control.set_phase(phase, actor=actor, reason=reason, force=force)

    def enable_migration_mode(self, *, actor: str = "code", reason: str = "") -> None:
        """Route traffic through the phase proxy (in the configured phase)."""
        self.control.enable(actor=actor, reason=reason)

    def disable_migration_mode(self, *, actor: str = "code", reason: str = "") -> None:
        """Instant rollback: legacy only, whatever the phase; always works."""
        self.control.disable(actor=actor, reason=reason)

    def is_migration_mode_enabled(self) -> bool:
        """True while traffic goes through the phase proxy."""
        return self.control.enabled

    def get_migration_history(self) -> list[dict[str, Any]]:
        """Every audited phase and mode change, oldest first."""
        return self.control.history_dicts()

    def get_migration_status(self) -> dict[str, Any]:
        """Mode, phase, flags, stats, history, persistence and env conflicts (numbers, not text)."""
        writes, reads = self.stats.snapshot()
        status = self.control.status()
        status["dual_write_stats"] = writes
        status["read_stats"] = reads
        status["read_repair"] = self.config.read_repair
        status["new_cache"] = {"built": self._new.built, "error": self._new.error}
        return status

    # -- observers --------------------------------------------------------------------------------

    def add_observer(self, observer: Observer) -> None:
        """Call `observer(event)` after every module-level operation."""
        self.observers.add(observer)
        self._refresh_fast()

    def remove_observer(self, observer: Observer) -> None:
        """Stop calling an observer."""
        self.observers.remove(observer)
        self._refresh_fast()

    def run(self, op: str, args: dict[str, Any], call: Callable[[Cache], R]) -> R:
        """Run one operation on the active cache and publish it to the observers."""
        target = self.adapter if self.control.enabled else self.legacy
        if not self.observers:
            return call(target)
        started, t0 = self._clock(), time.perf_counter()
        result = call(target)
        latency_us = (time.perf_counter() - t0) * 1e6
        if target is self.adapter:
            diag = self.adapter.last_diagnostics()
        else:
            hit = result is not None and result is not False
            diag = CallDiagnostics("legacy" if hit else None, "legacy" if hit else None)
        self.observers.publish(
            OperationEvent(
                op=op,
                args=args,
                result=result,
                phase=self.effective_phase.name,
                t=started,
                latency_us=latency_us,
                source=diag.source,
                tier=diag.tier,
                fallback=diag.fallback,
                read_repair=diag.read_repair,
                shadow_error=diag.shadow_error,
            )
        )
        return result

    # -- the module functions, as methods ----------------------------------------------------------

    def cache_signature(
        self,
        thinking_text: str,
        signature: str,
        model: str | None = None,
        owner_id: str | None = None,
    ) -> bool:
        """Cache a signature for a thinking text."""
        args = {
            "thinking_text": thinking_text,
            "signature": signature,
            "model": model,
            "owner_id": owner_id,
        }
        return self.run(
            "cache_signature", args, lambda c: c.set(thinking_text, signature, model, owner_id)
        )

    def get_cached_signature(self, thinking_text: str, owner_id: str | None = None) -> str | None:
        """The signature cached for a thinking text, or None."""
        args = {"thinking_text": thinking_text, "owner_id": owner_id}
        return self.run("get_cached_signature", args, lambda c: c.get(thinking_text, owner_id))

    def invalidate(self, thinking_text: str) -> bool:
        """Forget a thinking text in every cache, so no later phase can bring it back."""
        args = {"thinking_text": thinking_text}
        result = self.run("invalidate", args, lambda c: c.invalidate(thinking_text))
        self._also_new_when_off(lambda c: c.invalidate(thinking_text))
        return result

    def clear(self) -> int:
        """Empty the main store of every cache; returns how many the active cache held."""
        result = self.run("clear", {}, lambda c: c.clear())
        self._also_new_when_off(lambda c: c.clear())
        return result

    def cleanup_expired(self) -> int:
        """Remove expired entries; returns how many the active cache held."""
        return self.run("cleanup_expired", {}, lambda c: c.cleanup_expired())

    def _also_new_when_off(self, call: Callable[[Cache], object]) -> None:
        """With mode off the adapter is bypassed; a built new cache must still forget."""
        if self.control.enabled:
            return
        new = self._new_cache(False)
        if new is None:
            return
        try:
            call(new)
        except Exception as exc:  # the new cache's failure never reaches the caller
            log.warning("[LEGACY_ADAPTER] new cache failed to forget: %s", type(exc).__name__)

    def get_last_signature(self) -> str | None:
        """The most recent live signature, or None."""
        return self.run("get_last_signature", {}, lambda c: c.get_last_signature())

    def get_last_signature_with_text(self) -> SignatureWithText | None:
        """(signature, thinking text) of the most recent live entry, or None."""
        return self.run(
            "get_last_signature_with_text", {}, lambda c: c.get_last_signature_with_text()
        )

    def get_recent_signature(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
    ) -> str | None:
        """A signature written within the time window, or None."""
        args = {
            "time_window_seconds": time_window_seconds,
            "client_type": client_type,
            "owner_id": owner_id,
        }
        return self.run(
            "get_recent_signature",
            args,
            lambda c: c.get_recent_signature(time_window_seconds, client_type, owner_id),
        )

    def get_recent_signature_with_text(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
    ) -> SignatureWithText | None:
        """(signature, text) written within the time window, or None."""
        args = {
            "time_window_seconds": time_window_seconds,
            "client_type": client_type,
            "owner_id": owner_id,
        }
        return self.run(
            "get_recent_signature_with_text",
            args,
            lambda c: c.get_recent_signature_with_text(time_window_seconds, client_type, owner_id),
        )

    def cache_tool_signature(
        self, tool_id: str, signature: str, owner_id: str | None = None
    ) -> bool:
        """Cache a signature for a tool-call id."""
        args = {"tool_id": tool_id, "signature": signature, "owner_id": owner_id}
        return self.run(
            "cache_tool_signature",
            args,
            lambda c: c.cache_tool_signature(tool_id, signature, owner_id),
        )

    def get_tool_signature(self, tool_id: str, owner_id: str | None = None) -> str | None:
        """The signature cached for a tool-call id, or None."""
        args = {"tool_id": tool_id, "owner_id": owner_id}
        return self.run(
            "get_tool_signature", args, lambda c: c.get_tool_signature(tool_id, owner_id)
        )

    def get_tool_signature_fuzzy(self, tool_id: str, max_candidates: int = 5) -> str | None:
        """Exact id, then its base id, then similar ids, newest first."""
        args = {"tool_id": tool_id, "max_candidates": max_candidates}
        return self.run(
            "get_tool_signature_fuzzy",
            args,
            lambda c: c.get_tool_signature_fuzzy(tool_id, max_candidates),
        )

    def cache_session_signature(
        self, session_id: str, signature: str, thinking_text: str = "", owner_id: str | None = None
    ) -> bool:
        """Cache a signature (and its thinking text) for a session id."""
        args = {
            "session_id": session_id,
            "signature": signature,
            "thinking_text": thinking_text,
            "owner_id": owner_id,
        }
        return self.run(
            "cache_session_signature",
            args,
            lambda c: c.cache_session_signature(session_id, signature, thinking_text, owner_id),
        )

    def get_session_signature(self, session_id: str, owner_id: str | None = None) -> str | None:
        """The signature cached for a session id, or None."""
        args = {"session_id": session_id, "owner_id": owner_id}
        return self.run(
            "get_session_signature", args, lambda c: c.get_session_signature(session_id, owner_id)
        )

    def get_session_signature_with_text(
        self, session_id: str, owner_id: str | None = None
    ) -> SignatureWithText | None:
        """(signature, thinking text) cached for a session id, or None."""
        args = {"session_id": session_id, "owner_id": owner_id}
        return self.run(
            "get_session_signature_with_text",
            args,
            lambda c: c.get_session_signature_with_text(session_id, owner_id),
        )

    # -- stats and lifecycle --------------------------------------------------------------------

    def get_cache_stats(self) -> dict[str, Any]:
        """Legacy stats shape plus migration counters; every rate a float in [0, 1]."""
        stats: dict[str, Any] = dict(self.adapter.get_stats())
        if not self.control.enabled:
            stats["hit_rate"] = stats.get("hit_ratio", 0.0)  # the legacy cache answered alone
        stats["migration_mode_enabled"] = self.control.enabled
        stats["phase"] = self.effective_phase.name
        new = self._new.get(build=False)
        if new is not None:
            stats["new_cache_stats"] = new.get_stats()
        return stats

    def reset_cache_stats(self) -> None:
        """Zero the migration counters and both caches' counters."""
        self.adapter.reset_stats()

    def get_signature_cache(self) -> Cache:
        """The legacy cache."""
        return self.legacy

    def new_cache(self, build: bool = False) -> Cache | None:
        """The new cache (built first if `build`), or None."""
        return self._new.get(build)

    def close(self) -> None:
        """Flush and close the new cache and the state store."""
        self._new.close()
        self.control.store.close()
