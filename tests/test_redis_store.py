"""RedisStore against a real redis-server: the storage contract, keys and TTLs, failures."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis

from sigcache.config import L1Settings, LayeredConfig
from sigcache.errors import StorageError
from sigcache.layered import LayeredSignatureCache
from sigcache.redis_codec import decode_entry, encode_entry, encode_part
from sigcache.redis_store import RedisSettings, RedisStore, redacted_url
from sigcache.storage import MAIN, SESSION, TOOL, Entry
from tests.contract import CacheContract, FakeClock
from tests.redis_server import RedisServer, redis_server, requires_redis

pytestmark = requires_redis

NOW = 1_000_000.0
_prefixes = itertools.count()


def _entry(key: str, written: float = NOW, owner: str = "", store: str = MAIN, **kw: str) -> Entry:
    text = kw.get("text", "text")
    return Entry(store, owner, key, "S" * 60, text, None, None, written, written + 100)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


def _store(server: RedisServer, **settings: Any) -> RedisStore:
    return RedisStore(server.url, RedisSettings(prefix=f"t{next(_prefixes)}", **settings))


@pytest.fixture
def store(server: RedisServer) -> Iterator[RedisStore]:
    made = _store(server)
    yield made
    made.close()


@pytest.fixture
def raw(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()


def test_put_get_many_delete(store: RedisStore) -> None:
    store.put_many([_entry("k1"), _entry("k2"), _entry("k1", owner="o")])
    assert store.get(MAIN, "", "k1", NOW) == _entry("k1")
    assert store.get(MAIN, "x", "k1", NOW) is None
    assert set(store.get_many(MAIN, "", ["k1", "k2", "k3", "k1"], NOW)) == {"k1", "k2"}
    many = [f"m{i}" for i in range(1200)]
    store.put_many([_entry(k) for k in many])
    assert len(store.get_many(MAIN, "", many, NOW)) == 1200
    assert store.delete(MAIN, None, "k1") == 2  # every owner
    assert store.get(MAIN, "o", "k1", NOW) is None
    assert store.delete(MAIN, "", "k2") == 1
    assert store.get(MAIN, "", "k2", NOW) is None
    assert store.get_many(MAIN, "", [], NOW) == {}


def test_overwrite_replaces_whole_entry(store: RedisStore) -> None:
    store.put_many([_entry("k", text="old")])
    store.put_many([_entry("k", written=NOW + 5, text="new")])
    found = store.get(MAIN, "", "k", NOW + 5)
    assert found is not None and found.text == "new" and found.written_at == NOW + 5
    assert store.count_rows() == 1


def test_expiry_cleanup_and_row_bound(store: RedisStore) -> None:
    store.put_many([_entry(f"k{i}", written=NOW + i) for i in range(10)])
    assert store.get(MAIN, "", "k0", NOW + 100) is not None  # live while now <= expires_at
    assert store.get(MAIN, "", "k0", NOW + 100.5) is None
    assert store.count_live(MAIN, NOW + 101.5) == 8
    assert store.cleanup(NOW + 101.5, max_rows=5) == 2 + 3  # two expired, three oldest trimmed
    assert store.count_rows() == 5
    assert store.get(MAIN, "", "k9", NOW) is not None
    assert store.get(MAIN, "", "k4", NOW) is None


def test_latest_search_scan(store: RedisStore) -> None:
    store.put_many(
        [
            _entry("call_abc_1", NOW, store=TOOL, text=""),
            _entry("call_abc_2", NOW + 1, store=TOOL, text=""),
            _entry("s1", NOW, store=SESSION, text=""),
            _entry("s2", NOW - 1, store=SESSION, text="with text"),
        ]
    )
    latest = store.latest(TOOL, "", -1, NOW)
    assert latest is not None and latest.key == "call_abc_2"
    assert store.latest(TOOL, "", NOW + 1, NOW) is None  # written_at must be after `since`
    assert store.latest(TOOL, "other", -1, NOW) is None  # owner-strict
    with_text = store.latest(SESSION, "", -1, NOW, with_text=True)
    assert with_text is not None and with_text.key == "s2"
    found = store.search(TOOL, "", "abc", "call_abc_2", 5, NOW)
    assert [e.key for e in found] == ["call_abc_1"]
    assert store.search(TOOL, "", "a%c", "", 5, NOW) == []  # no wildcards
    assert [e.key for e in store.scan(NOW)] == ["s2", "call_abc_1", "s1", "call_abc_2"]
    assert store.exists_any_owner(TOOL, "call_abc_1", NOW)
    assert not store.exists_any_owner(TOOL, "call_abc_1", NOW + 500)


def test_latest_pages_past_expired_and_textless(store: RedisStore) -> None:
    rows = [_entry("old", NOW - 50, store=SESSION, text="kept")]
    rows += [_entry(f"s{i}", NOW + i, store=SESSION, text="") for i in range(70)]
    store.put_many(rows)
    found = store.latest(SESSION, "", -1, NOW + 40, with_text=True)  # past two pages
    assert found is not None and found.key == "old"


def test_clear_store_only_touches_one_store(store: RedisStore) -> None:
    store.put_many([_entry("a"), _entry("b", owner="o"), _entry("t", store=TOOL)])
    assert store.clear_store(MAIN) == 2
    assert store.get(MAIN, "o", "b", NOW) is None
    assert store.latest(MAIN, "o", -1, NOW) is None
    assert store.get(TOOL, "", "t", NOW) is not None
    assert store.count_rows() == 1


def test_owner_isolation_with_separators_and_globs(store: RedisStore) -> None:
    tricky = [("a:b", "c"), ("a", "b:c"), ("*", "k"), ("", "*"), ("a%3Ab", "c"), ("[x]", "?")]
    store.put_many(
        [Entry(TOOL, o, k, "S" * 60, o + "|" + k, None, None, NOW, NOW + 9) for o, k in tricky]
    )
    for owner, key in tricky:
        found = store.get(TOOL, owner, key, NOW)
        assert found is not None and found.text == owner + "|" + key
    assert store.get(TOOL, "a", "c", NOW) is None
    assert store.get(TOOL, "", "k", NOW) is None
    assert store.delete(TOOL, None, "c") == 2  # "a:b"/"c" and "a%3Ab"/"c", not "a"/"b:c"
    assert store.get(TOOL, "a", "b:c", NOW) is not None
    assert not store.exists_any_owner(TOOL, "c", NOW)
    assert [e.key for e in store.search(TOOL, "*", "", "", 5, NOW)] == ["k"]


def test_lone_surrogates_round_trip(store: RedisStore) -> None:
    odd = "surrogate \ud800 tool"
    store.put_many([_entry(odd, store=TOOL, owner="\udfff", text=odd)])
    found = store.get(TOOL, "\udfff", odd, NOW)
    assert found is not None and found.key == odd and found.text == odd
    assert decode_entry(encode_entry(found)) == found


def test_keys_carry_prefix_store_owner_digest_and_a_ttl(
    server: RedisServer, raw: redis.Redis
) -> None:
    wall = time.time()
    store = _store(server)
    digest = "ab" * 32
    store.put_many([Entry(MAIN, "team@x", digest, "S" * 60, "t", None, None, wall, wall + 60)])
    name = f"{store.settings.prefix}:e:main:{encode_part('team@x').decode()}:{digest}".encode()
    assert raw.exists(name)
    assert 59_000 < raw.pttl(name) <= 60_002  # the entry's own expiry (PXAT)
    virtual = Entry(MAIN, "", "v", "S" * 60, "t", None, None, NOW, NOW + 30)
    store.put_many([virtual])  # a virtual clock: the nominal lifetime (PX)
    assert 29_000 < raw.pttl(f"{store.settings.prefix}:e:main::v") <= 30_002
    store.close()


def test_get_many_is_one_mget(store: RedisStore, raw: redis.Redis) -> None:
    store.put_many([_entry(f"k{i}") for i in range(50)])
    raw.config_resetstat()
    assert len(store.get_many(MAIN, "", [f"k{i}" for i in range(60)], NOW)) == 50
    stats = raw.info("commandstats")
    assert stats["cmdstat_mget"]["calls"] == 1
    assert "cmdstat_get" not in stats


def test_closed_store_raises_storage_error(server: RedisServer) -> None:
    store = _store(server)
    store.close()
    with pytest.raises(StorageError):
        store.get(MAIN, "", "k", NOW)


def test_url_is_redacted() -> None:
    assert redacted_url("redis://user:secret@127.0.0.1:6390/2") == "redis://127.0.0.1:6390/2"
    assert "secret" not in RedisStore("redis://:secret@127.0.0.1:1/0").path


def test_unreachable_fails_fast_with_storage_error() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", RedisSettings(backoff_initial_s=0.2))
    started = time.monotonic()
    for _ in range(20):
        with pytest.raises(StorageError):
            store.get(MAIN, "", "k", NOW)
    assert time.monotonic() - started < 0.5  # one refused connect, then the back-off answers
    assert not store.ping()
    store.close()


def test_paused_server_times_out_then_recovers(tmp_path: Path) -> None:
    with redis_server() as server:
        store = RedisStore(server.url, RedisSettings(socket_timeout_s=0.05, backoff_initial_s=0.05))
        store.put_many([_entry("k")])
        server.pause()
        try:
            for _ in range(5):
                started = time.monotonic()
                with pytest.raises(StorageError):
                    store.get(MAIN, "", "k", NOW)
                assert time.monotonic() - started < 0.5  # never beyond the timeout (+ slack)
                time.sleep(0.06)
        finally:
            server.resume()
        deadline = time.monotonic() + 5
        while not store.ping() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.get(MAIN, "", "k", NOW) is not None
        store.close()


def _layered(server: RedisServer, clock: Any = time.time, **settings: Any) -> LayeredSignatureCache:
    store = _store(server, **settings)
    return LayeredSignatureCache(
        "unused.db", store=store, clock=clock, config=LayeredConfig(l1=L1Settings(max_entries=4))
    )


def test_killed_and_restarted_under_load_never_raises() -> None:
    errors: list[BaseException] = []
    stop = threading.Event()
    with redis_server() as server:
        cache = _layered(server, socket_timeout_s=0.1, backoff_max_s=0.2)

        def load(worker: int) -> None:
            i = 0
            while not stop.is_set():
                try:
                    text = f"worker {worker} thought {i % 40} " * 3
                    cache.set(text, "S" * 80)
                    cache.get(text)
                    cache.get_last_signature()
                    cache.flush(1)
                except BaseException as exc:  # pragma: no cover - the assertion below reports it
                    errors.append(exc)
                i += 1

        threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        server.stop()
        time.sleep(0.5)
        assert int(str(cache.get_stats()["l2_errors"])) > 0
        server.start()
        time.sleep(0.8)  # longer than the back-off: the next calls reconnect
        stop.set()
        for thread in threads:
            thread.join(10)
        assert errors == []
        cache.set("after the restart", "S" * 80)
        assert cache.flush(5)  # the writer reached the restarted server
        latest = cache.storage.latest(MAIN, "", -1, time.time())
        assert latest is not None and latest.text == "after the restart"
        cache.close()


class TestLayeredOverRedisContract(CacheContract):
    """The cache contract run against LayeredSignatureCache(store=RedisStore(...))."""

    owner_strict: ClassVar[bool] = True
    provenance_strict: ClassVar[bool] = True
    prefix_collisions: ClassVar[bool] = False

    @pytest.fixture(autouse=True)
    def _server(self, server: RedisServer) -> None:
        self.server = server

    def make_cache(self, clock: FakeClock) -> Any:
        return LayeredSignatureCache("unused.db", clock=clock, store=_store(self.server))
