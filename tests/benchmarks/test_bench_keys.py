"""Key derivation: normalise + hash, legacy (MD5 of 500 chars) against the new L1 and L2 keys."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from sigcache.keys import legacy_key, normalize_thinking_text, text_digest
from sigcache.layered import main_key

from .conftest import TEXT_SIZES, Corpus, describe

# id -> (label, derivation, is the group's baseline)
KEYS: dict[str, tuple[str, Callable[[str], object], bool]] = {
    "legacy": (
        "legacy key: normalise + MD5 of 500 chars",
        lambda text: legacy_key(normalize_thinking_text(text)),
        True,
    ),
    "l1": (
        "L1 key: normalise, (store, owner, text) tuple",
        lambda text: main_key(text, None),
        False,
    ),
    "l2": (
        "L2 key: normalise + SHA-256 of whole text",
        lambda text: text_digest(normalize_thinking_text(text)),
        False,
    ),
    "normalise": ("normalise only", normalize_thinking_text, False),
}


@pytest.mark.parametrize("size", list(TEXT_SIZES))
@pytest.mark.parametrize("variant", list(KEYS))
def test_key_derivation(
    benchmark: BenchmarkFixture, corpus: Corpus, variant: str, size: str
) -> None:
    """Derive one key from a thinking text of the given size."""
    label, derive, baseline = KEYS[variant]
    describe(benchmark, f"keys: derivation, {size} text", label, baseline=baseline)
    text = corpus.text(size, 1)
    assert derive(text)
    benchmark(derive, text)
