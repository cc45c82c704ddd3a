"""Durability: a writer killed with SIGKILL loses nothing it flushed and leaves a sound file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sigcache.layered import LayeredSignatureCache

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
