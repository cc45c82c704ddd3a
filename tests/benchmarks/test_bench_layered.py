"""The whole cache: legacy `SignatureCache` against `LayeredSignatureCache` end to end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from sigcache.config import L2Settings, LayeredConfig
from sigcache.layered import LayeredSignatureCache
from sigcache.legacy import SignatureCache

from .conftest import MODEL, OP_SIZE, POOL, TEXT_SIZES, Corpus, Target, cycle, describe

LEGACY = "legacy SignatureCache"
HIT_TARGET = Target("layered get-hit end to end <= 1.0x legacy get-hit", LEGACY, 1.0)
# Deep enough that a benchmark's burst of sets is never dropped (production uses 10,000).
BENCH_CONFIG = LayeredConfig(l2=L2Settings(max_pending=1_000_000))


@dataclass
class Caches:
    """A legacy and a layered cache (and a dict) holding the same texts of every size."""

    legacy: SignatureCache
    layered: LayeredSignatureCache
    plain: dict[str, str]
    texts: dict[str, list[str]]


@pytest.fixture(scope="module")
def caches(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caches]:
    """POOL entries per text size in each cache; L2 flushed, so the queue starts empty."""
    path: Path = tmp_path_factory.mktemp("layered") / "layered.db"
    legacy = SignatureCache()
    layered = LayeredSignatureCache(path, config=BENCH_CONFIG)
    plain: dict[str, str] = {}
    texts = {
        size: corpus.texts(size, POOL, start=index * POOL) for index, size in enumerate(TEXT_SIZES)
    }
    for size_texts in texts.values():
        for seed, text in enumerate(size_texts):
            signature = corpus.signature(seed)
            assert legacy.set(text, signature, MODEL) and layered.set(text, signature, MODEL)
            plain[text] = signature
    assert layered.flush(60)
    yield Caches(legacy, layered, plain, texts)
    layered.close()


def _get(caches: Caches, variant: str) -> tuple[str, Callable[[str], object]]:
    getters: dict[str, tuple[str, Callable[[str], object]]] = {
        "dict": ("dict lookup by text", caches.plain.get),
        "legacy": (LEGACY, caches.legacy.get),
        "layered": ("LayeredSignatureCache (L1 hit)", caches.layered.get),
    }
    return getters[variant]


@pytest.mark.parametrize("size", list(TEXT_SIZES))
@pytest.mark.parametrize("variant", ["dict", "legacy", "layered"])
def test_get_hit(benchmark: BenchmarkFixture, caches: Caches, variant: str, size: str) -> None:
    """A hit on a text of the given size, end to end (normalise, key, look up, touch)."""
    label, get = _get(caches, variant)
    targets = [HIT_TARGET] if variant == "layered" else []
    describe(
        benchmark, f"cache: get-hit ({size})", label, baseline=variant == "legacy", targets=targets
    )
    text = caches.texts[size][POOL // 2]
    assert get(text) is not None
    benchmark(get, text)
    if variant == "layered":
        assert caches.layered.read_tier() == "l1"


@pytest.mark.parametrize("variant", ["dict", "legacy", "layered"])
def test_get_miss(
    benchmark: BenchmarkFixture, caches: Caches, corpus: Corpus, variant: str
) -> None:
    """A miss: legacy answers from memory; layered must ask L2 before it may say no."""
    label, get = _get(caches, variant)
    label = label.replace("(L1 hit)", "(L1 miss, L2 miss)")
    describe(benchmark, f"cache: get-miss ({OP_SIZE})", label, baseline=variant == "legacy")
    text = corpus.text(OP_SIZE, 10 * POOL)
    assert get(text) is None
    benchmark(get, text)


@pytest.mark.parametrize("variant", ["dict", "legacy", "layered"])
def test_set(benchmark: BenchmarkFixture, caches: Caches, corpus: Corpus, variant: str) -> None:
    """Overwrite existing entries (cycling POOL texts); layered queues L2 and never waits."""
    texts = caches.texts[OP_SIZE]
    signatures = [corpus.signature(seed + 1) for seed in range(len(texts))]
    pick = cycle(list(zip(texts, signatures, strict=True)))
    plain = caches.plain

    def dict_set() -> None:
        text, signature = pick()
        plain[text] = signature

    def cache_set(cache: SignatureCache | LayeredSignatureCache) -> Callable[[], None]:
        def run() -> None:
            text, signature = pick()
            cache.set(text, signature, MODEL)

        return run

    label, run = {
        "dict": ("dict store by text", dict_set),
        "legacy": (LEGACY, cache_set(caches.legacy)),
        "layered": ("LayeredSignatureCache (L1 now, L2 queued)", cache_set(caches.layered)),
    }[variant]
    describe(benchmark, f"cache: set ({OP_SIZE})", label, baseline=variant == "legacy")
    before = caches.layered.get_stats()
    started = time.perf_counter()
    benchmark(run)
    if variant == "layered":
        assert caches.layered.flush(120)
        after = caches.layered.get_stats()
        dropped = int(after["dropped_writes"]) - int(before["dropped_writes"])  # type: ignore[call-overload]
        benchmark.extra_info["dropped_writes"] = dropped
        benchmark.extra_info["drain_s"] = round(time.perf_counter() - started, 3)
        assert dropped == 0
