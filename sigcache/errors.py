"""Exceptions raised by sigcache.

The tree::

    SigcacheError
    ├── ConfigError            bad configuration value (names the variable and the value)
    ├── StorageError           the L2 store failed (names the path)
    │   ├── StorageOpenError   could not open: missing directory, read-only, corrupt, not a database
    │   └── StorageBusyError   the database stayed locked past the busy timeout
    ├── PhaseError             an unknown phase name or value
    │   └── PhaseTransitionError  an illegal move (skipping a phase forward)
    │       └── GateRefusedError  a promotion the gate verdict does not allow
    └── RecordingError         a recording that cannot be read (names the line)

Cache calls never raise these at a caller: the caches translate failures into counted, logged
misses. They surface from construction (a store that cannot be opened), from configuration and
from the migration control plane.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "GateRefusedError",
    "PhaseError",
    "PhaseTransitionError",
    "RecordingError",
    "SigcacheError",
    "StorageBusyError",
    "StorageError",
    "StorageOpenError",
    "translate_sqlite_error",
]


class SigcacheError(Exception):
    """Base class of every sigcache error."""


class ConfigError(SigcacheError, ValueError):
    """A configuration value is missing, malformed or out of range."""


class StorageError(SigcacheError):
    """The L2 store failed."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class StorageOpenError(StorageError):
    """The L2 store could not be opened."""


class StorageBusyError(StorageError):
    """The L2 store stayed locked past the busy timeout."""


class PhaseError(SigcacheError, ValueError):
    """An unknown migration phase."""

    def __init__(self, message: str, valid: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.valid = list(valid)


class PhaseTransitionError(PhaseError):
    """A phase change that the migration rules forbid."""


class GateRefusedError(PhaseTransitionError):
    """A promotion refused because no passing, fresh gate verdict backs it."""

    def __init__(self, message: str, failed_rules: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.failed_rules = list(failed_rules)


class RecordingError(SigcacheError, ValueError):
    """A recording file that cannot be read; `line` is 1-based, 0 when not tied to a line."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


def translate_sqlite_error(exc: sqlite3.Error, path: str, action: str) -> StorageError:
    """Turn a sqlite3 error into ours, naming the path and what was being done."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return StorageBusyError(f"{action} {path!r}: database is locked", path)
    return StorageError(f"{action} {path!r}: {type(exc).__name__}: {text}", path)
