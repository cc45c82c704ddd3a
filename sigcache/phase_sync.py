"""PhaseSync: every process applies the shared migration state within one poll interval.

A daemon thread polls the backend's version (`sigcache.phase_state`: one indexed SQLite row or
one Redis GET) every `interval` seconds, off the request path. A version other than the one
applied loads a snapshot and hands it to `on_change(state)`; `FacadeApplier` applies it to a
`CacheFacade` without auditing or saving again (the change is already in the store). A failing
poll is counted and logged once per burst; the process keeps the state it runs.

Wiring (one line each): `backend = phase_backend_from_env(environ, facade.db_path)`, then
`sync = attach_phase_sync(facade, backend, interval)`, and `sync.stop()` before
`facade.close()`; `sync.status()` belongs in `get_migration_status()["shared_state"]`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sigcache.errors import ConfigError
from sigcache.phase_state import PhaseStateBackend, RedisPhaseState, SharedState, SQLitePhaseState
from sigcache.phase_store import PersistedState
from sigcache.redis_wiring import ENV_REDIS_PREFIX, l2_url
from sigcache.storage import BurstLog

__all__ = [
    "ENV_PHASE_SYNC_INTERVAL",
    "FacadeApplier",
    "PhaseSync",
    "attach_phase_sync",
    "interval_from_env",
    "phase_backend_from_env",
]

log = logging.getLogger("sigcache.migration")

ENV_PHASE_SYNC_INTERVAL = "CACHE_PHASE_SYNC_INTERVAL"  # seconds, default 1.0
OnChange = Callable[[SharedState], None]


class PhaseSync:
    """Polls a backend's version and applies newer state through `on_change`."""

    def __init__(
        self,
        backend: PhaseStateBackend,
        on_change: OnChange,
        *,
        interval: float = 1.0,
        lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        if not interval > 0:
            raise ConfigError(f"phase sync interval must be > 0 seconds, got {interval!r}")
        self.backend, self.interval = backend, interval
        self._on_change = on_change
        # Held while a snapshot is read and applied: the facade's change lock, so a local
        # change (which saves under that lock) can never be overwritten by an older snapshot.
        self._apply_lock = lock if lock is not None else nullcontext()
        self.version = -1  # applied; -1 = none yet
        self.store_version = -1  # last seen in the store
        self.applied_at: float | None = None
        self.polls = self.errors = self.changes = 0
        self.last_error: str | None = None
        self._faults = BurstLog(log, f"shared migration state in {backend.path!r}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> bool:
        """One poll: apply a changed version; True if something was applied. Never raises."""
        self.polls += 1
        try:
            seen = self.backend.version()
            self.store_version = seen
            if seen == self.version:
                self._faults.success()
                return False
            with self._apply_lock:
                state = self.backend.snapshot()
                if state.version != self.version:
                    self._on_change(state)
                    self.version, self.store_version = state.version, state.version
                    self.applied_at, self.changes = time.time(), self.changes + 1
        except Exception as exc:  # a bad backend or callback must not kill the poller
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._faults.failure(self.last_error)
            return False
        self._faults.success()
        return True

    def start(self) -> PhaseSync:
        """Apply the current state now, then poll in a daemon thread."""
        if self._thread is None:
            self.poll_once()
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="sigcache-phase-sync", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll_once()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop polling (idempotent)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the poller thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        """The version this process runs and the poller's health (numbers, not text)."""
        return {
            "backend": self.backend.path,
            "version": self.version,
            "store_version": self.store_version,
            "in_sync": self.version == self.store_version,
            "interval_s": self.interval,
            "applied_at": self.applied_at,
            "running": self.running,
            "polls": self.polls,
            "changes": self.changes,
            "errors": self.errors,
            "last_error": self.last_error,
        }


class FacadeApplier:
    """Applies shared state to a `CacheFacade`, as a restart would (no audit, no save)."""

    def __init__(self, facade: Any) -> None:
        self._control = facade.control

    def __call__(self, shared: SharedState) -> None:
        """Set phase, mode and history from `shared`; tell the facade its routing changed."""
        state = shared.state
        if self._control.apply_shared(state, list(shared.history)) and state is not None:
            log.info(
                "[CACHE_MIGRATION] shared state v%d applied: phase %s, mode %s (actor=%s)",
                shared.version,
                state.phase.name,
                "on" if self._control.enabled else "off",
                state.actor,
            )


def attach_phase_sync(facade: Any, backend: PhaseStateBackend, interval: float = 1.0) -> PhaseSync:
    """Persist `facade`'s migration state in `backend` and keep it in sync; started.

    A backend holding no state yet is seeded with the facade's (restored or start) state.
    """
    control = facade.control
    with control.lock:  # no local change may interleave with the seeding
        if backend.snapshot().state is None and control.history:
            state = _local_state(control)
            for entry in control.history[:-1]:
                backend.save(state, entry)
            backend.save(state, control.history[-1])
        control.store = backend  # every later change saves (and bumps the version) here
    sync = PhaseSync(backend, FacadeApplier(facade), interval=interval, lock=control.lock)
    return sync.start()


def _local_state(control: Any) -> PersistedState:
    return PersistedState(control.flags.phase, control.override, time.time(), "phase-sync seed")


def phase_backend_from_env(environ: Mapping[str, str], db_path: str) -> PhaseStateBackend:
    """Redis when `CACHE_NEW_L2_URL` is a redis:// URL, else the SQLite L2 file."""
    url = l2_url(environ)
    if url is not None:
        return RedisPhaseState(url, prefix=environ.get(ENV_REDIS_PREFIX, "").strip() or "sigcache")
    return SQLitePhaseState(db_path)


def interval_from_env(environ: Mapping[str, str]) -> float:
    """`CACHE_PHASE_SYNC_INTERVAL` in seconds (default 1.0)."""
    raw = environ.get(ENV_PHASE_SYNC_INTERVAL, "").strip()
    try:
        value = float(raw) if raw else 1.0
    except ValueError:
        raise ConfigError(f"{ENV_PHASE_SYNC_INTERVAL} must be seconds, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{ENV_PHASE_SYNC_INTERVAL} must be > 0, got {raw!r}")
    return value
