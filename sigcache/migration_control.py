"""The migration control plane: mode and phase changes, the promotion gate seam, audit, restore."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sigcache.errors import GateRefusedError, PhaseTransitionError, StorageError
from sigcache.migration_config import (
    ENV_MIGRATION_PHASE,
    ENV_USE_MIGRATION_ADAPTER,
    MigrationConfig,
    parse_bool,
)
from sigcache.phase_store import HistoryEntry, PersistedState, PhaseStore
from sigcache.phases import (
    MigrationFeatureFlags,
    MigrationPhase,
    TransitionKind,
    check_transition,
    parse_phase,
)

__all__ = ["GuardDecision", "MigrationControl", "PromotionGuard"]

log = logging.getLogger("sigcache.migration")


@dataclass(frozen=True, slots=True)
class GuardDecision:
    """A promotion guard's answer: allowed or not, the verdict relied on, the failed rules."""

    allowed: bool
    verdict: dict[str, Any] | None = None
    failed_rules: tuple[str, ...] = ()


PromotionGuard = Callable[[MigrationPhase], GuardDecision]
# Makes the new cache available for a promotion; returns why not, or None when it is ready.
NewCacheCheck = Callable[[], str | None]


class MigrationControl:
    """Owns migration mode, the phase (in `flags`), the audit history and their persistence."""

    def __init__(
        self,
        config: MigrationConfig,
        flags: MigrationFeatureFlags,
        store: PhaseStore,
        *,
        clock: Callable[[], float],
        guard: PromotionGuard | None,
        new_cache_ready: NewCacheCheck,
        on_change: Callable[[], None],
    ) -> None:
        self.config, self.flags, self.store = config, flags, store
        self._clock, self._guard = clock, guard
        self._new_cache_ready, self._on_change = new_cache_ready, on_change
        self._lock = threading.RLock()  # serialises changes; readers take snapshots
        self.enabled = config.use_migration_adapter
        self.override: bool | None = None
        self.history: list[HistoryEntry] = []
        self.persist_error: str | None = None
        self.restored = False
        self.conflicts: list[dict[str, Any]] = []
        self._restore()

    def _restore(self) -> None:
        try:
            state, history = self.store.load()
        except StorageError as exc:
            self.persist_error = str(exc)
            log.error("[CACHE_MIGRATION] cannot read persisted migration state: %s", exc)
            return
        self.history = history
        if state is None:
            return  # a new database: the environment gives the initial values
        self.restored = True
        self.flags.set_phase(state.phase)
        self.override = state.mode_override
        if state.mode_override is not None:
            self.enabled = state.mode_override
        self.conflicts = env_conflicts(self.config, state)
        for conflict in self.conflicts:
            log.warning(
                "[CACHE_MIGRATION] %s=%r ignored: persisted %s wins",
                conflict["variable"],
                conflict["env_value"],
                conflict["persisted_value"],
            )

    def _record(
        self, kind: str, old: MigrationPhase, actor: str, reason: str, **extra: Any
    ) -> None:
        """Append to the audit history and persist; a storage failure is reported, never raised."""
        entry = HistoryEntry(
            self._clock(), kind, old, self.flags.phase, self.enabled, actor, reason, **extra
        )
        self.history.append(entry)
        state = PersistedState(self.flags.phase, self.override, entry.t, actor)
        try:
            self.store.save(state, entry)
            self.persist_error = None
        except StorageError as exc:
            self.persist_error = str(exc)
            log.error("[CACHE_MIGRATION] migration state not persisted: %s", exc)

    def record(self, kind: str, *, actor: str, reason: str) -> None:
        """Audit an operator action that changes neither phase nor mode (e.g. "backfill")."""
        with self._lock:
            self._record(kind, self.flags.phase, actor, reason)

    def set_phase(self, phase: object, *, actor: str, reason: str, force: bool) -> None:
        """Move to a phase: one step forward (gated unless forced) or any step back."""
        target = parse_phase(phase)
        with self._lock:
            old = self.flags.phase
            kind = check_transition(old, target)
            if kind is TransitionKind.NOOP:
                return
            verdict = None
            if kind is TransitionKind.PROMOTION:
                verdict = self._check_promotion(target, force, actor)
            self.flags.set_phase(target)
            self._on_change()
            self._record("phase", old, actor, reason, forced=force, verdict=verdict)
        log.info(
            "[CACHE_MIGRATION] phase %s -> %s (actor=%s, %s%s)",
            old.name,
            target.name,
            actor,
            kind.value,
            ", forced" if force else "",
        )

    def _check_promotion(
        self, target: MigrationPhase, force: bool, actor: str
    ) -> dict[str, Any] | None:
        """The verdict a promotion relies on; raises when the gate refuses or no new cache."""
        verdict = None
        if not force and self._guard is not None:
            decision = self._guard(target)
            if not decision.allowed:
                rules = ", ".join(decision.failed_rules) or "no passing verdict"
                log.warning(
                    "[CACHE_MIGRATION] promotion to %s refused (actor=%s): %s",
                    target.name,
                    actor,
                    rules,
                )
                raise GateRefusedError(
                    f"promotion to {target.name} refused by the gate: {rules}",
                    decision.failed_rules,
                )
            verdict = decision.verdict
        problem = self._new_cache_ready()
        if problem is not None:
            raise PhaseTransitionError(f"cannot promote to {target.name}: {problem}")
        return verdict

    def enable(self, *, actor: str, reason: str) -> None:
        """Route traffic through the phase proxy (in the configured phase)."""
        with self._lock:
            changed = not self.enabled or self.override is not True
            self.enabled, self.override = True, True
            self._on_change()
            if changed:
                self._record("mode", self.flags.phase, actor, reason)
        if changed:
            log.info(
                "[CACHE_MIGRATION] migration mode enabled (phase=%s, actor=%s)",
                self.flags.phase.name,
                actor,
            )

    def disable(self, *, actor: str, reason: str) -> None:
        """Instant rollback: legacy only, whatever the phase; never raises."""
        # Mode first, lock-free: traffic returns to legacy before anything else can fail.
        self.enabled = False
        self._on_change()
        with self._lock:
            old = self.flags.phase
            changed = self.override is not False or old is not MigrationPhase.LEGACY_ONLY
            self.override = False
            self.flags.set_phase(MigrationPhase.LEGACY_ONLY)
            if changed:
                self._record("mode", old, actor, reason)
        if changed:
            log.info(
                "[CACHE_MIGRATION] migration mode disabled: %s -> LEGACY_ONLY (actor=%s)",
                old.name,
                actor,
            )

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """The (reentrant) lock every change holds; hold it to keep changes out."""
        return self._lock

    def apply_shared(self, state: PersistedState | None, history: list[HistoryEntry]) -> bool:
        """Adopt state another process saved, as a restart would (no audit, no save).

        Returns whether the phase or the mode changed. With no state saved yet only the
        history is taken: the environment's start values stay.
        """
        with self._lock:
            self.history = list(history)
            if state is None:
                return False
            before = (self.flags.phase, self.enabled)
            self.flags.set_phase(state.phase)
            self.override = state.mode_override
            # No override: the environment decides, as on a restart.
            self.enabled = (
                state.mode_override
                if state.mode_override is not None
                else self.config.use_migration_adapter
            )
            self.restored = True
            self._on_change()  # the facade's routing refresh (fast path, adapter)
            return before != (state.phase, self.enabled)

    @property
    def effective_phase(self) -> MigrationPhase:
        """The phase traffic obeys now: LEGACY_ONLY while migration mode is off."""
        return self.flags.phase if self.enabled else MigrationPhase.LEGACY_ONLY

    def history_dicts(self) -> list[dict[str, Any]]:
        """The audit history as plain dicts, oldest first."""
        with self._lock:
            return [entry.to_dict() for entry in self.history]

    def status(self) -> dict[str, Any]:
        """The control plane's part of `get_migration_status()`."""
        with self._lock:
            return {
                "migration_mode_enabled": self.enabled,
                "phase": self.flags.phase.name,
                "phase_value": int(self.flags.phase),
                "effective_phase": self.effective_phase.name,
                "runtime_override": self.override,
                "env_var": self.config.env_use_migration_adapter,
                "env_phase": self.config.env_migration_phase,
                "flags": self.flags.get_status(),
                "history": [entry.to_dict() for entry in self.history],
                "persistence": {
                    "db_path": self.store.path,
                    "restored": self.restored,
                    "error": self.persist_error,
                },
                "conflicts": list(self.conflicts),
            }


def env_conflicts(config: MigrationConfig, state: PersistedState) -> list[dict[str, Any]]:
    """Environment values that differ from the persisted state (reported, never applied)."""
    found: list[dict[str, Any]] = []
    env_phase = config.env_phase
    if env_phase is not None and env_phase != state.phase:
        found.append(_conflict(ENV_MIGRATION_PHASE, config.env_migration_phase, state.phase.name))
    raw = config.env_use_migration_adapter
    if state.mode_override is not None and raw.strip():
        try:
            env_mode: bool | None = parse_bool(ENV_USE_MIGRATION_ADAPTER, raw)
        except ValueError:
            env_mode = None
        if env_mode is not None and env_mode != state.mode_override:
            found.append(_conflict(ENV_USE_MIGRATION_ADAPTER, raw, state.mode_override))
    return found


def _conflict(variable: str, env_value: str, persisted: object) -> dict[str, Any]:
    return {
        "variable": variable,
        "env_value": env_value,
        "persisted_value": persisted,
        "applied": persisted,
    }
