"""L1 alone: the memory tier against a dict and bare cachetools under a threading.Lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cachetools import LRUCache, TTLCache
from pytest_benchmark.fixture import BenchmarkFixture

from sigcache.config import L1Settings
from sigcache.layered import main_key
from sigcache.memory import L1Key, MemoryTier
from sigcache.storage import MAIN

from .conftest import OP_SIZE, POOL, Corpus, Target, describe, main_entry

TTL = 3_600.0
BASELINE = "cachetools TTLCache + Lock"
L1_TARGET = Target("L1 hit on a derived key <= 2x bare cachetools under a lock", BASELINE, 2.0)


@dataclass
class L1State:
    """Every contender holding the same POOL entries under the same tuple keys."""

    tier: MemoryTier
    plain: dict[L1Key, str]
    lru: LRUCache[L1Key, str]
    ttl: TTLCache[L1Key, str]
    lock: threading.Lock
    hit: L1Key
    miss: L1Key
    hit_text: str
    miss_text: str
    signature: str


@pytest.fixture(scope="module")
def l1(corpus: Corpus) -> L1State:
    """POOL 2 KB entries in each contender."""
    texts = corpus.texts(OP_SIZE, POOL)
    tier = MemoryTier(L1Settings(), time.time)
    plain: dict[L1Key, str] = {}
    lru: LRUCache[L1Key, str] = LRUCache(L1Settings().max_entries)
    ttl: TTLCache[L1Key, str] = TTLCache(L1Settings().max_entries, ttl=TTL)
    now = time.time()
    for seed, text in enumerate(texts):
        key = main_key(text, None)
        assert key is not None
        signature = corpus.signature(seed)
        tier.put(key, main_entry(text, signature, now), now + TTL)
        plain[key] = lru[key] = ttl[key] = signature
    hit_text = texts[POOL // 2]
    miss_text = corpus.text(OP_SIZE, POOL + 1)
    hit, miss = main_key(hit_text, None), main_key(miss_text, None)
    assert hit is not None and miss is not None
    return L1State(
        tier, plain, lru, ttl, threading.Lock(), hit, miss, hit_text, miss_text, corpus.signature(1)
    )


def _locked_get(lock: threading.Lock, cache: Any, key: L1Key) -> Callable[[], object]:
    # The fastest correct idiom (one lookup): Cache.get() would look the key up twice.
    def get() -> object:
        with lock:
            try:
                return cache[key]
            except KeyError:
                return None

    return get


def _getters(s: L1State, key: L1Key, text: str) -> dict[str, tuple[str, Callable[[], object]]]:
    return {
        "dict": ("dict lookup", lambda: s.plain.get(key)),
        "lru": ("cachetools LRUCache + Lock", _locked_get(s.lock, s.lru, key)),
        "ttl": (BASELINE, _locked_get(s.lock, s.ttl, key)),
        "tier": ("L1 tier get (key derived once)", lambda: s.tier.get(key)),
        "tier-derive": (
            "L1 key derivation + L1 tier get",
            lambda: s.tier.get(main_key(text, None)),  # type: ignore[arg-type]
        ),
    }


GETTERS = ["dict", "lru", "ttl", "tier", "tier-derive"]


@pytest.mark.parametrize("variant", GETTERS)
def test_l1_get_hit(benchmark: BenchmarkFixture, l1: L1State, variant: str) -> None:
    """A hit on a 2 KB text's key."""
    label, get = _getters(l1, l1.hit, l1.hit_text)[variant]
    targets = [L1_TARGET] if variant == "tier" else []
    describe(benchmark, "L1: get-hit (2 KB)", label, baseline=variant == "ttl", targets=targets)
    assert get() is not None
    benchmark(get)


@pytest.mark.parametrize("variant", GETTERS)
def test_l1_get_miss(benchmark: BenchmarkFixture, l1: L1State, variant: str) -> None:
    """A miss on a 2 KB text's key."""
    label, get = _getters(l1, l1.miss, l1.miss_text)[variant]
    describe(benchmark, "L1: get-miss (2 KB)", label, baseline=variant == "ttl")
    assert get() is None
    benchmark(get)


def _setters(s: L1State) -> dict[str, tuple[str, Callable[[], None]]]:
    key, signature, lock = s.hit, s.signature, s.lock
    entry = main_entry(s.hit_text, signature, time.time())

    def plain() -> None:
        s.plain[key] = signature

    def locked(cache: Any) -> Callable[[], None]:
        def put() -> None:
            with lock:
                cache[key] = signature

        return put

    def tier() -> None:
        s.tier.put(key, entry, entry.written_at + TTL)

    return {
        "dict": ("dict store", plain),
        "lru": ("cachetools LRUCache + Lock", locked(s.lru)),
        "ttl": (BASELINE, locked(s.ttl)),
        "tier": ("L1 tier put (key and entry built once)", tier),
    }


@pytest.mark.parametrize("variant", ["dict", "lru", "ttl", "tier"])
def test_l1_set(benchmark: BenchmarkFixture, l1: L1State, variant: str) -> None:
    """Overwrite one existing 2 KB text's entry."""
    label, put = _setters(l1)[variant]
    describe(benchmark, "L1: set (2 KB)", label, baseline=variant == "ttl")
    benchmark(put)
    assert l1.tier.get(l1.hit) is not None


def test_l1_holds_main(l1: L1State) -> None:
    """Sanity: the tier keys main entries as (store, owner, normalised text)."""
    assert l1.hit[0] == MAIN
