"""`--l2 redis://...`: replays on a real redis-server, same classes as SQLite, keys cleaned up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from harness.cli import EXIT_DATA, EXIT_USAGE, main
from harness.l2 import REPLAY_PREFIX, RedisReplayL2, parse_l2, purge_prefix, replay_l2
from harness.pipeline import run_job
from harness.report import read_results
from sigcache.errors import ConfigError
from sigcache.migration_config import MigrationConfig
from tests.contract import SIG_A
from tests.redis_server import RedisServer, _free_port, redis_server, requires_redis
from tests.test_replayer import read, record, write

pytestmark = requires_redis

SMALL = Path(__file__).resolve().parent.parent / "recordings" / "small.jsonl.gz"
# What must be equal between the two L2s: every count the gate reads (latency is not a count).
COUNTS = (
    "reads",
    "classes",
    "aa_differences",
    "errors",
    "recorded_mismatches",
    "fallback_hits",
    "read_repairs",
    "shadow_errors",
    "stack_hit_rate",
    "control_hit_rate",
)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


@pytest.fixture
def raw(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url)
    client.flushdb()
    yield client
    client.close()


def _counts(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        phase: {name: figures[name] for name in COUNTS}
        for phase, figures in summary["phases"].items()
    }


def test_small_recording_on_redis_matches_sqlite(
    server: RedisServer, raw: redis.Redis, tmp_path: Path
) -> None:
    raw.set("someone-else:key", b"kept")  # not ours: the clean-up must leave it alone
    sqlite = run_job(SMALL, reports_root=tmp_path / "sqlite")
    on_redis = run_job(SMALL, reports_root=tmp_path / "redis", l2=server.url)
    assert _counts(on_redis.summary) == _counts(sqlite.summary)
    # The new cache really answered from Redis: L1 misses answered by L2 (tier "l2").
    tiers = read_results(on_redis.outcome.results_path)["tier"]
    assert (tiers == "l2").sum() > 0
    assert raw.keys("*") == [b"someone-else:key"]


def test_cli_replay_on_redis(
    server: RedisServer, raw: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    calls = [(float(i), "cache_signature", write(f"text {i}", SIG_A)) for i in range(5)]
    calls += [(10.0 + i, "get_cached_signature", read(f"text {i % 7}")) for i in range(20)]
    recording = record(tmp_path / "rec.jsonl", calls)
    summary = tmp_path / "summary.json"
    code = main(
        [
            "replay",
            str(recording),
            "--phase",
            "NEW_ONLY",
            "--l2",
            server.url,
            "--summary-json",
            str(summary),
            "--reports",
            str(tmp_path / "reports"),
            "--json",
        ]
    )
    assert code == 0
    phases = json.loads(summary.read_text())["phases"]
    assert set(phases) == {"LEGACY_ONLY", "NEW_ONLY"}
    assert phases["NEW_ONLY"]["classes"]["match"] == 15  # texts 0-4 of i % 7, as legacy
    assert raw.dbsize() == 0


def test_each_cache_gets_a_fresh_prefix_and_the_run_is_purged(
    server: RedisServer, raw: redis.Redis, tmp_path: Path
) -> None:
    config = MigrationConfig()
    with replay_l2(server.url) as factory, replay_l2(server.url) as other:
        assert factory is not None and other is not None
        first = factory(str(tmp_path / "dual_write.db"), config=config, clock=lambda: 1e9)
        second = factory(str(tmp_path / "new_only.db"), config=config, clock=lambda: 1e9)
        concurrent = other(str(tmp_path / "new_only.db"), config=config, clock=lambda: 1e9)
        try:
            assert first.set("a thought", SIG_A) and first.flush(5)
            assert second.get("a thought") is None  # another phase: another prefix
            assert concurrent.get("a thought") is None  # another run: another prefix
            keys = [key.decode() for key in raw.keys("*")]
            assert keys and all(k.startswith(f"{REPLAY_PREFIX}:") for k in keys)
            assert any("-dual_write:" in k for k in keys)
        finally:
            for cache in (first, second, concurrent):
                cache.close()
    assert raw.dbsize() == 0


def test_purge_prefix_deletes_only_that_prefix(raw: redis.Redis) -> None:
    raw.mset({f"p:1:{i}": b"x" for i in range(2_500)})
    raw.mset({"p:10:a": b"y", "p:1": b"z", "q:1:a": b"w"})
    assert purge_prefix(raw, "p:1", batch=1000) == 2_500
    assert sorted(raw.keys("*")) == [b"p:1", b"p:10:a", b"q:1:a"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("sqlite", None),
        ("SQLite", None),
        ("redis://h:1/0", "redis://h:1/0"),
    ],
)
def test_parse_l2(value: str | None, expected: str | None) -> None:
    assert parse_l2(value) == expected


@pytest.mark.parametrize("value", ["http://h:1", "postgres://x", "redis://h:notaport/0", "x.db"])
def test_parse_l2_refuses(value: str) -> None:
    with pytest.raises(ConfigError, match="--l2"):
        parse_l2(value)


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--l2", "http://u:secret@h:1"], EXIT_USAGE, "expected 'sqlite' or a redis://"),
        (["--l2", "redis://h:notaport/0"], EXIT_USAGE, "--l2"),
        (["--l2", "redis://127.0.0.1:1/0", "--new-cache", "m:f"], EXIT_USAGE, "cannot be combined"),
    ],
)
def test_bad_l2_is_a_usage_error(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["replay", str(SMALL), *argv])
    assert exit_info.value.code == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "secret" not in err


def test_unreachable_l2_is_a_data_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"redis://user:secret@127.0.0.1:{_free_port()}/0"  # nobody listens there
    code = main(["replay", str(SMALL), "--l2", url, "--reports", str(tmp_path / "reports")])
    assert code == EXIT_DATA
    err = capsys.readouterr().err
    assert "unreachable" in err and "Traceback" not in err and "secret" not in err
    assert not (tmp_path / "reports").exists()  # refused before anything was written


def test_purge_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    backend = RedisReplayL2(f"redis://127.0.0.1:{_free_port()}/0")
    try:
        assert backend.purge() == 0
    finally:
        backend.close()
    assert "could not delete keys" in caplog.text


pytest_plugins = ("pytester",)


def test_fixtures_use_the_redis_l2_and_purge_it(
    pytester: pytest.Pytester, server: RedisServer, raw: redis.Redis
) -> None:
    pytester.makepyfile(
        test_mine=f'''
def test_stack_on_redis(sigcache_stack):
    stack = sigcache_stack("NEW_ONLY")
    assert stack.call("cache_signature", {{"thinking_text": "t", "signature": "{SIG_A}"}})
    new = stack.facade.new_cache()
    assert type(new.storage).__name__ == "RedisStore" and new.flush(5)
'''
    )
    result = pytester.runpytest("--sigcache-l2", server.url, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert raw.dbsize() == 0  # purged at the session's end
