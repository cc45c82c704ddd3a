"""Persisted migration state: phase, mode and the audit history, in the L2 database file."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigcache.errors import StorageOpenError, translate_sqlite_error
from sigcache.phases import MigrationPhase

__all__ = ["SCHEMA", "HistoryEntry", "PersistedState", "PhaseStore"]

# Own tables beside the layered cache's: the two never share a row or a connection.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS migration_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        phase INTEGER NOT NULL,
        mode_override INTEGER,          -- NULL: migration mode follows the environment
        updated_at REAL NOT NULL,       -- epoch seconds (facade clock)
        actor TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS migration_history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        t REAL NOT NULL,
        kind TEXT NOT NULL,             -- 'phase' | 'mode'
        from_phase TEXT NOT NULL,
        to_phase TEXT NOT NULL,
        mode_enabled INTEGER NOT NULL,  -- migration mode after the change
        actor TEXT NOT NULL,
        reason TEXT NOT NULL,
        forced INTEGER NOT NULL,
        verdict TEXT                    -- JSON of the gate verdict relied on, NULL if none
    )""",
)
_BUSY_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class PersistedState:
    """The migration state that survives a restart."""

    phase: MigrationPhase
    mode_override: bool | None  # None: the environment decides the mode
    updated_at: float
    actor: str


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One audited change of phase or mode."""

    t: float
    kind: str  # "phase" | "mode"
    from_phase: MigrationPhase
    to_phase: MigrationPhase
    mode_enabled: bool
    actor: str
    reason: str = ""
    forced: bool = False
    verdict: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, phases by name."""
        return {
            "t": self.t,
            "kind": self.kind,
            "from": self.from_phase.name,
            "to": self.to_phase.name,
            "mode_enabled": self.mode_enabled,
            "actor": self.actor,
            "reason": self.reason,
            "forced": self.forced,
            "verdict": self.verdict,
        }


class PhaseStore:
    """Reads and writes the migration tables of one SQLite file through its own connection."""

    def __init__(self, path: str | Path, *, timeout: float = _BUSY_TIMEOUT_S) -> None:
        self.path = str(path)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageOpenError(
                    f"creating the directory of {self.path!r}: {exc}", self.path
                ) from exc
            conn = sqlite3.connect(self.path, timeout=self._timeout, check_same_thread=False)
            try:
                for statement in SCHEMA:
                    conn.execute(statement)
                conn.commit()
            except sqlite3.Error:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def load(self) -> tuple[PersistedState | None, list[HistoryEntry]]:
        """The persisted state and history; a missing file reads as nothing and is not created."""
        if self._conn is None and not Path(self.path).exists():
            return None, []
        with self._lock:
            try:
                conn = self._connect()
                row = conn.execute(
                    "SELECT phase, mode_override, updated_at, actor FROM migration_state"
                ).fetchone()
                rows = conn.execute(
                    "SELECT t, kind, from_phase, to_phase, mode_enabled, actor, reason, forced,"
                    " verdict FROM migration_history ORDER BY seq"
                ).fetchall()
            except sqlite3.Error as exc:
                raise translate_sqlite_error(
                    exc, self.path, "reading migration state from"
                ) from exc
        state = None
        if row is not None:
            override = None if row[1] is None else bool(row[1])
            state = PersistedState(MigrationPhase(row[0]), override, float(row[2]), str(row[3]))
        return state, [_entry(r) for r in rows]

    def save(self, state: PersistedState, entry: HistoryEntry | None = None) -> None:
        """Replace the state and append the history entry, in one transaction."""
        override = None if state.mode_override is None else int(state.mode_override)
        with self._lock:
            try:
                conn = self._connect()
                with conn:  # one transaction: state and history move together
                    conn.execute(
                        "INSERT OR REPLACE INTO migration_state"
                        " (id, phase, mode_override, updated_at, actor) VALUES (1, ?, ?, ?, ?)",
                        (int(state.phase), override, state.updated_at, state.actor),
                    )
                    if entry is not None:
                        conn.execute(
                            "INSERT INTO migration_history (t, kind, from_phase, to_phase,"
                            " mode_enabled, actor, reason, forced, verdict)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            _row(entry),
                        )
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc, self.path, "saving migration state to") from exc

    def close(self) -> None:
        """Close the connection (a later call reopens it)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _row(entry: HistoryEntry) -> tuple[Any, ...]:
    verdict = (
        None if entry.verdict is None else json.dumps(entry.verdict, sort_keys=True, default=str)
    )
    return (
        entry.t,
        entry.kind,
        entry.from_phase.name,
        entry.to_phase.name,
        int(entry.mode_enabled),
        entry.actor,
        entry.reason,
        int(entry.forced),
        verdict,
    )


def _entry(row: tuple[Any, ...]) -> HistoryEntry:
    verdict = None if row[8] is None else json.loads(row[8])
    return HistoryEntry(
        t=float(row[0]),
        kind=str(row[1]),
        from_phase=MigrationPhase[row[2]],
        to_phase=MigrationPhase[row[3]],
        mode_enabled=bool(row[4]),
        actor=str(row[5]),
        reason=str(row[6]),
        forced=bool(row[7]),
        verdict=verdict,
    )
