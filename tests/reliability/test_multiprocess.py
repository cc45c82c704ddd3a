"""Several worker processes share one L2 file, as a proxy's workers do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.reliability.support import FIGURES, SOAK

# Each worker: the module API in NEW_ONLY on the shared file. Phase 1 writes its own entries and
# flushes; phase 2 (after every worker flushed) reads everyone's while it keeps writing.
WORKER = textwrap.dedent(
    """
    import json, sys
    from sigcache import signature_cache as sc
    from tests.reliability.support import sig, text

    me, workers, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    errors, wrong, served = [], 0, 0

    def call(fn, *args):
        try:
            return fn(*args)
        except Exception as exc:  # must never happen: reported to the parent
            errors.append(f"{type(exc).__name__}: {exc}")
            return None

    for i in range(n):
        tag = f"worker {me} entry {i}"
        call(sc.cache_signature, text(tag), sig(tag), None, "team")
    flushed = sc.get_cache_facade().new_cache().flush(timeout=30)
    print(json.dumps({"flushed": flushed}), flush=True)
    sys.stdin.readline()  # every worker has flushed
    for other in range(workers):
        for i in range(n):
            tag = f"worker {other} entry {i}"
            answer = call(sc.get_cached_signature, text(tag), "team")
            served += answer is not None
            wrong += answer != sig(tag)
            extra = f"worker {me} more {other} {i}"  # writes keep contending for the lock
            call(sc.cache_signature, text(extra), sig(extra), None, "team")
    print(json.dumps({"errors": errors, "wrong": wrong, "served": served}), flush=True)
    sc.reset_signature_cache()
    """
)


def test_workers_share_one_file_without_lock_errors(tmp_path: Path) -> None:
    workers, n = (6, 1500) if SOAK else (3, 150)
    env = dict(os.environ)
    env.update(
        {
            "CACHE_USE_MIGRATION_ADAPTER": "1",
            "CACHE_MIGRATION_PHASE": "NEW_ONLY",
            "CACHE_NEW_L2_DB_PATH": str(tmp_path / "shared.db"),
            "PYTHONPATH": os.pathsep.join([str(Path.cwd()), *sys.path]),
        }
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(me), str(workers), str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for me in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert json.loads(line) == {"flushed": True}, line
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            assert "database is locked" not in err
            reports.append(json.loads(out.splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for report in reports:
        assert report["errors"] == []
        assert report["wrong"] == 0, "a write flushed by one worker was not served to another"
        assert report["served"] == workers * n
        FIGURES.add("multiprocess_reads", report["served"])
