"""SIGKILL of a serving process under write load: a sound file, every flushed write, the phase."""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sigcache.layered import LayeredSignatureCache
from sigcache.phase_store import PhaseStore
from tests.reliability.support import FIGURES, sig, text

# The child serves the module API (sigcache.signature_cache) with migration mode from the
# environment, writes without pause, flushes every FLUSH_EVERY writes and reports each flush
# point it saw acknowledged, and moves between NEW_PREFERRED and NEW_ONLY now and then.
CHILD = textwrap.dedent(
    """
    import sys
    from sigcache import signature_cache as sc
    from tests.reliability.support import sig, text

    round_no, flush_every = int(sys.argv[1]), int(sys.argv[2])
    facade = sc.get_cache_facade()
    phases = ["NEW_PREFERRED", "NEW_ONLY"]
    print("READY", facade.phase.name, flush=True)
    i = 0
    while True:
        tag = f"r{round_no} w{i}"
        assert sc.cache_signature(text(tag), sig(tag), None, "crash-owner")
        i += 1
        if i % flush_every == 0:
            if facade.new_cache().flush(timeout=30):
                print("FLUSHED", i, flush=True)
        if i % (flush_every * 7) == 0:
            target = phases[(i // (flush_every * 7)) % 2]
            print("PHASE-BEGIN", target, flush=True)
            sc.set_migration_phase(target, actor="crash", force=True)
            print("PHASE", target, flush=True)
    """
)
FLUSH_EVERY = 25
ROUNDS = int(os.environ.get("SIGCACHE_CRASH_ROUNDS", "4"))
SOAK_ROUNDS = int(os.environ.get("SIGCACHE_SOAK_CRASH_ROUNDS", "60"))


def _env(path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CACHE_USE_MIGRATION_ADAPTER": "1",
            "CACHE_MIGRATION_PHASE": "NEW_PREFERRED",  # a new database starts here
            "CACHE_NEW_L2_DB_PATH": str(path),
            "PYTHONPATH": os.pathsep.join([str(Path.cwd()), *sys.path]),
        }
    )
    env.pop("SIGCACHE_RECORD", None)
    return env


def _one_round(path: Path, round_no: int, rng: random.Random) -> tuple[int, set[str], str]:
    """Run a child, kill it at a random moment; (flushed count, allowed phases, phase at start)."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(round_no), str(FLUSH_EVERY)],
        stdout=subprocess.PIPE,
        env=_env(path),
        text=True,
        bufsize=1,
    )
    assert child.stdout is not None
    flushed, phase_acked, phase_pending = 0, "", ""
    try:
        ready = child.stdout.readline().split()
        assert ready[:1] == ["READY"], ready
        phase_acked = ready[1]
        deadline = time.monotonic() + rng.uniform(0.05, 0.8)
        fd = child.stdout.fileno()
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                continue
            line = child.stdout.readline().split()
            if not line:
                break
            if line[0] == "FLUSHED":
                flushed = int(line[1])
            elif line[0] == "PHASE-BEGIN":
                phase_pending = line[1]
            elif line[0] == "PHASE":
                phase_acked, phase_pending = line[1], ""
        os.kill(child.pid, signal.SIGKILL)
        # Lines already written before the kill are acknowledgements too.
        for rest in child.stdout.read().splitlines():
            parts = rest.split()
            if parts and parts[0] == "FLUSHED":
                flushed = int(parts[1])
            elif parts and parts[0] == "PHASE-BEGIN":
                phase_pending = parts[1]
            elif parts and parts[0] == "PHASE":
                phase_acked, phase_pending = parts[1], ""
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    return flushed, {phase_acked, phase_pending} - {""}, ready[1]


def _check(path: Path, acked: dict[int, int], allowed: set[str]) -> None:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    state, history = PhaseStore(path).load()
    assert state is not None and state.phase.name in allowed, (state, allowed)
    assert history and history[-1].to_phase == state.phase
    with LayeredSignatureCache(path) as cache:
        for round_no, count in acked.items():
            tags = [f"r{round_no} w{i}" for i in range(count)]
            found = cache.get_many([text(t) for t in tags], "crash-owner")
            missing = [t for t, f in zip(tags, found, strict=True) if f != sig(t)]
            assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
            FIGURES.add("crash_acked_writes", count)


def _crash_rounds(path: Path, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    acked: dict[int, int] = {}
    previous: set[str] | None = None
    for round_no in range(rounds):
        flushed, allowed, started_in = _one_round(path, round_no, rng)
        if previous is not None:
            assert started_in in previous, "the restarted process did not resume the phase"
        acked[round_no] = flushed
        _check(path, acked, allowed)
        previous = allowed
        FIGURES.add("crash_rounds")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_rounds_lose_no_flushed_write(tmp_path: Path) -> None:
    """A few rounds of kill -9 at random moments on one database file."""
    _crash_rounds(tmp_path / "crash.db", ROUNDS, seed=9)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_soak(tmp_path: Path) -> None:
    """Many rounds (soak only)."""
    _crash_rounds(tmp_path / "soak.db", SOAK_ROUNDS, seed=int(time.time()))
