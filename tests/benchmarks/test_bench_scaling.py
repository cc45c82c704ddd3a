"""Scaling: L1 and L2 hit latency as the number of entries grows (it should stay flat).

L1 is measured against a bare cachetools TTLCache under a lock holding the same entries, probed
with the same random keys: both pay the CPU caches' misses once the entries outgrow them.

L2 is measured with two bare sqlite3 baselines at every size, probed with the same random keys:
the store's own SELECT on the same file (what SQLite alone costs for that exact look-up; the
per-size baseline) and a hand-written key -> signature table holding the same rows. If the
store's hit grows no faster than the bare SELECT, the growth is SQLite's, not sigcache's.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cachetools
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from sigcache import schema
from sigcache.config import L1Settings
from sigcache.keys import text_digest
from sigcache.memory import L1Key, MemoryTier
from sigcache.sqlite import SQLiteStore
from sigcache.storage import MAIN, Entry

from .conftest import BARE_SELECT, MODEL, Corpus, connect, cycle, describe

L1_SIZES = (1_000, 10_000, 100_000)
L2_SIZES = (1_000, 10_000, 100_000, 1_000_000)
PROBES = 4_096  # random existing keys read round-robin: every read is a hit, none stays hot
TEXT_LENGTH = 512  # scaling rows keep texts short so 10^6 rows build in seconds
CHUNK = 100_000  # rows per executemany transaction while populating
# The build runs with a large page cache (random-key inserts into a 2 GB file thrash 8 MiB) and
# no journal (a throwaway file: writing every page twice, WAL then checkpoint, doubled the
# build time); the files are switched to WAL before the benched connections, which keep
# sigcache's default settings, open them.
BUILD_PRAGMAS = ("PRAGMA cache_size=-262144", "PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF")

L2_GROUP = "scaling: L2 hit"
OURS = "L2 SQLiteStore"
BARE_SAME = "bare SELECT, same file and SQL"
BARE_KV = "bare sqlite3 PK table"
# The bare table of the L2 groups plus the text column, so its rows (and file) have the sizes
# of the store's rows; BARE_SELECT reads the signature only, as a hand-written cache would.
BARE_KV_DDL = "CREATE TABLE kv (key TEXT PRIMARY KEY, signature TEXT NOT NULL, text TEXT NOT NULL)"
COPY_TO_KV = "INSERT INTO kv (key, signature, text) SELECT key, signature, text FROM l2.entries"


def _texts(corpus: Corpus, count: int) -> Iterator[str]:
    body = corpus.text("2KB", 0)[: TEXT_LENGTH - 12]
    return (f"[{index:09d}] {body}" for index in range(count))


def _probes(count: int) -> list[int]:
    return random.Random(count).sample(range(count), min(PROBES, count))


L1_GROUP = "scaling: L1 hit"
L1_OURS = "L1 tier"
L1_BARE = "cachetools TTLCache + Lock"


@dataclass
class L1Caches:
    """n entries in an L1 tier and in a bare cachetools TTLCache, and the keys both probe."""

    count: int
    tier: MemoryTier
    bare: cachetools.TTLCache[L1Key, Entry]
    keys: list[L1Key]


@pytest.fixture(scope="module", params=L1_SIZES, ids=lambda n: f"{n:.0e}")
def l1_caches(request: pytest.FixtureRequest, corpus: Corpus) -> L1Caches:
    """A tier and a bare TTLCache sized to hold n entries, holding the same n."""
    count: int = request.param
    tier = MemoryTier(L1Settings(max_entries=count), time.time)
    bare: cachetools.TTLCache[L1Key, Entry] = cachetools.TTLCache(count, 3_600, timer=time.time)
    now = time.time()
    keys: list[L1Key] = []
    for index, text in enumerate(_texts(corpus, count)):
        key: L1Key = (MAIN, "", text)
        entry = Entry(MAIN, "", "", corpus.signature(index), text, MODEL, None, now, now + 3_600)
        tier.put(key, entry, now + 3_600)
        bare[key] = entry
        keys.append(key)
    return L1Caches(count, tier, bare, [keys[i] for i in _probes(count)])


def _describe_sized(
    benchmark: BenchmarkFixture, group: str, series: str, baseline: str, count: int, unit: str
) -> None:
    # One group for every size: `series` + `entries` make bench_report tabulate each size
    # against the baseline series at that size, and each series' growth from the smallest.
    describe(
        benchmark,
        group,
        f"{series}, {count:,} {unit}",
        baseline=series == baseline,
        entries=count,
        series=series,
    )


def _describe_l1(benchmark: BenchmarkFixture, caches: L1Caches, series: str) -> None:
    _describe_sized(benchmark, L1_GROUP, series, L1_BARE, caches.count, "entries")


def test_scaling_l1_hit(benchmark: BenchmarkFixture, l1_caches: L1Caches) -> None:
    """An L1 hit on a random resident key."""
    tier = l1_caches.tier
    assert tier.size() == l1_caches.count
    _describe_l1(benchmark, l1_caches, L1_OURS)
    pick = cycle(l1_caches.keys)
    benchmark(lambda: tier.get(pick()))
    assert tier.get(l1_caches.keys[0]) is not None


def test_scaling_l1_bare_ttlcache(benchmark: BenchmarkFixture, l1_caches: L1Caches) -> None:
    """The same keys in a bare cachetools TTLCache under a lock (what a hand-written L1 costs)."""
    bare, lock = l1_caches.bare, threading.Lock()
    _describe_l1(benchmark, l1_caches, L1_BARE)
    pick = cycle(l1_caches.keys)

    def get() -> Entry | None:
        with lock:
            return bare.get(pick())

    benchmark(get)
    assert get() is not None


@dataclass
class L2Files:
    """n rows in a sigcache L2 file and in a bare kv file, and the keys every bench probes."""

    count: int
    store: SQLiteStore
    same: sqlite3.Connection  # a plain reader on the store's file, sigcache's pragmas
    kv: sqlite3.Connection  # a plain reader on the bare file, the same pragmas
    digests: list[str]


def _build_conn(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in BUILD_PRAGMAS:
        conn.execute(pragma).fetchall()
    return conn


def _populate(path: Path, corpus: Corpus, count: int) -> list[str]:
    """The store's file with n rows (executemany per chunk, random key order); the digests."""
    SQLiteStore(path).close()  # the schema, exactly as the store creates it
    conn = _build_conn(path)
    now, ttl = time.time(), 604_800.0
    digests: list[str] = []
    try:
        texts = enumerate(_texts(corpus, count))
        while chunk := list(itertools.islice(texts, CHUNK)):
            rows = []
            for index, text in chunk:
                digest = text_digest(text)
                digests.append(digest)
                signature = corpus.signature(index)
                rows.append((MAIN, "", digest, signature, text, MODEL, None, now, now + ttl, None))
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(schema.UPSERT, rows)
            conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL").fetchall()
    finally:
        conn.close()
    return digests


def _copy_to_kv(source: Path, target: Path) -> None:
    """The same rows, in the same (random-key) order, into a bare kv table, inside SQLite."""
    conn = _build_conn(target)
    try:
        conn.execute(BARE_KV_DDL)
        conn.execute("ATTACH DATABASE ? AS l2", (str(source),))
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(COPY_TO_KV)
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE l2")
        conn.execute("PRAGMA journal_mode=WAL").fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module", params=L2_SIZES, ids=lambda n: f"{n:.0e}")
def l2_files(
    request: pytest.FixtureRequest, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[L2Files]:
    """Both files of n rows, built once per size and deleted after the size's benches."""
    count: int = request.param
    root: Path = tmp_path_factory.mktemp("scaling")
    digests = _populate(root / "l2.db", corpus, count)
    _copy_to_kv(root / "l2.db", root / "kv.db")
    files = L2Files(
        count,
        SQLiteStore(root / "l2.db"),
        connect(root / "l2.db", reader=True),
        connect(root / "kv.db", reader=True),
        [digests[i] for i in _probes(count)],
    )
    yield files
    files.store.close()
    files.same.close()
    files.kv.close()
    for path in root.iterdir():
        path.unlink()


def _describe_l2(benchmark: BenchmarkFixture, files: L2Files, series: str) -> None:
    _describe_sized(benchmark, L2_GROUP, series, BARE_SAME, files.count, "rows")


def test_scaling_l2_hit(benchmark: BenchmarkFixture, l2_files: L2Files) -> None:
    """An L2 (SQLiteStore) hit on a random existing row."""
    store = l2_files.store
    _describe_l2(benchmark, l2_files, OURS)
    pick = cycle(l2_files.digests)
    benchmark(lambda: store.get(MAIN, "", pick(), time.time()))
    assert store.get(MAIN, "", l2_files.digests[0], time.time()) is not None


def test_scaling_l2_bare_same_select(benchmark: BenchmarkFixture, l2_files: L2Files) -> None:
    """The store's own SELECT on the same file and keys, by a plain sqlite3 cursor."""
    _describe_l2(benchmark, l2_files, BARE_SAME)
    cursor = l2_files.same.cursor()
    params = cycle([(MAIN, "", digest, time.time()) for digest in l2_files.digests])
    benchmark(lambda: cursor.execute(schema.GET_VALUES, params()).fetchone())
    assert cursor.execute(schema.GET_VALUES, params()).fetchone() is not None


def test_scaling_l2_bare_kv(benchmark: BenchmarkFixture, l2_files: L2Files) -> None:
    """A hand-written PK SELECT on a kv file of the same rows, with the same keys."""
    _describe_l2(benchmark, l2_files, BARE_KV)
    cursor = l2_files.kv.cursor()
    params = cycle([(digest,) for digest in l2_files.digests])
    benchmark(lambda: cursor.execute(BARE_SELECT, params()).fetchone())
    assert cursor.execute(BARE_SELECT, params()).fetchone() is not None
