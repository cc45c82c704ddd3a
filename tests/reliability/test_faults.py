"""L2 faults in every phase, through the facade: nothing reaches a caller; recovery without restart.

Each fault is real: the files deleted, made immutable (root ignores modes, not `chattr +i`), locked
by another process past the busy timeout, a full tmpfs, pages overwritten with garbage.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sigcache.layered import LayeredSignatureCache
from sigcache.legacy import SignatureCache
from sigcache.phase_store import PhaseStore
from tests.reliability.support import FIGURES, PHASES, layered, make_facade, sig, text

FAULTS = ("deleted", "read_only", "locked", "disk_full", "corrupted")
WRITE_FAULTS = ("read_only", "locked", "disk_full", "corrupted")  # every L2 write fails
OWNER = "alice"
N_PRE, N_DURING, N_POST, L1_SIZE = 40, 40, 20, 64
MAX_BURST_WARNINGS = 3  # one per burst log (L2 reads, L2 writes) plus slack for one more


class Fault:
    """One way for L2 to fail; `inject` and `clear` act on the database files only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def files(self) -> list[Path]:
        return [
            Path(f"{self.path}{s}")
            for s in ("", "-wal", "-shm")
            if Path(f"{self.path}{s}").exists()
        ]

    def inject(self) -> None:
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError


class Deleted(Fault):
    def inject(self) -> None:
        for file in self.files():
            file.unlink()

    def clear(self) -> None:
        """Nothing to undo: the path is free for the cache to recreate."""


class ReadOnly(Fault):
    """`chattr +i` on the database and its WAL: writes through open descriptors fail (EPERM).

    Not on -shm: SQLite maps it, and a store into an immutable mapping is SIGBUS.
    """

    def inject(self) -> None:
        self._marked = [f for f in self.files() if not f.name.endswith("-shm")]
        for file in self._marked:
            done = subprocess.run(["chattr", "+i", str(file)], capture_output=True, check=False)
            if done.returncode != 0:
                self.clear()
                pytest.skip(f"chattr +i not supported here: {done.stderr.decode().strip()}")

    def clear(self) -> None:
        for file in getattr(self, "_marked", []):
            subprocess.run(["chattr", "-i", str(file)], capture_output=True, check=False)


LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("BEGIN EXCLUSIVE")
print("LOCKED", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
conn.close()
"""


class Locked(Fault):
    """Another process holds BEGIN EXCLUSIVE for the whole burst (far past the busy timeout)."""

    child: subprocess.Popen[str] | None = None

    def inject(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.child.stdout is not None
        assert self.child.stdout.readline().strip() == "LOCKED"

    def clear(self) -> None:
        child, self.child = self.child, None
        if child is None:
            return
        assert child.stdin is not None and child.stdout is not None
        with contextlib.suppress(BrokenPipeError):
            child.stdin.write("\n")
            child.stdin.close()
        try:
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()


def checkpoint_truncate(path: Path) -> None:
    """Move every committed page into the database file and empty the WAL (another connection)."""
    conn = sqlite3.connect(path, timeout=10)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "checkpoint blocked"
    finally:
        conn.close()


class DiskFull(Fault):
    """The database lives on a small tmpfs; a filler file takes every free block."""

    def inject(self) -> None:
        checkpoint_truncate(self.path)  # an empty WAL: the next commit needs new blocks
        self.filler = self.path.parent / "filler"
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (65536, 4096, 512):  # down to the last partial block
                with contextlib.suppress(OSError):
                    while os.write(fd, b"\0" * size) == size:
                        pass
        finally:
            os.close(fd)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError, AttributeError):
            self.filler.unlink()


class Corrupted(Fault):
    """Every page but the header page overwritten with 0xA5 (not a valid b-tree page type)."""

    def inject(self) -> None:
        checkpoint_truncate(self.path)
        data = self.path.read_bytes()
        page = int.from_bytes(data[16:18], "big") or 65536
        self.original = data
        assert len(data) > page, "nothing but the header page to corrupt"
        with open(self.path, "r+b") as out:
            out.seek(page)
            out.write(b"\xa5" * (len(data) - page))

    def clear(self) -> None:
        """The operator restores the file (same inode) from its backup."""
        with open(self.path, "r+b") as out:
            out.write(self.original)


FAULT_CLASSES: dict[str, type[Fault]] = {
    "deleted": Deleted,
    "read_only": ReadOnly,
    "locked": Locked,
    "disk_full": DiskFull,
    "corrupted": Corrupted,
}


@contextlib.contextmanager
def fault_directory(fault: str) -> Iterator[Path]:
    """A temporary directory; a 2 MiB tmpfs for the disk-full fault (skips if mount is refused)."""
    with tempfile.TemporaryDirectory(prefix=f"sigcache-{fault}-") as tmp:
        root = Path(tmp)
        if fault != "disk_full":
            yield root
            return
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(root)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"disk-full fault needs `mount -t tmpfs` (root): {done.stderr!r}")
        try:
            yield root
        finally:
            if subprocess.run(["umount", str(root)], check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(root)], check=False)


@dataclass
class Outcome:
    """What one fault scenario observed."""

    exceptions: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)  # answers that broke the phase's rule
    before: dict[str, Any] = field(default_factory=dict)  # new-cache stats before the fault
    during: dict[str, Any] = field(default_factory=dict)  # ... after the burst
    warnings: list[str] = field(default_factory=list)  # sigcache warnings during the burst
    recovered_logs: int = 0
    flush_during: bool | None = None
    flush_after: bool | None = None
    persisted_after: list[bool] = field(default_factory=list)  # post writes seen by a fresh cache
    pre_after: list[bool] = field(default_factory=list)  # pre writes seen by a fresh cache
    answers_after: list[str] = field(default_factory=list)  # wrong answers after recovery
    phase_after: str | None = None  # persisted phase after recovery
    new_built: bool = False


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _stats(facade: Any) -> dict[str, Any]:
    cache = layered(facade)
    return dict(cache.get_stats()) if cache is not None else {}


def _call(outcome: Outcome, what: str, fn: Any, *args: Any) -> Any:
    FIGURES.add("fault_calls")
    try:
        return fn(*args)
    except Exception as exc:  # the point of the test: record, do not stop
        outcome.exceptions.append(f"{what}: {type(exc).__name__}: {exc}")
        return None


def run_scenario(fault_name: str, phase: str) -> Outcome:
    """Pre-fault writes, the fault, a burst of calls, the fault cleared, then recovery checks."""
    outcome = Outcome()
    with fault_directory(fault_name) as root:
        path = root / "l2.db"
        facade = make_facade(path, phase, l1_size=L1_SIZE)
        control = SignatureCache()  # what the legacy cache alone would answer
        fault = FAULT_CLASSES[fault_name](path)
        capture = _Capture()
        logger = logging.getLogger("sigcache")
        try:
            for i in range(N_PRE):
                t, s = text(f"pre {i}", 1500), sig(f"pre {i}")
                facade.cache_signature(t, s, None, OWNER)
                control.set(t, s, None, OWNER)
            cache = layered(facade)
            if cache is not None:
                assert cache.flush(10)
            outcome.before = _stats(facade)
            old_level = logger.level
            logger.addHandler(capture)
            logger.setLevel(logging.DEBUG)
            FIGURES.add("faults_injected")
            fault.inject()
            try:
                _burst(facade, control, phase, outcome)
                if cache is not None:
                    outcome.flush_during = _call(outcome, "flush", cache.flush, 10)
                outcome.during = _stats(facade)
            finally:
                outcome.warnings = [
                    r.getMessage() for r in capture.records if r.levelno >= logging.WARNING
                ]
                capture.records.clear()
                fault.clear()
            _recover(facade, control, phase, outcome, path)
            outcome.recovered_logs = sum("recovered" in r.getMessage() for r in capture.records)
            logger.removeHandler(capture)
            logger.setLevel(old_level)
            outcome.new_built = layered(facade) is not None
        finally:
            fault.clear()
            logger.removeHandler(capture)
            facade.close()
    if not outcome.exceptions:
        FIGURES.add("faults_survived")
    FIGURES.add("fault_log_records", len(outcome.warnings))
    return outcome


def _expected(phase: str, answer: object, legacy: object, tag: str, l1_only: bool) -> str | None:
    """Why `answer` breaks the phase's rule, or None."""
    if phase in ("LEGACY_ONLY", "DUAL_WRITE", "NEW_PREFERRED"):
        return None if answer == legacy else f"{tag}: {answer!r} != legacy {legacy!r}"
    # NEW_ONLY: L1 keeps serving what it holds; anything else may miss, never answer wrongly.
    if l1_only:
        return None if answer == legacy else f"{tag}: L1 did not serve it"
    return None if answer in (None, legacy) else f"{tag}: wrong answer {answer!r}"


def _burst(facade: Any, control: SignatureCache, phase: str, outcome: Outcome) -> None:
    for i in range(N_DURING):
        t, s = text(f"during {i}", 1500), sig(f"during {i}")
        ok = _call(outcome, "cache_signature", facade.cache_signature, t, s, None, OWNER)
        control.set(t, s, None, OWNER)
        if ok is not True:
            outcome.mismatches.append(f"during {i}: write answered {ok!r}")
    # Written entries first (L1 holds all of them), then L2-only entries, then unknown texts.
    reads = [(f"during {i}", True) for i in range(N_DURING)]
    reads += [(f"pre {i}", False) for i in range(N_PRE)]
    reads += [(f"never {i}", False) for i in range(N_DURING)]
    for tag, l1_only in reads:
        t = text(tag, 1500)
        answer = _call(outcome, "get_cached_signature", facade.get_cached_signature, t, OWNER)
        problem = _expected(phase, answer, control.get(t, OWNER), tag, l1_only)
        if problem:
            outcome.mismatches.append(problem)
    # The rest of the surface must not raise either.
    _call(outcome, "tool", facade.cache_tool_signature, "toolu_fault", sig("tool"), OWNER)
    _call(outcome, "tool get", facade.get_tool_signature, "toolu_fault", OWNER)
    _call(outcome, "session", facade.cache_session_signature, "sess", sig("s"), "t", OWNER)
    _call(outcome, "session get", facade.get_session_signature_with_text, "sess", OWNER)
    _call(outcome, "recent", facade.get_recent_signature, 300, None, OWNER)
    _call(outcome, "stats", facade.get_cache_stats)
    _call(outcome, "status", facade.get_migration_status)


def _recover(
    facade: Any, control: SignatureCache, phase: str, outcome: Outcome, path: Path
) -> None:
    for i in range(N_POST):
        t, s = text(f"post {i}", 1500), sig(f"post {i}")
        _call(outcome, "cache_signature", facade.cache_signature, t, s, None, OWNER)
        control.set(t, s, None, OWNER)
    cache = layered(facade)
    if cache is None:
        return
    outcome.flush_after = _call(outcome, "flush", cache.flush, 10)
    for i in range(N_PRE):
        t = text(f"pre {i}", 1500)
        answer = _call(outcome, "get", facade.get_cached_signature, t, OWNER)
        if answer != control.get(t, OWNER) and (phase != "NEW_ONLY" or answer is not None):
            outcome.answers_after.append(f"pre {i}: {answer!r}")
    with LayeredSignatureCache(path) as fresh:  # a restart's view of the file
        outcome.persisted_after = [
            a == sig(f"post {i}")
            for i, a in enumerate(
                fresh.get_many([text(f"post {i}", 1500) for i in range(N_POST)], OWNER)
            )
        ]
        outcome.pre_after = [
            a == sig(f"pre {i}")
            for i, a in enumerate(
                fresh.get_many([text(f"pre {i}", 1500) for i in range(N_PRE)], OWNER)
            )
        ]
    state, _ = PhaseStore(path).load()
    outcome.phase_after = state.phase.name if state else None


_OUTCOMES: dict[tuple[str, str], Outcome] = {}


def outcome_of(fault: str, phase: str) -> Outcome:
    """Each scenario runs once; both tests below judge it."""
    if (fault, phase) not in _OUTCOMES:
        _OUTCOMES[(fault, phase)] = run_scenario(fault, phase)
    return _OUTCOMES[(fault, phase)]


MATRIX = [(f, p) for f in FAULTS for p in PHASES]


@pytest.mark.parametrize(("fault", "phase"), MATRIX, ids=[f"{f}-{p}" for f, p in MATRIX])
def test_fault_never_reaches_the_caller(fault: str, phase: str) -> None:
    """No exception; the phase's answers; failures counted; one warning per burst, not a flood."""
    out = outcome_of(fault, phase)
    assert out.exceptions == []
    assert out.mismatches == []
    if phase == "LEGACY_ONLY":
        assert not out.new_built, "LEGACY_ONLY built the new cache"
        assert not any("[LAYERED_CACHE]" in w for w in out.warnings)
        return
    assert len(out.warnings) <= MAX_BURST_WARNINGS, out.warnings
    if fault in WRITE_FAULTS:
        writes = sum(
            int(out.during[f"{store}_writes"]) - int(out.before[f"{store}_writes"])
            for store in ("main", "tool", "session", "alias")  # alias: tool-id forms (issue 13)
        )
        failed = int(out.during["write_errors"]) - int(out.before["write_errors"])
        assert writes >= N_DURING
        assert failed == writes, "every L2 write lost to the fault is counted"
        assert int(out.during["l2_errors"]) > int(out.before["l2_errors"])
        assert out.flush_during is False, "flush() must not acknowledge writes it lost"
        assert 1 <= sum("[LAYERED_CACHE]" in w and "failing" in w for w in out.warnings) <= 2


@pytest.mark.parametrize(("fault", "phase"), MATRIX, ids=[f"{f}-{p}" for f, p in MATRIX])
def test_fault_recovers_without_restart(fault: str, phase: str) -> None:
    """Once the fault clears, new writes reach the file, old ones read again, the phase holds."""
    out = outcome_of(fault, phase)
    assert out.exceptions == []
    if phase == "LEGACY_ONLY":
        return
    assert out.flush_after is True
    assert all(out.persisted_after), "writes after the fault cleared did not reach the file"
    assert out.answers_after == []
    if fault in WRITE_FAULTS:
        assert all(out.pre_after), "entries flushed before the fault were lost"
        assert out.phase_after == phase, "the persisted phase did not survive the fault"
        assert out.recovered_logs >= 1, "recovery is logged"


def test_l2_unavailable_at_first_use_recovers_without_restart(tmp_path: Path) -> None:
    """The database path is a directory when the new cache is first needed; then it is fixed."""
    from sigcache.facade import CacheFacade
    from sigcache.migration_config import MigrationConfig
    from sigcache.phases import MigrationPhase
    from tests.reliability.support import layered_factory

    path = tmp_path / "l2.db"
    path.mkdir()  # the fault: a directory where the database file belongs
    config = MigrationConfig(
        new_l2_db_path=str(path),
        use_migration_adapter=True,
        initial_phase=MigrationPhase.NEW_ONLY,
    )
    FIGURES.add("faults_injected")
    with CacheFacade(config, new_cache_factory=layered_factory) as facade:
        assert facade.effective_phase is MigrationPhase.NEW_ONLY
        # During the fault: no exception, the legacy contract's False/None.
        assert facade.cache_signature(text("first"), sig("first"), None, OWNER) is False
        assert facade.get_cached_signature(text("first"), OWNER) is None
        FIGURES.add("faults_survived")
        path.rmdir()  # the fault clears
        # The build is retried with backoff (1 s first): recovery within seconds, no restart.
        deadline = time.monotonic() + 10
        while not facade.cache_signature(text("second"), sig("second"), None, OWNER):
            assert time.monotonic() < deadline, "the new cache never came back"
            time.sleep(0.1)
        assert facade.get_cached_signature(text("second"), OWNER) == sig("second")
