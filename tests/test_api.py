"""Tokens (sigcache.auth) and the API's refusals, errors and mounting, on a real loopback server."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sigcache.api import create_app, create_router
from sigcache.auth import (
    ENV_TOKEN,
    ENV_TOKEN_FILE,
    ApiToken,
    TokenSet,
    generate_token,
    load_tokens,
    read_token_file,
    write_token_file,
)
from sigcache.errors import ConfigError
from sigcache.facade import CacheFacade, GuardDecision
from sigcache.migration_config import MigrationConfig
from sigcache.phases import MigrationPhase
from tests.test_api_server import AUTH, TOKEN, make_facade, serve

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef012"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- tokens -----------------------------------------------------------------------------------


def test_token_set_identifies_by_name_and_hides_secrets() -> None:
    tokens = TokenSet([ApiToken("alice", ALICE), ApiToken("bob", BOB)])
    assert tokens.identify(ALICE) == "alice" and tokens.identify(BOB) == "bob"
    for wrong in (None, "", ALICE[:-1], ALICE + "x", "é" * 20, "a" * 10_000):
        assert tokens.identify(wrong) is None
    assert ALICE not in repr(tokens) and ALICE not in repr(tokens.tokens[0])
    assert tokens.names == ("alice", "bob")


@pytest.mark.parametrize(
    ("name", "token"),
    [("ok", "short"), ("ok", "x" * 513), ("ok", "has space 0123456789"), ("bad name", ALICE)],
)
def test_weak_or_malformed_tokens_are_refused(name: str, token: str) -> None:
    with pytest.raises(ConfigError) as info:
        ApiToken(name, token)
    assert token not in str(info.value)


def test_token_set_needs_tokens_with_distinct_names() -> None:
    with pytest.raises(ConfigError):
        TokenSet([])
    with pytest.raises(ConfigError):
        TokenSet([ApiToken("a", ALICE), ApiToken("a", BOB)])


def test_generated_tokens_are_long_and_distinct() -> None:
    first, second = generate_token(), generate_token()
    assert first != second and len(first) >= 43
    ApiToken("generated", first)


def test_token_file_is_created_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    write_token_file(path, "alice", ALICE)
    write_token_file(path, "bob", BOB)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == f"alice:{ALICE}\nbob:{BOB}\n"
    assert read_token_file(path).names == ("alice", "bob")
    with pytest.raises(ConfigError, match="already holds"):
        write_token_file(path, "alice", generate_token())


def test_token_file_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# operators\n\n{ALICE}\nbob : {BOB}\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="sigcache.auth"):
        tokens = read_token_file(path)
    assert tokens.names == ("token3", "bob")
    assert "readable by others" in caplog.text and ALICE not in caplog.text
    path.write_text("# nothing here\n")
    with pytest.raises(ConfigError, match="no token"):
        read_token_file(path)
    path.write_text("ok:short\n")
    with pytest.raises(ConfigError, match="line 1"):
        read_token_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        read_token_file(tmp_path / "missing")


def test_load_tokens_from_variable_and_file(tmp_path: Path) -> None:
    assert load_tokens({}) is None
    single = load_tokens({ENV_TOKEN: f" {ALICE} "})
    assert single is not None and single.identify(ALICE) == "default"
    path = tmp_path / "tokens"
    write_token_file(path, "bob", BOB)
    both = load_tokens({ENV_TOKEN: ALICE, ENV_TOKEN_FILE: str(path)})
    assert both is not None and both.names == ("default", "bob")
    with pytest.raises(ConfigError, match=ENV_TOKEN):
        load_tokens({ENV_TOKEN: "pwd"})


def test_app_without_any_token_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    monkeypatch.delenv(ENV_TOKEN_FILE, raising=False)
    with pytest.raises(ConfigError, match="no API token"):
        create_app()
    monkeypatch.setenv(ENV_TOKEN, ALICE)
    assert create_app().title == "sigcache"


# -- the API's refusals and errors --------------------------------------------------------------


def test_actor_is_the_token_name_never_the_token(tmp_path: Path) -> None:
    facade = make_facade(tmp_path)
    tokens = TokenSet([ApiToken("alice", ALICE), ApiToken("bob", BOB)])
    with serve(create_app(facade, token=tokens)) as url:
        httpx.post(f"{url}/cache/migration/enable", headers=_bearer(ALICE), params={"reason": "go"})
        httpx.post(f"{url}/cache/migration/phase?phase=2", headers=_bearer(BOB))
        status = httpx.get(f"{url}/cache/migration/status", headers=_bearer(BOB)).text
    facade.close()
    actors = [(e["actor"], e["reason"]) for e in facade.get_migration_history()]
    assert actors == [("api:alice", "go"), ("api:bob", "")]
    assert ALICE not in status and BOB not in status


def test_phase_change_needs_migration_mode(tmp_path: Path) -> None:
    facade = make_facade(tmp_path)
    with serve(create_app(facade, token=TOKEN)) as url:
        response = httpx.post(f"{url}/cache/migration/phase?phase=DUAL_WRITE", headers=AUTH)
    facade.close()
    assert response.status_code == 409
    assert response.json()["code"] == "migration_disabled"
    assert facade.phase is MigrationPhase.LEGACY_ONLY and not facade.get_migration_history()


def test_gate_refusal_names_failed_rules_and_force_is_audited(tmp_path: Path) -> None:
    def guard(target: MigrationPhase) -> GuardDecision:
        return GuardDecision(False, None, ("aa_noise", "legacy_only_hits"))

    facade = make_facade(tmp_path, promotion_guard=guard)
    with serve(create_app(facade, token=TOKEN)) as url, httpx.Client(headers=AUTH) as client:
        client.post(f"{url}/cache/migration/enable")
        refused = client.post(f"{url}/cache/migration/phase", params={"phase": "dual_write"})
        assert refused.status_code == 409
        body = refused.json()
        assert body["code"] == "gate_refused"
        assert body["failed_rules"] == ["aa_noise", "legacy_only_hits"]
        assert facade.phase is MigrationPhase.LEGACY_ONLY
        params = {"phase": "dual_write", "force": "true", "reason": "incident 42"}
        forced = client.post(f"{url}/cache/migration/phase", params=params)
        assert forced.status_code == 200 and forced.json()["changed"] is True
        # Rollback is never gated.
        back = client.post(f"{url}/cache/migration/phase", params={"phase": "LEGACY_ONLY"})
        assert back.status_code == 200
    facade.close()
    entry = next(e for e in facade.get_migration_history() if e["kind"] == "phase")
    assert (entry["forced"], entry["reason"], entry["actor"]) == (
        True,
        "incident 42",
        "api:default",
    )


def test_unbuildable_new_cache_refuses_without_leaking_details(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(db_path: str, *, config: MigrationConfig, clock: Any) -> Any:
        raise OSError("/very/secret/path is read-only")

    facade = make_facade(tmp_path, new_cache_factory=broken)
    with serve(create_app(facade, token=TOKEN)) as url, httpx.Client(headers=AUTH) as client:
        client.post(f"{url}/cache/migration/enable")
        response = client.post(f"{url}/cache/migration/phase", params={"phase": "DUAL_WRITE"})
    facade.close()
    assert response.status_code == 409
    assert response.json()["code"] == "promotion_refused"
    assert "secret" not in response.text
    assert facade.phase is MigrationPhase.LEGACY_ONLY


def test_server_errors_carry_an_id_and_no_exception_text(caplog: pytest.LogCaptureFixture) -> None:
    def provider() -> CacheFacade:
        raise RuntimeError("internal detail: /etc/secret")

    app = FastAPI()
    app.include_router(create_router(provider, tokens=TokenSet.single(TOKEN)))
    with caplog.at_level(logging.ERROR, logger="sigcache.api"), serve(app) as url:
        response = httpx.get(f"{url}/cache/migration/status", headers=AUTH)
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"success", "error", "error_id"} and body["success"] is False
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert body["error_id"] in caplog.text and "internal detail" in caplog.text


def test_router_mounts_under_a_prefix_in_a_host_app(tmp_path: Path) -> None:
    facade = make_facade(tmp_path)
    host = FastAPI()

    @host.get("/own")
    def own() -> dict[str, str]:
        return {"host": "route"}

    router = create_router(lambda: facade, tokens=TokenSet.single(TOKEN), data_plane=False)
    host.include_router(router, prefix="/sigcache")
    with serve(host) as url:
        status = httpx.get(f"{url}/sigcache/cache/migration/status", headers=AUTH)
        denied = httpx.get(f"{url}/sigcache/cache/migration/status")
        missing = httpx.put(f"{url}/sigcache/cache/signature", headers=AUTH, json={})
        own_route = httpx.get(f"{url}/own").json()
        paths = set(httpx.get(f"{url}/openapi.json").json()["paths"])
    facade.close()
    assert status.json()["data"]["phase"] == "LEGACY_ONLY"
    assert denied.status_code == 401 and denied.headers["WWW-Authenticate"] == "Bearer"
    assert missing.status_code in (404, 405)  # data plane off
    assert own_route == {"host": "route"}
    assert "/sigcache/cache/migration/phase" in paths and "/sigcache/cache/signature" not in paths
