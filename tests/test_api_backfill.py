"""`POST /cache/migration/backfill` and `sigcache backfill` against a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sigcache.api import create_app
from sigcache.cli import main
from sigcache.facade import CacheFacade
from sigcache.migration_config import MigrationConfig
from tests.contract import FakeClock
from tests.expiring_layered import expiring_factory
from tests.test_api_server import AUTH, SIG, SIG2, TOKEN, serve


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, CacheFacade]]:
    config = MigrationConfig(new_l2_db_path=str(tmp_path / "l2.db"))
    facade = CacheFacade(config, clock=FakeClock(), new_cache_factory=expiring_factory)
    facade.cache_signature("a thinking text", SIG, owner_id="alice")  # legacy only: mode off
    facade.cache_tool_signature("toolu_1", SIG2)
    with serve(create_app(facade, token=TOKEN)) as url:
        yield url, facade
    facade.close()


def test_backfill_route(served: tuple[str, CacheFacade]) -> None:
    url, facade = served
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.post("/cache/migration/backfill").status_code == 401
        refused = client.post("/cache/migration/backfill", headers=AUTH)
        assert refused.status_code == 409
        body = refused.json()
        assert body["success"] is False and body["code"] == "backfill_refused"
        assert body["effective_phase"] == "LEGACY_ONLY" and "Traceback" not in refused.text
        client.post("/cache/migration/enable", headers=AUTH).raise_for_status()
        client.post(
            "/cache/migration/phase", params={"phase": "DUAL_WRITE"}, headers=AUTH
        ).raise_for_status()
        done = client.post("/cache/migration/backfill", params={"reason": "warm-up"}, headers=AUTH)
        assert done.status_code == 200
        data = done.json()["data"]
        assert done.json()["success"] is True
        assert (data["copied"], data["skipped_expired"], data["failed"]) == (2, 0, 0)
        history = client.get("/cache/migration/history", headers=AUTH).json()["data"]
        assert history[-1]["kind"] == "backfill" and history[-1]["actor"].startswith("api:")
        assert "warm-up" in history[-1]["reason"]
        bad = client.post("/cache/migration/backfill", params={"chunk_size": 0}, headers=AUTH)
        assert bad.status_code == 422
    new = facade.new_cache()
    assert new is not None and new.get("a thinking text", "alice") == SIG


def test_backfill_command(
    served: tuple[str, CacheFacade], capsys: pytest.CaptureFixture[str]
) -> None:
    url, facade = served
    base = ["--url", url, "--token", TOKEN]
    assert main(["backfill", *base]) == 1  # refused: migration mode is off
    assert "409" in capsys.readouterr().err
    facade.enable_migration_mode()
    facade.set_migration_phase("DUAL_WRITE")
    assert main(["backfill", "--reason", "cli warm-up", "--chunk-size", "1", *base]) == 0
    out = capsys.readouterr().out
    assert "Backfill" in out and "copied" in out
    assert main(["backfill", "--json", *base]) == 0
    assert '"skipped_present":2' in capsys.readouterr().out.replace(" ", "")
