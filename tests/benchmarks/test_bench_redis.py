"""The Redis L2 against bare redis-py on the same server; phase propagation across four workers.

The server: `SIGCACHE_BENCH_REDIS_URL` when set (every key written here lives under a fresh
prefix and is deleted at the end), else a redis-server started for the module when one is
installed (`tests/redis_server.py`), else the module is skipped.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from pytest_benchmark.fixture import BenchmarkFixture

from harness.l2 import purge_prefix
from sigcache.aio import AsyncLayeredSignatureCache
from sigcache.config import L1Settings, LayeredConfig
from sigcache.layered import LayeredSignatureCache
from sigcache.redis_codec import encode_entry
from sigcache.redis_store import RedisSettings, RedisStore
from sigcache.storage import MAIN, Entry
from tests.phase_workers import WorkerPool
from tests.redis_server import redis_available, redis_server

from .conftest import MODEL, OP_SIZE, POOL, Corpus, Target, cycle, describe, main_entry

URL_ENV = "SIGCACHE_BENCH_REDIS_URL"
BATCH = 256  # the writer's default batch size
# L1 of one entry: cycling the pool makes every read an L1 miss answered by L2.
L2_ONLY = LayeredConfig(l1=L1Settings(max_entries=1))
BARE_GET = "bare Redis.get()"
BARE_AGET = "bare redis.asyncio get()"
HIT_TARGET = Target("Redis L2 hit <= 1.3x a bare redis-py GET", BARE_GET, 1.3)
AHIT_TARGET = Target("async Redis L2 hit <= 1.3x a bare redis.asyncio GET", BARE_AGET, 1.3)
LAYERED_HIT = "LayeredSignatureCache.get, L1 miss -> Redis L2 hit"
PROPAGATION = "phase propagation across 4 workers (poll interval 0.1 s)"


@dataclass
class RedisSetup:
    """POOL entries through RedisStore and the same bytes under bare keys, one prefix."""

    url: str
    prefix: str
    store: RedisStore
    bare: redis.Redis
    layered: LayeredSignatureCache
    writer: LayeredSignatureCache
    entries: list[Entry]
    texts: list[str]
    signatures: list[str]

    def bare_key(self, entry: Entry) -> str:
        """The bare twin of an entry's key."""
        return f"{self.prefix}:bare:{entry.key}"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """The server to measure against (see the module docstring)."""
    url = os.environ.get(URL_ENV, "").strip()
    if url:
        yield url
        return
    if not redis_available():
        pytest.skip(f"no redis-server installed and {URL_ENV} unset")
    with redis_server() as server:
        yield server.url


def _settings(prefix: str, **extra: float) -> RedisSettings:
    return RedisSettings(prefix=prefix, socket_timeout_s=2.0, connect_timeout_s=2.0, **extra)


@pytest.fixture(scope="module")
def setup(corpus: Corpus, redis_url: str) -> Iterator[RedisSetup]:
    prefix = f"sigcache-bench:{secrets.token_hex(4)}"
    texts = corpus.texts(OP_SIZE, POOL)
    signatures = [corpus.signature(seed) for seed in range(POOL)]
    now = time.time()
    entries = [main_entry(t, s, now) for t, s in zip(texts, signatures, strict=True)]
    store = RedisStore(redis_url, _settings(prefix))
    store.put_many(entries)
    bare = redis.Redis.from_url(redis_url)
    made = RedisSetup(
        redis_url,
        prefix,
        store,
        bare,
        LayeredSignatureCache(
            "unused.db", config=L2_ONLY, store=RedisStore(redis_url, _settings(prefix))
        ),
        LayeredSignatureCache("unused.db", store=RedisStore(redis_url, _settings(f"{prefix}:w"))),
        entries,
        texts,
        signatures,
    )
    bare.mset({made.bare_key(e): encode_entry(e) for e in entries})  # the very same bytes
    yield made
    for closing in (made.layered, made.writer, store):
        closing.close()
    purge_prefix(bare, prefix)
    bare.close()


@pytest.mark.parametrize("variant", ["bare", "connection", "store", "layered", "layered-cold"])
def test_redis_l2_hit(benchmark: BenchmarkFixture, setup: RedisSetup, variant: str) -> None:
    """A 2 KB text's entry (~3 KB value) read from Redis: bare redis-py against each layer.

    As in the SQLite L2 group, every contender cycles over the same two entries (a one-entry
    L1 makes each layered read an L1 miss answered by L2): a proxy looks up a text it has just
    parsed, so the text is in the CPU cache. `layered-cold` cycles all POOL texts instead, each
    cold in the CPU cache (~20 µs more per read on the bench machine), for comparison.
    """
    hot = setup.entries[:2]
    keys = cycle([setup.bare_key(e) for e in hot])
    digests = cycle([e.key for e in hot])
    texts = cycle(setup.texts[:2])
    every_text = cycle(setup.texts)
    conn = setup.bare.connection_pool.get_connection()  # held for the bench: no pool per call

    def connection_get() -> object:
        conn.send_command("GET", keys())
        return conn.read_response()

    calls: dict[str, tuple[str, Callable[[], object]]] = {
        "bare": (BARE_GET, lambda: setup.bare.get(keys())),
        "connection": ("bare redis-py Connection GET (no client layer)", connection_get),
        "store": ("RedisStore.get", lambda: setup.store.get(MAIN, "", digests(), time.time())),
        "layered": (LAYERED_HIT, lambda: setup.layered.get(texts())),
        "layered-cold": (f"{LAYERED_HIT}, {POOL} texts", lambda: setup.layered.get(every_text())),
    }
    label, call = calls[variant]
    targets = [HIT_TARGET] if variant == "layered" else []
    describe(
        benchmark,
        f"redis L2: get-hit ({OP_SIZE})",
        label,
        baseline=variant == "bare",
        targets=targets,
    )
    try:
        assert call() is not None
        benchmark(call)
    finally:
        setup.bare.connection_pool.release(conn)
    if variant.startswith("layered"):
        assert setup.layered.read_tier() == "l2"


@pytest.mark.parametrize("variant", ["bare", "store", "layered"])
def test_redis_pipelined_writes(
    benchmark: BenchmarkFixture, setup: RedisSetup, variant: str
) -> None:
    """BATCH writes per round: bare pipelined SETs, RedisStore.put_many, the layered writer."""
    batches = [list(range(i, i + BATCH)) for i in range(0, POOL - BATCH + 1, BATCH)]
    pick = cycle(batches)
    values = [(setup.bare_key(e), encode_entry(e)) for e in setup.entries]

    def bare() -> None:
        pipe = setup.bare.pipeline(transaction=True)
        for index in pick():
            name, value = values[index]
            pipe.set(name, value, px=3_600_000)
        pipe.execute()

    def layered() -> None:
        # Every set() is validated, lands in L1 and is queued; flush() waits for the writer
        # thread's MULTI/EXEC commits: the end-to-end write throughput of the layered cache.
        cache = setup.writer
        for index in pick():
            cache.set(setup.texts[index], setup.signatures[index], MODEL)
        assert cache.flush(30)

    def store() -> None:
        setup.store.put_many([setup.entries[index] for index in pick()])

    label, run = {
        "bare": (f"bare pipelined SET x{BATCH} (MULTI/EXEC)", bare),
        "store": (f"RedisStore.put_many, {BATCH} entries", store),
        "layered": (f"layered cache: {BATCH} set() + flush() (writer thread)", layered),
    }[variant]
    describe(
        benchmark,
        f"redis L2: pipelined writes, {BATCH} per round (per write)",
        label,
        baseline=variant == "bare",
        ops_per_call=BATCH,
        writes_per_round=BATCH,
    )
    benchmark(run)
    if variant == "layered":
        assert setup.writer.get_stats()["dropped_writes"] == 0


def _arun(loop: asyncio.AbstractEventLoop, make: Callable[[], object]) -> Callable[[], object]:
    return lambda: loop.run_until_complete(make())  # type: ignore[arg-type]


@pytest.mark.parametrize("variant", ["bare", "aget"])
def test_redis_async_l2_hit(
    benchmark: BenchmarkFixture,
    setup: RedisSetup,
    loop: asyncio.AbstractEventLoop,
    variant: str,
) -> None:
    """The async read path on Redis (redis.asyncio, no worker thread) against a bare async GET."""
    import redis.asyncio as aioredis

    keys = cycle([setup.bare_key(e) for e in setup.entries[:2]])  # as in test_redis_l2_hit
    texts = cycle(setup.texts[:2])
    client = aioredis.Redis.from_url(setup.url)
    cache = AsyncLayeredSignatureCache(
        LayeredSignatureCache(
            "unused.db", config=L2_ONLY, store=RedisStore(setup.url, _settings(setup.prefix))
        ),
        owns_cache=True,
    )
    label, call = {
        "bare": (BARE_AGET, _arun(loop, lambda: client.get(keys()))),
        "aget": (
            "AsyncLayeredSignatureCache.aget, L1 miss -> Redis L2 hit",
            _arun(loop, lambda: cache.aget(texts())),
        ),
    }[variant]
    describe(
        benchmark,
        f"redis L2 async: get-hit ({OP_SIZE})",
        label,
        baseline=variant == "bare",
        targets=[AHIT_TARGET] if variant == "aget" else [],
    )
    try:
        assert call() is not None
        benchmark(call)
        if variant == "aget":
            assert cache.cache.read_tier() == "l2"
    finally:
        loop.run_until_complete(cache.aclose())
        loop.run_until_complete(client.aclose())


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_phase_propagation_four_workers(
    benchmark: BenchmarkFixture, setup: RedisSetup, tmp_path: Path, kind: str
) -> None:
    """Delay from a change in one worker until the last of four runs it (p50/p99 over 20)."""
    describe(benchmark, PROPAGATION, f"{kind} shared state", baseline=kind == "sqlite")
    target = setup.url if kind == "redis" else ""
    delays: list[float] = []
    prefix = f"{setup.prefix}:phase"
    with WorkerPool(kind, target, tmp_path, interval=0.1, prefix=prefix) as pool:
        for round_ in range(10):
            _, at = pool.call(round_ % 4, "promote", "DUAL_WRITE")
            seen = pool.wait_all(lambda s: s[0] == "DUAL_WRITE" and s[1])
            delays.append(max(seen.values()) - at)
            _, at = pool.call((round_ + 1) % 4, "disable")
            seen = pool.wait_all(lambda s: s[0] == "LEGACY_ONLY" and not s[1])
            delays.append(max(seen.values()) - at)
    delays.sort()
    p50, p99 = statistics.median(delays), delays[int(0.99 * (len(delays) - 1))]
    benchmark.extra_info.update(
        {"p50_s": p50, "p99_s": p99, "max_s": delays[-1], "changes": len(delays)}
    )
    print(f"\n{kind}: propagation p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    benchmark.pedantic(lambda: None, rounds=1)  # the figures are in extra_info, not the timing
