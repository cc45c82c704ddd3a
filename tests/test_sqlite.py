"""L2 store and batching writer: schema, pragmas, open errors, queries, batches, overflow."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigcache import schema
from sigcache.config import L2Settings
from sigcache.errors import StorageError, StorageOpenError
from sigcache.sqlite import BatchWriter, SQLiteStore
from sigcache.storage import MAIN, SESSION, TOOL, Entry

NOW = 1_000_000.0


def _entry(key: str, written: float = NOW, owner: str = "", store: str = MAIN, **kw: str) -> Entry:
    text = kw.get("text", "text")
    return Entry(store, owner, key, "S" * 60, text, None, None, written, written + 100)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    made = SQLiteStore(tmp_path / "l2.db")
    yield made
    made.close()


def test_schema_is_versioned_idempotent_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "l2.db"
    SQLiteStore(path).close()
    SQLiteStore(path).close()  # a second open changes nothing
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {row[1] for row in conn.execute("PRAGMA index_list(entries)")}
    assert "entries_expires_at" in indexes
    assert "entries_conversation" in indexes
    conn.close()


def test_newer_schema_version_refused(tmp_path: Path) -> None:
    path = tmp_path / "l2.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    conn.close()
    with pytest.raises(StorageOpenError, match="newer"):
        SQLiteStore(path)


def test_migration_path_runs_registered_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    monkeypatch.setitem(schema.MIGRATIONS, 2, ("ALTER TABLE entries ADD COLUMN x TEXT",))
    assert schema.migration_steps(2) == ["ALTER TABLE entries ADD COLUMN x TEXT"]
    assert schema.migration_steps(1)[-1] == "ALTER TABLE entries ADD COLUMN x TEXT"
    assert schema.migration_steps(3) == []


# The version-1 schema exactly as sigcache before issue 13 created it.
_V1_DDL = (
    """CREATE TABLE entries (
        store TEXT NOT NULL, owner TEXT NOT NULL DEFAULT '', key TEXT NOT NULL,
        signature TEXT NOT NULL, text TEXT NOT NULL DEFAULT '', model TEXT,
        conversation_id TEXT, written_at REAL NOT NULL, expires_at REAL NOT NULL,
        UNIQUE (store, owner, key))""",
    "CREATE INDEX entries_expires_at ON entries (expires_at)",
    "CREATE INDEX entries_recent ON entries (store, owner, written_at)",
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version (version) VALUES (1)",
)


def test_a_version_1_file_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        for statement in _V1_DDL:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO entries VALUES ('main', 'o', 'k', ?, 'text', 'claude-x', 'c1', 1.0, 99.0)",
            ("S" * 60,),
        )
    conn.close()
    store = SQLiteStore(path)
    try:
        old = store.get("main", "o", "k", 2.0)
        assert old is not None and old.scope is None and old.model == "claude-x"
        assert store.latest("main", "o", 0.0, 2.0, conversation="c1") == old
        assert store.latest("main", "o", 0.0, 2.0, conversation="c2") is None
        scoped = _entry("k2", 3.0, "o")._replace(scope="acct", conversation_id="c1")
        store.put_many([scoped])
        assert store.get("main", "o", "k2", 4.0) == scoped
        assert store.latest("main", "o", 0.0, 4.0, conversation="c1") == scoped
    finally:
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    conn.close()


def test_a_dropped_table_is_recreated_at_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "l2.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE entries")
    conn.close()
    store = SQLiteStore(path)
    try:
        entry = _entry("id", 1.0, store=TOOL)._replace(scope="acct")
        store.put_many([entry])
        assert store.get(TOOL, "", "id", 2.0) == entry
    finally:
        store.close()


def test_open_errors_name_the_path(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageOpenError, match=r"garbage\.db"):
        SQLiteStore(garbage)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(StorageOpenError, match="a_file"):
        SQLiteStore(blocker / "sub" / "l2.db")  # its directory cannot be created
    with pytest.raises(StorageOpenError, match="does not exist"):
        SQLiteStore(tmp_path / "missing" / "l2.db", L2Settings(create_directory=False))
    with pytest.raises(StorageOpenError, match="file path"):
        SQLiteStore(":memory:")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StorageOpenError, match=r"dir\.db"):
        SQLiteStore(tmp_path / "dir.db")


def test_missing_directory_is_created(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "a" / "b" / "l2.db").close()
    assert (tmp_path / "a" / "b" / "l2.db").exists()


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_files_and_created_directories_are_owner_only(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        store = SQLiteStore(tmp_path / "a" / "b" / "l2.db")
        store.put_many([_entry("k")])
        assert store.get(MAIN, "", "k", NOW) is not None  # a reader: -shm exists
        files = [tmp_path / "a", tmp_path / "a" / "b", *(tmp_path / "a" / "b").iterdir()]
        modes = {f.name: stat.S_IMODE(os.stat(f).st_mode) for f in files}
        store.close()
    finally:
        os.umask(old)
    assert {"l2.db", "l2.db-wal", "l2.db-shm"} <= set(modes)
    assert modes["a"] == modes["b"] == 0o700
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes


def test_existing_shared_database_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    SQLiteStore(path).close()
    os.chmod(path, 0o640)  # shared with a group on purpose: not ours to narrow
    SQLiteStore(path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_put_get_many_delete(store: SQLiteStore) -> None:
    store.put_many([_entry("k1"), _entry("k2"), _entry("k1", owner="o")])
    assert store.get(MAIN, "", "k1", NOW) == _entry("k1")
    assert store.get(MAIN, "x", "k1", NOW) is None
    assert set(store.get_many(MAIN, "", ["k1", "k2", "k3", "k1"], NOW)) == {"k1", "k2"}
    many = [f"m{i}" for i in range(1200)]  # more keys than one query takes
    store.put_many([_entry(k) for k in many])
    assert len(store.get_many(MAIN, "", many, NOW)) == 1200
    assert store.delete(MAIN, None, "k1") == 2  # every owner
    assert store.get(MAIN, "o", "k1", NOW) is None


def test_expiry_cleanup_and_row_bound(store: SQLiteStore) -> None:
    store.put_many([_entry(f"k{i}", written=NOW + i) for i in range(10)])
    assert store.get(MAIN, "", "k0", NOW + 100) is not None  # live while now <= expires_at
    assert store.get(MAIN, "", "k0", NOW + 100.5) is None
    assert store.cleanup(NOW + 101.5, max_rows=5) == 2 + 3  # two expired, three oldest trimmed
    assert store.count_rows() == 5
    assert store.get(MAIN, "", "k9", NOW) is not None


def test_latest_search_scan(store: SQLiteStore) -> None:
    store.put_many(
        [
            _entry("call_abc_1", NOW, store=TOOL, text=""),
            _entry("call_abc_2", NOW + 1, store=TOOL, text=""),
            _entry("s1", NOW, store=SESSION, text=""),
            _entry("s2", NOW - 1, store=SESSION, text="with text"),
        ]
    )
    latest = store.latest(TOOL, "", -1, NOW)
    assert latest is not None and latest.key == "call_abc_2"
    assert store.latest(TOOL, "", NOW + 1, NOW) is None  # written_at must be after `since`
    with_text = store.latest(SESSION, "", -1, NOW, with_text=True)
    assert with_text is not None and with_text.key == "s2"
    found = store.search(TOOL, "", "abc", "call_abc_2", 5, NOW)
    assert [e.key for e in found] == ["call_abc_1"]
    assert store.search(TOOL, "", "a%c", "", 5, NOW) == []  # no LIKE wildcards
    assert [e.key for e in store.scan(NOW)] == ["s2", "call_abc_1", "s1", "call_abc_2"]


def test_lone_surrogates_round_trip(store: SQLiteStore) -> None:
    odd = "surrogate \ud800 tool"
    store.put_many([_entry(odd, store=TOOL, owner="\udfff", text=odd)])
    found = store.get(TOOL, "\udfff", odd, NOW)
    assert found is not None and found.key == odd and found.text == odd


def test_readers_of_exited_threads_are_closed(store: SQLiteStore) -> None:
    store.put_many([_entry("k")])

    def read() -> None:
        assert store.get(MAIN, "", "k", NOW) is not None

    assert store.get(MAIN, "", "k", NOW) is not None
    for _ in range(3):
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    # The main thread's reader and the last thread's; each exited thread's reader was closed
    # when the next one opened.
    assert store.reader_count() == 2
    assert store.get(MAIN, "", "k", NOW) is not None  # the main thread's reader still works


def test_mmap_and_cache_size_pragmas_are_applied(tmp_path: Path) -> None:
    settings = L2Settings(cache_size_kib=1_024, mmap_size_bytes=1 << 20)
    made = SQLiteStore(tmp_path / "l2.db", settings)
    conn = made._reader()
    assert conn.execute("PRAGMA cache_size").fetchone()[0] == -1_024
    assert conn.execute("PRAGMA mmap_size").fetchone()[0] == 1 << 20
    made.close()


def test_readers_never_write(store: SQLiteStore) -> None:
    conn = store._reader()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM entries")


def test_closed_store_raises_storage_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "l2.db")
    store.close()
    with pytest.raises(StorageError):
        store.get(MAIN, "", "k", NOW)


def test_writer_batches_and_flushes(store: SQLiteStore) -> None:
    writer = BatchWriter(store, L2Settings(batch_size=50, batch_interval_ms=10_000))
    for i in range(120):
        assert writer.put(_entry(f"k{i}"))
    assert writer.lookup(MAIN, "", "k119") in ((True, _entry("k119")), (False, None))
    assert writer.flush(timeout=10)
    assert writer.counts["writes_batched"] == 120
    assert writer.counts["batches"] >= 3
    assert store.count_rows() == 120
    assert writer.lookup(MAIN, "", "k1") == (False, None)
    assert writer.close(timeout=10)
    assert writer.put(_entry("late")) is False  # refused after close, counted
    assert writer.counts["dropped_writes"] == 1


def test_writer_overflow_drops_and_counts(store: SQLiteStore) -> None:
    # Deterministic: the writer thread is parked inside an admin call before any put is
    # queued, so the queue holds exactly what this test puts (it used to race the writer).
    running, gate = threading.Event(), threading.Event()

    def park(_: object) -> None:
        running.set()
        gate.wait(10)

    writer = BatchWriter(store, L2Settings(max_pending=5, batch_interval_ms=0))
    assert writer.call(park, timeout=0) is None  # returns at once; the writer runs park
    assert running.wait(10)
    results = [writer.put(_entry(f"k{i}")) for i in range(10)]
    assert results == [True] * 5 + [False] * 5
    assert writer.counts["dropped_writes"] == 5
    assert writer.delete(MAIN, "", "k0") is True  # deletes are never dropped, even when full
    assert writer.depth() == 1 + 5 + 1
    gate.set()
    assert writer.flush(timeout=10)
    assert store.get(MAIN, "", "k0", NOW) is None
    assert store.get(MAIN, "", "k4", NOW) is not None
    assert store.get(MAIN, "", "k5", NOW) is None  # dropped
    writer.close(timeout=10)


def test_writer_call_runs_in_queue_order(store: SQLiteStore) -> None:
    writer = BatchWriter(store, L2Settings(batch_interval_ms=10_000))
    writer.put(_entry("k1"))
    done = writer.call(lambda s: s.count_rows(), timeout=10)  # type: ignore[attr-defined]
    assert done is not None and done.result == 1
    writer.close(timeout=10)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_store_and_writer_reopen_after_fork(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "l2.db")
    writer = BatchWriter(store, L2Settings(batch_interval_ms=1))
    writer.put(_entry("parent"))
    assert writer.flush(timeout=10)
    assert store.get(MAIN, "", "parent", NOW) is not None  # parent has a reader connection
    pid = os.fork()
    if pid == 0:  # child: new connections, a new writer thread
        ok = store.get(MAIN, "", "parent", NOW) is not None
        ok = ok and writer.put(_entry("child")) and writer.flush(timeout=10)
        ok = ok and store.get(MAIN, "", "child", NOW) is not None
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get(MAIN, "", "child", NOW) is not None
    writer.close(timeout=10)
    store.close()


@pytest.mark.parametrize(("setting", "level"), [("NORMAL", 1), ("OFF", 0)])
def test_writer_synchronous_follows_the_settings(tmp_path: Path, setting: str, level: int) -> None:
    made = SQLiteStore(tmp_path / "l2.db", L2Settings(synchronous=setting))
    try:
        assert made._writer is not None
        assert made._writer.execute("PRAGMA synchronous").fetchone()[0] == level
    finally:
        made.close()


def test_synchronous_is_checked() -> None:
    from sigcache.config import LayeredConfig
    from sigcache.errors import ConfigError

    assert L2Settings().synchronous == "NORMAL"  # the production default stays durable
    with pytest.raises(ConfigError, match="synchronous"):
        LayeredConfig(l2=L2Settings(synchronous="SOMETIMES"))


def test_replay_stacks_do_not_sync_their_throwaway_l2(tmp_path: Path) -> None:
    from harness.replayer import VirtualClock
    from harness.run_state import build_stack
    from sigcache.layered import LayeredSignatureCache
    from sigcache.phases import MigrationPhase

    with build_stack(MigrationPhase.NEW_ONLY, tmp_path, VirtualClock(), None) as stack:
        cache = stack.facade.new_cache(build=True)
        assert isinstance(cache, LayeredSignatureCache)
        assert cache._config.l2.synchronous == "OFF"
