"""The write keywords of the layered cache: `expires_at`, `written_at`, `validated` (backfill)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigcache.backfill import supports_expiry
from sigcache.config import L1Settings, L2Settings, LayeredConfig
from sigcache.layered import LayeredSignatureCache
from sigcache.storage import MAIN
from tests.contract import SIG_A, SIG_B, FakeClock

CONFIG = LayeredConfig(L1Settings(ttl_seconds=100), L2Settings(ttl_seconds=1_000))


def _cache(tmp_path: Path, clock: FakeClock) -> LayeredSignatureCache:
    return LayeredSignatureCache(tmp_path / "l2.db", config=CONFIG, clock=clock)


def _l2_only(cache: LayeredSignatureCache) -> None:
    assert cache.flush(10)
    cache._l1.clear(MAIN)


def test_backfill_detects_the_keywords(tmp_path: Path) -> None:
    with _cache(tmp_path, FakeClock()) as cache:
        assert supports_expiry(cache)


def test_expires_at_shortens_both_tiers(tmp_path: Path) -> None:
    clock = FakeClock()
    with _cache(tmp_path, clock) as cache:
        assert cache.set("short", SIG_A, expires_at=clock.now + 50)
        assert cache.cache_tool_signature("toolu_1", SIG_A, expires_at=clock.now + 50)
        assert cache.cache_session_signature("s", SIG_A, "t", expires_at=clock.now + 50)
        clock.advance(50)
        assert cache.get("short") == SIG_A  # L1, live while now <= expiry
        clock.advance(1)
        assert cache.get("short") is None
        assert cache.get_tool_signature("toolu_1") is None
        assert cache.get_session_signature("s") is None
        _l2_only(cache)
        assert cache.get("short") is None  # L2 holds the same expiry


def test_expires_at_never_extends_past_the_l2_ttl(tmp_path: Path) -> None:
    clock = FakeClock()
    with _cache(tmp_path, clock) as cache:
        assert cache.set("long", SIG_A, expires_at=clock.now + 10**9)
        _l2_only(cache)
        (entry,) = list(cache.entries())
        assert entry.expires_at == clock.now + 1_000


@pytest.mark.parametrize("delta", [0, -1, -1_000])
def test_an_expiry_not_ahead_is_refused(tmp_path: Path, delta: float) -> None:
    clock = FakeClock()
    with _cache(tmp_path, clock) as cache:
        assert cache.set("gone", SIG_A, expires_at=clock.now + delta) is False
        assert cache.cache_tool_signature("t", SIG_A, expires_at=clock.now + delta) is False
        assert cache.get("gone") is None
        assert cache.get_stats()["main_writes"] == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "soon", True, [1]])
def test_unusable_times_are_refused_without_raising(tmp_path: Path, bad: object) -> None:
    with _cache(tmp_path, FakeClock()) as cache:
        assert cache.set("x", SIG_A, expires_at=bad) is False  # type: ignore[arg-type]
        assert cache.set("x", SIG_A, written_at=bad) is False  # type: ignore[arg-type]
        assert cache.get("x") is None


def test_written_at_orders_last_and_recent(tmp_path: Path) -> None:
    clock = FakeClock()
    with _cache(tmp_path, clock) as cache:
        assert cache.set(
            "old", SIG_A, owner_id="o", conversation_id="c", written_at=clock.now - 400
        )
        assert cache.flush(10)  # past its L1 life at once: only L2 (after the flush) holds it
        assert cache.get_recent_signature(300, owner_id="o", conversation_id="c") is None
        assert cache.get_recent_signature(500, owner_id="o", conversation_id="c") == SIG_A
        assert cache.set("newer", SIG_B, "m", "o", conversation_id="c", written_at=clock.now - 10)
        _l2_only(cache)
        assert cache.get_last_signature_with_text("o", conversation_id="c") == (SIG_B, "newer")
        assert cache.get_recent_signature(300, owner_id="o", conversation_id="c") == SIG_B


def test_l1_life_counts_from_written_at(tmp_path: Path) -> None:
    clock = FakeClock()
    with _cache(tmp_path, clock) as cache:
        assert cache.set("aged", SIG_A, written_at=clock.now - 90)
        clock.advance(11)  # past written_at + L1 TTL: L1 forgets it, L2 still answers
        assert cache.get("aged") == SIG_A
        assert cache.read_tier() == "l2"
        assert cache.set("ancient", SIG_A, written_at=clock.now - 500)  # already past L1 life
        assert cache.get("ancient") == SIG_A
        assert cache.read_tier() == "l2"


def test_written_at_in_the_future_is_clamped_to_now(tmp_path: Path) -> None:
    clock = FakeClock()
    with _cache(tmp_path, clock) as cache:
        assert cache.set("future", SIG_A, written_at=clock.now + 500)
        _l2_only(cache)
        (entry,) = list(cache.entries())
        assert entry.written_at == clock.now


def test_validated_skips_only_the_pattern_check(tmp_path: Path) -> None:
    with _cache(tmp_path, FakeClock()) as cache:
        short = "Zm9vYmFy"  # valid base64, shorter than the 50-character rule
        assert cache.set("v", short) is False
        assert cache.set("v", short, validated=True) is True
        assert cache.get("v") == short
        assert cache.cache_tool_signature("t", short, validated=True) is True
        assert cache.cache_session_signature("s", short, "x", validated=True) is True
        for bad in (None, "", 42):
            assert cache.set("w", bad, validated=True) is False  # type: ignore[arg-type]
