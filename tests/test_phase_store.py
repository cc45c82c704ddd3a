"""PhaseStore: migration state and history in their own tables of the L2 file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sigcache.errors import StorageError
from sigcache.phase_store import HistoryEntry, PersistedState, PhaseStore
from sigcache.phases import MigrationPhase

P = MigrationPhase


def _entry(t: float, old: MigrationPhase, new: MigrationPhase, **kw: object) -> HistoryEntry:
    return HistoryEntry(t, "phase", old, new, True, "tester", **kw)  # type: ignore[arg-type]


def test_missing_file_reads_as_nothing_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "l2.db"
    store = PhaseStore(path)
    assert store.load() == (None, [])
    assert not path.exists()
    assert not path.parent.exists()


def test_round_trip_survives_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "data" / "l2.db"
    store = PhaseStore(path)
    store.save(
        PersistedState(P.DUAL_WRITE, True, 10.0, "a"), _entry(10.0, P.LEGACY_ONLY, P.DUAL_WRITE)
    )
    verdict = {"outcome": "pass", "rules": [{"name": "mismatch", "measured": 0.0}]}
    store.save(
        PersistedState(P.NEW_PREFERRED, None, 20.0, "b"),
        _entry(20.0, P.DUAL_WRITE, P.NEW_PREFERRED, reason="gate ok", verdict=verdict),
    )
    store.close()
    state, history = PhaseStore(path).load()
    assert state == PersistedState(P.NEW_PREFERRED, None, 20.0, "b")
    assert [h.to_phase for h in history] == [P.DUAL_WRITE, P.NEW_PREFERRED]
    assert history[1].verdict == verdict
    assert history[1].to_dict()["from"] == "DUAL_WRITE"
    assert history[1].to_dict()["reason"] == "gate ok"
    assert history[0].forced is False


def test_own_tables_beside_other_tables(tmp_path: Path) -> None:
    path = tmp_path / "l2.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE signatures (k TEXT PRIMARY KEY, v TEXT)")
        conn.execute("INSERT INTO signatures VALUES ('a', 'b')")
    conn.close()
    store = PhaseStore(path)
    assert store.load() == (None, [])
    store.save(PersistedState(P.NEW_ONLY, False, 1.0, "x"))
    store.close()
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert conn.execute("SELECT v FROM signatures").fetchone() == ("b",)
    conn.close()
    assert {"migration_state", "migration_history", "signatures"} <= tables


def test_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "l2.db"
    path.write_bytes(b"this is not sqlite" * 100)
    store = PhaseStore(path)
    with pytest.raises(StorageError) as info:
        store.load()
    assert str(path) in str(info.value)
    with pytest.raises(StorageError):
        store.save(PersistedState(P.LEGACY_ONLY, None, 1.0, "x"))


def test_unwritable_location_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = PhaseStore(blocker / "l2.db")  # parent is a file
    with pytest.raises(StorageError):
        store.save(PersistedState(P.LEGACY_ONLY, None, 1.0, "x"))
