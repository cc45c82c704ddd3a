"""Security: constant-time tokens, no secret in logs, errors, reports or OpenAPI; file modes."""

from __future__ import annotations

import inspect
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sigcache.api import create_app
from sigcache.auth import TokenSet
from sigcache.keys import is_valid_signature
from sigcache.layered import LayeredSignatureCache
from sigcache.recorder import Recorder
from tests.reliability.support import FIGURES, PHASES, make_facade, serve, sig, text

TOKEN = "sec-token-ZXhhbXBsZS1zZWNyZXQtdG9rZW4"
SECRET_TEXTS = [text(f"secret reasoning {i}", 400) for i in range(6)]
SECRET_SIGS = [sig(f"secret signature {i}") for i in range(6)]


def test_tokens_are_compared_in_constant_time() -> None:
    """`identify` compares with hmac.compare_digest against every token, never with ==."""
    source = inspect.getsource(TokenSet.identify)
    assert "hmac.compare_digest(" in source
    loop = source[source.index("for name, secret in self._secrets") :]
    assert "break" not in loop and "return" not in loop.split("\n", 2)[1], "early exit leaks"
    assert "== secret" not in source and "secret ==" not in source
    tokens = TokenSet.single(TOKEN)
    assert tokens.identify(TOKEN) == "default"
    assert tokens.identify(TOKEN[:-1] + "x") is None
    assert tokens.identify("é" * 20) is None and tokens.identify("x" * 10_000) is None


class _All(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # message plus any traceback


@pytest.fixture
def every_log_line() -> Iterator[list[str]]:
    handler = _All()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def _secrets_in(blob: str) -> list[str]:
    found = [f"token in {blob[:80]!r}"] if TOKEN in blob else []
    found += [f"text {i}" for i, t in enumerate(SECRET_TEXTS) if t[:60] in blob]
    found += [f"signature {i}" for i, s in enumerate(SECRET_SIGS) if s in blob]
    return found


def test_no_secret_in_logs_errors_or_openapi(tmp_path: Path, every_log_line: list[str]) -> None:
    """A full session through every phase and the HTTP API, then grep everything it produced."""
    facade = make_facade(tmp_path / "sec.db", "LEGACY_ONLY")
    bodies: list[str] = []
    with serve(create_app(facade, token=TOKEN)) as url:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=url, headers=auth, timeout=10) as client:
            for phase in PHASES[1:]:
                assert client.post("/cache/migration/phase", params={"phase": phase}).is_success
                for t, s in zip(SECRET_TEXTS, SECRET_SIGS, strict=True):
                    bodies.append(
                        client.put(
                            "/cache/signature",
                            json={"thinking_text": t, "signature": s, "owner_id": "o"},
                        ).text
                    )
                    bodies.append(
                        client.post("/cache/signature/lookup", json={"thinking_text": t}).text
                    )
                    facade.cache_tool_signature(f"toolu_{phase}", s, "o")
                    facade.cache_session_signature(f"sess_{phase}", s, t, "o")
                    facade.get_session_signature_with_text(f"sess_{phase}", "o")
                    facade.invalidate(t)
                bodies.append(client.get("/cache/migration/status").text)
            # Errors: a wrong token, a too-long text, a malformed body, an unknown phase.
            bodies.append(
                httpx.get(
                    f"{url}/cache/migration/status", headers={"Authorization": f"Bearer {TOKEN}x"}
                ).text
            )
            bodies.append(
                client.put(
                    "/cache/signature",
                    json={"thinking_text": SECRET_TEXTS[0] * 3000, "signature": SECRET_SIGS[0]},
                ).text
            )
            bodies.append(client.put("/cache/signature", content=SECRET_TEXTS[1].encode()).text)
            bodies.append(
                client.post("/cache/migration/phase", params={"phase": "NO_SUCH_PHASE"}).text
            )
            openapi = json.dumps(client.get("/openapi.json").json())
    facade.close()
    FIGURES.add("log_records_scanned", len(every_log_line))
    assert every_log_line, "the session logged nothing: the capture is broken"
    assert [f for line in every_log_line for f in _secrets_in(line)] == []
    # A response may carry a signature the caller asked for; an error body never echoes input.
    errors = bodies[-4:]
    assert [f for body in errors for f in _secrets_in(body)] == []
    assert _secrets_in(openapi) == []
    examples = [v for k, v in _walk(json.loads(openapi)) if k in ("example", "examples")]
    assert not [e for e in examples if isinstance(e, str) and is_valid_signature(e)]


def _walk(node: object) -> Iterator[tuple[str, object]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_no_secret_in_a_harness_report(tmp_path: Path) -> None:
    """Record a redacted session, replay it with the harness; the report holds no secret."""
    from harness.replayer import replay

    recording = tmp_path / "rec.jsonl"
    facade = make_facade(tmp_path / "rep.db", "LEGACY_ONLY")
    from sigcache.redaction import Redactor

    recorder = Recorder(recording, redactor=Redactor.random())
    facade.add_observer(recorder)
    for t, s in zip(SECRET_TEXTS, SECRET_SIGS, strict=True):
        facade.cache_signature(t, s, None, "o")
        facade.get_cached_signature(t, "o")
    recorder.close()
    facade.close()
    assert _secrets_in(recording.read_text()) == []
    outcome = replay(recording)
    blob = repr(outcome)
    assert _secrets_in(blob) == []


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_database_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual service umask
    try:
        with LayeredSignatureCache(tmp_path / "data" / "l2.db") as cache:
            cache.set(SECRET_TEXTS[0], SECRET_SIGS[0])
            assert cache.flush(10)
            files = sorted((tmp_path / "data").iterdir())
            modes = {f.name: oct(_mode(f)) for f in [tmp_path / "data", *files]}
    finally:
        os.umask(old)
    assert all(int(m, 8) & 0o077 == 0 for m in modes.values()), modes


def test_recordings_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        recorder = Recorder(tmp_path / "traffic.jsonl")
        recorder.close()
    finally:
        os.umask(old)
    assert _mode(tmp_path / "traffic.jsonl") & 0o077 == 0, oct(_mode(tmp_path / "traffic.jsonl"))
