"""Concurrency: many threads on one cache, and two processes on one file."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

from sigcache.config import L1Settings, L2Settings, LayeredConfig
from sigcache.layered import LayeredSignatureCache

SIG = "EqQBCkYIBRgCKkD" + "t" * 80
THREADS = 8
OPS = 300


def test_many_threads_mixing_reads_and_writes(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    config = LayeredConfig(L1Settings(max_entries=200), L2Settings(batch_size=64))
    errors: list[BaseException] = []
    gets = [0] * THREADS
    written: list[set[str]] = [set() for _ in range(THREADS)]

    def worker(n: int, cache: LayeredSignatureCache) -> None:
        rng = random.Random(n)
        try:
            for i in range(OPS):
                choice = rng.random()
                if choice < 0.4:
                    text = f"w{n} t{i}"
                    assert cache.set(text, SIG, owner_id=f"o{n % 3}")
                    written[n].add(text)
                elif choice < 0.9:
                    gets[n] += 1
                    cache.get(f"w{rng.randrange(THREADS)} t{rng.randrange(OPS)}", f"o{n % 3}")
                else:
                    cache.get_last_signature(f"o{n % 3}")
                    cache.cache_tool_signature(f"toolu_{n}_{i}", SIG)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    with LayeredSignatureCache(path, config=config) as cache:
        threads = [threading.Thread(target=worker, args=(n, cache)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert cache.flush(timeout=30)
        stats: dict[str, Any] = cache.get_stats()
        assert stats["main_hits"] + stats["main_misses"] == sum(gets)
        assert stats["l1_hits"] + stats["pending_hits"] + stats["l2_hits"] == stats["hits"]
        assert stats["dropped_writes"] == 0 and stats["write_errors"] == 0
        assert stats["l2_queue_depth"] == 0
    with LayeredSignatureCache(path) as reopened:
        for n in range(THREADS):
            texts = sorted(written[n])
            assert reopened.get_many(texts, owner_id=f"o{n % 3}") == [SIG] * len(texts)


WRITER = textwrap.dedent(
    """
    import sys
    from sigcache.layered import LayeredSignatureCache
    path, owner, count, sig = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with LayeredSignatureCache(path) as cache:
        for i in range(count):
            assert cache.set(f"text {i}", sig, owner_id=owner)
            cache.get(f"text {i // 2}", owner)
        assert cache.flush(timeout=60)
        stats = cache.get_stats()
        assert stats["write_errors"] == 0 and stats["dropped_writes"] == 0, stats
    """
)


def test_two_processes_on_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    LayeredSignatureCache(path).close()  # create the schema once, up front
    count = 400
    children = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), owner, str(count), SIG])
        for owner in ("p1", "p2")
    ]
    assert [child.wait(timeout=120) for child in children] == [0, 0]
    with LayeredSignatureCache(path) as cache:
        for owner in ("p1", "p2"):
            texts = [f"text {i}" for i in range(count)]
            assert cache.get_many(texts, owner_id=owner) == [SIG] * count
        assert cache.get_stats()["l2_rows"] == 2 * count
