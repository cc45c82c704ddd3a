"""L2 async: `AsyncLayeredSignatureCache` (aiosqlite) against bare aiosqlite on the same file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from sigcache import schema
from sigcache.aio import AsyncLayeredSignatureCache
from sigcache.config import L1Settings, L2Settings, LayeredConfig
from sigcache.sqlite import SQLiteStore
from sigcache.storage import MAIN

from .conftest import (
    BARE_SELECT,
    BARE_UPSERT,
    MODEL,
    OP_SIZE,
    POOL,
    Corpus,
    Target,
    cycle,
    describe,
    main_entry,
    populate_bare,
)

BARE = "bare aiosqlite PK SELECT"
AIO_TARGET = Target("async L2 hit <= 1.5x bare aiosqlite", BARE, 1.5)
# L1 of one entry: cycling two texts makes every aget an L1 miss answered by L2.
L2_ONLY = LayeredConfig(l1=L1Settings(max_entries=1))
DEEP_QUEUE = LayeredConfig(l2=L2Settings(max_pending=1_000_000))


@dataclass
class AioFiles:
    """Async contenders over the same POOL rows, all bound to the module's event loop."""

    bare: aiosqlite.Connection
    bare_writer: aiosqlite.Connection
    l2_only: AsyncLayeredSignatureCache
    warm: AsyncLayeredSignatureCache
    texts: list[str]
    keys: list[str]
    signatures: list[str]
    miss_text: str


async def _connect(path: Path, pragmas: tuple[schema.Pragma, ...]) -> aiosqlite.Connection:
    settings = L2Settings()
    conn = await aiosqlite.connect(
        path, timeout=settings.busy_timeout_ms / 1000, isolation_level=None
    )
    for statement in schema.connection_pragmas(
        pragmas, settings.busy_timeout_ms, settings.cache_size_kib
    ):
        await (await conn.execute(statement)).close()
    return conn


@pytest.fixture(scope="module")
def aio(
    corpus: Corpus, tmp_path_factory: pytest.TempPathFactory, loop: asyncio.AbstractEventLoop
) -> Iterator[AioFiles]:
    """Files populated once; connections opened and closed on the module's loop."""
    root: Path = tmp_path_factory.mktemp("aio")
    texts = corpus.texts(OP_SIZE, POOL)
    now = time.time()
    entries = [main_entry(text, corpus.signature(seed), now) for seed, text in enumerate(texts)]
    store = SQLiteStore(root / "sigcache.db")
    store.put_many(entries)
    store.close()
    populate_bare(root / "bare.db", [(e.key, e.signature) for e in entries])
    warm = AsyncLayeredSignatureCache.open(root / "warm.db", config=DEEP_QUEUE)
    for entry in entries:
        loop.run_until_complete(warm.aset(entry.text, entry.signature, MODEL))
    files = AioFiles(
        loop.run_until_complete(_connect(root / "bare.db", schema.READER_PRAGMAS)),
        loop.run_until_complete(_connect(root / "bare.db", schema.WRITER_PRAGMAS)),
        AsyncLayeredSignatureCache.open(root / "sigcache.db", config=L2_ONLY),
        warm,
        texts,
        [entry.key for entry in entries],
        [entry.signature for entry in entries],
        corpus.text(OP_SIZE, 10 * POOL),
    )
    yield files
    for closing in (files.bare.close(), files.bare_writer.close()):
        loop.run_until_complete(closing)
    loop.run_until_complete(files.l2_only.aclose())
    loop.run_until_complete(files.warm.aclose())


def _run(
    loop: asyncio.AbstractEventLoop, make: Callable[[], Awaitable[object]]
) -> Callable[[], object]:
    # run_until_complete costs the same for every contender, so ratios stay fair.
    return lambda: loop.run_until_complete(make())


async def _bare_get(conn: aiosqlite.Connection, key: str) -> object:
    async with conn.execute(BARE_SELECT, (key,)) as cursor:
        row = await cursor.fetchone()
    return None if row is None else row[0]


@pytest.mark.parametrize("variant", ["bare", "aget-l2", "aget-l1"])
def test_aio_get_hit(
    benchmark: BenchmarkFixture, aio: AioFiles, loop: asyncio.AbstractEventLoop, variant: str
) -> None:
    """A hit: bare SELECT, aget answered by L2 (aiosqlite), aget answered by L1."""
    pick_text = cycle(aio.texts[:2])
    key = aio.keys[POOL // 2]
    label, call = {
        "bare": (BARE, _run(loop, lambda: _bare_get(aio.bare, key))),
        "aget-l2": (
            "AsyncLayeredSignatureCache.aget, L1 miss -> L2 hit",
            _run(loop, lambda: aio.l2_only.aget(pick_text())),
        ),
        "aget-l1": (
            "AsyncLayeredSignatureCache.aget, L1 hit",
            _run(loop, lambda: aio.warm.aget(aio.texts[POOL // 2])),
        ),
    }[variant]
    targets = [AIO_TARGET] if variant == "aget-l2" else []
    describe(
        benchmark,
        f"L2 async: get-hit ({OP_SIZE})",
        label,
        baseline=variant == "bare",
        targets=targets,
    )
    assert call() is not None
    benchmark(call)
    if variant == "aget-l2":
        assert aio.l2_only.cache.read_tier() == "l2"


@pytest.mark.parametrize("variant", ["bare", "aget"])
def test_aio_get_miss(
    benchmark: BenchmarkFixture, aio: AioFiles, loop: asyncio.AbstractEventLoop, variant: str
) -> None:
    """A miss through aiosqlite."""
    miss_key = main_entry(aio.miss_text, aio.signatures[0], 0.0).key
    label, call = {
        "bare": (BARE, _run(loop, lambda: _bare_get(aio.bare, miss_key))),
        "aget": (
            "AsyncLayeredSignatureCache.aget (L1 miss, L2 miss)",
            _run(loop, lambda: aio.l2_only.aget(aio.miss_text)),
        ),
    }[variant]
    describe(benchmark, f"L2 async: get-miss ({OP_SIZE})", label, baseline=variant == "bare")
    assert call() is None
    benchmark(call)


@pytest.mark.parametrize("variant", ["bare", "aset"])
def test_aio_set(
    benchmark: BenchmarkFixture, aio: AioFiles, loop: asyncio.AbstractEventLoop, variant: str
) -> None:
    """A write: bare aiosqlite commits; aset writes L1 and queues L2 (it never waits)."""
    pick = cycle(list(zip(aio.texts, aio.keys, aio.signatures, strict=True)))

    async def bare() -> None:
        _, key, signature = pick()
        await (await aio.bare_writer.execute(BARE_UPSERT, (key, signature))).close()

    async def aset() -> bool:
        text, _, signature = pick()
        return await aio.warm.aset(text, signature, MODEL)

    label, call = {
        "bare": ("bare aiosqlite INSERT OR REPLACE (autocommit)", _run(loop, bare)),
        "aset": ("AsyncLayeredSignatureCache.aset (L1 now, L2 queued)", _run(loop, aset)),
    }[variant]
    describe(benchmark, f"L2 async: set ({OP_SIZE})", label, baseline=variant == "bare")
    benchmark(call)
    if variant == "aset":
        assert loop.run_until_complete(aio.warm.aflush(120))
        assert aio.warm.cache.get_stats()["dropped_writes"] == 0
        assert aio.warm.cache.get(aio.texts[0]) is not None
    assert MAIN
