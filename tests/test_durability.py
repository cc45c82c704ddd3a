"""Durability: nothing flushed is lost to SIGKILL, exit, or a database deleted under the cache."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sigcache import sqlite as sqlite_module
from sigcache.aio import AsyncLayeredSignatureCache
from sigcache.layered import LayeredSignatureCache
from sigcache.sqlite import SQLiteStore
from sigcache.storage import MAIN, Entry, StorageRecreatedError

N = 300
SIG = "EqQBCkYIBRgCKkD" + "k" * 120

CHILD = textwrap.dedent(
    """
    import sys
    from sigcache.layered import LayeredSignatureCache
    cache = LayeredSignatureCache(sys.argv[1])
    sig = sys.argv[2]
    for i in range(int(sys.argv[3])):
        cache.set(f"flushed {i}", sig, owner_id="child")
    assert cache.flush(timeout=30)
    print("FLUSHED", flush=True)
    i = 0
    while True:  # keep the writer busy until the parent kills us
        cache.set(f"unflushed {i}", sig, owner_id="child")
        i += 1
        if i % 200 == 0:
            cache.flush(timeout=30)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_stream_keeps_every_flushed_entry(tmp_path: Path) -> None:
    path = tmp_path / "durable.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), SIG, str(N)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "FLUSHED"
        time.sleep(0.3)  # let it commit some more batches mid-stream
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with LayeredSignatureCache(path) as cache:
        answers = cache.get_many([f"flushed {i}" for i in range(N)], owner_id="child")
        assert answers == [SIG] * N
        assert cache.get("flushed 0") is None  # owner-strict after a restart too


EXITER = textwrap.dedent(
    """
    import sys
    from sigcache.config import L1Settings, L2Settings, LayeredConfig
    from sigcache.layered import LayeredSignatureCache
    config = LayeredConfig(L1Settings(), L2Settings(batch_interval_ms=60_000))
    cache = LayeredSignatureCache(sys.argv[1], config=config)
    for i in range(50):
        cache.set(f"queued {i}", sys.argv[2])
    # no flush, no close: the atexit hook must commit the queue
    """
)


def test_queued_writes_are_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    path = tmp_path / "exit.db"
    subprocess.run([sys.executable, "-c", EXITER, str(path), SIG], check=True, timeout=60)
    with LayeredSignatureCache(path) as cache:
        assert cache.get_many([f"queued {i}" for i in range(50)]) == [SIG] * 50


def _delete_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def test_deleted_database_is_recreated_and_writes_land_in_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gone.db"
    with LayeredSignatureCache(path) as cache:
        cache.set("before", SIG)
        assert cache.flush(10)
        _delete_database(path)
        cache.set("after", SIG)
        assert cache.flush(10), "the batch is retried into the recreated file"
        stats = cache.get_stats()
        assert stats["l2_errors"] == 1 and stats["write_errors"] == 0
        assert cache.get("after") == SIG
    assert sum("failing" in r.getMessage() for r in caplog.records) == 1
    assert os.stat(path).st_mode & 0o077 == 0
    with LayeredSignatureCache(path) as fresh:  # a restart's view of the file
        assert fresh.get("after") == SIG
        assert fresh.get("before") is None  # deleted with the file


def test_reader_detects_a_replaced_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "IDENTITY_CHECK_INTERVAL_S", 3600.0)
    path = tmp_path / "replaced.db"
    store = SQLiteStore(path)
    try:
        entry = Entry(MAIN, "", "k", SIG, "t", None, None, 1.0, 10.0)
        store.put_many([entry])
        assert store.get(MAIN, "", "k", 2.0) == entry
        _delete_database(path)
        store.verify(force=False)  # within the interval: no stat, the old file still answers
        with pytest.raises(StorageRecreatedError):
            store.verify(force=True)
        assert store.get(MAIN, "", "k", 2.0) is None  # a reader on the recreated file
        store.put_many([entry])
        assert store.get(MAIN, "", "k", 2.0) == entry
    finally:
        store.close()


def test_async_reader_follows_a_recreated_database(tmp_path: Path) -> None:
    path = tmp_path / "async.db"

    async def scenario() -> None:
        async with AsyncLayeredSignatureCache.open(path) as cache:
            assert await cache.aset("kept", SIG)
            assert await cache.aflush(10)
            cache.cache._l1.clear(MAIN)  # force L2 reads
            assert await cache.aget("kept") == SIG
            _delete_database(path)
            assert await cache.aset("new", SIG)
            assert await cache.aflush(10)
            cache.cache._l1.clear(MAIN)
            assert await cache.aget("new") == SIG  # read from the recreated file

    asyncio.run(scenario())
