"""The process-default facade's wiring: Redis L2 from the environment, phase sync, /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sigcache import signature_cache as sc
from sigcache.api import create_app
from tests.contract import SIG_A
from tests.redis_server import redis_server, requires_redis
from tests.test_api_server import TOKEN, serve


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    sc.reset_signature_cache()
    yield
    sc.reset_signature_cache()


def test_a_legacy_process_starts_no_sync_and_creates_no_file(tmp_path: Path) -> None:
    db = tmp_path / "l2.db"
    sc.reset_signature_cache(environ={"CACHE_NEW_L2_DB_PATH": str(db)})
    assert sc.cache_signature("text", SIG_A) and sc.get_cached_signature("text") == SIG_A
    assert sc.get_cache_facade().phase_sync is None
    assert "shared_state" not in sc.get_migration_status()
    assert not db.exists()


def test_migration_mode_shares_the_phase(tmp_path: Path) -> None:
    env = {"CACHE_NEW_L2_DB_PATH": str(tmp_path / "l2.db"), "CACHE_USE_MIGRATION_ADAPTER": "1"}
    sc.reset_signature_cache(environ=env)
    sc.set_migration_phase("DUAL_WRITE", force=True, reason="test")
    assert sc.get_migration_status()["shared_state"]["running"]
    sync = sc.get_cache_facade().phase_sync
    assert sync is not None
    assert sync.backend.version() >= 1  # the change was saved to the shared store
    sc.reset_signature_cache()  # closing the facade stops its poller
    assert not sync.status().get("running", False)


@requires_redis
def test_redis_l2_from_the_environment(tmp_path: Path) -> None:
    with redis_server() as server:
        env = {
            "CACHE_NEW_L2_URL": server.url,
            "CACHE_NEW_L2_DB_PATH": str(tmp_path / "unused.db"),
            "CACHE_USE_MIGRATION_ADAPTER": "1",
            "CACHE_MIGRATION_PHASE": "NEW_ONLY",
        }
        sc.reset_signature_cache(environ=env)
        assert sc.cache_signature("stored in redis", SIG_A, owner_id="o")
        sc.get_cache_facade().new_cache().flush()  # type: ignore[union-attr]
        sc.reset_signature_cache(environ=env)  # a new process: empty L1, same Redis
        assert sc.get_cached_signature("stored in redis", owner_id="o") == SIG_A
        assert sc.get_migration_status()["phase"] == "NEW_ONLY"


def test_metrics_route(tmp_path: Path) -> None:
    sc.reset_signature_cache(environ={"CACHE_NEW_L2_DB_PATH": str(tmp_path / "l2.db")})
    sc.cache_signature("text", SIG_A)
    sc.get_cached_signature("text")
    with serve(create_app(sc.get_cache_facade(), token=TOKEN)) as url:
        response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert "sigcache_" in response.text
    assert TOKEN not in response.text and SIG_A not in response.text
