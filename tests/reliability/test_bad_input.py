"""Bad input through the library, the HTTP API, the environment and the recording reader."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import httpx
import pytest

from sigcache.api import create_app
from sigcache.errors import ConfigError, RecordingError
from sigcache.migration_config import ENV_VARS, MigrationConfig
from sigcache.recording import read_recording
from tests.reliability.support import FIGURES, PHASES, make_facade, serve, sig, text

TOKEN = "bad-input-token-0123456789abcdef"
BAD_VALUES: list[Any] = [
    None,
    0,
    -1,
    10**40,
    1.5,
    float("nan"),
    b"bytes",
    bytearray(b"x"),
    [],
    {},
    object(),
    True,
    "",
]
BAD_TEXTS: list[Any] = [*BAD_VALUES, " ", "\n\t  ", "<think></think>"]
BAD_SIGNATURES: list[Any] = [
    *BAD_VALUES,
    "short",
    "A" * 49,
    "A" * 60 + "!",
    "A" * 60 + "\ud800",
    "A" * 60 + " DROP",
]


@pytest.mark.parametrize("phase", PHASES)
def test_library_bad_input_gets_false_or_none(tmp_path: Path, phase: str) -> None:
    """Nothing raises, nothing is stored, the good entry still answers."""
    facade = make_facade(tmp_path / "bad.db", phase)
    good = text("the good entry")
    assert facade.cache_signature(good, sig("good"), None, "o") is True
    before = facade.get_cache_stats()["dual_write_stats"]["total_writes"]
    for value in BAD_VALUES:
        assert facade.cache_tool_signature(value, sig("x"), "o") is False
        assert facade.get_tool_signature(value, "o") is None
        assert facade.cache_session_signature(value, sig("x"), "t", "o") is False
        assert facade.get_session_signature_with_text(value, "o") is None
        facade.get_recent_signature(value, value, "o")  # must not raise
        FIGURES.add("inputs_tried", 7)
    for value in BAD_TEXTS:
        assert facade.cache_signature(value, sig("x"), None, "o") is False
        assert facade.get_cached_signature(value, "o") is None
        FIGURES.add("inputs_tried", 2)
    for bad_sig in BAD_SIGNATURES:
        assert facade.cache_signature(text("a valid text"), bad_sig, None, "o") is False
        FIGURES.add("inputs_tried")
    assert facade.get_cached_signature(text("a valid text"), "o") is None
    assert facade.get_cache_stats()["dual_write_stats"]["total_writes"] == before
    # Odd but valid texts are stored and read back exactly, and disturb nothing else.
    for odd in ["'; DROP TABLE entries; --", "\ud800 lone", "ctl \x00\x07", "x" * 10_000_000]:
        assert facade.cache_signature(odd, sig(odd[:40]), None, "o") is True
        assert facade.get_cached_signature(odd, "o") == sig(odd[:40])
        FIGURES.add("inputs_tried")
    assert facade.get_cached_signature(good, "o") == sig("good")
    facade.close()


ENV_BAD = ["-1", "0", "abc", "nan", "inf", "-inf", "1e999", "\x00"]


NUMERIC_VARS = [
    "CACHE_LEGACY_MAX_SIZE", "CACHE_LEGACY_TTL", "CACHE_NEW_L1_MAX_SIZE", "CACHE_NEW_L1_TTL",
    "CACHE_NEW_L2_MAX_SIZE", "CACHE_NEW_L2_TTL", "CACHE_DUAL_WRITE_FAILURE_POLICY",
]  # fmt: skip


@pytest.mark.parametrize("var", NUMERIC_VARS)
def test_env_numbers_raise_config_error_naming_the_variable(var: str) -> None:
    assert var in ENV_VARS
    for raw in ENV_BAD:
        if var == "CACHE_DUAL_WRITE_FAILURE_POLICY" and raw in ("0",):
            continue
        with pytest.raises(ConfigError, match=var):
            MigrationConfig.from_env({var: raw})
        FIGURES.add("inputs_tried")


def test_env_phase_and_mode_and_ttl_order() -> None:
    for var, raw in [
        ("CACHE_MIGRATION_PHASE", "PHASE_9"),
        ("CACHE_MIGRATION_PHASE", "5"),
        ("CACHE_MIGRATION_PHASE", "-1"),
        ("CACHE_USE_MIGRATION_ADAPTER", "maybe"),
    ]:
        with pytest.raises(ConfigError, match=var):
            MigrationConfig.from_env({var: raw})
        FIGURES.add("inputs_tried")
    with pytest.raises(ConfigError, match="CACHE_NEW_L1_TTL"):
        MigrationConfig.from_env({"CACHE_NEW_L1_TTL": "100", "CACHE_NEW_L2_TTL": "10"})
    huge = MigrationConfig.from_env({"CACHE_LEGACY_MAX_SIZE": str(10**30)})
    assert huge.legacy_max_size == 10**30  # huge but valid: accepted, and harmless


def test_http_bad_input_is_a_clear_4xx(tmp_path: Path) -> None:
    facade = make_facade(tmp_path / "http.db", "DUAL_WRITE")
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("PUT", "/cache/signature", {"content": b"{not json"}),
        ("PUT", "/cache/signature", {"content": b"\xff\xfe\xfa"}),
        ("PUT", "/cache/signature", {"json": None}),
        ("PUT", "/cache/signature", {"json": []}),
        ("PUT", "/cache/signature", {"json": {"thinking_text": 5, "signature": sig("x")}}),
        ("PUT", "/cache/signature", {"json": {"thinking_text": "", "signature": sig("x")}}),
        ("PUT", "/cache/signature", {"json": {"thinking_text": "t", "signature": None}}),
        (
            "PUT",
            "/cache/signature",
            {"json": {"thinking_text": "t", "signature": sig("x"), "x": 1}},
        ),
        (
            "PUT",
            "/cache/signature",
            {"json": {"thinking_text": "x" * 10_000_001, "signature": sig("x")}},
        ),
        ("POST", "/cache/signature/lookup", {"content": b'{"thinking_text": "\\ud800"'}),
        ("POST", "/cache/signature/lookup", {"json": {"thinking_text": ["a"]}}),
        ("POST", "/cache/migration/phase", {"params": {"phase": "PHASE_9"}}),
        ("POST", "/cache/migration/phase", {"params": {"phase": "x" * 100}}),
        ("POST", "/cache/migration/phase", {"params": {"phase": "'; DROP TABLE x; --"}}),
        ("POST", "/cache/migration/phase", {"params": {"phase": "2", "force": "maybe"}}),
        ("POST", "/cache/migration/phase", {"params": {}}),
        ("GET", "/cache/migration/history", {"params": {"limit": "-1"}}),
        ("GET", "/cache/migration/history", {"params": {"limit": str(10**30)}}),
        ("GET", "/cache/migration/history", {"params": {"limit": "nan"}}),
    ]
    with (
        serve(create_app(facade, token=TOKEN)) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c,
    ):
        before = c.get("/cache/migration/status").json()["data"]
        for method, path, kwargs in requests:
            response = c.request(method, path, **kwargs)
            FIGURES.add("inputs_tried")
            assert response.status_code in (400, 409, 422), (path, kwargs, response.text)
            body = response.json()
            assert body["success"] is False and body["error"]
            assert "Traceback" not in response.text
        after = c.get("/cache/migration/status").json()["data"]
    facade.close()
    assert after["phase"] == before["phase"] == "DUAL_WRITE"
    assert after["dual_write_stats"]["total_writes"] == before["dual_write_stats"]["total_writes"]


GOOD_HEADER = (
    b'{"format": "sigcache-recording", "version": 1, '
    b'"created_at": "2026-01-01T00:00:00+00:00", "source": "t", "redacted": false}\n'
)
GOOD_EVENT = (
    b'{"seq": 0, "t": 0.0, "op": "get_cached_signature", "args": {}, "result": null, '
    b'"worker": "w", "phase": "LEGACY_ONLY", "latency_us": 1.0}\n'
)
BAD_RECORDINGS: dict[str, bytes] = {
    "empty": b"",
    "not json": b"hello\n",
    "wrong format": b'{"format": "other", "version": 1}\n',
    "version 2": GOOD_HEADER.replace(b'"version": 1', b'"version": 2'),
    "invalid utf-8 header": b"\xff\xfe\n",
    "event not json": GOOD_HEADER + b"{oops\n",
    "event unknown op": GOOD_HEADER + GOOD_EVENT.replace(b"get_cached_signature", b"rm_rf"),
    "event negative seq": GOOD_HEADER + GOOD_EVENT.replace(b'"seq": 0', b'"seq": -5'),
    "event NaN t": GOOD_HEADER + GOOD_EVENT.replace(b'"t": 0.0', b'"t": NaN'),
    "event huge t": GOOD_HEADER + GOOD_EVENT.replace(b'"t": 0.0', b'"t": 1e999'),
    "event invalid utf-8": GOOD_HEADER + b'{"seq": 0, "op": "\xff"}\n',
    "event array": GOOD_HEADER + b"[1, 2]\n",
    "event missing result": GOOD_HEADER + GOOD_EVENT.replace(b'"result": null, ', b""),
}


@pytest.mark.parametrize("name", list(BAD_RECORDINGS))
@pytest.mark.parametrize("gz", [False, True], ids=["jsonl", "gz"])
def test_bad_recordings_raise_recording_error_with_a_line(
    tmp_path: Path, name: str, gz: bool
) -> None:
    data = BAD_RECORDINGS[name]
    path = tmp_path / ("r.jsonl.gz" if gz else "r.jsonl")
    path.write_bytes(gzip.compress(data) if gz else data)
    FIGURES.add("inputs_tried")
    with pytest.raises(RecordingError) as caught:
        _, events = read_recording(path)
        with events:
            list(events)
    expected_line = (
        1 if name in ("empty", "not json", "wrong format", "version 2") or "header" in name else 2
    )
    assert caught.value.line == expected_line, str(caught.value)


def test_truncated_and_garbage_gzip(tmp_path: Path) -> None:
    whole = gzip.compress(GOOD_HEADER + GOOD_EVENT * 2000)
    for name, data in {
        "truncated": whole[: len(whole) // 2],
        "garbage": b"\x1f\x8b" + b"\xa5" * 500,
    }.items():
        path = tmp_path / f"{name}.jsonl.gz"
        path.write_bytes(data)
        FIGURES.add("inputs_tried")
        with pytest.raises(RecordingError):
            _, events = read_recording(path)
            with events:
                list(events)
