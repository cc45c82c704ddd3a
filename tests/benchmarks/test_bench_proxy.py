"""The phase proxy: the module API in each phase against direct legacy calls."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from sigcache import signature_cache as sc
from sigcache.phases import MigrationPhase

from .conftest import MODEL, OP_SIZE, POOL, Corpus, Target, cycle, describe

LEGACY = "legacy SignatureCache (direct call)"
OFF, ON = "mode off", "mode on"
# id -> (label, migration mode on, phase); "dual_write_async": CACHE_ASYNC_WRITE_TO_NEW on
CASES: dict[str, tuple[str, bool, MigrationPhase]] = {
    "legacy": (LEGACY, False, MigrationPhase.LEGACY_ONLY),
    "facade-off": ("CacheFacade method, mode off", False, MigrationPhase.LEGACY_ONLY),
    "off": ("module API, mode off (LEGACY_ONLY)", False, MigrationPhase.LEGACY_ONLY),
    **{
        phase.name.lower(): (f"module API, {ON}, {phase.name}", True, phase)
        for phase in MigrationPhase
    },
    "dual_write_async": (
        f"module API, {ON}, DUAL_WRITE, async_write_to_new",
        True,
        MigrationPhase.DUAL_WRITE,
    ),
}
ASYNC_CASES = frozenset({"dual_write_async"})
PROXY_TARGET = Target("proxy overhead in LEGACY_ONLY <= 1.1x a direct legacy call", LEGACY, 1.1)
DUAL_TARGET = Target("DUAL_WRITE write <= 1.5x legacy set", LEGACY, 1.5)
_serial = itertools.count()


@pytest.fixture
def proxy(
    request: pytest.FixtureRequest, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """The process-default facade in the case's mode and phase, POOL texts written through it."""
    _, enabled, phase = CASES[request.param]
    root: Path = tmp_path_factory.mktemp("proxy")
    environ = {
        "CACHE_NEW_L2_DB_PATH": str(root / f"proxy-{next(_serial)}.db"),
        "CACHE_USE_MIGRATION_ADAPTER": "true" if enabled else "false",
        "CACHE_ASYNC_WRITE_TO_NEW": "true" if request.param in ASYNC_CASES else "false",
    }
    sc.reset_signature_cache(environ=environ)
    for step in range(MigrationPhase.DUAL_WRITE, phase + 1):
        # One step at a time (the promotion rule); forced: a benchmark has no gate verdict.
        sc.set_migration_phase(step, actor="bench", reason="benchmark set-up", force=True)
    texts = corpus.texts(OP_SIZE, POOL)
    for seed, text in enumerate(texts):
        assert sc.cache_signature(text, corpus.signature(seed), MODEL)
    _flush()
    yield texts
    sc.reset_signature_cache()  # closes the facade; nothing rebuilds it until the next call


def _flush() -> None:
    new = sc.get_cache_facade().new_cache()  # applies deferred shadow writes first
    flush: Callable[[float], bool] | None = getattr(new, "flush", None)
    if flush is not None:
        assert flush(120)


def _new_stat(name: str) -> int:
    new = sc.get_cache_facade().new_cache()
    return int(new.get_stats().get(name, 0)) if new is not None else 0  # type: ignore[call-overload]


def _reader(variant: str) -> Callable[[str], str | None]:
    facade = sc.get_cache_facade()
    if variant == "legacy":
        return facade.legacy.get
    if variant == "facade-off":
        return facade.get_cached_signature
    return sc.get_cached_signature


def _writer(variant: str) -> Callable[[str, str, str], bool]:
    facade = sc.get_cache_facade()
    if variant == "legacy":
        return facade.legacy.set
    if variant == "facade-off":
        return facade.cache_signature
    return sc.cache_signature


def _check_phase(variant: str) -> None:
    _, enabled, phase = CASES[variant]
    status = sc.get_migration_status()
    assert status["migration_mode_enabled"] is enabled and status["phase"] == phase.name


VARIANTS = list(CASES)


@pytest.mark.parametrize("proxy", VARIANTS, indirect=True, ids=VARIANTS)
def test_proxy_get_hit(
    benchmark: BenchmarkFixture, proxy: list[str], request: pytest.FixtureRequest
) -> None:
    """A hit on a 2 KB text through the proxy (L1 hit where the new cache answers)."""
    variant = request.node.callspec.id
    _check_phase(variant)
    targets = [PROXY_TARGET] if variant in ("off", "legacy_only") else []
    describe(
        benchmark,
        f"proxy: get-hit ({OP_SIZE})",
        CASES[variant][0],
        baseline=variant == "legacy",
        targets=targets,
    )
    get, text = _reader(variant), proxy[POOL // 2]
    assert get(text) is not None
    benchmark(get, text)


@pytest.mark.parametrize("proxy", VARIANTS, indirect=True, ids=VARIANTS)
def test_proxy_get_miss(
    benchmark: BenchmarkFixture, proxy: list[str], corpus: Corpus, request: pytest.FixtureRequest
) -> None:
    """A miss (DUAL_WRITE falls back to the new cache, so it pays an L2 look-up)."""
    variant = request.node.callspec.id
    _check_phase(variant)
    describe(
        benchmark, f"proxy: get-miss ({OP_SIZE})", CASES[variant][0], baseline=variant == "legacy"
    )
    get, text = _reader(variant), corpus.text(OP_SIZE, 10 * POOL)
    assert get(text) is None
    benchmark(get, text)


@pytest.mark.parametrize("proxy", VARIANTS, indirect=True, ids=VARIANTS)
def test_proxy_set(
    benchmark: BenchmarkFixture, proxy: list[str], corpus: Corpus, request: pytest.FixtureRequest
) -> None:
    """Overwrite existing entries (cycling POOL texts) through the proxy."""
    variant = request.node.callspec.id
    _check_phase(variant)
    targets = [DUAL_TARGET] if variant in ("dual_write", "dual_write_async") else []
    describe(
        benchmark,
        f"proxy: set ({OP_SIZE})",
        CASES[variant][0],
        baseline=variant == "legacy",
        targets=targets,
    )
    put = _writer(variant)
    pick = cycle([(text, corpus.signature(seed + 1)) for seed, text in enumerate(proxy)])

    def run() -> bool:
        text, signature = pick()
        return put(text, signature, MODEL)

    dropped = _new_stat("dropped_writes")
    started = time.perf_counter()
    benchmark(run)
    _flush()
    benchmark.extra_info["dropped_writes"] = _new_stat("dropped_writes") - dropped
    benchmark.extra_info["drain_s"] = round(time.perf_counter() - started, 3)
