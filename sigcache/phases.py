"""Migration phases, the rules for moving between them, and the per-phase feature flags."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sigcache.errors import PhaseError, PhaseTransitionError

__all__ = [
    "PHASE_FLAG_TABLE",
    "VALID_PHASE_NAMES",
    "MigrationFeatureFlags",
    "MigrationPhase",
    "PhaseFlags",
    "TransitionKind",
    "check_transition",
    "parse_phase",
]


class MigrationPhase(enum.IntEnum):
    """The four phases of the legacy-to-layered migration, in promotion order."""

    LEGACY_ONLY = 1
    DUAL_WRITE = 2
    NEW_PREFERRED = 3
    NEW_ONLY = 4

    @classmethod
    def parse(cls, value: object) -> MigrationPhase:
        """A phase from a name (any case), an int 1-4, a digit string or a phase."""
        return parse_phase(value)


VALID_PHASE_NAMES: tuple[str, ...] = tuple(p.name for p in MigrationPhase)


def parse_phase(value: object) -> MigrationPhase:
    """Parse a phase; anything else raises PhaseError listing the valid names."""
    if isinstance(value, MigrationPhase):
        return value
    # bool is an int subclass: True must not mean LEGACY_ONLY.
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= len(MigrationPhase):
            return MigrationPhase(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit() and 1 <= int(text) <= len(MigrationPhase):
            return MigrationPhase(int(text))
        try:
            return MigrationPhase[text.upper()]
        except KeyError:
            pass
    valid = ", ".join(VALID_PHASE_NAMES)
    raise PhaseError(
        f"unknown migration phase {value!r}; valid: {valid} (or 1-{len(MigrationPhase)})",
        VALID_PHASE_NAMES,
    )


class TransitionKind(enum.StrEnum):
    """What a phase change is: nothing, one step forward, or any step back."""

    NOOP = "noop"
    PROMOTION = "promotion"
    ROLLBACK = "rollback"


def check_transition(current: MigrationPhase, target: MigrationPhase) -> TransitionKind:
    """Classify a move; skipping a phase forward raises PhaseTransitionError."""
    if target == current:
        return TransitionKind.NOOP
    if target < current:
        return TransitionKind.ROLLBACK
    if target == current + 1:
        return TransitionKind.PROMOTION
    raise PhaseTransitionError(
        f"cannot promote {current.name} -> {target.name}: promotion goes one phase at a time "
        f"(next is {MigrationPhase(current + 1).name})",
        VALID_PHASE_NAMES,
    )


@dataclass(frozen=True, slots=True)
class PhaseFlags:
    """Where a phase writes and reads (one row of the phase table)."""

    write_to_legacy: bool
    write_to_new: bool
    read_from_legacy: bool
    read_from_new: bool
    prefer_new_on_read: bool


# The replaced system's table (reference 3.2); DESIGN section 4 restates it.
PHASE_FLAG_TABLE: dict[MigrationPhase, PhaseFlags] = {
    MigrationPhase.LEGACY_ONLY: PhaseFlags(True, False, True, False, False),
    MigrationPhase.DUAL_WRITE: PhaseFlags(True, True, True, True, False),
    MigrationPhase.NEW_PREFERRED: PhaseFlags(True, True, True, True, True),
    MigrationPhase.NEW_ONLY: PhaseFlags(False, True, False, True, True),
}

_OVERRIDE_NAMES = (
    "write_to_legacy",
    "write_to_new",
    "read_from_legacy",
    "read_from_new",
    "prefer_new_on_read",
)


class MigrationFeatureFlags:
    """The phase plus explicit per-flag overrides; an override (not None) beats the table."""

    def __init__(self, phase: MigrationPhase = MigrationPhase.LEGACY_ONLY) -> None:
        self._lock = threading.Lock()
        self._phase = phase
        self._overrides: dict[str, bool | None] = dict.fromkeys(_OVERRIDE_NAMES)
        self._effective = PHASE_FLAG_TABLE[phase]
        self._listeners: tuple[Callable[[PhaseFlags], None], ...] = ()

    def subscribe(self, listener: Callable[[PhaseFlags], None]) -> None:
        """Call `listener(effective)` now and after every change (under this record's lock)."""
        with self._lock:
            self._listeners = (*self._listeners, listener)
            listener(self._effective)

    @property
    def phase(self) -> MigrationPhase:
        """The current phase."""
        return self._phase

    @property
    def effective(self) -> PhaseFlags:
        """The flags in force: the phase row with the overrides applied (an immutable snapshot)."""
        return self._effective

    def set_phase(self, phase: MigrationPhase) -> None:
        """Set the phase (the transition rules are the facade's job, not this record's)."""
        with self._lock:
            self._phase = phase
            self._recompute()

    def override(self, name: str, value: bool | None) -> None:
        """Force one flag (`write_to_new`, ...) on or off; None returns it to the phase default."""
        if name not in self._overrides:
            raise ValueError(f"unknown flag {name!r}; valid: {', '.join(_OVERRIDE_NAMES)}")
        with self._lock:
            self._overrides[name] = value
            self._recompute()

    def clear_overrides(self) -> None:
        """Drop every override."""
        with self._lock:
            self._overrides = dict.fromkeys(_OVERRIDE_NAMES)
            self._recompute()

    def _recompute(self) -> None:
        row = PHASE_FLAG_TABLE[self._phase]
        values = {n: getattr(row, n) if v is None else v for n, v in self._overrides.items()}
        self._effective = PhaseFlags(**values)
        # Under the lock, so listeners see changes in the order they were made.
        for listener in self._listeners:
            listener(self._effective)

    @property
    def should_write_to_legacy(self) -> bool:
        """Writes reach the legacy cache."""
        return self._effective.write_to_legacy

    @property
    def should_write_to_new(self) -> bool:
        """Writes reach the new cache."""
        return self._effective.write_to_new

    @property
    def should_read_from_legacy(self) -> bool:
        """Reads may consult the legacy cache."""
        return self._effective.read_from_legacy

    @property
    def should_read_from_new(self) -> bool:
        """Reads may consult the new cache."""
        return self._effective.read_from_new

    @property
    def prefer_new_on_read(self) -> bool:
        """The new cache is read first."""
        return self._effective.prefer_new_on_read

    @property
    def is_dual_write_enabled(self) -> bool:
        """Both write flags are on."""
        return self._effective.write_to_legacy and self._effective.write_to_new

    def get_status(self) -> dict[str, Any]:
        """The replaced system's flags status shape (reference 3.2), numbers and bools only."""
        flags, overrides = self._effective, dict(self._overrides)
        return {
            "phase": self._phase.name,
            "phase_value": int(self._phase),
            "write": {
                "to_legacy": flags.write_to_legacy,
                "to_new": flags.write_to_new,
                "dual_write": flags.write_to_legacy and flags.write_to_new,
                # The new write is synchronous into L1; L2 is batched by the layered cache.
                "async_to_new": False,
            },
            "read": {
                "from_legacy": flags.read_from_legacy,
                "from_new": flags.read_from_new,
                "prefer_new": flags.prefer_new_on_read,
            },
            # Kept for the replaced system's status shape; there is no consistency sampler here.
            "debug": {
                "validate_consistency": False,
                "log_migration_events": True,
                "log_read_source": False,
            },
            "overrides": {
                "write_to_legacy": overrides["write_to_legacy"],
                "write_to_new": overrides["write_to_new"],
                "read_from_legacy": overrides["read_from_legacy"],
                "read_from_new": overrides["read_from_new"],
                "prefer_new_on_read": overrides["prefer_new_on_read"],
            },
        }

    def __repr__(self) -> str:
        return f"MigrationFeatureFlags(phase={self._phase.name}, effective={self._effective})"
