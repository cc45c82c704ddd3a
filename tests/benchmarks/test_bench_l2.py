"""L2 sync: `SQLiteStore` against a bare sqlite3 primary-key table and python-diskcache."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import diskcache
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from sigcache import schema
from sigcache.config import L1Settings, LayeredConfig
from sigcache.layered import LayeredSignatureCache
from sigcache.sqlite import SQLiteStore
from sigcache.storage import MAIN, Entry

from .conftest import (
    BARE_SELECT,
    BARE_UPSERT,
    OP_SIZE,
    POOL,
    Corpus,
    Target,
    connect,
    cycle,
    describe,
    main_entry,
    populate_bare,
)

BARE = "bare sqlite3 PK SELECT"
DISKCACHE = "diskcache get"
L2_TARGETS = [
    Target("L2 sync hit <= 2x the bare SELECT", BARE, 2.0),
    Target("L2 sync hit faster than diskcache get", DISKCACHE, 1.0),
]
BATCH = 256  # the writer's default batch size (L2Settings.batch_size)
# L1 of one entry: cycling two texts makes every read an L1 miss answered by L2.
L2_ONLY = LayeredConfig(l1=L1Settings(max_entries=1))


@dataclass
class L2Files:
    """The same POOL rows in the sigcache schema, a bare kv table and a diskcache."""

    store: SQLiteStore
    bare: sqlite3.Connection  # a reader, pragmas as sigcache's readers
    bare_writer: sqlite3.Connection
    disk: diskcache.Cache
    layered: LayeredSignatureCache
    entries: list[Entry]
    texts: list[str]
    miss_key: str


@pytest.fixture(scope="module")
def l2(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[L2Files]:
    """Files populated once per module; every connection closed at the end."""
    root: Path = tmp_path_factory.mktemp("l2")
    texts = corpus.texts(OP_SIZE, POOL)
    now = time.time()
    entries = [main_entry(text, corpus.signature(seed), now) for seed, text in enumerate(texts)]
    store = SQLiteStore(root / "sigcache.db")
    store.put_many(entries)
    populate_bare(root / "bare.db", [(e.key, e.signature) for e in entries])
    disk = diskcache.Cache(str(root / "diskcache"))
    for entry in entries:
        disk.set(entry.key, entry.signature)
    files = L2Files(
        store,
        connect(root / "bare.db", reader=True),
        connect(root / "bare.db", reader=False),
        disk,
        LayeredSignatureCache(root / "sigcache.db", config=L2_ONLY),
        entries,
        texts,
        main_entry(corpus.text(OP_SIZE, 10 * POOL), corpus.signature(0), now).key,
    )
    yield files
    files.layered.close()
    store.close()
    files.bare.close()
    files.bare_writer.close()
    disk.close()


def _getters(f: L2Files, key: str) -> dict[str, tuple[str, Callable[[], object]]]:
    params = (MAIN, "", key)

    def bare() -> object:
        row = f.bare.execute(BARE_SELECT, (key,)).fetchone()
        return None if row is None else row[0]

    def bare_schema_row() -> object:
        return f.bare_schema.execute(schema.GET, (*params, time.time())).fetchone()  # type: ignore[attr-defined]

    return {
        "bare": (BARE, bare),
        "store": ("SQLiteStore.get (L2 tier)", lambda: f.store.get(*params, time.time())),
        "diskcache": (DISKCACHE, lambda: f.disk.get(key)),
        "schema-row": ("bare sqlite3, sigcache row (schema.GET)", bare_schema_row),
    }


@pytest.fixture(scope="module")
def schema_reader(l2: L2Files) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 reader on the sigcache file: the SQL cost without SQLiteStore."""
    conn = connect(Path(l2.store.path), reader=True)
    l2.bare_schema = conn  # type: ignore[attr-defined]
    yield conn
    conn.close()


@pytest.mark.usefixtures("schema_reader")
@pytest.mark.parametrize("variant", ["bare", "store", "diskcache", "schema-row", "layered"])
def test_l2_get_hit(benchmark: BenchmarkFixture, l2: L2Files, variant: str) -> None:
    """A primary-key hit on a 2 KB text's row (page cache warm)."""
    group = f"L2 sync: get-hit ({OP_SIZE})"
    if variant == "layered":
        pick = cycle(l2.texts[:2])
        describe(benchmark, group, "LayeredSignatureCache.get, L1 miss -> L2 hit")
        benchmark(lambda: l2.layered.get(pick()))
        assert l2.layered.read_tier() == "l2"
        return
    label, get = _getters(l2, l2.entries[POOL // 2].key)[variant]
    targets = L2_TARGETS if variant == "store" else []
    describe(benchmark, group, label, baseline=variant == "bare", targets=targets)
    assert get() is not None
    benchmark(get)


@pytest.mark.usefixtures("schema_reader")
@pytest.mark.parametrize("variant", ["bare", "store", "diskcache", "schema-row"])
def test_l2_get_miss(benchmark: BenchmarkFixture, l2: L2Files, variant: str) -> None:
    """A primary-key miss."""
    label, get = _getters(l2, l2.miss_key)[variant]
    describe(benchmark, f"L2 sync: get-miss ({OP_SIZE})", label, baseline=variant == "bare")
    assert get() is None
    benchmark(get)


@pytest.mark.parametrize("variant", ["bare", "store", "store-batch", "diskcache"])
def test_l2_set(benchmark: BenchmarkFixture, l2: L2Files, variant: str) -> None:
    """Upsert existing rows, one committed transaction per call (WAL, synchronous=NORMAL)."""
    pick = cycle(l2.entries)
    batches = [l2.entries[i : i + BATCH] for i in range(0, POOL - BATCH + 1, BATCH)]
    pick_batch = cycle(batches)

    def bare() -> None:
        entry = pick()
        l2.bare_writer.execute(BARE_UPSERT, (entry.key, entry.signature))

    def disk() -> None:
        entry = pick()
        l2.disk.set(entry.key, entry.signature)

    label, run, per_call = {
        "bare": ("bare sqlite3 INSERT OR REPLACE (autocommit)", bare, 1),
        "store": ("SQLiteStore.put_many, 1 row", lambda: l2.store.put_many([pick()]), 1),
        "store-batch": (
            f"SQLiteStore.put_many, {BATCH} rows (per row)",
            lambda: l2.store.put_many(pick_batch()),
            BATCH,
        ),
        "diskcache": ("diskcache set", disk, 1),
    }[variant]
    describe(
        benchmark,
        f"L2 sync: set ({OP_SIZE})",
        label,
        baseline=variant == "bare",
        ops_per_call=per_call,
    )
    benchmark(run)
