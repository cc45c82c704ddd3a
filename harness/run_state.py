"""One stack under test for a phase: a fresh facade on the replay clock and an empty L2."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigcache.facade import CacheFacade
from sigcache.migration_config import MigrationConfig
from sigcache.observers import OperationEvent
from sigcache.phases import MigrationPhase

__all__ = ["Diagnostics", "PhaseStack", "build_stack"]


@dataclass(frozen=True, slots=True)
class Diagnostics:
    """Where inside the stack the last call was answered."""

    source: str | None = None
    tier: str | None = None
    fallback: bool = False
    read_repair: bool = False
    shadow_error: bool = False
    latency_us: float | None = None  # as the facade measured it, without our observer's cost


_NONE = Diagnostics()


class PhaseStack:
    """A facade in one phase, called by recorded op name, remembering each call's diagnostics."""

    def __init__(self, phase: MigrationPhase, facade: CacheFacade) -> None:
        self.phase = phase
        self.facade = facade
        self._last = _NONE
        facade.add_observer(self._observe)

    def _observe(self, event: OperationEvent) -> None:
        self._last = Diagnostics(
            event.source,
            event.tier,
            event.fallback,
            event.read_repair,
            event.shadow_error,
            event.latency_us,
        )

    def call(self, op: str, args: Mapping[str, Any]) -> Any:
        """Run a recorded op through the facade, as the module API would."""
        self._last = _NONE
        return getattr(self.facade, op)(**args)

    def last_diagnostics(self) -> Diagnostics:
        """Diagnostics of the last call (empty when the facade published none)."""
        return self._last

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
        # Live sampling reads legacy at random off the caller's path, which moves legacy's "last"
        # (touch) order: with last/recent answered by legacy in NEW_PREFERRED (issue 13), the
        # replay would no longer be deterministic. The replay compares every read anyway.
        consistency_sample_rate=0.0,
    )
    facade = CacheFacade(config, clock=clock, new_cache_factory=new_cache_factory)
    try:
        yield PhaseStack(phase, facade)
    finally:
        facade.close()
