"""Redaction keeps what the caches depend on: equality, length, 500-prefixes, wrapping, validity."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sigcache.keys import (
    PLACEHOLDER_SIGNATURE,
    is_valid_signature,
    legacy_key,
    normalize_thinking_text,
)
from sigcache.recording import RecordedEvent
from sigcache.redaction import Redactor, normalized_span

R = Redactor(b"test-key")
WRAPS = ["{}", "<think>{}</think>", "  <THINK>\n{}\n</think>\n", "<reasoning>{}</reasoning>",
         "<think><redacted_reasoning> {} </reasoning></think>", "\t{}  "]  # fmt: skip
words = st.text(alphabet="ab <>/\n", min_size=0, max_size=40)
cores = st.text(alphabet="abcxyz \n<>/thinkreasoning", min_size=0, max_size=1200)
texts = st.builds(lambda core, wrap: wrap.format(core), cores, st.sampled_from(WRAPS))


@given(st.text())
def test_normalized_span_matches_normalisation(text: str) -> None:
    start, end = normalized_span(text)
    assert text[start:end] == normalize_thinking_text(text)


@given(texts)
def test_text_keeps_length_wrapping_and_is_deterministic(text: str) -> None:
    surrogate = R.text(text)
    assert len(surrogate) == len(text)
    assert surrogate == R.text(text)
    start, end = normalized_span(text)
    assert surrogate[:start] == text[:start]
    assert surrogate[end:] == text[end:]
    assert normalize_thinking_text(surrogate) == surrogate[start:end]


@given(texts, texts)
def test_text_equality_and_500_prefixes_survive(a: str, b: str) -> None:
    na, nb = normalize_thinking_text(a), normalize_thinking_text(b)
    ra, rb = normalize_thinking_text(R.text(a)), normalize_thinking_text(R.text(b))
    assert (na == nb) == (ra == rb)
    assert (legacy_key(na) == legacy_key(nb)) == (legacy_key(ra) == legacy_key(rb))


@given(st.text(alphabet="abc ", min_size=500, max_size=700), cores, cores, st.sampled_from(WRAPS))
def test_long_shared_prefix_stays_shared(prefix: str, tail_a: str, tail_b: str, wrap: str) -> None:
    prefix = "p" + prefix
    a, b = wrap.format(prefix + tail_a + "z"), "<think>" + prefix + tail_b + "q</think>"
    ra, rb = normalize_thinking_text(R.text(a)), normalize_thinking_text(R.text(b))
    assert legacy_key(ra) == legacy_key(rb)
    assert ra != rb


def test_texts_change_and_keys_matter() -> None:
    text = "<think>the user wants a poem</think>"
    assert R.text(text) != text
    assert R.text(text).startswith("<think>")
    assert Redactor(b"other").text(text) != R.text(text)


signatures = st.text(alphabet="ABCxyz019+/=_-", min_size=0, max_size=300)
odd_signatures = st.text(min_size=0, max_size=80)


@given(signatures | odd_signatures | st.just(PLACEHOLDER_SIGNATURE))
def test_signature_validity_and_length_survive(signature: str) -> None:
    surrogate = R.signature(signature)
    assert len(surrogate) == len(signature)
    assert is_valid_signature(surrogate) == is_valid_signature(signature)
    assert surrogate == R.signature(signature)


@given(signatures, signatures)
def test_signature_equality_survives(a: str, b: str) -> None:
    assert (a == b) == (R.signature(a) == R.signature(b))


@given(
    st.from_regex(r"(call|toolu|scid)_[a-f0-9]{8,24}(_[0-9]{1,2}|_retry[0-9]?)?", fullmatch=True)
)
def test_ids_keep_structure(tool_id: str) -> None:
    from sigcache.fingerprints import extract_base_tool_id

    surrogate = R.ident(tool_id)
    assert len(surrogate) == len(tool_id)
    assert surrogate.split("_")[0] == tool_id.split("_")[0]
    assert R.ident(extract_base_tool_id(tool_id)) == extract_base_tool_id(surrogate)


def test_embedded_signature_in_tool_id_is_redacted_as_signature() -> None:
    signature = "E" + "k" * 80
    surrogate = R.ident("call_abc__thought__" + signature)
    head, _, tail = surrogate.partition("__thought__")
    assert tail == R.signature(signature)
    assert head.startswith("call_")


def test_event_redacts_args_and_pair_results() -> None:
    signature = "E" + "k" * 80
    event = RecordedEvent(3, 1.0, "get_recent_signature_with_text", {"owner_id": "abc123"},
                          (signature, "<think>secret</think>"), "w", "P", 0.0)  # fmt: skip
    redacted = R.event(event)
    assert redacted.result == (R.signature(signature), R.text("<think>secret</think>"))
    assert redacted.args["owner_id"] == R.ident("abc123") != "abc123"
    write = RecordedEvent(4, 1.0, "cache_signature",
                          {"thinking_text": "secret", "signature": signature, "model": "m"},
                          True, "w", "P", 0.0)  # fmt: skip
    args = R.event(write).args
    assert args == {"thinking_text": R.text("secret"), "signature": R.signature(signature),
                    "model": "m"}  # fmt: skip
