"""The pure provenance rules (sigcache.provenance): families, matching, write checks, tool ids."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sigcache import fingerprints, layered_keys
from sigcache.keys import PLACEHOLDER_SIGNATURE
from sigcache.provenance import (
    PLACEHOLDERS,
    TOOL_ID_MAX_LENGTH,
    Want,
    is_truncated,
    mismatch,
    model_family,
    rejection_reason,
    sanitize_tool_id,
    shortens,
    tool_id_core,
    tool_id_forms,
    tool_id_lookup_forms,
    want,
)

POOL = Path(__file__).resolve().parent.parent / "harness" / "data" / "signature_pool.jsonl.gz"


def _real_signatures() -> list[str]:
    with gzip.open(POOL, "rt", encoding="utf-8") as f:
        return [json.loads(line)["signature"] for line in f]


REAL = _real_signatures()


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("claude-opus-4-5-thinking", "claude"),
        ("anthropic/Claude-3.7-Sonnet", "claude"),
        ("gemini-3-pro-high", "gemini"),
        ("models/GEMINI-2.5-flash", "gemini"),
        ("gpt-5", "other"),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_model_family(model: object, family: str | None) -> None:
    assert model_family(model) == family


def test_moved_names_stay_importable() -> None:
    assert fingerprints.model_family is model_family
    assert layered_keys.is_truncated is is_truncated
    assert layered_keys.PLACEHOLDERS is PLACEHOLDERS


@pytest.mark.parametrize(
    ("wanted", "model", "scope", "reason"),
    [
        (None, "claude-x", "a", None),  # a read naming nothing matches anything
        (Want("claude", None), "claude-y", "a", None),
        (Want("claude", None), "gemini-y", None, "family"),
        (Want("claude", None), None, None, None),  # an entry without a model matches any read
        (Want("other", None), "gpt-5", None, None),
        (Want(None, "acct-1"), "gemini-y", "acct-2", "scope"),
        (Want(None, "acct-1"), "gemini-y", None, None),  # an entry without a scope: any read
        (Want(None, "acct-1"), None, "", None),  # "" is no scope
        (Want("gemini", "acct-1"), "claude-x", "acct-2", "family"),
    ],
)
def test_mismatch_filters_only_where_both_carry_a_value(
    wanted: Want | None, model: str | None, scope: str | None, reason: str | None
) -> None:
    assert mismatch(wanted, model, scope) == reason


def test_want_is_none_when_nothing_is_asked() -> None:
    assert want() is None and want("", "") is None and want(7, None) is None
    assert want("claude-x", "s") == Want("claude", "s")


def test_every_real_signature_is_accepted() -> None:
    assert len(REAL) > 600
    for signature in REAL:
        assert rejection_reason(signature) is None, signature[:16]


def test_real_signatures_cut_short_are_refused() -> None:
    for signature in REAL:
        body = signature.rstrip("=")
        cut = body[: len(body) - (len(body) % 4) - 3]  # 1 mod 4: no encoding produces it
        assert rejection_reason(cut) == "truncated"
        if signature.endswith("=="):
            assert is_truncated(signature[:-1])  # a cut inside the padding


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (PLACEHOLDER_SIGNATURE, "placeholder"),
        (sorted(PLACEHOLDERS)[0], "placeholder"),
        ("short", "invalid"),
        ("", "invalid"),
        (None, "invalid"),
        ("A" * 59 + " ", "invalid"),
        ("A" * 61, "truncated"),
        ("A" * 60 + "=", "truncated"),  # padding on a length that is not a multiple of 4
        ("A" * 60, None),
        ("A-_B" * 15, None),  # url-safe alphabet
    ],
)
def test_rejection_reasons(value: object, reason: str | None) -> None:
    assert rejection_reason(value) == reason


def test_validated_skips_only_the_alphabet_check() -> None:
    assert rejection_reason("A" * 12, validated=True) is None
    assert rejection_reason(PLACEHOLDER_SIGNATURE, validated=True) == "placeholder"
    assert rejection_reason("A" * 61, validated=True) == "truncated"
    assert rejection_reason("A" * 61, reject_truncated=False) is None


def test_shortens() -> None:
    assert shortens("ABCD" * 20, "ABCD" * 19)
    assert not shortens("ABCD" * 20, "ABCD" * 20)
    assert not shortens("ABCD" * 20, "ABCE" * 19)
    assert not shortens(None, "ABCD")


# -- tool ids -----------------------------------------------------------------------------------


def test_tool_id_core_examples() -> None:
    assert tool_id_core("call_abc_retry2") == "abc"
    assert tool_id_core("toolu_01ABC") == "01ABC"
    assert tool_id_core("call_toolu_x_copy1_RETRY") == "x"
    assert tool_id_core("fn:read/file") == "fn_read_file"
    assert tool_id_core("read_file_0") == "read_file_0"  # a bare _<digits> is another call
    assert tool_id_core("call_") == "call_"  # never empty
    assert sanitize_tool_id("a.b c") == "a_b_c"


def _found(written: str, read: str) -> bool:
    return bool(set(tool_id_forms(written)) & set(tool_id_lookup_forms(read)))


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("toolu_01XYZ", "call_01XYZ"),
        ("toolu_01XYZ", "01XYZ"),
        ("call_abc", "call_abc_retry2"),
        ("call_abc", "toolu_abc_copy"),
        ("fn:read.file", "fn_read_file"),
        ("toolu_" + "k" * 70, ("toolu_" + "k" * 70)[:64]),  # cut by a client
        ("toolu_" + "k" * 70, ("call_" + "k" * 70)[:64]),  # prefix swapped, then cut
        (("toolu_" + "k" * 70)[:64], "toolu_" + "k" * 70),  # the cut one was written
        ("call_" + "m" * 55, ("call_" + "m" * 55 + "_retry3")[:64]),  # suffix cut part-way
    ],
)
def test_rewritten_forms_are_found(written: str, read: str) -> None:
    assert _found(written, read)


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("read_file_0", "read_file_1"),
        ("call_abc", "call_abd"),
        ("toolu_01XYZ", "toolu_01XYZW"),
        ("k" * 40, "k" * 41),
    ],
)
def test_other_calls_are_not_forms(written: str, read: str) -> None:
    assert not _found(written, read)


_HEAD = st.text(
    "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789", min_size=8, max_size=8
)
_TAIL = st.text("abcdefXYZ0123456789.-:", max_size=90)
_PREFIX = st.sampled_from(["", "call_", "toolu_"])
_SUFFIX = st.sampled_from(["", "_retry", "_retry2", "_copy1", "_RETRY3"])


@st.composite
def rewrites(draw: st.DrawFn, core: str) -> str:
    """What a client or proxy may send back for a call whose core is `core`."""
    rewritten = draw(_PREFIX) + core + draw(_SUFFIX)
    if draw(st.booleans()):
        rewritten = sanitize_tool_id(rewritten)
    if draw(st.booleans()):
        rewritten = rewritten[:TOOL_ID_MAX_LENGTH]
    return rewritten


@given(st.data(), _HEAD, _TAIL)
def test_every_rewrite_of_a_written_id_is_a_form_of_it(
    data: st.DataObject, head: str, tail: str
) -> None:
    core = head + tail
    written = data.draw(rewrites(core))
    read = data.draw(rewrites(core))
    assert _found(written, read)


@given(st.data(), _HEAD, _HEAD, _TAIL, _TAIL)
def test_rewrites_of_two_calls_never_share_a_form(
    data: st.DataObject, head_a: str, head_b: str, tail_a: str, tail_b: str
) -> None:
    assume(head_a != head_b)
    written = data.draw(rewrites(head_a + tail_a))
    read = data.draw(rewrites(head_b + tail_b))
    assert not _found(written, read)
