"""CacheFacade: owns the legacy and new caches, the phase state, stats, audit and observers."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sigcache.adapter import CallDiagnostics, LegacySignatureCacheAdapter
from sigcache.backfill import BackfillRefused, BackfillSummary
from sigcache.backfill_jobs import BackfillJobs
from sigcache.facade_ops import FacadeOperations
from sigcache.interface import SignatureCacheProtocol
from sigcache.legacy import SignatureCache
from sigcache.migration_config import MigrationConfig
from sigcache.migration_control import GuardDecision, MigrationControl, PromotionGuard
from sigcache.new_cache import LazyCache, NewCacheFactory, default_new_cache_factory
from sigcache.observers import Observer, ObserverList, OperationEvent
from sigcache.phase_store import PhaseStore
from sigcache.phases import MigrationFeatureFlags, MigrationPhase
from sigcache.sampling import LiveSampler
from sigcache.strategies import MigrationStats

if TYPE_CHECKING:
    from sigcache.phase_sync import PhaseSync

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


class CacheFacade(FacadeOperations):
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
        if cfg.async_write_to_new:
            self.adapter.defer_shadow_writes(clock)
        self.phase_sync: PhaseSync | None = None  # set by whoever shares the state
        self.sampler = LiveSampler(
            self.legacy, self._drained, lambda: self.flags.phase.name, cfg.consistency_sample_rate
        )
        self.adapter.sampler = self.sampler if cfg.consistency_sample_rate > 0 else None
        self.backfills = BackfillJobs(
            self.legacy, lambda: self.new_cache(True), clock, self._audit_backfill
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
        # The router's provider: the router applies deferred writes itself before it reads, and
        # must be able to ask without applying them. Everyone else goes through `_drained`.
        # An existing L2 file may hold entries from an earlier run: invalidate and clear must
        # reach them even before any read or write has built the new cache.
        return self._new.get(build or (not self._new.built and os.path.exists(self.db_path)))

    def _drained(self, build: bool) -> Cache | None:
        """The new cache with every deferred DUAL_WRITE write applied first."""
        self.adapter.drain_shadow()
        return self._new_cache(build)

    def _new_cache_ready(self) -> str | None:
        self._new.retry()
        return None if self._new.get() is not None else self._new.error or "unavailable"

    def _refresh_fast(self) -> None:
        enabled, observed = self.control.enabled, bool(self.observers)
        self.fast = not enabled and not observed
        self.adapter.set_active(enabled)
        self.adapter.diagnose = observed  # diagnostics feed observers only
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
        before = self.effective_phase
        self.control.set_phase(phase, actor=actor, reason=reason, force=force)
        now = self.effective_phase
        if (
            now is MigrationPhase.DUAL_WRITE
            and before is not now
            and self.config.backfill_on_dual_write == "auto"
        ):
            self.backfills.start(actor=f"{actor} (auto)", reason="entering DUAL_WRITE")

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
        """Every audited phase, mode and backfill entry, oldest first."""
        return self.control.history_dicts()

    def get_migration_status(self) -> dict[str, Any]:
        """Mode, phase, flags, stats, history, persistence and env conflicts (numbers, not text)."""
        self.adapter.drain_shadow()  # counters of deferred writes land when they are applied
        writes, reads = self.stats.snapshot()
        status = self.control.status()
        status["dual_write_stats"] = writes
        status["read_stats"] = reads
        status["read_repair"] = self.config.read_repair
        shadow = self.adapter.shadow
        status["flags"]["write"]["async_to_new"] = shadow is not None
        status["shadow_writes"] = {
            "async": shadow is not None,
            **(shadow.stats() if shadow else {"pending": 0, "applied": 0}),
        }
        status["new_cache"] = {"built": self._new.built, "error": self._new.error}
        status["live_consistency"] = live = self.sampler.stats()
        status["flags"]["debug"]["validate_consistency"] = live["enabled"]
        status["backfill"] = {"mode": self.config.backfill_on_dual_write, **self.backfills.status()}
        if self.phase_sync is not None:
            status["shared_state"] = self.phase_sync.status()
        return status

    def backfill(
        self, *, actor: str = "code", reason: str = "", chunk_size: int = 256
    ) -> BackfillSummary:
        """Copy the legacy cache's live entries into the new cache (owner and expiry kept).

        Needs migration mode on in a phase that writes both caches (DUAL_WRITE, NEW_PREFERRED);
        otherwise, or while another backfill runs, raises BackfillRefused.
        """
        flags = self.flags.effective
        if not self.control.enabled or not (flags.write_to_new and flags.write_to_legacy):
            raise BackfillRefused(
                f"backfill needs migration mode on in DUAL_WRITE or NEW_PREFERRED "
                f"(now {self.effective_phase.name})"
            )
        if self._new.get() is None:
            raise BackfillRefused("the new cache is unavailable")
        return self.backfills.run(actor=actor, reason=reason, chunk_size=chunk_size)

    def _audit_backfill(self, actor: str, reason: str) -> None:
        self.control.record("backfill", actor=actor, reason=reason)

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

    def _forget_in_new_when_off(self, call: Callable[[Cache], object]) -> None:
        """With mode off the adapter is bypassed; a built new cache must still forget."""
        if self.control.enabled:
            return
        new = self._drained(False)
        if new is None:
            return
        try:
            call(new)
        except Exception as exc:  # the new cache's failure never reaches the caller
            log.warning("[LEGACY_ADAPTER] new cache failed to forget: %s", type(exc).__name__)

    # -- stats and lifecycle --------------------------------------------------------------------

    def get_cache_stats(self) -> dict[str, Any]:
        """Legacy stats shape plus migration counters; every rate a float in [0, 1]."""
        self.adapter.drain_shadow()
        stats: dict[str, Any] = dict(self.adapter.get_stats())
        if not self.control.enabled:
            stats["hit_rate"] = stats.get("hit_ratio", 0.0)  # the legacy cache answered alone
        stats["migration_mode_enabled"] = self.control.enabled
        stats["phase"] = self.effective_phase.name
        stats["live_consistency"] = self.sampler.stats()
        new = self._new.get(build=False)
        if new is not None:
            stats["new_cache_stats"] = new.get_stats()
        return stats

    def reset_cache_stats(self) -> None:
        """Zero the migration counters and both caches' counters."""
        self.adapter.drain_shadow()  # a write made before the reset is not counted after it
        self.adapter.reset_stats()

    def get_signature_cache(self) -> Cache:
        """The legacy cache."""
        return self.legacy

    def new_cache(self, build: bool = False) -> Cache | None:
        """The new cache (built first if `build`), or None; deferred writes applied first."""
        self.adapter.drain_shadow()
        return self._new.get(build)

    def close(self) -> None:
        """Stop backfill and sampling, flush and close the new cache and the state store."""
        if self.phase_sync is not None:
            self.phase_sync.stop()  # before the store it polls is closed
        self.backfills.close()
        self.sampler.close()
        self.adapter.defer_shadow_writes(None)  # applies what is queued, stops the thread
        self._new.close()
        self.control.store.close()
