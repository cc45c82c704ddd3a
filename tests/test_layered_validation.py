"""Write-time validation of the layered cache: placeholders, truncated values, shorter prefixes."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigcache.config import LayeredConfig
from sigcache.layered import LayeredSignatureCache
from sigcache.layered_keys import PLACEHOLDERS, REJECTION_REASONS, is_truncated
from tests.contract import SIG_A

STRICT = LayeredConfig()  # the defaults refuse truncated values and prefixes (issue 13)
_texts = itertools.count()


def _encoded(raw: bytes, urlsafe: bool, padded: bool) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return text if padded else text.rstrip("=")


signatures = st.builds(_encoded, st.binary(min_size=38, max_size=300), st.booleans(), st.booleans())


def _cut(signature: str) -> str:
    body = signature.rstrip("=")
    return body[: len(body) - (len(body) % 4) - 3]  # length 1 mod 4: no encoding makes it


@given(signatures)
def test_encoded_signatures_are_not_truncated_and_cuts_are(signature: str) -> None:
    assert not is_truncated(signature)
    assert is_truncated(_cut(signature))
    assert is_truncated(signature[:10] + "=" + signature[10:])  # padding inside


@pytest.fixture(scope="module")
def strict_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LayeredSignatureCache]:
    # Module-scoped: hypothesis runs every example against one cache (one SQLite file).
    with LayeredSignatureCache(tmp_path_factory.mktemp("v") / "l2.db", config=STRICT) as cache:
        yield cache


@settings(max_examples=200, deadline=None)
@given(
    signatures,
    st.sampled_from(["valid", "cut", "placeholder"]),
    st.booleans(),
    st.sampled_from(["main", "tool", "session"]),
)
def test_truncated_or_placeholder_signatures_are_never_stored(
    strict_cache: LayeredSignatureCache, signature: str, kind: str, validated: bool, store: str
) -> None:
    value = {"valid": signature, "cut": _cut(signature)}.get(kind, sorted(PLACEHOLDERS)[0])
    name = f"entry {next(_texts)}"
    if store == "main":
        ok = strict_cache.set(name, value, validated=validated)
        found = strict_cache.get(name)
    elif store == "tool":
        ok = strict_cache.cache_tool_signature(name, value, validated=validated)
        found = strict_cache.get_tool_signature(name)
    else:
        ok = strict_cache.cache_session_signature(name, value, "t", validated=validated)
        found = strict_cache.get_session_signature(name)
    assert ok is (kind == "valid")
    assert found == (value if kind == "valid" else None)
    stats = strict_cache.get_stats()
    assert stats["rejected_writes"] == sum(stats[f"rejected_{r}"] for r in REJECTION_REASONS)


@pytest.mark.parametrize("placeholder", sorted(PLACEHOLDERS))
def test_placeholders_are_refused_and_counted(tmp_path: Path, placeholder: str) -> None:
    with LayeredSignatureCache(tmp_path / "l2.db") as cache:
        assert cache.set("t", placeholder, validated=True) is False
        assert cache.cache_tool_signature("x", placeholder, validated=True) is False
        stats = cache.get_stats()
        assert stats["rejected_placeholder"] == stats["rejected_writes"] == 2


def test_truncation_check_is_on_by_default(tmp_path: Path) -> None:
    sig = "CiQBjz1rX" + "c" * 80  # 89 characters: 1 mod 4, no base64 encoding makes it
    with LayeredSignatureCache(tmp_path / "l2.db") as cache:
        assert cache.set("t", sig) is False
        assert cache.get_stats()["rejected_truncated"] == 1
    relaxed = LayeredConfig(reject_truncated=False)
    with LayeredSignatureCache(tmp_path / "relaxed.db", config=relaxed) as cache:
        assert cache.set("t", sig) is True


def test_every_refused_write_is_counted_by_reason(tmp_path: Path) -> None:
    with LayeredSignatureCache(tmp_path / "l2.db") as cache:
        assert cache.set("t", "short") is False
        assert cache.set("t", None) is False  # type: ignore[arg-type]  # not a str: invalid
        assert cache.set("<think> </think>", SIG_A) is False  # empty once normalised
        assert cache.set(None, SIG_A) is False  # type: ignore[arg-type]
        assert cache.cache_tool_signature("", SIG_A) is False
        assert cache.cache_session_signature(None, SIG_A) is False  # type: ignore[arg-type]
        assert cache.set("t", SIG_A, owner_id=42) is False  # type: ignore[arg-type]
        stats = cache.get_stats()
        assert stats["rejected_invalid"] == 2
        assert stats["rejected_empty_text"] == 2
        assert stats["rejected_empty_id"] == 2
        assert stats["rejected_invalid_owner"] == 1
        assert stats["rejected_writes"] == 7
        assert stats["rejected_writes"] == sum(stats[f"rejected_{r}"] for r in REJECTION_REASONS)


def test_a_shorter_prefix_never_overwrites(tmp_path: Path) -> None:
    full = SIG_A + "b" * 40
    with LayeredSignatureCache(tmp_path / "l2.db") as cache:
        assert cache.set("t", full) is True
        assert cache.set("t", SIG_A) is False  # L1 holds the full value
        assert cache.get_stats()["rejected_prefix"] == 1
        assert cache.get("t") == full
        assert cache.set("t", full + "cccc") is True  # longer, or different: written
        assert cache.set("other", SIG_A) is True
        assert cache.cache_tool_signature("toolu_1", full) is True
        assert cache.cache_tool_signature("toolu_1", SIG_A) is False  # every store
        assert cache.flush(10)
    with LayeredSignatureCache(tmp_path / "l2.db") as fresh:
        assert fresh.get("t") == full + "cccc"
        assert fresh.get("other") == SIG_A
        assert fresh.get_tool_signature("toolu_1") == full


def test_prefix_refusal_can_be_turned_off_for_legacy_parity(tmp_path: Path) -> None:
    full = SIG_A + "b" * 40
    legacy_like = LayeredConfig(reject_prefix_overwrite=False)
    with LayeredSignatureCache(tmp_path / "l2.db", config=legacy_like) as cache:
        assert cache.set("t", full) is True
        assert cache.set("t", SIG_A) is True
        assert cache.get("t") == SIG_A
