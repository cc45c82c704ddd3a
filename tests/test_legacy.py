"""The legacy SignatureCache: the contract, the reference behaviour, and the deliberate fixes."""

from __future__ import annotations

import hashlib
import sys
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigcache.keys import legacy_key, normalize_thinking_text
from sigcache.legacy import SignatureCache
from tests.contract import SIG_A, SIG_B, SIG_C, CacheContract, FakeClock

SIGNATURE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-"
signatures = st.text(alphabet=SIGNATURE_ALPHABET, min_size=50, max_size=300).filter(
    lambda s: s != "skip_thought_signature_validator"
)
texts = st.text(min_size=1, max_size=700).filter(lambda t: normalize_thinking_text(t) != "")


class TestLegacyContract(CacheContract):
    owner_strict = False
    prefix_collisions = True

    def make_cache(self, clock: FakeClock) -> SignatureCache:
        return SignatureCache(clock=clock)


# -- reference behaviour ----------------------------------------------------------------------


def test_key_is_md5_of_normalised_text() -> None:
    text = "  <think>\n hello world </think>  "
    assert legacy_key(normalize_thinking_text(text)) == hashlib.md5(b"hello world").hexdigest()


def test_ttl_is_strictly_greater_and_from_write_time() -> None:
    clock = FakeClock()
    cache = SignatureCache(ttl_seconds=100, clock=clock)
    cache.set("t", SIG_A)
    clock.advance(60)
    assert cache.get("t") == SIG_A  # a read does not refresh the TTL
    clock.advance(40)
    assert cache.get("t") == SIG_A  # exactly the TTL: still live
    clock.advance(0.001)
    assert cache.get("t") is None
    stats = cache.get_stats()
    assert stats["expirations"] == 1 and stats["cache_size"] == 0


def test_lru_evicts_least_recently_used() -> None:
    cache = SignatureCache(max_size=2, clock=FakeClock())
    cache.set("a", SIG_A)
    cache.set("b", SIG_B)
    assert cache.get("a") == SIG_A  # a becomes most recent
    cache.set("c", SIG_C)
    assert cache.get("b") is None
    assert cache.get("a") == SIG_A and cache.get("c") == SIG_C
    assert cache.get_stats()["evictions"] == 1


def test_owner_mismatch_keeps_entry_and_counts_a_miss() -> None:
    cache = SignatureCache(clock=FakeClock())
    cache.set("t", SIG_A, owner_id="alice")
    assert cache.get("t", owner_id="bob") is None
    assert cache.get("t") == SIG_A
    cache.set("u", SIG_B)
    assert cache.get("u", owner_id="bob") == SIG_B  # an owner-less entry matches anyone
    stats = cache.get_stats()
    assert stats["misses"] == 1 and stats["hits"] == 2


def test_stats_shape_is_legacy() -> None:
    cache = SignatureCache(clock=FakeClock())
    cache.set("t", SIG_A)
    cache.get("t")
    cache.get("t")
    cache.get("x")
    cache.cache_tool_signature("toolu_1", SIG_A)
    cache.get_tool_signature("toolu_1")
    stats = cache.get_stats()
    assert stats["hit_rate"] == "66.67%"
    assert stats["hit_ratio"] == pytest.approx(2 / 3)
    assert stats["total_requests"] == 3 and stats["writes"] == 1
    assert {
        "cache_size",
        "max_size",
        "ttl_seconds",
        "tool_cache_size",
        "session_cache_size",
    } <= set(stats)
    layer = stats["layer_stats"]
    assert isinstance(layer, dict)
    assert layer["cache_hits"] == 2 and layer["cache_misses"] == 1
    assert layer["tool_cache_hits"] == 1
    assert layer["cache_hit_rate"] == pytest.approx(66.666, rel=1e-3)
    assert layer["recovery_success_rate"] == 0.0
    cache.reset_stats()
    assert cache.get_stats()["hits"] == 0
    assert repr(cache).startswith("SignatureCache(size=1, max_size=10000, ttl=3600s")


def test_clear_and_cleanup_touch_only_the_main_store() -> None:
    clock = FakeClock()
    cache = SignatureCache(clock=clock)
    cache.set("t", SIG_A)
    cache.cache_tool_signature("toolu_1", SIG_A)
    cache.cache_session_signature("s", SIG_A)
    assert cache.clear() == 1
    assert cache.get_tool_signature("toolu_1") == SIG_A
    assert cache.get_session_signature("s") == SIG_A


def test_session_with_text_counts_nothing() -> None:
    cache = SignatureCache(clock=FakeClock())
    cache.cache_session_signature("s", SIG_A, "text")
    assert cache.get_session_signature_with_text("s") == (SIG_A, "text")
    layer = cache.get_stats()["layer_stats"]
    assert isinstance(layer, dict)
    assert layer["session_cache_hits"] == 0 and layer["session_cache_misses"] == 0


def test_last_signature_is_most_recently_touched_and_ignores_owner() -> None:
    clock = FakeClock()
    cache = SignatureCache(clock=clock)
    cache.set("first", SIG_A, owner_id="alice")
    cache.set("second", SIG_B, owner_id="bob")
    assert cache.get("first") == SIG_A  # a read moves "first" to the MRU end
    assert cache.get_last_signature() == SIG_A
    assert cache.get_last_signature_with_text(owner_id="bob") == (SIG_A, "first")


def test_recent_signature_owner_rules() -> None:
    clock = FakeClock()
    cache = SignatureCache(clock=clock)
    cache.cache_session_signature("s", SIG_B, "", owner_id="alice")
    cache.set("main", SIG_A, owner_id="alice")
    # tool and session tiers ignore the owner (reference 1.5)
    assert cache.get_recent_signature(owner_id="bob") == SIG_B
    # the main tier is strict when an owner is given
    assert cache.get_recent_signature_with_text(owner_id="bob") is None
    assert cache.get_recent_signature_with_text(owner_id="alice") == (SIG_A, "main")


def test_recent_window_from_client_type() -> None:
    clock = FakeClock()
    cache = SignatureCache(clock=clock)
    cache.set("t", SIG_A)
    clock.advance(1000)
    assert cache.get_recent_signature(time_window_seconds=300) is None
    assert cache.get_recent_signature(client_type="claude_code") == SIG_A  # 1800 s window
    clock.advance(1000)
    assert cache.get_recent_signature(client_type="cline") is None
    assert cache.get_recent_signature(client_type="cursor") == SIG_A  # 3600 s window


# -- hypothesis properties ----------------------------------------------------------------------


@given(inner=texts, tag=st.sampled_from(["think", "reasoning", "redacted_reasoning", "THINK"]))
def test_tag_wrapped_text_shares_the_key(inner: str, tag: str) -> None:
    wrapped = f"  <{tag}>{inner}</{tag}>\n"
    assert (
        legacy_key(normalize_thinking_text(wrapped))
        == legacy_key(normalize_thinking_text(inner.strip()))
        or normalize_thinking_text(inner) != inner.strip()
    )


@given(text=texts, signature=signatures, ttl=st.integers(1, 10_000), wait=st.floats(0, 20_000))
def test_signature_read_back_until_ttl(text: str, signature: str, ttl: int, wait: float) -> None:
    clock = FakeClock()
    cache = SignatureCache(ttl_seconds=ttl, clock=clock)
    assert cache.set(text, signature)
    clock.advance(wait)
    expected = signature if wait <= ttl else None
    assert cache.get(text) == expected


@settings(max_examples=50)
@given(max_size=st.integers(1, 20), keys=st.lists(st.integers(0, 40), max_size=100))
def test_size_never_exceeds_max(max_size: int, keys: list[int]) -> None:
    cache = SignatureCache(max_size=max_size, clock=FakeClock())
    for key in keys:
        cache.set(f"text {key}", SIG_A)
        cache.cache_tool_signature(f"toolu_{key}", SIG_A)
        cache.cache_session_signature(f"s{key}", SIG_A)
        stats = cache.get_stats()
        assert len(cache) <= max_size
        assert stats["tool_cache_size"] <= max_size  # type: ignore[operator]
        assert stats["session_cache_size"] <= max_size  # type: ignore[operator]


@given(
    prefix=st.text(min_size=500, max_size=520).map(lambda s: "P" + s.strip() + "x" * 500),
    tail_a=st.text(min_size=1, max_size=20),
    tail_b=st.text(min_size=1, max_size=20),
)
def test_shared_500_prefix_evicts_each_other(prefix: str, tail_a: str, tail_b: str) -> None:
    text_a, text_b = prefix + "|" + tail_a + "A", prefix + "|" + tail_b + "B"
    cache = SignatureCache(clock=FakeClock())
    cache.set(text_a, SIG_A)
    cache.set(text_b, SIG_B)
    assert len(cache) == 1
    assert cache.get(text_b) == SIG_B
    assert cache.get(text_a) is None  # the collision guard refuses the other text


# -- deliberate fixes (each fails against the replaced behaviour) --------------------------------


def test_fix_tool_and_session_stores_are_bounded() -> None:
    cache = SignatureCache(max_size=3, clock=FakeClock())
    for i in range(10):
        cache.cache_tool_signature(f"toolu_{i}", SIG_A)
        cache.cache_session_signature(f"s{i}", SIG_A)
    stats = cache.get_stats()
    assert stats["tool_cache_size"] == 3 and stats["session_cache_size"] == 3
    assert stats["tool_cache_evictions"] == 7
    assert cache.get_tool_signature("toolu_9") == SIG_A
    assert cache.get_tool_signature("toolu_0") is None


def test_fix_fuzzy_tool_lookup_works() -> None:
    clock = FakeClock()
    cache = SignatureCache(clock=clock)
    cache.cache_tool_signature("abc123", SIG_A)
    assert cache.get_tool_signature_fuzzy("call_abc123") == SIG_A  # base id hit
    cache.cache_tool_signature("toolu_xyz_old", SIG_B)
    clock.advance(1)
    cache.cache_tool_signature("toolu_xyz_new", SIG_C)
    assert cache.get_tool_signature_fuzzy("call_toolu_xyz_retry3") == SIG_C  # newest candidate
    assert cache.get_tool_signature_fuzzy("call_toolu_xyz_retry3", max_candidates=0) is None


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.set(None, None),
        lambda c: c.get(["x"]),
        lambda c: c.set("t", SIG_A, owner_id=123),
        lambda c: c.get("t", owner_id=object()),
        lambda c: c.cache_tool_signature({"a": 1}, SIG_A),
        lambda c: c.cache_session_signature("s", SIG_A, thinking_text=5),
        lambda c: c.get_recent_signature(time_window_seconds="300"),
        lambda c: c.get_recent_signature(client_type=7),
        lambda c: c.get_tool_signature_fuzzy(None),
        lambda c: c.get_tool_signature_fuzzy("call_x", max_candidates="5"),
    ],
)
def test_fix_bad_input_never_raises(call: Any) -> None:
    cache = SignatureCache(clock=FakeClock())
    cache.set("kept", SIG_A)
    assert call(cache) in (None, False)
    assert cache.get("kept") == SIG_A and len(cache) == 1


def test_fix_no_import_under_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = SignatureCache(clock=FakeClock())
    seen: list[bool] = []
    real_import = __import__

    def spying_import(*args: Any, **kwargs: Any) -> Any:
        seen.append(cache._lock.locked())
        return real_import(*args, **kwargs)

    monkeypatch.setattr("builtins.__import__", spying_import)
    cache.set("t", SIG_A, model="claude-sonnet-4-5")
    assert not any(seen)


def test_fix_an_empty_cache_is_truthy() -> None:
    assert bool(SignatureCache()) is True


def test_concurrent_use_keeps_counters_consistent() -> None:
    cache = SignatureCache(clock=FakeClock())

    def work(n: int) -> None:
        for i in range(300):
            cache.set(f"t{n}-{i % 30}", SIG_A)
            cache.get(f"t{n}-{i % 50}")
            cache.cache_tool_signature(f"toolu_{i}", SIG_A)
            cache.get_tool_signature(f"toolu_{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.get_stats()
    assert stats["hits"] + stats["misses"] == 4 * 300  # type: ignore[operator]
    layer = stats["layer_stats"]
    assert isinstance(layer, dict)
    assert layer["tool_cache_hits"] + layer["tool_cache_misses"] == 4 * 300
    assert sys.getrecursionlimit() > 0


def test_peek_owner_has_no_side_effects() -> None:
    clock = FakeClock()
    cache = SignatureCache(clock=clock)
    cache.set("text", SIG_A, owner_id="alice")
    cache.cache_tool_signature("toolu_1", SIG_B)
    before = cache.get_stats()
    assert cache.peek_owner("main", "<think>text</think>") == (True, "alice")
    assert cache.peek_owner("tool", "toolu_1") == (True, None)
    assert cache.peek_owner("session", "nope") == (False, None)
    assert cache.peek_owner("main", None) == (False, None)
    assert cache.get_stats() == before
    clock.advance(4000)
    assert cache.peek_owner("main", "text") == (False, None)


def test_answer_provenance_names_the_entry_behind_a_last_or_recent_answer() -> None:
    clock = FakeClock()
    cache = SignatureCache(clock=clock)
    cache.set("text", SIG_A, "claude-sonnet-4-5", owner_id="alice")
    assert cache.get_last_signature() == SIG_A
    assert cache.answer_provenance() == ("alice", "claude-sonnet-4-5")
    assert cache.get_recent_signature_with_text(owner_id="bob") is None  # owner-strict main
    assert cache.answer_provenance() is None
    assert cache.get_recent_signature_with_text() == (SIG_A, "text")
    assert cache.answer_provenance() == ("alice", "claude-sonnet-4-5")
    cache.cache_tool_signature("toolu_1", SIG_B)
    assert cache.get_recent_signature() == SIG_B  # the tool store first
    assert cache.answer_provenance() == (None, None)
    assert cache.get_recent_signature(time_window_seconds="bad") is None  # type: ignore[arg-type]
    assert cache.answer_provenance() is None
    clock.advance(4000)
    assert cache.get_last_signature_with_text() is None
    assert cache.answer_provenance() is None


@settings(max_examples=60, deadline=None)
@given(
    writes=st.lists(
        st.tuples(
            st.sampled_from(["tool", "session"]),
            st.sampled_from(["a", "b", "c", "d"]),
            st.sampled_from([0.0, 0.0, 5.0, 100.0, 400.0]),
            st.sampled_from([None, "o1"]),
            st.booleans(),
        ),
        max_size=12,
    ),
    window=st.sampled_from([1, 50, 300, 1000]),
    owner=st.sampled_from([None, "o1", "o2"]),
)
def test_recent_answers_are_the_origins_sort_then_scan(
    writes: list[tuple[str, str, float, str | None, bool]], window: int, owner: str | None
) -> None:
    """The O(n) newest-entry scan answers exactly as the origin's sort-newest-first-then-scan."""
    clock = FakeClock(1_000.0)
    cache = SignatureCache(clock=clock)
    for store, key, advance, writer, with_text in writes:
        clock.advance(advance)
        signature = SIG_A if key in "ab" else SIG_B
        if store == "tool":
            cache.cache_tool_signature(f"tool-{key}", signature, writer)
        else:
            text = f"text {key}" if with_text else ""
            cache.cache_session_signature(f"sess-{key}", signature, text, writer)
    clock.advance(10.0)
    now = clock()

    def origin_recent() -> str | None:
        for store in (cache._tool_signatures, cache._session_signatures):
            for entry in sorted(store.values(), key=lambda e: e.timestamp, reverse=True):
                if now - entry.timestamp < window:
                    return entry.signature
        return None

    def origin_recent_text() -> tuple[str, str] | None:
        sessions = sorted(
            cache._session_signatures.values(), key=lambda e: e.timestamp, reverse=True
        )
        for entry in sessions:
            strict = owner is None or entry.owner_id == owner
            if now - entry.timestamp < window and entry.thinking_text and strict:
                return (entry.signature, entry.thinking_text)
        return None

    assert cache.get_recent_signature(window) == origin_recent()
    assert cache.get_recent_signature_with_text(window, owner_id=owner) == origin_recent_text()
