"""Live consistency sampling: the read path at the default sample rate against sampling off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from sigcache.facade import CacheFacade
from sigcache.migration_config import MigrationConfig
from sigcache.phases import MigrationPhase
from sigcache.sampling import DEFAULT_SAMPLE_RATE

from .conftest import MODEL, OP_SIZE, POOL, Corpus, Target, cycle, describe

OFF = "DUAL_WRITE get-hit, sampling off"
# rate -> label
CASES = {0.0: OFF, DEFAULT_SAMPLE_RATE: f"DUAL_WRITE get-hit, sampling {DEFAULT_SAMPLE_RATE:g}"}
TARGET = Target("sampling at its default rate <= 1.05x sampling off", OFF, 1.05)


@pytest.fixture(params=list(CASES), ids=["off", "default"])
def facade(
    request: pytest.FixtureRequest, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[CacheFacade, list[str]]]:
    """A DUAL_WRITE facade holding POOL texts, at the case's sample rate."""
    rate: float = request.param
    config = MigrationConfig(
        new_l2_db_path=str(tmp_path_factory.mktemp("sampling") / "l2.db"),
        use_migration_adapter=True,
        consistency_sample_rate=rate,
    )
    cache = CacheFacade(config)
    cache.set_migration_phase(MigrationPhase.DUAL_WRITE, force=True)
    texts = corpus.texts(OP_SIZE, POOL)
    for seed, text in enumerate(texts):
        assert cache.cache_signature(text, corpus.signature(seed), MODEL)
    yield cache, texts
    cache.close()


def test_sampling_get_hit(
    benchmark: BenchmarkFixture,
    facade: tuple[CacheFacade, list[str]],
    request: pytest.FixtureRequest,
) -> None:
    """A legacy hit through the proxy; 1 in 100 also queues a comparison for the worker."""
    cache, texts = facade
    rate = cache.config.consistency_sample_rate
    describe(
        benchmark,
        f"sampling: DUAL_WRITE get-hit ({OP_SIZE})",
        CASES[rate],
        baseline=rate == 0.0,
        targets=[] if rate == 0.0 else [TARGET],
    )
    pick = cycle(texts)

    def run() -> str | None:
        return cache.get_cached_signature(pick())

    assert run() is not None
    benchmark(run)
    assert cache.sampler.drain(60)
    live = cache.get_migration_status()["live_consistency"]
    benchmark.extra_info["samples"] = live["samples"]
    benchmark.extra_info["dropped"] = live["dropped"]
    if rate:
        assert live["classes"]["value_mismatch"] == 0
