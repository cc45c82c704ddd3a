"""The L2 seam: the layered cache over another `QueryStorage` (an in-memory fake here)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from sigcache.errors import StorageError
from sigcache.layered import LayeredSignatureCache
from sigcache.storage import Entry, QueryStorage
from tests.contract import SIG_A, CacheContract, FakeClock


class DictStorage:
    """A QueryStorage over a dict, as the protocol documents it (shared by several caches)."""

    def __init__(self) -> None:
        self.path = "memory://fake"
        self.rows: dict[tuple[str, str, str], Entry] = {}
        self.fail = False
        self._lock = threading.Lock()

    def _live(self, now: float) -> list[Entry]:
        if self.fail:
            raise StorageError("fake store is down", self.path)
        with self._lock:
            return [e for e in self.rows.values() if now <= e.expires_at]

    def get(self, store: str, owner: str, key: str, now: float) -> Entry | None:
        """See `storage.Storage`."""
        return next((e for e in self._live(now) if e[:3] == (store, owner, key)), None)

    def get_many(self, store: str, owner: str, keys: Sequence[str], now: float) -> dict[str, Entry]:
        """See `storage.Storage`."""
        wanted = set(keys)
        return {e.key: e for e in self._live(now) if e[:2] == (store, owner) and e.key in wanted}

    def put_many(self, entries: Sequence[Entry]) -> int:
        """See `storage.Storage`."""
        self._live(0)
        with self._lock:
            self.rows.update({e[:3]: e for e in entries})
        return len(entries)

    def delete(self, store: str, owner: str | None, key: str) -> int:
        """See `storage.Storage`."""
        self._live(0)
        with self._lock:
            doomed = [
                k for k in self.rows if k[0] == store and k[2] == key and owner in (None, k[1])
            ]
            for k in doomed:
                del self.rows[k]
        return len(doomed)

    def cleanup(self, now: float, max_rows: int) -> int:
        """See `storage.Storage`."""
        live = {e[:3] for e in self._live(now)}
        with self._lock:
            doomed = [k for k in self.rows if k not in live]
            for k in doomed:
                del self.rows[k]
        return len(doomed)

    def close(self) -> None:
        """Nothing to release."""

    def latest(
        self,
        store: str,
        owner: str,
        since: float,
        now: float,
        with_text: bool = False,
        conversation: str | None = None,
    ) -> Entry | None:
        """See `storage.QueryStorage`."""
        found = [
            e
            for e in self._live(now)
            if e[:2] == (store, owner)
            and e.written_at > since
            and (e.text or not with_text)
            and (conversation is None or e.conversation_id == conversation)
        ]
        return max(found, key=lambda e: e.written_at, default=None)

    def search(
        self, store: str, owner: str, needle: str, exclude: str, limit: int, now: float
    ) -> list[Entry]:
        """See `storage.QueryStorage`."""
        found = [
            e
            for e in self._live(now)
            if e[:2] == (store, owner) and e.key != exclude and needle in e.key
        ]
        return sorted(found, key=lambda e: -e.written_at)[:limit]

    def exists_any_owner(self, store: str, key: str, now: float) -> bool:
        """See `storage.QueryStorage`."""
        return any(e.store == store and e.key == key for e in self._live(now))

    def count_live(self, store: str, now: float) -> int:
        """See `storage.QueryStorage`."""
        return sum(e.store == store for e in self._live(now))

    def count_rows(self) -> int:
        """See `storage.QueryStorage`."""
        self._live(0)
        return len(self.rows)

    def clear_store(self, store: str) -> int:
        """See `storage.QueryStorage`."""
        with self._lock:
            doomed = [k for k in self.rows if k[0] == store]
            for k in doomed:
                del self.rows[k]
        return len(doomed)

    def scan(self, now: float) -> Iterator[Entry]:
        """See `storage.QueryStorage`."""
        return iter(sorted(self._live(now), key=lambda e: e.written_at))


def test_fake_satisfies_the_protocol() -> None:
    store: QueryStorage = DictStorage()  # mypy checks the structural match
    assert store.count_rows() == 0


class TestContractOverAnotherStore(CacheContract):
    """The cache contract with L2 replaced through `store=`."""

    owner_strict: ClassVar[bool] = True
    provenance_strict: ClassVar[bool] = True
    prefix_collisions: ClassVar[bool] = False

    def make_cache(self, clock: FakeClock) -> Any:
        return LayeredSignatureCache("unused.db", clock=clock, store=DictStorage())


def test_restart_and_failure_over_another_store(tmp_path: Path) -> None:
    clock, shared = FakeClock(), DictStorage()
    with LayeredSignatureCache("unused", clock=clock, store=shared) as cache:
        assert cache.set("<think>kept</think>", SIG_A, owner_id="a")
        assert cache.path == "memory://fake"
    assert not (tmp_path / "unused").exists()
    with LayeredSignatureCache("unused", clock=clock, store=shared) as cache:
        assert cache.get("kept", owner_id="a") == SIG_A and cache.read_tier() == "l2"
        assert cache.get("kept") is None
        shared.fail = True
        assert cache.get("kept", owner_id="a") == SIG_A  # L1
        assert cache.get("other") is None  # a counted miss, never an exception
        assert int(cache.get_stats()["l2_errors"]) >= 1  # type: ignore[call-overload]


def test_store_errors_do_not_escape() -> None:
    shared = DictStorage()
    with LayeredSignatureCache("unused", clock=FakeClock(), store=shared) as cache:
        shared.fail = True
        assert cache.invalidate("text") is False
        assert cache.get_last_signature() is None
        assert cache.size == 0


class PreProvenanceStorage(DictStorage):
    """A store written before issue 13: `latest` takes no conversation."""

    def latest(  # type: ignore[override]
        self, store: str, owner: str, since: float, now: float, with_text: bool = False
    ) -> Entry | None:
        """The old signature."""
        return super().latest(store, owner, since, now, with_text)


def test_a_store_without_conversation_latest_still_answers_safely() -> None:
    clock = FakeClock()
    with LayeredSignatureCache("unused", clock=clock, store=PreProvenanceStorage()) as cache:
        cache.set("mine", SIG_A, conversation_id="c1")
        clock.advance(1)
        cache.set("theirs", SIG_A[::-1], conversation_id="c2")
        cache.flush()
    with LayeredSignatureCache("unused", clock=clock, store=cache.storage) as cache:
        # L1 is empty: L2 answers, filtering its newest entry (never another conversation's).
        assert cache.get_last_signature(conversation_id="c2") == SIG_A[::-1]
        assert cache.get_last_signature(conversation_id="c1") is None
