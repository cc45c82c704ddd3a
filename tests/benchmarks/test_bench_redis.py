"""Redis L2 against bare redis-py on the same server; phase propagation across four workers."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from pytest_benchmark.fixture import BenchmarkFixture

from sigcache.config import L1Settings, LayeredConfig
from sigcache.layered import LayeredSignatureCache
from sigcache.redis_codec import encode_entry
from sigcache.redis_store import RedisSettings, RedisStore
from sigcache.storage import MAIN, Entry
from tests.phase_workers import WorkerPool
from tests.redis_server import RedisServer, redis_server, requires_redis

from .conftest import OP_SIZE, POOL, Corpus, cycle, main_entry

pytestmark = requires_redis
BATCH = 256  # the writer's default batch size
# L1 of one entry: cycling the pool makes every read an L1 miss answered by L2.
L2_ONLY = LayeredConfig(l1=L1Settings(max_entries=1))


@dataclass
class RedisSetup:
    """A server with POOL entries through RedisStore and the same values under bare keys."""

    server: RedisServer
    store: RedisStore
    bare: redis.Redis
    layered: LayeredSignatureCache
    entries: list[Entry]
    texts: list[str]


@pytest.fixture(scope="module")
def setup(corpus: Corpus) -> Iterator[RedisSetup]:
    with redis_server() as server:
        texts = corpus.texts(OP_SIZE, POOL)
        now = time.time()
        entries = [main_entry(t, corpus.signature(seed), now) for seed, t in enumerate(texts)]
        store = RedisStore(server.url, RedisSettings(prefix="bench", socket_timeout_s=1.0))
        store.put_many(entries)
        bare = redis.Redis.from_url(server.url)
        bare.mset({f"bare:{e.key}": encode_entry(e) for e in entries})  # the same bytes
        layered = LayeredSignatureCache(
            "unused.db", config=L2_ONLY, store=RedisStore(server.url, RedisSettings(prefix="bench"))
        )
        yield RedisSetup(server, store, bare, layered, entries, texts)
        layered.close()
        store.close()
        bare.close()


@pytest.mark.parametrize("variant", ["bare GET", "RedisStore.get", "layered get (L2 hit)"])
def test_redis_l2_hit(benchmark: BenchmarkFixture, setup: RedisSetup, variant: str) -> None:
    benchmark.group = "redis L2 hit (target: layered <= 1.3x bare GET)"
    keys = cycle([e.key for e in setup.entries])
    texts = cycle(setup.texts)
    actions: dict[str, Callable[[], object]] = {
        "bare GET": lambda: setup.bare.get(f"bare:{keys()}"),
        "RedisStore.get": lambda: setup.store.get(MAIN, "", keys(), time.time()),
        "layered get (L2 hit)": lambda: setup.layered.get(texts()),
    }
    assert benchmark(actions[variant]) is not None


@pytest.mark.parametrize("variant", ["bare pipelined SET", "RedisStore.put_many"])
def test_redis_pipelined_writes(
    benchmark: BenchmarkFixture, setup: RedisSetup, variant: str
) -> None:
    benchmark.group = f"redis pipelined writes, {BATCH} per batch"
    batch = setup.entries[:BATCH]
    values = [(f"bare:{e.key}", encode_entry(e)) for e in batch]

    def bare() -> None:
        pipe = setup.bare.pipeline(transaction=True)
        for name, value in values:
            pipe.set(name, value, px=3_600_000)
        pipe.execute()

    benchmark(bare if variant == "bare pipelined SET" else lambda: setup.store.put_many(batch))
    benchmark.extra_info["writes_per_round"] = BATCH


@pytest.mark.parametrize("kind", ["redis", "sqlite"])
def test_phase_propagation_four_workers(
    benchmark: BenchmarkFixture, setup: RedisSetup, tmp_path: Path, kind: str
) -> None:
    """Delay from a change in one worker until the last of four runs it (p50/p99)."""
    benchmark.group = "phase propagation across 4 workers (interval 0.1 s)"
    target = setup.server.url if kind == "redis" else ""
    delays: list[float] = []
    with WorkerPool(kind, target, tmp_path, interval=0.1) as pool:
        for round_ in range(10):
            _, at = pool.call(round_ % 4, "promote", "DUAL_WRITE")
            seen = pool.wait_all(lambda s: s[0] == "DUAL_WRITE" and s[1])
            delays.append(max(seen.values()) - at)
            _, at = pool.call((round_ + 1) % 4, "disable")
            seen = pool.wait_all(lambda s: s[0] == "LEGACY_ONLY" and not s[1])
            delays.append(max(seen.values()) - at)
    delays.sort()
    p50, p99 = statistics.median(delays), delays[int(0.99 * (len(delays) - 1))]
    benchmark.extra_info.update({"p50_s": p50, "p99_s": p99, "max_s": delays[-1]})
    print(f"\n{kind}: propagation p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    benchmark.pedantic(lambda: None, rounds=1)
    assert p99 < 0.5
