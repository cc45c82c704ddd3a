"""Shared migration state: versioned backends, the poller, and four worker processes."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigcache.errors import ConfigError
from sigcache.facade import CacheFacade
from sigcache.migration_config import MigrationConfig
from sigcache.phase_state import RedisPhaseState, SharedState, SQLitePhaseState
from sigcache.phase_store import HistoryEntry, PersistedState, PhaseStore
from sigcache.phase_sync import (
    PhaseSync,
    attach_phase_sync,
    interval_from_env,
    phase_backend_from_env,
)
from sigcache.phases import MigrationPhase
from tests.phase_workers import WorkerPool
from tests.redis_server import RedisServer, redis_server, requires_redis

P = MigrationPhase
_prefixes = itertools.count()
INTERVAL = 0.1  # the poll interval of the process tests
BOUND = INTERVAL + 0.4  # interval + margin (spawned processes on a loaded CI machine)


def _entry(to: MigrationPhase, actor: str = "t") -> HistoryEntry:
    return HistoryEntry(1.0, "phase", P.LEGACY_ONLY, to, True, actor, "why", True, {"v": 1})


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


def test_sqlite_version_moves_with_a_plain_phase_store_save(tmp_path: Path) -> None:
    shared = SQLitePhaseState(tmp_path / "l2.db")
    assert shared.version() == 0 and shared.snapshot().state is None
    plain = PhaseStore(tmp_path / "l2.db")  # a process that knows nothing of versions
    plain.save(PersistedState(P.DUAL_WRITE, True, 2.0, "a"), _entry(P.DUAL_WRITE))
    assert shared.version() == 1
    shared.save(PersistedState(P.NEW_PREFERRED, None, 3.0, "b"))
    snap = shared.snapshot()
    assert snap.version == 2 and snap.state is not None and snap.state.phase is P.NEW_PREFERRED
    assert [e.to_phase for e in snap.history] == [P.DUAL_WRITE]
    plain.close()
    shared.close()


@requires_redis
def test_redis_state_round_trips(server: RedisServer) -> None:
    shared = RedisPhaseState(server.url, prefix=f"p{next(_prefixes)}")
    assert shared.version() == 0 and shared.load() == (None, [])
    state = PersistedState(P.DUAL_WRITE, False, 2.5, "ops")
    shared.save(state, _entry(P.DUAL_WRITE))
    shared.save(state)
    assert shared.version() == 2
    assert shared.load() == (state, [_entry(P.DUAL_WRITE)])
    shared.close()


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[SharedState] = []

    def __call__(self, state: SharedState) -> None:
        self.seen.append(state)


def test_poller_applies_new_versions_only_and_survives_failures(tmp_path: Path) -> None:
    shared = SQLitePhaseState(tmp_path / "l2.db")
    recorder = _Recorder()
    sync = PhaseSync(shared, recorder, interval=0.05)
    assert sync.poll_once() and not sync.poll_once()  # version 0 applied once
    shared.save(PersistedState(P.DUAL_WRITE, True, 1.0, "a"))
    assert sync.poll_once() and sync.status()["version"] == 1
    broken = PhaseSync(RedisPhaseState("redis://127.0.0.1:1/0", timeout=0.05), recorder)
    assert broken.poll_once() is False  # counted, never raised
    assert broken.status()["errors"] == 1 and broken.status()["last_error"]
    sync.start()
    shared.save(PersistedState(P.NEW_PREFERRED, True, 2.0, "a"))
    deadline = time.monotonic() + 2
    while sync.version != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sync.status()["in_sync"] and sync.running
    sync.stop()
    assert not sync.running
    assert [s.version for s in recorder.seen] == [0, 1, 2]
    shared.close()


def test_two_facades_in_one_process_follow_each_other(tmp_path: Path) -> None:
    db = str(tmp_path / "l2.db")
    a, b = (CacheFacade(MigrationConfig(new_l2_db_path=db)) for _ in range(2))
    sync_a = attach_phase_sync(a, SQLitePhaseState(db), interval=60)
    sync_b = attach_phase_sync(b, SQLitePhaseState(db), interval=60)
    a.enable_migration_mode()
    a.set_migration_phase("DUAL_WRITE", force=True)
    assert sync_b.poll_once()
    assert b.is_migration_mode_enabled() and b.effective_phase is P.DUAL_WRITE
    assert len(b.get_migration_history()) == 2  # the audit history is shared too
    assert sync_a.poll_once() and a.effective_phase is P.DUAL_WRITE  # its own change: no-op
    b.disable_migration_mode()
    assert sync_a.poll_once() and not a.is_migration_mode_enabled()
    sync_b.poll_once()
    assert sync_a.version == sync_b.version
    for sync, facade in ((sync_a, a), (sync_b, b)):
        sync.stop()
        facade.close()


def test_env_selection(tmp_path: Path) -> None:
    db = str(tmp_path / "l2.db")
    assert isinstance(phase_backend_from_env({}, db), SQLitePhaseState)
    redis_backend = phase_backend_from_env({"CACHE_NEW_L2_URL": "redis://127.0.0.1:1/0"}, db)
    assert isinstance(redis_backend, RedisPhaseState)
    with pytest.raises(ConfigError):
        phase_backend_from_env({"CACHE_NEW_L2_URL": "http://x"}, db)
    assert interval_from_env({}) == 1.0 and interval_from_env({"CACHE_PHASE_SYNC_INTERVAL": "0.2"})
    with pytest.raises(ConfigError):
        interval_from_env({"CACHE_PHASE_SYNC_INTERVAL": "0"})


def _propagation(pool: WorkerPool) -> None:
    """Promote through worker 0, disable through worker 2: all four follow within BOUND."""
    _, changed_at = pool.call(0, "promote", "DUAL_WRITE")
    seen = pool.wait_all(lambda s: s[0] == "DUAL_WRITE" and s[1])
    assert max(seen.values()) - changed_at < BOUND, seen
    _, disabled_at = pool.call(2, "disable")
    seen = pool.wait_all(lambda s: s[0] == "LEGACY_ONLY" and not s[1])
    assert max(seen.values()) - disabled_at < BOUND, seen


def _shared_write(pool: WorkerPool) -> None:
    """In DUAL_WRITE a write of worker 1, flushed, is served to the others (new-cache fallback)."""
    pool.call(0, "promote", "DUAL_WRITE")
    pool.wait_all(lambda s: s[0] == "DUAL_WRITE" and s[1])
    assert pool.call(1, "write", "a shared thought " * 4, "S" * 80)[0] is True
    for worker in (0, 2, 3):
        assert pool.call(worker, "read", "a shared thought " * 4)[0] == "S" * 80


def test_four_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    with WorkerPool("sqlite", "", tmp_path, INTERVAL) as pool:
        _propagation(pool)
        _shared_write(pool)


@requires_redis
def test_four_processes_share_one_redis(tmp_path: Path) -> None:
    with redis_server() as server, WorkerPool("redis", server.url, tmp_path, INTERVAL) as pool:
        _propagation(pool)
        _shared_write(pool)
