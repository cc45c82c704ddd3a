"""Prometheus metrics: counters from the facade's stats, /metrics, multiprocess aggregation."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
from fastapi import FastAPI

from sigcache.facade import CacheFacade
from sigcache.metrics import MetricsPublisher, metrics_router
from sigcache.migration_config import MigrationConfig

TEXT = "a thought worth caching " * 4
SIG = "S" * 80


def _facade(tmp_path: Path) -> CacheFacade:
    facade = CacheFacade(MigrationConfig(new_l2_db_path=str(tmp_path / "l2.db")))
    facade.enable_migration_mode()
    facade.set_migration_phase("DUAL_WRITE", force=True)
    return facade


def test_counters_follow_stats_and_survive_a_reset(tmp_path: Path) -> None:
    facade = _facade(tmp_path)
    publisher = MetricsPublisher(lambda: facade)
    value = publisher.registry.get_sample_value
    facade.cache_signature(TEXT, SIG)
    for _ in range(3):
        facade.get_cached_signature(TEXT)
    facade.get_cached_signature("never written " * 4)
    facade.cache_signature("", SIG)  # rejected
    publisher.collect_once()
    assert value("sigcache_hits_total", {"cache": "legacy", "store": "main"}) == 3
    assert value("sigcache_misses_total", {"cache": "legacy", "store": "main"}) == 1
    assert value("sigcache_misses_total", {"cache": "new", "store": "main"}) == 1  # fallback read
    assert value("sigcache_rejected_writes_total") == 1
    assert value("sigcache_phase") == 2 and value("sigcache_migration_mode_enabled") == 1
    facade.reset_cache_stats()
    facade.get_cached_signature(TEXT)
    publisher.collect_once()
    assert value("sigcache_hits_total", {"cache": "legacy", "store": "main"}) == 4  # never down
    facade.disable_migration_mode()
    publisher.collect_once()
    assert value("sigcache_phase") == 1 and value("sigcache_migration_mode_enabled") == 0
    facade.close()


def test_provenance_counters_are_exported_by_reason(tmp_path: Path) -> None:
    facade = _facade(tmp_path)
    facade.set_migration_phase("NEW_PREFERRED", force=True)
    publisher = MetricsPublisher(lambda: facade)
    value = publisher.registry.get_sample_value
    claude, gemini = "claude-sonnet-4-5", "gemini-3-pro-high"
    assert facade.cache_signature(TEXT, SIG, claude, scope="acct-1")
    assert not facade.cache_signature("", SIG)
    assert not facade.cache_signature(TEXT, "skip_thought_signature_validator")
    assert not facade.cache_signature("cut " * 8, "S" * 81)  # 1 mod 4: a stream cut short
    assert facade.legacy.set("older " * 8, SIG, claude)  # only legacy holds it
    assert facade.get_cached_signature(TEXT, model=gemini) is None  # the new cache settles it
    assert facade.get_cached_signature(TEXT, scope="acct-2") is None
    assert facade.get_cached_signature("older " * 8, model=gemini) is None  # legacy's withheld
    assert facade.get_last_signature() == SIG  # no conversation: legacy answers (counted in new)
    publisher.collect_once()
    rejected = {"empty_text": 1, "placeholder": 1, "truncated": 1, "prefix": 0}
    for reason, count in rejected.items():
        labels = {"cache": "new", "reason": reason}
        assert value("sigcache_rejected_writes_by_reason_total", labels) == count
    for reason, count in {"family": 1, "scope": 1, "conversation": 1}.items():
        labels = {"cache": "new", "reason": reason}
        assert value("sigcache_provenance_misses_total", labels) == count
    withheld = {("new", "family"): 1, ("new", "scope"): 1, ("legacy", "family"): 1}
    for (cache, reason), count in withheld.items():
        labels = {"cache": cache, "reason": reason}
        assert value("sigcache_fallback_provenance_refusals_total", labels) == count
    facade.reset_cache_stats()
    publisher.collect_once()  # the reset is seen: counters restart from zero
    assert facade.get_cached_signature(TEXT, model=gemini) is None
    publisher.collect_once()
    labels = {"cache": "new", "reason": "family"}
    assert value("sigcache_fallback_provenance_refusals_total", labels) == 2  # never down
    assert value("sigcache_provenance_misses_total", labels) == 2
    facade.close()


def test_metrics_route_serves_the_text_format(tmp_path: Path) -> None:
    facade = _facade(tmp_path)
    publisher = MetricsPublisher(lambda: facade, interval=0.05).start()
    app = FastAPI()
    app.include_router(metrics_router(publisher))
    facade.get_cached_signature(TEXT)

    async def scrape() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/metrics")

    response = asyncio.run(scrape())
    publisher.stop()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'sigcache_misses_total{cache="legacy",store="main"} 1.0' in response.text
    assert "sigcache_l2_queue_depth" in response.text
    facade.close()


def test_broken_facade_never_breaks_collection() -> None:
    def broken() -> CacheFacade:
        raise RuntimeError("no facade")

    publisher = MetricsPublisher(broken)
    publisher.collect_once()  # logged, not raised
    assert b"sigcache_hits_total{" not in publisher.exposition()  # no samples yet


_WORKER = """
import sys
from sigcache.facade import CacheFacade
from sigcache.metrics import MetricsPublisher
from sigcache.migration_config import MigrationConfig
facade = CacheFacade(MigrationConfig(new_l2_db_path=sys.argv[1]))
for _ in range(int(sys.argv[2])):
    facade.get_cached_signature("missing " * 8)
MetricsPublisher(lambda: facade).collect_once()
facade.close()
"""
_SCRAPER = """
from sigcache.metrics import MetricsPublisher
print(MetricsPublisher(lambda: None).exposition().decode())
"""


def test_workers_aggregate_under_prometheus_multiproc_dir(tmp_path: Path) -> None:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    (tmp_path / "prom").mkdir()
    for misses in (2, 3):
        args = [sys.executable, "-c", textwrap.dedent(_WORKER), str(tmp_path / "l2.db")]
        subprocess.run([*args, str(misses)], env=env, check=True, timeout=60)
    scraped = subprocess.run(
        [sys.executable, "-c", _SCRAPER], env=env, check=True, timeout=60, capture_output=True
    ).stdout.decode()
    assert 'sigcache_misses_total{cache="legacy",store="main"} 5.0' in scraped
