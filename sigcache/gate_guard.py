"""The promotion guard that reads gate verdicts from a directory of reports.

`sigcache-harness replay` writes `reports/<recording>-<time>/gate-<PHASE>.json`; a promotion to
PHASE is allowed when the newest such file under the gate directory passes
`sigcache.gating.check_promotion` (target, `pass`, age, recording present).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sigcache.errors import ConfigError
from sigcache.facade import GuardDecision
from sigcache.gating import check_promotion
from sigcache.phases import MigrationPhase

__all__ = [
    "DEFAULT_MAX_AGE_SECONDS",
    "ENV_GATE_DIR",
    "ENV_GATE_MAX_AGE",
    "DirectoryGateGuard",
    "guard_from_env",
]

ENV_GATE_DIR = "SIGCACHE_GATE_DIR"
ENV_GATE_MAX_AGE = "SIGCACHE_GATE_MAX_AGE"
DEFAULT_MAX_AGE_SECONDS = 7 * 24 * 3600.0  # a week: evidence older than that is stale


@dataclass(frozen=True, slots=True)
class DirectoryGateGuard:
    """Allow a promotion to PHASE only on the newest `gate-PHASE.json` under `gate_dir`."""

    gate_dir: Path
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS
    clock: Callable[[], float] = time.time

    def newest(self, phase: MigrationPhase) -> Path | None:
        """The most recently written gate file for `phase`, or None."""
        if not self.gate_dir.is_dir():
            return None
        found = list(self.gate_dir.glob(f"**/gate-{phase.name}.json"))
        return max(found, key=lambda p: p.stat().st_mtime) if found else None

    def __call__(self, phase: MigrationPhase) -> GuardDecision:
        path = self.newest(phase)
        if path is None:
            return GuardDecision(False, None, ("gate_missing",))
        allowed, verdict, problems = check_promotion(
            path, phase, max_age_seconds=self.max_age_seconds, now=self.clock()
        )
        if verdict is not None:
            verdict = {**verdict, "gate_file": str(path)}
        return GuardDecision(allowed, verdict, tuple(problems))


def guard_from_env(
    environ: Mapping[str, str] | None = None, *, clock: Callable[[], float] = time.time
) -> DirectoryGateGuard:
    """The guard configured by SIGCACHE_GATE_DIR (default ./reports) and SIGCACHE_GATE_MAX_AGE."""
    env = os.environ if environ is None else environ
    raw_age = env.get(ENV_GATE_MAX_AGE, "").strip()
    try:
        max_age = float(raw_age) if raw_age else DEFAULT_MAX_AGE_SECONDS
    except ValueError:
        raise ConfigError(f"{ENV_GATE_MAX_AGE}={raw_age!r}: not a number of seconds") from None
    if not max_age > 0 or max_age == float("inf"):
        raise ConfigError(f"{ENV_GATE_MAX_AGE}={raw_age!r}: must be a positive number")
    gate_dir = Path(env.get(ENV_GATE_DIR, "").strip() or "reports")
    return DirectoryGateGuard(gate_dir, max_age, clock)
