"""The HTTP API on a real uvicorn server on loopback: the seed guide, auth, parameter limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sigcache.api import create_app
from sigcache.facade import CacheFacade
from sigcache.migration_config import MigrationConfig
from tests.servers import serve

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SIG = "Eq" + "A1b2C3d4" * 12  # a valid signature: >= 50 characters of base64
SIG2 = "Zz" + "x9Y8w7V6" * 12

# (method, path, query, json body) of every authenticated route.
ROUTES: list[tuple[str, str, dict[str, str], dict[str, Any] | None]] = [
    ("GET", "/cache/migration/status", {}, None),
    ("POST", "/cache/migration/enable", {}, None),
    ("POST", "/cache/migration/disable", {}, None),
    ("POST", "/cache/migration/phase", {"phase": "DUAL_WRITE"}, None),
    ("GET", "/cache/migration/history", {}, None),
    ("GET", "/cache/signature/stats", {}, None),
    ("POST", "/cache/signature/clear", {}, None),
    ("POST", "/cache/signature/cleanup", {}, None),
    ("PUT", "/cache/signature", {}, {"thinking_text": "t", "signature": SIG}),
    ("POST", "/cache/signature/lookup", {}, {"thinking_text": "t"}),
]


def make_facade(tmp_path: Path, **kwargs: Any) -> CacheFacade:
    """A facade whose L2 database lives under the test's temporary directory."""
    return CacheFacade(MigrationConfig(new_l2_db_path=str(tmp_path / "l2.db")), **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, CacheFacade]]:
    facade = make_facade(tmp_path_factory.mktemp("api"))
    with serve(create_app(facade, token=TOKEN)) as url:
        assert httpx.get(f"{url}/healthz").json()["data"] == {"status": "ok"}
        yield url, facade
    facade.close()


@pytest.fixture
def client(server: tuple[str, CacheFacade]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0], headers=AUTH, timeout=10) as c:
        yield c


def _where(facade: CacheFacade, text: str, owner: str | None = None) -> tuple[bool, bool]:
    """(in legacy, in new) for a text, read straight from each cache."""
    new = facade.new_cache(build=False)
    in_new = new is not None and new.get(text, owner) is not None
    return facade.legacy.get(text, owner) is not None, in_new


def _phase(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.post("/cache/migration/phase", params={"phase": name})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is True and body["changed"] is True
    return body


def _write_and_check(
    client: httpx.Client, facade: CacheFacade, text: str, where: tuple[bool, bool]
) -> None:
    put = client.put("/cache/signature", json={"thinking_text": text, "signature": SIG})
    assert put.json() == {"success": True, "data": {"cached": True}}
    assert _where(facade, text) == where
    found = client.post("/cache/signature/lookup", json={"thinking_text": text}).json()
    assert found["data"] == {"hit": True, "signature": SIG}


def test_seed_guide_sequence(client: httpx.Client, server: tuple[str, CacheFacade]) -> None:
    facade = server[1]
    status = client.get("/cache/migration/status").json()
    assert status["success"] is True
    assert status["data"]["migration_mode_enabled"] is False
    assert status["data"]["phase"] == "LEGACY_ONLY"
    _write_and_check(client, facade, "off: legacy only", (True, False))

    enabled = client.post("/cache/migration/enable").json()
    assert enabled["data"]["migration_mode_enabled"] is True and enabled["changed"] is True
    _write_and_check(client, facade, "on, legacy only", (True, False))

    assert _phase(client, "dual_write")["data"]["effective_phase"] == "DUAL_WRITE"
    _write_and_check(client, facade, "dual write", (True, True))

    _phase(client, "New_Preferred")
    _write_and_check(client, facade, "new preferred", (True, True))
    # A text only legacy holds is found by fallback and repaired into the new cache.
    facade.legacy.set("legacy only text", SIG2, None, "owner-a")
    lookup = {"thinking_text": "legacy only text", "owner_id": "owner-a"}
    found = client.post("/cache/signature/lookup", json=lookup)
    assert found.json()["data"]["signature"] == SIG2
    assert _where(facade, "legacy only text", "owner-a") == (True, True)

    _phase(client, "NEW_ONLY")
    _write_and_check(client, facade, "new only", (False, True))
    # Provenance (issue 13): a Claude signature is never handed to a Gemini lookup.
    put = {"thinking_text": "claude's", "signature": SIG, "model": "claude-x", "scope": "acct"}
    assert client.put("/cache/signature", json=put).json()["data"] == {"cached": True}
    gemini = {"thinking_text": "claude's", "model": "gemini-3", "conversation_id": "c"}
    assert client.post("/cache/signature/lookup", json=gemini).json()["data"]["hit"] is False
    stats = client.get("/cache/signature/stats").json()["data"]["new_cache_stats"]
    assert stats["provenance_misses_family"] == 1
    facade.legacy.set("unreachable in NEW_ONLY", SIG2)
    miss = client.post("/cache/signature/lookup", json={"thinking_text": "unreachable in NEW_ONLY"})
    assert miss.json()["data"] == {"hit": False, "signature": None}

    for name, where in (("NEW_PREFERRED", (True, True)), ("DUAL_WRITE", (True, True))):
        _phase(client, name)
        _write_and_check(client, facade, f"rollback to {name}", where)
    _phase(client, "LEGACY_ONLY")
    _write_and_check(client, facade, "rolled back to legacy", (True, False))

    disabled = client.post("/cache/migration/disable").json()
    assert disabled["data"]["migration_mode_enabled"] is False
    _write_and_check(client, facade, "disabled again", (True, False))

    history = client.get("/cache/migration/history").json()["data"]
    moves = [(e["from"], e["to"]) for e in history if e["kind"] == "phase"]
    assert moves == [
        ("LEGACY_ONLY", "DUAL_WRITE"),
        ("DUAL_WRITE", "NEW_PREFERRED"),
        ("NEW_PREFERRED", "NEW_ONLY"),
        ("NEW_ONLY", "NEW_PREFERRED"),
        ("NEW_PREFERRED", "DUAL_WRITE"),
        ("DUAL_WRITE", "LEGACY_ONLY"),
    ]
    assert {e["actor"] for e in history} == {"api:default"}
    stats = client.get("/cache/signature/stats").json()["data"]
    assert stats["phase"] == "LEGACY_ONLY" and 0.0 <= stats["hit_rate"] <= 1.0
    assert client.post("/cache/signature/clear").json()["data"]["cleared_count"] >= 1
    assert client.post("/cache/signature/cleanup").json()["data"] == {"cleaned_count": 0}


def test_skipping_a_phase_is_refused(client: httpx.Client, server: tuple[str, CacheFacade]) -> None:
    client.post("/cache/migration/enable")
    try:
        response = client.post("/cache/migration/phase", params={"phase": "NEW_PREFERRED"})
        assert response.status_code == 409
        body = response.json()
        assert body["success"] is False and body["code"] == "illegal_transition"
        assert (body["current_phase"], body["requested_phase"]) == ("LEGACY_ONLY", "NEW_PREFERRED")
        assert server[1].phase.name == "LEGACY_ONLY"
    finally:
        client.post("/cache/migration/disable")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        f"Bearer {TOKEN} {TOKEN}",
        b"Bearer " + b"\xe9" * 30,
        f"Basic {TOKEN}",
        f"bearer{TOKEN}",
        f"Token {TOKEN}",
        "Bearer wrong-token-0123456789abcdef",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer " + "a" * 5000,
    ],
)
def test_every_route_rejects_missing_malformed_and_wrong_tokens(
    server: tuple[str, CacheFacade], header: str | bytes | None
) -> None:
    value = header.encode("latin-1") if isinstance(header, str) else header
    headers: dict[bytes, bytes] = {} if value is None else {b"Authorization": value}
    before = server[1].get_migration_history()
    with httpx.Client(base_url=server[0], timeout=10) as anonymous:
        for method, path, params, body in ROUTES:
            response = anonymous.request(method, path, params=params, json=body, headers=headers)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert response.json()["success"] is False
            assert TOKEN not in response.text
        assert anonymous.get("/healthz").json() == {"success": True, "data": {"status": "ok"}}
    assert server[1].get_migration_history() == before


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"phase": "PHASE_FIVE"}, 400),
        ({"phase": "5"}, 400),
        ({"phase": "0"}, 400),
        ({"phase": " "}, 400),
        ({"phase": "<script>"}, 400),
        ({}, 422),
        ({"phase": ""}, 422),
        ({"phase": "DUAL_WRITE" * 1000}, 422),
        ({"phase": "DUAL_WRITE", "force": "maybe"}, 422),
        ({"phase": "DUAL_WRITE", "reason": "r" * 501}, 422),
    ],
)
def test_bad_phase_parameters(client: httpx.Client, params: dict[str, str], status: int) -> None:
    response = client.post("/cache/migration/phase", params=params)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    if status == 400:
        assert body["valid_phases"] == ["LEGACY_ONLY", "DUAL_WRITE", "NEW_PREFERRED", "NEW_ONLY"]
    else:
        assert body["errors"] and all("input" not in e for e in body["errors"])


@pytest.mark.parametrize(
    ("method", "path", "params", "body"),
    [
        ("GET", "/cache/migration/history", {"limit": "0"}, None),
        ("GET", "/cache/migration/history", {"limit": "9" * 400}, None),
        ("POST", "/cache/migration/enable", {"reason": "x" * 10_000}, None),
        ("PUT", "/cache/signature", {}, {"thinking_text": "", "signature": SIG}),
        ("PUT", "/cache/signature", {}, {"thinking_text": "t", "signature": "s" * 70_000}),
        ("PUT", "/cache/signature", {}, {"thinking_text": "t" * 1_100_000, "signature": SIG}),
        ("PUT", "/cache/signature", {}, {"thinking_text": "t", "signature": SIG, "x": 1}),
        ("PUT", "/cache/signature", {}, {"thinking_text": "t"}),
        ("POST", "/cache/signature/lookup", {}, {"thinking_text": "t", "owner_id": "o" * 300}),
        ("POST", "/cache/signature/lookup", {}, {"thinking_text": 12}),
        ("POST", "/cache/signature/lookup", {}, None),
    ],
)
def test_empty_and_huge_parameters_are_422(
    client: httpx.Client,
    method: str,
    path: str,
    params: dict[str, str],
    body: dict[str, Any] | None,
) -> None:
    response = client.request(method, path, params=params, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["success"] is False
    assert len(response.content) < 2_000  # the offending input is never echoed back


def test_malformed_json_body_is_422(client: httpx.Client) -> None:
    response = client.post(
        "/cache/signature/lookup",
        content=b'{"thinking_text": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "json_invalid"
