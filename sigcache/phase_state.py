"""Shared, versioned migration state (phase, mode, audit history) for many processes and hosts.

Two backends with `PhaseStore`'s interface (`path`, `load`, `save`, `close`), so a facade's
`MigrationControl` persists through either, plus a cheap `version()` poll and a `snapshot()`:

- `SQLitePhaseState`: the L2 file's own tables (`sigcache.phase_store`), plus one version row
  that triggers bump inside every save's transaction, so a save through a plain `PhaseStore`
  by a process that knows nothing of versions still moves it.
- `RedisPhaseState`: a hash, a history list and a version counter, written in one MULTI/EXEC;
  each save also PUBLISHes the new version on `{prefix}:phase:changed` for whoever listens.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from sigcache.errors import StorageError, translate_sqlite_error
from sigcache.phase_store import SCHEMA as PHASE_TABLES  # the tables PhaseStore creates
from sigcache.phase_store import HistoryEntry, PersistedState, PhaseStore
from sigcache.phases import MigrationPhase
from sigcache.redis_store import redacted_url

__all__ = ["PhaseStateBackend", "RedisPhaseState", "SQLitePhaseState", "SharedState"]

_VERSION_DDL = (
    """CREATE TABLE IF NOT EXISTS migration_state_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )""",
    "INSERT OR IGNORE INTO migration_state_version (id, version) VALUES (1, 0)",
    # INSERT OR REPLACE (PhaseStore.save) fires the insert trigger; UPDATE for other writers.
    """CREATE TRIGGER IF NOT EXISTS migration_state_version_ins AFTER INSERT ON migration_state
    BEGIN UPDATE migration_state_version SET version = version + 1 WHERE id = 1; END""",
    """CREATE TRIGGER IF NOT EXISTS migration_state_version_upd AFTER UPDATE ON migration_state
    BEGIN UPDATE migration_state_version SET version = version + 1 WHERE id = 1; END""",
)


@dataclass(frozen=True, slots=True)
class SharedState:
    """One version of the shared migration state."""

    version: int
    state: PersistedState | None  # None: nothing persisted yet
    history: tuple[HistoryEntry, ...]


class PhaseStateBackend(Protocol):
    """Where the shared state lives; `PhaseStore`'s interface plus versioning."""

    path: str

    def load(self) -> tuple[PersistedState | None, list[HistoryEntry]]:
        """The state and history (as `PhaseStore.load`)."""
        ...

    def save(self, state: PersistedState, entry: HistoryEntry | None = None) -> None:
        """Replace the state, append the entry, bump the version: one transaction."""
        ...

    def version(self) -> int:
        """The current version (cheap: polled every interval); 0 = never saved."""
        ...

    def snapshot(self) -> SharedState:
        """Version, state and history, consistent with each other."""
        ...

    def close(self) -> None:
        """Release connections (a later call reopens them)."""
        ...


class SQLitePhaseState:
    """The shared state in the L2 SQLite file (every process on one host)."""

    def __init__(self, path: str | Path, *, timeout: float = 5.0) -> None:
        self.path = str(path)
        self._store = PhaseStore(self.path, timeout=timeout)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._connect()  # the triggers must exist before anyone's next save

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=self._timeout, check_same_thread=False)
                try:
                    with conn:
                        for statement in (*PHASE_TABLES, *_VERSION_DDL):
                            conn.execute(statement)
                except sqlite3.Error:
                    conn.close()
                    raise
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc, self.path, "opening shared state in") from exc
            except OSError as exc:
                raise StorageError(
                    f"opening shared state in {self.path!r}: {exc}", self.path
                ) from exc
            self._conn = conn
        return self._conn

    def load(self) -> tuple[PersistedState | None, list[HistoryEntry]]:
        """The state and history."""
        return self._store.load()

    def save(self, state: PersistedState, entry: HistoryEntry | None = None) -> None:
        """Save through `PhaseStore`; the triggers bump the version in its transaction."""
        self._store.save(state, entry)

    def version(self) -> int:
        """One indexed row read."""
        with self._lock:
            try:
                row = (
                    self._connect()
                    .execute("SELECT version FROM migration_state_version WHERE id = 1")
                    .fetchone()
                )
            except sqlite3.Error as exc:
                raise translate_sqlite_error(
                    exc, self.path, "reading the state version of"
                ) from exc
        return 0 if row is None else int(row[0])

    def snapshot(self) -> SharedState:
        """Version, state and history; re-read when a save slipped in between."""
        while True:
            before = self.version()
            state, history = self._store.load()
            if self.version() == before:
                return SharedState(before, state, tuple(history))

    def close(self) -> None:
        """Close both connections."""
        self._store.close()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class RedisPhaseState:
    """The shared state in Redis (every process on every host sharing that Redis)."""

    def __init__(self, url: str, *, prefix: str = "sigcache", timeout: float = 1.0) -> None:
        self.path = redacted_url(url)
        self._client: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),  # one retry: a pooled connection a restart broke
            decode_responses=False,
        )
        base = f"{prefix}:phase"
        self._state, self._history = f"{base}:state", f"{base}:history"
        self._version, self.channel = f"{base}:version", f"{base}:changed"

    def _fail(self, exc: Exception, action: str) -> StorageError:
        return StorageError(f"{action} {self.path!r}: {type(exc).__name__}: {exc}", self.path)

    def load(self) -> tuple[PersistedState | None, list[HistoryEntry]]:
        """The state and history."""
        shared = self.snapshot()
        return shared.state, list(shared.history)

    def save(self, state: PersistedState, entry: HistoryEntry | None = None) -> None:
        """HSET + RPUSH + INCR in one MULTI/EXEC, then PUBLISH the new version."""
        fields = {
            "phase": int(state.phase),
            "mode_override": "" if state.mode_override is None else int(state.mode_override),
            "updated_at": repr(state.updated_at),
            "actor": state.actor,
        }
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(self._state, mapping=fields)  # type: ignore[arg-type]
            if entry is not None:
                pipe.rpush(self._history, json.dumps(entry.to_dict(), default=str))
            pipe.incr(self._version)
            version = pipe.execute()[-1]
            self._client.publish(self.channel, version)
        except RedisError as exc:
            raise self._fail(exc, "saving migration state to") from exc

    def version(self) -> int:
        """One GET."""
        try:
            raw = self._client.get(self._version)
        except RedisError as exc:
            raise self._fail(exc, "reading the state version of") from exc
        return int(raw) if raw is not None else 0

    def snapshot(self) -> SharedState:
        """Version, state and history read in one MULTI/EXEC (consistent)."""
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.get(self._version)
            pipe.hgetall(self._state)
            pipe.lrange(self._history, 0, -1)
            raw_version, fields, items = pipe.execute()
        except RedisError as exc:
            raise self._fail(exc, "reading migration state from") from exc
        version = int(raw_version) if raw_version is not None else 0
        state = _state_of({k.decode(): v.decode() for k, v in fields.items()}) if fields else None
        return SharedState(version, state, tuple(_history_of(json.loads(i)) for i in items))

    def close(self) -> None:
        """Close this process's connections."""
        self._client.close()


def _state_of(fields: dict[str, str]) -> PersistedState:
    override = None if fields["mode_override"] == "" else bool(int(fields["mode_override"]))
    phase = MigrationPhase(int(fields["phase"]))
    return PersistedState(phase, override, float(fields["updated_at"]), fields["actor"])


def _history_of(item: dict[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        t=float(item["t"]),
        kind=str(item["kind"]),
        from_phase=MigrationPhase[item["from"]],
        to_phase=MigrationPhase[item["to"]],
        mode_enabled=bool(item["mode_enabled"]),
        actor=str(item["actor"]),
        reason=str(item["reason"]),
        forced=bool(item["forced"]),
        verdict=item["verdict"],
    )
