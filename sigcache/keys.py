"""Normalisation, key derivation and signature validation shared by every tier (pure)."""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "DEFAULT_KEY_PREFIX_LENGTH",
    "MIN_SIGNATURE_LENGTH",
    "PLACEHOLDER_SIGNATURE",
    "is_valid_signature",
    "legacy_key",
    "normalize_thinking_text",
    "short_hash",
    "text_digest",
]

DEFAULT_KEY_PREFIX_LENGTH = 500
MIN_SIGNATURE_LENGTH = 50
PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"

_THINK = re.compile(r"^<think>(.*)</think>\s*$", re.IGNORECASE | re.DOTALL)
# Opening and closing variants match independently, as in the replaced system:
# "<redacted_reasoning>...</reasoning>" unwraps too.
_REASONING = re.compile(
    r"^<(?:redacted_)?reasoning>(.*)</(?:redacted_)?reasoning>\s*$", re.IGNORECASE | re.DOTALL
)
_SIGNATURE_CHARS = re.compile(r"[A-Za-z0-9+/=_-]+")


def normalize_thinking_text(text: str) -> str:
    """Strip, then unwrap one `<think>` and one `<reasoning>` / `<redacted_reasoning>` wrapper."""
    if not text:
        return ""
    text = text.strip()
    if not text.startswith("<"):
        return text  # both wrappers start with "<": skip the two regex matches (most texts)
    match = _THINK.match(text)
    if match:
        text = match.group(1).strip()
    match = _REASONING.match(text)
    if match:
        text = match.group(1).strip()
    return text


def legacy_key(normalized: str, prefix_length: int = DEFAULT_KEY_PREFIX_LENGTH) -> str:
    """The legacy key: MD5 hex of the first `prefix_length` characters; "" for an empty text."""
    if not normalized:
        return ""
    prefix = normalized[:prefix_length]
    return hashlib.md5(prefix.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


def text_digest(normalized: str) -> str:
    """SHA-256 hex of the whole normalised text: the durable (L2) key of a thinking text."""
    return hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()


def short_hash(value: str) -> str:
    """A 12-character hash of a text or signature, the only form of either that logs may carry."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def is_valid_signature(signature: object) -> bool:
    """True for a str of >= 50 characters of `[A-Za-z0-9+/=_-]` that is not the placeholder."""
    return (
        isinstance(signature, str)
        and len(signature) >= MIN_SIGNATURE_LENGTH
        and signature != PLACEHOLDER_SIGNATURE
        and _SIGNATURE_CHARS.fullmatch(signature) is not None
    )
