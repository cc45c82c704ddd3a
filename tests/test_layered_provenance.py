"""Provenance in the layered cache (issue 13): families, scopes, conversations, tool-id forms."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigcache.config import LayeredConfig
from sigcache.layered import LayeredSignatureCache
from sigcache.provenance import model_family, tool_id_core
from sigcache.redis_codec import decode_entry, encode_entry
from sigcache.storage import MAIN, Entry
from tests.contract import SIG_A, SIG_B, SIG_C, FakeClock

CLAUDE, GEMINI = "claude-sonnet-4-5", "gemini-3-pro-high"


def _stats(cache: LayeredSignatureCache) -> dict[str, Any]:
    return cache.get_stats()


def test_a_read_of_another_family_is_a_counted_provenance_miss(tmp_path: Path) -> None:
    with LayeredSignatureCache(tmp_path / "c.db", clock=FakeClock()) as cache:
        cache.set("thought", SIG_A, CLAUDE, scope="acct-1")
        cache.reset_stats()
        assert cache.get("thought", model=GEMINI) is None
        assert cache.read_tier() is None
        assert cache.get("thought", scope="acct-2") is None
        assert cache.get("thought", model="claude-opus-4-5", scope="acct-1") == SIG_A
        assert cache.get("thought") == SIG_A  # the legacy read: any family, any scope
        stats = _stats(cache)
        assert stats["provenance_misses"] == 2
        assert stats["provenance_misses_family"] == 1
        assert stats["provenance_misses_scope"] == 1
        assert (stats["hits"], stats["misses"]) == (2, 2)  # a refused hit is a miss
        assert (stats["main_hits"], stats["main_misses"]) == (2, 2)


def test_every_keyed_read_filters(tmp_path: Path) -> None:
    with LayeredSignatureCache(tmp_path / "c.db", clock=FakeClock()) as cache:
        cache.cache_tool_signature("toolu_01A", SIG_A, model=GEMINI)
        cache.cache_session_signature("s", SIG_B, "text", model=GEMINI, scope="x")
        assert cache.get_tool_signature("toolu_01A", model=CLAUDE) is None
        assert cache.get_tool_signature("call_01A", model=CLAUDE) is None  # a form: refused too
        assert cache.get_tool_signature_fuzzy("toolu_01A_retry1", model=CLAUDE) is None
        assert cache.get_session_signature("s", model=CLAUDE) is None
        assert cache.get_session_signature_with_text("s", scope="y") is None
        assert cache.get_session_signature_with_text("s", model=GEMINI) == (SIG_B, "text")
        assert cache.get_many(["a", "b"], model=CLAUDE) == [None, None]
        assert _stats(cache)["provenance_misses"] == 5


def test_forks_share_keyed_entries_across_conversations(tmp_path: Path) -> None:
    with LayeredSignatureCache(tmp_path / "c.db", clock=FakeClock()) as cache:
        cache.set("resent by a fork", SIG_A, CLAUDE, conversation_id="original")
        assert cache.get("resent by a fork", conversation_id="fork") == SIG_A
        assert cache.get_last_signature(conversation_id="fork") is None


def test_last_and_recent_stay_in_their_conversation(tmp_path: Path) -> None:
    clock = FakeClock()
    with LayeredSignatureCache(tmp_path / "c.db", clock=clock) as cache:
        cache.set("mine", SIG_A, CLAUDE, "o", conversation_id="c1")
        clock.advance(1)
        cache.set("a stranger's", SIG_B, CLAUDE, "o", conversation_id="c2")
        cache.cache_tool_signature("toolu_9", SIG_C, "o", conversation_id="c2")
        assert cache.get_last_signature("o", conversation_id="c1") == SIG_A
        assert cache.get_recent_signature(owner_id="o", conversation_id="c1") == SIG_A
        assert cache.get_recent_signature(owner_id="o", conversation_id="c2") == SIG_C
        assert cache.get_last_signature("o") is None  # no conversation: nothing, never c2's
        assert cache.get_recent_signature_with_text(owner_id="o") is None
        assert cache.get_last_signature("o", conversation_id="c1", model=GEMINI) is None
        assert cache.get_last_signature("p", conversation_id="c1") is None  # owners too
        assert cache.flush(10)
    with LayeredSignatureCache(tmp_path / "c.db", clock=clock) as cache:  # L2 after a restart
        assert cache.get_last_signature("o", conversation_id="c1") == SIG_A
        assert cache.get_recent_signature(owner_id="o", conversation_id="c2") == SIG_C
        assert cache.get_last_signature("o") is None
        stats = _stats(cache)
        assert stats["provenance_misses_conversation"] == 1


def test_owner_wide_last_and_recent_when_configured(tmp_path: Path) -> None:
    config = LayeredConfig(strict_conversation_fallbacks=False)
    with LayeredSignatureCache(tmp_path / "c.db", config=config, clock=FakeClock()) as cache:
        cache.set("any", SIG_A, CLAUDE, "o", conversation_id="c1")
        assert cache.get_last_signature("o") == SIG_A
        assert cache.get_last_signature("o", model=GEMINI) is None  # families still filter
        assert cache.get_last_signature("o", conversation_id="c2") is None


# -- tool-id forms --------------------------------------------------------------------------


def test_rewritten_tool_ids_are_found_after_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    long_id = "toolu_01" + "Q" * 70
    with LayeredSignatureCache(tmp_path / "c.db", clock=clock) as cache:
        assert cache.cache_tool_signature("toolu_01ABC", SIG_A)
        assert cache.cache_tool_signature(long_id, SIG_B, owner_id="o")
        assert cache.get_tool_signature("call_01ABC") == SIG_A
        assert cache.get_stats()["tool_alias_hits"] == 1
    with LayeredSignatureCache(tmp_path / "c.db", clock=clock) as cache:
        assert cache.get_tool_signature("call_01ABC_retry2") == SIG_A
        assert cache.read_tier() == "l2"
        assert cache.get_tool_signature(long_id[:64], owner_id="o") == SIG_B
        assert cache.get_tool_signature(long_id[:64]) is None  # owners never share aliases
        stats = _stats(cache)
        assert stats["tool_alias_hits"] == 2
        assert (stats["tool_hits"], stats["tool_misses"]) == (2, 1)
        assert [e.store for e in cache.entries()] == ["tool", "tool"]  # aliases are no entries


def test_a_form_two_calls_share_answers_nothing(tmp_path: Path) -> None:
    with LayeredSignatureCache(tmp_path / "c.db", clock=FakeClock()) as cache:
        assert cache.cache_tool_signature("call_x1", SIG_A)
        assert cache.get_tool_signature("toolu_x1") == SIG_A
        assert cache.cache_tool_signature("toolu_x1", SIG_B)  # another raw id, the same form
        assert cache.get_tool_signature("call_x1") == SIG_A  # raw ids still answer
        assert cache.get_tool_signature("toolu_x1") == SIG_B
        assert cache.get_tool_signature("x1") is None  # ambiguous: nothing
        assert cache.get_tool_signature("call_x1_retry") is None
        assert _stats(cache)["tool_alias_ambiguous"] == 2
        assert cache.flush(10)
    with LayeredSignatureCache(tmp_path / "c.db", clock=FakeClock()) as cache:
        assert cache.get_tool_signature("x1") is None  # still ambiguous after a restart
        assert cache.cache_tool_signature("call_x1", SIG_A)  # a rewrite keeps it ambiguous
        assert cache.get_tool_signature("x1") is None


@dataclass(frozen=True)
class Call:
    """One tool call: its raw id as written and its signature."""

    core: str
    signature: str


_HEAD = st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=8, max_size=8)
_TAIL = st.text("abcdef0123456789.:", max_size=80)
_PREFIX = st.sampled_from(["", "call_", "toolu_"])
_SUFFIX = st.sampled_from(["", "_retry", "_retry2", "_copy1"])
_SIGS = itertools.count()


def _signature(n: int) -> str:
    return f"Sig{n:05d}" + "A" * 60


@st.composite
def _rewrite(draw: st.DrawFn, core: str) -> str:
    rewritten = draw(_PREFIX) + core + draw(_SUFFIX)
    return rewritten[:64] if draw(st.booleans()) else rewritten


@pytest.fixture(scope="module")
def tool_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LayeredSignatureCache]:
    with LayeredSignatureCache(tmp_path_factory.mktemp("t") / "c.db") as cache:
        yield cache


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.data(), st.lists(st.tuples(_HEAD, _TAIL), min_size=1, max_size=5, unique_by=lambda c: c[0])
)
def test_rewritten_ids_are_found_and_calls_never_confused(
    tool_cache: LayeredSignatureCache, data: st.DataObject, calls: list[tuple[str, str]]
) -> None:
    owner = f"owner-{next(_SIGS)}"  # a fresh namespace per example in the shared cache
    known = [Call(head + tail, _signature(next(_SIGS))) for head, tail in calls]
    raw = {}
    for call in known:
        raw[call.core] = data.draw(_rewrite(call.core))
        assert tool_cache.cache_tool_signature(raw[call.core], call.signature, owner)
    for call in known:
        read = data.draw(_rewrite(call.core))
        assert tool_cache.get_tool_signature(read, owner) == call.signature, (raw, read)
    stranger = data.draw(_rewrite(data.draw(_HEAD.filter(lambda h: h not in calls[0])) + "zz"))
    found = tool_cache.get_tool_signature(stranger, owner)
    assert found is None or any(
        found == c.signature and tool_id_core(stranger)[:8] == c.core[:8] for c in known
    )


# -- whatever the interleaving, never another family's, scope's or owner's signature ---------

MODELS = [None, CLAUDE, "claude-opus-4-5", GEMINI, "gpt-5"]
SCOPES = [None, "acct-1", "acct-2"]
OWNERS = [None, "alice", "bob"]
KEYS = ["k1", "k2"]
op = st.one_of(
    st.tuples(
        st.just("write"),
        st.sampled_from(["main", "tool", "session"]),
        st.sampled_from(KEYS),
        st.sampled_from(OWNERS),
        st.sampled_from(MODELS),
        st.sampled_from(SCOPES),
        st.sampled_from(["c1", "c2", None]),
    ),
    st.tuples(
        st.just("read"),
        st.sampled_from(["main", "tool", "session", "last", "recent"]),
        st.sampled_from(KEYS),
        st.sampled_from(OWNERS),
        st.sampled_from(MODELS),
        st.sampled_from(SCOPES),
        st.sampled_from(["c1", "c2", None]),
    ),
    st.tuples(st.just("restart")),
)


def _compatible(read_model: Any, read_scope: Any, model: Any, scope: Any) -> bool:
    read_family, family = model_family(read_model), model_family(model)
    if read_family and family and read_family != family:
        return False
    return not (read_scope and scope and read_scope != scope)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(op, max_size=30))
def test_never_another_familys_scopes_or_owners_signature(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[Any, ...]]
) -> None:
    path = tmp_path_factory.mktemp("p") / "c.db"
    clock = FakeClock()
    cache = LayeredSignatureCache(path, clock=clock)
    latest: dict[tuple[str, str, Any], tuple[str, Any, Any, Any]] = {}  # the model of the cache
    written: list[tuple[str, Any, Any, Any, Any]] = []  # (signature, owner, model, scope, conv)
    try:
        for n, (kind, *rest) in enumerate(ops):
            clock.advance(1)
            if kind == "restart":
                cache.close()
                cache = LayeredSignatureCache(path, clock=clock)
                continue
            store, key, owner, model, scope, conv = rest
            kw = {"model": model, "scope": scope, "conversation_id": conv}
            if kind == "write":
                sig = f"S{n:03d}" + "B" * 60
                if store == "main":
                    assert cache.set(key, sig, model, owner, scope=scope, conversation_id=conv)
                elif store == "tool":
                    assert cache.cache_tool_signature("toolu_" + key, sig, owner, **kw)
                else:
                    assert cache.cache_session_signature(key, sig, "t", owner, **kw)
                latest[(store, key, owner)] = (sig, model, scope, conv)
                written.append((sig, owner, model, scope, conv))
                continue
            if store in ("last", "recent"):
                if store == "last":
                    found = cache.get_last_signature(owner, **kw)
                else:
                    found = cache.get_recent_signature(owner_id=owner, **kw)
                if found is not None:
                    assert conv is not None
                    assert any(
                        sig == found
                        and w_owner == owner
                        and w_conv == conv
                        and _compatible(model, scope, w_model, w_scope)
                        for sig, w_owner, w_model, w_scope, w_conv in written
                    )
                continue
            if store == "main":
                found = cache.get(key, owner, **kw)
            elif store == "tool":
                found = cache.get_tool_signature("call_" + key, owner, **kw)  # a form
            else:
                found = cache.get_session_signature(key, owner, **kw)
            held = latest.get((store, key, owner))
            expected = None
            if held is not None and _compatible(model, scope, held[1], held[2]):
                expected = held[0]
            assert found == expected
    finally:
        cache.close()


# -- the Redis value codec carries the scope, and reads values without one ------------------


def test_redis_values_carry_scope_and_read_old_ones() -> None:
    plain = Entry(MAIN, "", "k", SIG_A, "t", "claude-x", "c", 1.0, 2.0)
    scoped = plain._replace(scope="acct")
    assert decode_entry(encode_entry(plain)) == plain
    assert decode_entry(encode_entry(scoped)) == scoped
    assert encode_entry(plain).count(b",") == 8  # nine fields: readable by every version
    old = b'o["main","","k","' + SIG_A.encode() + b'","t",null,null,1.0,2.0]'
    assert decode_entry(old).scope is None
    with pytest.raises(ValueError):
        decode_entry(b'o["main"]')


def test_read_refusal_tells_a_provenance_refusal_from_a_plain_miss(tmp_path: Path) -> None:
    clock = FakeClock()
    with LayeredSignatureCache(tmp_path / "c.db", clock=clock) as cache:
        cache.set("thought", SIG_A, CLAUDE, "o", scope="acct-1", conversation_id="c1")
        cache.cache_tool_signature("toolu_01A", SIG_B, "o", model=CLAUDE)
        refusal = cache.read_refusal
        assert cache.get("thought", "o", model=GEMINI) is None and refusal() == "family"
        assert cache.get("never written", "o", model=GEMINI) is None and refusal() is None
        assert cache.get("thought", "o", scope="acct-2") is None and refusal() == "scope"
        assert cache.get("", "o") is None and refusal() is None  # no key: nothing found
        assert cache.get_tool_signature("call_01A", "o", model=GEMINI) is None  # by a form
        assert refusal() == "family"
        assert cache.get_session_signature("nope", "o") is None and refusal() is None
        assert cache.get_last_signature("o") is None and refusal() == "conversation"
        assert cache.get_last_signature("o", conversation_id="c9") is None and refusal() is None
        assert cache.get_last_signature("o", model=GEMINI, conversation_id="c1") is None
        assert refusal() == "family"
        bad_window: Any = "soon"
        assert cache.get_recent_signature(bad_window, owner_id="o") is None and refusal() is None
        assert cache.flush(5)
    with LayeredSignatureCache(tmp_path / "c.db", clock=clock) as reopened:  # L1 empty: L2 rows
        assert reopened.get("thought", "o", model=GEMINI) is None
        assert reopened.read_refusal() == "family"
        assert reopened.get("never written", "o") is None and reopened.read_refusal() is None


def test_read_refusal_is_per_thread(tmp_path: Path) -> None:
    with LayeredSignatureCache(tmp_path / "c.db", clock=FakeClock()) as cache:
        cache.set("thought", SIG_A, CLAUDE)
        assert cache.get("thought", model=GEMINI) is None and cache.read_refusal() == "family"
        seen: list[str | None] = []
        worker = threading.Thread(target=lambda: seen.append(cache.read_refusal()))
        worker.start()
        worker.join()
        assert seen == [None]
