"""Hot reads of the Redis L2 (`sigcache.redis_reads`): one round trip, threads, restarts, fork."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sigcache.errors import StorageError
from sigcache.redis_store import RedisSettings, RedisStore
from sigcache.storage import MAIN, Entry
from tests.redis_server import RedisServer, redis_server, requires_redis

pytestmark = requires_redis

NOW = 1_000_000.0


def _entry(key: str) -> Entry:
    return Entry(MAIN, "", key, f"S{key}" * 20, "text", None, None, NOW, NOW + 100)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


@pytest.fixture
def store(server: RedisServer, request: pytest.FixtureRequest) -> Iterator[RedisStore]:
    made = RedisStore(server.url, RedisSettings(prefix=f"reads-{request.node.name[:40]}"))
    made.put_many([_entry(f"k{i}") for i in range(20)])
    yield made
    made.close()


def test_a_get_is_one_get_and_nothing_else(store: RedisStore, server: RedisServer) -> None:
    raw = redis.Redis.from_url(server.url)
    store.get(MAIN, "", "k0", NOW)  # the first read connects (HELLO, CLIENT SETINFO, ...)
    raw.config_resetstat()
    for i in range(10):
        assert store.get(MAIN, "", f"k{i}", NOW) == _entry(f"k{i}")
    assert store.get(MAIN, "", "absent", NOW) is None
    stats = raw.info("commandstats")
    raw.close()
    # Only GETs (and the INFO/CONFIG of this check): no PING, no SELECT, no health check.
    assert stats["cmdstat_get"]["calls"] == 11
    assert set(stats) <= {"cmdstat_get", "cmdstat_config|resetstat", "cmdstat_info"}


def test_threads_share_a_few_connections(store: RedisStore, server: RedisServer) -> None:
    errors: list[BaseException] = []

    def read(worker: int) -> None:
        try:
            for i in range(200):
                key = f"k{(worker + i) % 20}"
                assert store.get(MAIN, "", key, NOW) == _entry(key)
                if i % 50 == 0:
                    assert len(store.get_many(MAIN, "", [key, "absent"], NOW)) == 1
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    raw = redis.Redis.from_url(server.url)
    clients = [c for c in raw.client_list() if c.get("cmd") in ("get", "mget")]
    raw.close()
    assert 1 <= len(clients) <= 8  # at most one per thread reading at once, reused


def test_restart_fails_one_read_then_recovers() -> None:
    with redis_server() as server:
        store = RedisStore(server.url, RedisSettings(backoff_initial_s=0.01, backoff_max_s=0.02))
        store.put_many([_entry("k")])
        assert store.get(MAIN, "", "k", NOW) is not None
        server.stop()
        with pytest.raises(StorageError):
            store.get(MAIN, "", "k", NOW)
        server.start()
        store.put_many([_entry("k")])  # a fresh server is empty (no persistence)
        for _ in range(200):  # every idle connection was dropped: the next read reconnects
            try:
                found = store.get(MAIN, "", "k", NOW)
                break
            except StorageError:
                threading.Event().wait(0.01)
        assert found == _entry("k")
        store.close()


def test_a_forked_child_reads_on_its_own_connections(store: RedisStore, tmp_path: Path) -> None:
    assert store.get(MAIN, "", "k1", NOW) is not None  # the parent holds a connection now
    out = tmp_path / "child"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code and a file
        code = 1
        try:
            ok = store.get(MAIN, "", "k2", NOW) == _entry("k2")
            out.write_text("ok" if ok else "wrong")
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and out.read_text() == "ok"
    # The child closed its copies only: the parent's socket still works.
    assert store.get(MAIN, "", "k3", NOW) == _entry("k3")
