"""The cache contract: behaviour every cache (legacy, layered, phase router) must show.

Subclass `CacheContract` and implement `make_cache(clock)`; `owner_strict`, `prefix_collisions`
and `provenance_strict` say which side of the deliberate differences between legacy and new the
cache is on. Every cache takes the provenance keywords of issue 13 (legacy ignores them), so the
last/recent tests name a conversation and hold for both.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

SIG_A = "EqQBCkYIBRgCKkD" + "a" * 60
SIG_B = "EqQBCkYIBRgCKkD" + "b" * 60
CONV = "conversation-1"
SIG_C = "CiQBjz1rX" + "c" * 79  # 88 characters: base64 (an 89-character value is truncated)
TTL = 3600


class FakeClock:
    """A settable clock: `clock()` returns the current virtual time in seconds."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


BAD_TEXTS: list[Any] = [None, "", "   ", 42, b"bytes", ["list"], {"a": 1}, "<think>  </think>"]
BAD_IDS: list[Any] = [None, "", 42, b"bytes", ["list"], {"a": 1}]
BAD_SIGNATURES: list[Any] = [
    None,
    "",
    "short",
    "x" * 49,
    "skip_thought_signature_validator",
    "has spaces " + "a" * 60,
    "bad*chars" + "a" * 60,
    42,
    b"E" * 80,
]


class CacheContract:
    """Mixin of contract tests; subclasses provide `make_cache`."""

    owner_strict: ClassVar[bool] = False
    prefix_collisions: ClassVar[bool] = True
    # Family and scope filter reads; last/recent need a conversation (the new cache, issue 13).
    provenance_strict: ClassVar[bool] = False
    # Family filters keyed reads even where last/recent fall back to legacy (NEW_PREFERRED).
    family_strict: ClassVar[bool] = False

    def make_cache(self, clock: FakeClock) -> Any:
        raise NotImplementedError

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def cache(self, clock: FakeClock) -> Any:
        made = self.make_cache(clock)
        yield made
        close = getattr(made, "close", None)
        if callable(close):
            close()

    # -- main store -------------------------------------------------------------------------

    def test_set_then_get(self, cache: Any) -> None:
        assert cache.set("thinking about it", SIG_A) is True
        assert cache.get("thinking about it") == SIG_A

    def test_miss_is_none(self, cache: Any) -> None:
        assert cache.get("never written") is None

    def test_overwrite_replaces(self, cache: Any) -> None:
        cache.set("text", SIG_A)
        cache.set("text", SIG_B)
        assert cache.get("text") == SIG_B

    def test_tag_wrapping_and_whitespace_share_a_key(self, cache: Any) -> None:
        cache.set("  inner thought  ", SIG_A)
        for query in (
            "<think>inner thought</think>",
            "<reasoning> inner thought </reasoning>",
            "<THINK>\n<redacted_reasoning>inner thought</reasoning></think>  ",
        ):
            assert cache.get(query) == SIG_A

    def test_expiry_after_ttl(self, cache: Any, clock: FakeClock) -> None:
        cache.set("text", SIG_A)
        clock.advance(TTL)
        assert cache.get("text") == SIG_A
        clock.advance(24 * 3600 * 30)
        assert cache.get("text") is None

    def test_invalidate(self, cache: Any) -> None:
        cache.set("text", SIG_A)
        assert cache.invalidate("text") is True
        assert cache.get("text") is None
        assert cache.invalidate("text") is False

    def test_clear_counts_main_entries(self, cache: Any) -> None:
        for i in range(3):
            cache.set(f"text {i}", SIG_A)
        assert cache.clear() == 3
        assert cache.get("text 0") is None
        assert len(cache) == 0

    def test_size_and_len(self, cache: Any) -> None:
        cache.set("one", SIG_A)
        cache.set("two", SIG_B)
        assert cache.size == 2 == len(cache)

    def test_cleanup_expired(self, cache: Any, clock: FakeClock) -> None:
        cache.set("old", SIG_A)
        clock.advance(24 * 3600 * 30)
        cache.set("new", SIG_B)
        assert cache.cleanup_expired() >= 1
        assert cache.get("new") == SIG_B
        assert cache.get("old") is None

    @pytest.mark.parametrize("text", BAD_TEXTS)
    def test_bad_text_is_refused_quietly(self, cache: Any, text: Any) -> None:
        cache.set("kept", SIG_A)
        assert cache.set(text, SIG_A) is False
        assert cache.get(text) is None
        assert cache.invalidate(text) is False
        assert cache.get("kept") == SIG_A

    @pytest.mark.parametrize("signature", BAD_SIGNATURES)
    def test_bad_signature_is_refused(self, cache: Any, signature: Any) -> None:
        assert cache.set("text", signature) is False
        assert cache.get("text") is None
        assert cache.cache_tool_signature("toolu_1", signature) is False
        assert cache.cache_session_signature("sess", signature) is False

    def test_huge_and_odd_texts(self, cache: Any) -> None:
        huge = "x" * 1_000_000
        odd = "surrogate \ud800 and nul \x00 and emoji \U0001f600"
        assert cache.set(huge, SIG_A) is True
        assert cache.set(odd, SIG_B) is True
        assert cache.get(huge) == SIG_A
        assert cache.get(odd) == SIG_B

    def test_stats_are_a_dict(self, cache: Any) -> None:
        cache.set("t", SIG_A)
        cache.get("t")
        cache.get("missing")
        stats = cache.get_stats()
        assert isinstance(stats, dict)
        cache.reset_stats()

    # -- owners -----------------------------------------------------------------------------

    def test_same_owner_hits(self, cache: Any) -> None:
        cache.set("text", SIG_A, owner_id="alice")
        assert cache.get("text", owner_id="alice") == SIG_A

    def test_different_owner_misses(self, cache: Any) -> None:
        cache.set("text", SIG_A, owner_id="alice")
        assert cache.get("text", owner_id="bob") is None

    def test_ownerless_query_of_owned_entry(self, cache: Any) -> None:
        cache.set("text", SIG_A, owner_id="alice")
        expected = None if self.owner_strict else SIG_A
        assert cache.get("text") == expected

    # -- prefix collisions -------------------------------------------------------------------

    def test_texts_sharing_500_chars(self, cache: Any) -> None:
        prefix = "p" * 500
        cache.set(prefix + " first", SIG_A)
        cache.set(prefix + " second", SIG_B)
        assert cache.get(prefix + " second") == SIG_B
        expected = None if self.prefix_collisions else SIG_A
        assert cache.get(prefix + " first") == expected

    # -- tool and session stores --------------------------------------------------------------

    def test_tool_round_trip(self, cache: Any) -> None:
        assert cache.cache_tool_signature("toolu_01", SIG_A) is True
        assert cache.get_tool_signature("toolu_01") == SIG_A
        assert cache.get_tool_signature("toolu_02") is None

    def test_tool_expiry(self, cache: Any, clock: FakeClock) -> None:
        cache.cache_tool_signature("toolu_01", SIG_A)
        clock.advance(24 * 3600 * 30)
        assert cache.get_tool_signature("toolu_01") is None

    def test_tool_fuzzy(self, cache: Any) -> None:
        cache.cache_tool_signature("call_abc123", SIG_A)
        assert cache.get_tool_signature_fuzzy("call_abc123_retry2") == SIG_A
        assert cache.get_tool_signature_fuzzy("unrelated_zzz") is None

    def test_session_round_trip(self, cache: Any) -> None:
        assert cache.cache_session_signature("sess1", SIG_A, "the text") is True
        assert cache.get_session_signature("sess1") == SIG_A
        assert cache.get_session_signature_with_text("sess1") == (SIG_A, "the text")
        assert cache.get_session_signature("sess2") is None

    def test_session_owner(self, cache: Any) -> None:
        cache.cache_session_signature("sess1", SIG_A, owner_id="alice")
        assert cache.get_session_signature("sess1", owner_id="bob") is None
        assert cache.get_session_signature("sess1", owner_id="alice") == SIG_A

    @pytest.mark.parametrize("key", BAD_IDS)
    def test_bad_ids_refused(self, cache: Any, key: Any) -> None:
        assert cache.cache_tool_signature(key, SIG_A) is False
        assert cache.get_tool_signature(key) is None
        assert cache.cache_session_signature(key, SIG_A) is False
        assert cache.get_session_signature(key) is None
        assert cache.get_session_signature_with_text(key) is None

    # -- last / recent -------------------------------------------------------------------------

    def test_last_signature(self, cache: Any, clock: FakeClock) -> None:
        assert cache.get_last_signature(conversation_id=CONV) is None
        cache.set("first", SIG_A, conversation_id=CONV)
        clock.advance(1)
        cache.set("second", SIG_B, conversation_id=CONV)
        assert cache.get_last_signature(conversation_id=CONV) == SIG_B
        assert cache.get_last_signature_with_text(conversation_id=CONV) == (SIG_B, "second")

    def test_last_signature_expires(self, cache: Any, clock: FakeClock) -> None:
        cache.set("first", SIG_A, conversation_id=CONV)
        clock.advance(24 * 3600 * 30)
        assert cache.get_last_signature(conversation_id=CONV) is None

    def test_recent_signature_window(self, cache: Any, clock: FakeClock) -> None:
        cache.set("text", SIG_A, conversation_id=CONV)
        clock.advance(10)
        assert cache.get_recent_signature(time_window_seconds=60, conversation_id=CONV) == SIG_A
        found = cache.get_recent_signature_with_text(time_window_seconds=60, conversation_id=CONV)
        assert found == (SIG_A, "text")
        clock.advance(120)
        assert cache.get_recent_signature(time_window_seconds=60, conversation_id=CONV) is None

    def test_recent_prefers_tool_store(self, cache: Any, clock: FakeClock) -> None:
        cache.set("text", SIG_A, conversation_id=CONV)
        cache.cache_tool_signature("toolu_9", SIG_C, conversation_id=CONV)
        assert cache.get_recent_signature(conversation_id=CONV) == SIG_C

    def test_last_and_recent_without_a_conversation(self, cache: Any) -> None:
        cache.set("text", SIG_A, conversation_id=CONV)
        expected = None if self.provenance_strict else SIG_A
        assert cache.get_last_signature() == expected
        assert cache.get_recent_signature() == expected

    def test_last_and_recent_of_another_conversation(self, cache: Any) -> None:
        cache.set("text", SIG_A, conversation_id=CONV)
        expected = None if self.provenance_strict else SIG_A
        assert cache.get_last_signature(conversation_id="another") == expected
        assert cache.get_recent_signature_with_text(conversation_id="another") == (
            None if expected is None else (SIG_A, "text")
        )

    # -- provenance (issue 13) --------------------------------------------------------------

    def test_provenance_keywords_are_accepted_everywhere(self, cache: Any) -> None:
        given = {"model": "claude-sonnet-4-5", "scope": "acct-1", "conversation_id": CONV}
        assert cache.set("text", SIG_A, "claude-sonnet-4-5", scope="acct-1", conversation_id=CONV)
        assert cache.get("text", **given) == SIG_A
        assert cache.cache_tool_signature("toolu_1", SIG_B, **given) is True
        assert cache.get_tool_signature("toolu_1", **given) == SIG_B
        assert cache.get_tool_signature_fuzzy("toolu_1", **given) == SIG_B
        assert cache.cache_session_signature("sess", SIG_C, "t", **given) is True
        assert cache.get_session_signature("sess", **given) == SIG_C
        assert cache.get_session_signature_with_text("sess", **given) == (SIG_C, "t")
        assert cache.get_last_signature(**given) == SIG_A
        assert cache.get_recent_signature(**given) is not None

    def test_family_filter(self, cache: Any) -> None:
        cache.set("claude text", SIG_A, "claude-opus-4-5")
        cache.set("plain text", SIG_B)
        expected = None if self.provenance_strict or self.family_strict else SIG_A
        assert cache.get("claude text", model="gemini-2.5-flash") == expected
        assert cache.get("claude text", model="claude-sonnet-4-5") == SIG_A
        assert cache.get("claude text") == SIG_A  # no model: any family, as before
        assert cache.get("plain text", model="gemini-2.5-flash") == SIG_B  # no model stored
