"""One stack under test for a phase: a fresh facade on the replay clock and an empty L2."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigcache.facade import CacheFacade
from sigcache.interface import SignatureCacheProtocol
from sigcache.migration_config import MigrationConfig
from sigcache.new_cache import default_new_cache_factory
from sigcache.phases import MigrationPhase
from sigcache.routing import NO_DIAG, CallDiagnostics

__all__ = ["Diagnostics", "PhaseStack", "build_stack"]


@dataclass(frozen=True, slots=True)
class Diagnostics:
    """Where inside the stack the last call was answered."""

    source: str | None = None
    tier: str | None = None
    fallback: bool = False
    read_repair: bool = False
    shadow_error: bool = False
    latency_us: float | None = None  # the facade call alone, without the replay's own cost


_NONE = Diagnostics()


class PhaseStack:
    """A facade in one phase, called by recorded op name, remembering each call's diagnostics.

    The diagnostics come from the phase proxy's router (`adapter.last_diagnostics()`), the very
    record the facade hands its observers. Registering an observer instead would send every
    call through `CacheFacade.run` (an argument dict, a closure and an `OperationEvent` per
    call, half of the replay's cost), so the stack switches the router's diagnostics on and
    times the call itself.
    """

    def __init__(self, phase: MigrationPhase, facade: CacheFacade) -> None:
        self.phase = phase
        self.name = phase.name  # an enum's name is a property lookup: read once per row
        self.facade = facade
        self._adapter = facade.adapter
        self._methods: dict[str, Callable[..., Any]] = {}
        self._raised = False
        self.latency_us = 0.0  # of the last `call`, raised or not (µs)
        self._adapter.diagnose = True

    def call(self, op: str, args: Mapping[str, Any]) -> Any:
        """Run a recorded op through the facade, as the module API would."""
        method = self._methods.get(op)
        if method is None:
            method = self._methods[op] = getattr(self.facade, op)
        # The facade resets `diagnose` whenever its mode or observers change: set it every call.
        self._adapter.diagnose = True
        self._raised = True
        start = time.perf_counter()
        try:
            result = method(**args)
        finally:
            self.latency_us = (time.perf_counter() - start) * 1e6
        self._raised = False
        return result

    def call_diagnostics(self) -> CallDiagnostics:
        """The router's record of the last call (empty when it raised): the replay's fast path."""
        return NO_DIAG if self._raised else self._adapter.last_diagnostics()

    def last_diagnostics(self) -> Diagnostics:
        """Diagnostics of the last routed call (empty if `call` raised), its latency included."""
        if self._raised:
            return _NONE
        diag = self._adapter.last_diagnostics()
        return Diagnostics(
            diag.source,
            diag.tier,
            diag.fallback,
            diag.read_repair,
            diag.shadow_error,
            self.latency_us,
        )

    def new_cache_stats(self) -> dict[str, int | float]:
        """The new cache's numeric `get_stats()` now; empty when it was never built or has none.

        Read at the end of the phase's replay for the report (provenance misses, refused
        writes). A candidate cache's stats are optional, so anything unusable counts as none.
        """
        new = self.facade.new_cache(build=False)
        try:
            stats = new.get_stats() if new is not None else {}
        except Exception:  # a candidate's broken stats must not fail the replay
            return {}
        if not isinstance(stats, Mapping):
            return {}
        return {
            str(name): value
            for name, value in stats.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }


def _throwaway_new_cache(
    db_path: str, *, config: MigrationConfig, clock: Callable[[], float]
) -> SignatureCacheProtocol:
    """The default new cache, its L2 commits not synced: a replay's stores are deleted after it,
    so durability buys nothing there (the syncs cost the writer threads time)."""
    return default_new_cache_factory(db_path, config=config, clock=clock, durable=False)


@contextmanager
def build_stack(
    phase: MigrationPhase,
    workdir: Path,
    clock: Callable[[], float],
    new_cache_factory: Callable[..., Any] | None,
) -> Iterator[PhaseStack]:
    """A fresh stack for `phase`: migration mode on, an empty L2 file under `workdir`."""
    config = MigrationConfig(
        new_l2_db_path=str(workdir / f"{phase.name.lower()}.db"),
        use_migration_adapter=True,
        initial_phase=phase,
        # No live consistency sampling: its worker thread reads both caches at moments the
        # replay does not control (moving legacy's LRU order) with an unseeded draw, which made
        # replays differ from run to run; the replay compares every read anyway.
        consistency_sample_rate=0.0,
    )
    factory = new_cache_factory or _throwaway_new_cache
    facade = CacheFacade(config, clock=clock, new_cache_factory=factory)
    try:
        yield PhaseStack(phase, facade)
    finally:
        facade.close()
