"""Scaling: L1 and L2 hit latency as the number of entries grows (it should stay flat)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from sigcache.config import L1Settings
from sigcache.keys import text_digest
from sigcache.memory import L1Key, MemoryTier
from sigcache.sqlite import SQLiteStore
from sigcache.storage import MAIN, Entry

from .conftest import MODEL, Corpus, cycle, describe

L1_SIZES = (1_000, 10_000, 100_000)
L2_SIZES = (1_000, 10_000, 100_000, 1_000_000)
PROBES = 4_096  # random existing keys read round-robin: every read is a hit, none stays hot
TEXT_LENGTH = 512  # scaling rows keep texts short so 10^6 rows build in seconds
CHUNK = 100_000  # rows per executemany transaction while populating


def _texts(corpus: Corpus, count: int) -> Iterator[str]:
    body = corpus.text("2KB", 0)[: TEXT_LENGTH - 12]
    return (f"[{index:09d}] {body}" for index in range(count))


def _probes(count: int) -> list[int]:
    return random.Random(count).sample(range(count), min(PROBES, count))


@pytest.fixture(scope="module", params=L1_SIZES, ids=lambda n: f"{n:.0e}")
def l1_tier(request: pytest.FixtureRequest, corpus: Corpus) -> tuple[MemoryTier, list[L1Key]]:
    """A tier sized to hold n entries, holding n."""
    count: int = request.param
    tier = MemoryTier(L1Settings(max_entries=count), time.time)
    now = time.time()
    keys: list[L1Key] = []
    for index, text in enumerate(_texts(corpus, count)):
        key: L1Key = (MAIN, "", text)
        entry = Entry(MAIN, "", "", corpus.signature(index), text, MODEL, None, now, now + 3_600)
        tier.put(key, entry, now + 3_600)
        keys.append(key)
    return tier, [keys[i] for i in _probes(count)]


def test_scaling_l1_hit(
    benchmark: BenchmarkFixture, l1_tier: tuple[MemoryTier, list[L1Key]]
) -> None:
    """An L1 hit on a random resident key."""
    tier, keys = l1_tier
    count = tier.size()
    describe(
        benchmark,
        "scaling: L1 hit",
        f"L1 tier, {count:,} entries",
        baseline=count == L1_SIZES[0],
        entries=count,
    )
    pick = cycle(keys)
    benchmark(lambda: tier.get(pick()))
    assert tier.get(keys[0]) is not None


@pytest.fixture(scope="module", params=L2_SIZES, ids=lambda n: f"{n:.0e}")
def l2_store(
    request: pytest.FixtureRequest, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SQLiteStore, list[str], int]]:
    """A sigcache L2 file of n rows, populated with executemany in large transactions."""
    count: int = request.param
    path: Path = tmp_path_factory.mktemp("scaling") / f"l2-{count}.db"
    store = SQLiteStore(path)
    now, ttl = time.time(), 604_800.0
    digests: list[str] = []
    batch: list[Entry] = []
    for index, text in enumerate(_texts(corpus, count)):
        digest = text_digest(text)
        digests.append(digest)
        batch.append(
            Entry(MAIN, "", digest, corpus.signature(index), text, MODEL, None, now, now + ttl)
        )
        if len(batch) == CHUNK:
            store.put_many(batch)
            batch = []
    store.put_many(batch)
    yield store, [digests[i] for i in _probes(count)], count
    store.close()
    path.unlink()


def test_scaling_l2_hit(
    benchmark: BenchmarkFixture, l2_store: tuple[SQLiteStore, list[str], int]
) -> None:
    """An L2 (SQLiteStore) hit on a random existing row."""
    store, digests, count = l2_store
    describe(
        benchmark,
        "scaling: L2 hit",
        f"L2 SQLiteStore, {count:,} rows",
        baseline=count == L2_SIZES[0],
        entries=count,
    )
    pick = cycle(digests)
    benchmark(lambda: store.get(MAIN, "", pick(), time.time()))
    assert store.get(MAIN, "", digests[0], time.time()) is not None
