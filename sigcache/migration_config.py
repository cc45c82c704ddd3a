"""Migration settings: a frozen dataclass with the replaced system's names, and `from_env`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from sigcache.errors import ConfigError, PhaseError
from sigcache.phases import MigrationPhase, parse_phase

__all__ = [
    "ENV_VARS",
    "BackfillMode",
    "FailurePolicy",
    "MigrationConfig",
    "default_l2_db_path",
    "parse_bool",
]

FailurePolicy = Literal["ignore", "log"]
BackfillMode = Literal["auto", "on_demand"]
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})

ENV_USE_MIGRATION_ADAPTER = "CACHE_USE_MIGRATION_ADAPTER"
ENV_MIGRATION_PHASE = "CACHE_MIGRATION_PHASE"

# env var -> MigrationConfig field
ENV_VARS: dict[str, str] = {
    "CACHE_LEGACY_MAX_SIZE": "legacy_max_size",
    "CACHE_LEGACY_TTL": "legacy_ttl_seconds",
    "CACHE_NEW_L1_MAX_SIZE": "new_l1_max_size",
    "CACHE_NEW_L1_TTL": "new_l1_ttl_seconds",
    "CACHE_NEW_L2_DB_PATH": "new_l2_db_path",
    "CACHE_NEW_L2_MAX_SIZE": "new_l2_max_size",
    "CACHE_NEW_L2_TTL": "new_l2_ttl_seconds",
    "CACHE_DUAL_WRITE_FAILURE_POLICY": "dual_write_failure_policy",
    "CACHE_CONSISTENCY_SAMPLE_RATE": "consistency_sample_rate",
    "CACHE_BACKFILL_ON_DUAL_WRITE": "backfill_on_dual_write",
    "CACHE_ASYNC_WRITE_TO_NEW": "async_write_to_new",
}


def default_l2_db_path() -> Path:
    """The default L2 file, in the per-user data directory (never inside the package)."""
    from sigcache.config import default_db_path  # the layered cache's default: one file for both

    return default_db_path()


def parse_bool(name: str, raw: str) -> bool:
    """true/1/yes/on or false/0/no/off (any case, "" is off); anything else is a ConfigError."""
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r}: expected one of true/1/yes/on or false/0/no/off")


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a positive integer") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r}: expected a positive integer")
    return value


def _positive_seconds(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a positive number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={raw!r}: expected a positive number of seconds")
    return value


def _policy(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value == "raise":
        # The replaced system could raise a shadow failure into the caller; this one never does.
        raise ConfigError(
            f"{name}={raw!r}: 'raise' is not supported (a new-cache failure never reaches "
            "the caller); use 'log' or 'ignore'"
        )
    if value not in ("ignore", "log"):
        raise ConfigError(f"{name}={raw!r}: expected 'log' or 'ignore'")
    return value


def _fraction(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a rate between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name}={raw!r}: expected a rate between 0 and 1")
    return value


def _backfill_mode(name: str, raw: str) -> str:
    value = raw.strip().lower().replace("-", "_")
    if value not in ("auto", "on_demand"):
        raise ConfigError(f"{name}={raw!r}: expected 'auto' or 'on_demand'")
    return value


def _path(name: str, raw: str) -> str:
    if not raw.strip():
        raise ConfigError(f"{name}={raw!r}: expected a file path")
    return raw.strip()


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "legacy_max_size": _positive_int,
    "legacy_ttl_seconds": _positive_seconds,
    "new_l1_max_size": _positive_int,
    "new_l1_ttl_seconds": _positive_seconds,
    "new_l2_db_path": _path,
    "new_l2_max_size": _positive_int,
    "new_l2_ttl_seconds": _positive_seconds,
    "dual_write_failure_policy": _policy,
    "consistency_sample_rate": _fraction,
    "backfill_on_dual_write": _backfill_mode,
    "async_write_to_new": parse_bool,
}

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class MigrationConfig:
    """Settings of both caches and the migration; sizes in entries, times in seconds."""

    legacy_max_size: int = 10_000
    legacy_ttl_seconds: float = 3_600.0
    legacy_key_prefix_length: int = 500  # characters hashed into the legacy key
    new_l1_max_size: int = 10_000
    new_l1_ttl_seconds: float = 3_600.0  # <= new_l2_ttl_seconds
    new_l2_db_path: str | None = None  # None: default_l2_db_path()
    new_l2_max_size: int = 100_000
    new_l2_ttl_seconds: float = 86_400.0
    dual_write_failure_policy: FailurePolicy = "log"
    read_repair: bool = True  # write a fallback hit back into the cache that missed
    consistency_sample_rate: float = 0.01  # share of keyed reads compared live; 0 = off
    backfill_on_dual_write: BackfillMode = "on_demand"  # "auto": backfill on entering DUAL_WRITE
    # DUAL_WRITE's new-cache write applied off the caller's path (sigcache.shadow). Off by
    # default: the replaced system's default was on, and it lost writes (README "Deferred writes").
    async_write_to_new: bool = False
    use_migration_adapter: bool = False  # migration mode at start of a new database
    initial_phase: MigrationPhase = MigrationPhase.LEGACY_ONLY  # phase of a new database
    env_use_migration_adapter: str = ""  # raw CACHE_USE_MIGRATION_ADAPTER, for the status
    env_migration_phase: str = ""  # raw CACHE_MIGRATION_PHASE ("" = unset), for conflicts

    def __post_init__(self) -> None:
        for name in ("legacy_max_size", "legacy_key_prefix_length", "new_l1_max_size"):
            _check(name, getattr(self, name), lambda v: isinstance(v, int) and v > 0)
        _check("new_l2_max_size", self.new_l2_max_size, lambda v: isinstance(v, int) and v > 0)
        for name in ("legacy_ttl_seconds", "new_l1_ttl_seconds", "new_l2_ttl_seconds"):
            _check(name, getattr(self, name), _is_positive_number)
        _check(
            "dual_write_failure_policy",
            self.dual_write_failure_policy,
            ("ignore", "log").__contains__,
        )
        _check(
            "consistency_sample_rate",
            self.consistency_sample_rate,
            lambda v: _is_number(v) and 0.0 <= v <= 1.0,
        )
        _check(
            "backfill_on_dual_write",
            self.backfill_on_dual_write,
            ("auto", "on_demand").__contains__,
        )
        if self.new_l1_ttl_seconds > self.new_l2_ttl_seconds:
            raise ConfigError(
                f"new_l1_ttl_seconds={self.new_l1_ttl_seconds!r} exceeds "
                f"new_l2_ttl_seconds={self.new_l2_ttl_seconds!r} (CACHE_NEW_L1_TTL must be "
                "<= CACHE_NEW_L2_TTL)"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MigrationConfig:
        """Settings from environment variables; errors name the variable and its value."""
        values: dict[str, Any] = {}
        for var, field_name in ENV_VARS.items():
            raw = environ.get(var)
            if raw is not None and raw.strip() != "":
                values[field_name] = _PARSERS[field_name](var, raw)
        mode_raw = environ.get(ENV_USE_MIGRATION_ADAPTER, "")
        phase_raw = environ.get(ENV_MIGRATION_PHASE, "")
        values["use_migration_adapter"] = parse_bool(ENV_USE_MIGRATION_ADAPTER, mode_raw)
        if phase_raw.strip():
            try:
                values["initial_phase"] = parse_phase(phase_raw)
            except PhaseError as exc:
                raise ConfigError(f"{ENV_MIGRATION_PHASE}={phase_raw!r}: {exc}") from None
        return cls(env_use_migration_adapter=mode_raw, env_migration_phase=phase_raw, **values)

    @property
    def env_phase(self) -> MigrationPhase | None:
        """The phase CACHE_MIGRATION_PHASE asked for, None when unset."""
        return self.initial_phase if self.env_migration_phase.strip() else None

    def resolved_l2_db_path(self) -> str:
        """The L2 database file: the configured path or the per-user default."""
        return self.new_l2_db_path or str(default_l2_db_path())

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON values (the phase by name)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["initial_phase"] = self.initial_phase.name
        return out


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_positive_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _check(name: str, value: _T, ok: Callable[[_T], bool]) -> None:
    if isinstance(value, bool) or not ok(value):
        raise ConfigError(f"{name}={value!r}: invalid value")
