"""The `sigcache` command: client commands against a real server, `token`, and `serve`."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sigcache.api import create_app
from sigcache.auth import ENV_TOKEN, ENV_TOKEN_FILE
from sigcache.cli import main
from sigcache.facade import CacheFacade
from tests.test_api_server import TOKEN, make_facade, serve


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, CacheFacade]]:
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    monkeypatch.delenv(ENV_TOKEN_FILE, raising=False)
    facade = make_facade(tmp_path)
    with serve(create_app(facade, token=TOKEN)) as url:
        yield url, facade
    facade.close()


def run(url: str, *args: str, token: str | None = TOKEN) -> int:
    argv = [*args, "--url", url]
    return main([*argv, "--token", token] if token else argv)


def test_operator_walkthrough(
    server: tuple[str, CacheFacade], capsys: pytest.CaptureFixture[str]
) -> None:
    url, facade = server
    assert run(url, "status") == 0
    assert "LEGACY_ONLY" in capsys.readouterr().out
    assert run(url, "enable", "--reason", "[bold]start[/] [/oops]") == 0
    assert "migration mode enabled" in capsys.readouterr().out
    assert run(url, "phase", "dual_write", "--json") == 0
    body = json.loads(capsys.readouterr().out)
    assert body["data"]["phase"] == "DUAL_WRITE" and body["changed"] is True
    assert run(url, "phase", "NEW_PREFERRED", "--reason", "gate passed") == 0
    assert "DUAL_WRITE -> NEW_PREFERRED" in capsys.readouterr().out
    assert run(url, "history") == 0
    out = capsys.readouterr().out
    assert "api:default" in out and "gate passed" in out and TOKEN not in out
    assert "[/oops]" in out  # reasons are shown as text, never as rich markup
    assert run(url, "stats") == 0
    assert "hit_rate" in capsys.readouterr().out
    assert run(url, "stats", "--json") == 0
    assert json.loads(capsys.readouterr().out)["data"]["phase"] == "NEW_PREFERRED"
    assert run(url, "disable") == 0
    assert facade.is_migration_mode_enabled() is False


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("phase", "NEW_ONLY"), "migration mode is off (HTTP 409); POST /cache/migration/enable"),
        (("phase", "bogus"), "valid phases: LEGACY_ONLY, DUAL_WRITE, NEW_PREFERRED, NEW_ONLY"),
        (("phase", "x" * 100), "malformed request (HTTP 422)"),
    ],
)
def test_refusals_exit_1_with_one_line(
    server: tuple[str, CacheFacade],
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    reason: str,
) -> None:
    assert run(server[0], *args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and reason in err


def test_skipping_a_phase_exits_1(
    server: tuple[str, CacheFacade], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(server[0], "enable") == 0
    capsys.readouterr()
    assert run(server[0], "phase", "NEW_ONLY", "--json") == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["code"] == "illegal_transition"
    assert "one phase at a time" in captured.err


def test_token_problems(
    server: tuple[str, CacheFacade],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    assert run(server[0], "status", token="wrong-token-0123456789") == 1
    assert "invalid token (HTTP 401)" in capsys.readouterr().err
    assert run(server[0], "status", token=None) == 2
    assert "no token" in capsys.readouterr().err
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    assert run(server[0], "status", token=None) == 0
    monkeypatch.delenv(ENV_TOKEN)
    file = tmp_path / "tokens"
    file.write_text(f"ops:{TOKEN}\n")
    monkeypatch.setenv(ENV_TOKEN_FILE, str(file))
    assert run(server[0], "status", token=None) == 0


def test_unreachable_server_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        assert run(f"http://127.0.0.1:{port}", "status", "--timeout", "2") == 3
    assert "cannot reach" in capsys.readouterr().err


def test_token_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token"]) == 0
    assert len(capsys.readouterr().out.strip()) >= 43
    path = tmp_path / "tokens"
    assert main(["token", "--name", "ops", "--file", str(path)]) == 0
    captured = capsys.readouterr()
    secret = path.read_text().strip().split(":", 1)[1]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret not in captured.out + captured.err
    assert main(["token", "--name", "ops", "--file", str(path)]) == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_generates_a_token_once(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in (ENV_TOKEN, ENV_TOKEN_FILE)}
    env.update(CACHE_NEW_L2_DB_PATH=str(tmp_path / "l2.db"), XDG_DATA_HOME=str(tmp_path / "data"))
    command = [sys.executable, "-c", "from sigcache.cli import main; raise SystemExit(main())"]
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "generated API token" in line
        token = line.rsplit(" ", 1)[1].strip()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "sigcache serve did not start"
                time.sleep(0.05)
        auth = {"Authorization": f"Bearer {token}"}
        ok = httpx.post(f"{url}/cache/migration/enable", headers=auth)
        assert ok.status_code == 200
        assert ok.json()["data"]["persistence"]["db_path"] == str(tmp_path / "l2.db")
        assert httpx.get(f"{url}/cache/migration/status").status_code == 401
    finally:
        process.terminate()
        _, rest = process.communicate(timeout=15)
    assert token not in rest  # printed once, never logged
    assert (tmp_path / "l2.db").exists() and not (tmp_path / "data").exists()
