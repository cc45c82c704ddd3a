"""Redaction of recordings: surrogates that keep what the caches depend on (DESIGN section 6).

A `Redactor` maps texts, signatures and ids through a keyed hash, deterministic per key (one key
per recording; keep it secret: with it, a guess at a text can be checked). What survives:

* texts: equality, length, the wrapping removed by normalisation (whitespace, `<think>`,
  `<reasoning>` tags, kept verbatim) and shared prefixes of the normalised text in steps of
  `CHUNK` characters, so two texts sharing their first 500 normalised characters still do;
* signatures: equality, length, the positions of every character outside `[A-Za-z0-9]`, hence
  validity (a valid signature stays valid, a short or badly-charactered one stays invalid the
  same way; the placeholder is public and kept);
* ids (tool, session, owner, conversation, scope): equality, length, separators, well-known
  tokens (`call`, `toolu`, `_retry2`, ...) and digit runs, and shared prefixes at token
  boundaries;
* model names are kept as they are: the model family (issue 13) must survive.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from typing import Any, Final

from sigcache.keys import PLACEHOLDER_SIGNATURE
from sigcache.recording import PAIR_OPS, RecordedEvent

__all__ = ["CHUNK", "Redactor", "normalized_span"]

CHUNK: Final = 100  # divides the legacy key prefix (500): shared 500-prefixes stay shared
_SHORT_CHUNK: Final = 12  # below this many characters a surrogate collision is plausible
_ALNUM: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TO_ALNUM: Final = bytes(_ALNUM[b % 62] for b in range(256))
_TO_LOWER: Final = bytes(ord("a") + b % 26 for b in range(256))
_TO_UPPER: Final = bytes(ord("A") + b % 26 for b in range(256))
_TO_DIGIT: Final = bytes(ord("0") + b % 10 for b in range(256))
_TO_HEX_LETTER: Final = bytes(ord("a") + b % 6 for b in range(256))
# Same patterns as sigcache.keys: the span must cover exactly what normalisation keeps.
_THINK = re.compile(r"^<think>(.*)</think>\s*$", re.IGNORECASE | re.DOTALL)
_REASONING = re.compile(
    r"^<(?:redacted_)?reasoning>(.*)</(?:redacted_)?reasoning>\s*$", re.IGNORECASE | re.DOTALL
)
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_KEPT_TOKEN = re.compile(r"(?:call|req|toolu|scid|thought|retry\d*|copy\d*)", re.IGNORECASE)
_THOUGHT_MARK: Final = "__thought__"
_SIGNATURE_RESULT_OPS: Final = frozenset(
    {"get_cached_signature", "get_tool_signature", "get_session_signature",
     "get_last_signature", "get_recent_signature"}
)  # fmt: skip


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def normalized_span(text: str) -> tuple[int, int]:
    """(start, end) such that `text[start:end] == keys.normalize_thinking_text(text)`."""
    start, end = _strip_span(text, 0, len(text))
    for pattern in (_THINK, _REASONING):
        match = pattern.match(text[start:end])
        if match:
            inner_start, inner_end = match.span(1)
            start, end = _strip_span(text, start + inner_start, start + inner_end)
    return start, end


def _encode(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


class Redactor:
    """Keyed, deterministic surrogates for texts, signatures and ids."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("a redaction key must not be empty")
        self._prefix = len(key).to_bytes(4, "big") + key
        # Short final chunks have few possible surrogates (26 for one letter): two texts that
        # differ only there would collide. Remember what each short surrogate stands for and
        # re-draw on a collision, so equal surrogates always mean equal texts.
        self._short: dict[tuple[bytes, bytes], bytes] = {}

    @classmethod
    def random(cls) -> Redactor:
        """A redactor with a fresh random key (a recording nobody can un-redact)."""
        return cls(os.urandom(32))

    def _stream(self, domain: bytes, data: bytes, size: int) -> bytes:
        return hashlib.shake_256(self._prefix + domain + b"\0" + data).digest(size)

    def text(self, value: str) -> str:
        """Surrogate of a thinking text: wrapping kept, the normalised core replaced by letters."""
        if not isinstance(value, str):
            return value
        start, end = normalized_span(value)
        if start >= end:
            return value  # nothing but whitespace and tags: nothing to hide
        core = value[start:end]
        running = hashlib.sha256(self._prefix + b"text\0")
        parts = []
        for offset in range(0, len(core), CHUNK):
            chunk = core[offset : offset + CHUNK]
            before = running.copy().digest()
            running.update(_encode(chunk))  # each chunk depends on the whole prefix up to it
            seed = running.copy().digest()
            if len(chunk) < _SHORT_CHUNK:
                parts.append(self._short_surrogate(before, seed, len(chunk)))
            else:
                parts.append(hashlib.shake_256(seed).digest(len(chunk)).translate(_TO_LOWER))
        return value[:start] + b"".join(parts).decode("ascii") + value[end:]

    def _short_surrogate(self, before: bytes, seed: bytes, size: int) -> bytes:
        """A surrogate for a short final chunk, never shared by two different chunks."""
        for attempt in range(1_000):
            draw = hashlib.shake_256(seed + attempt.to_bytes(4, "big")).digest(size)
            surrogate = draw.translate(_TO_LOWER)
            owner = self._short.setdefault((before, surrogate), seed)
            if owner == seed:
                return surrogate
        return hashlib.shake_256(seed).digest(size).translate(_TO_LOWER)  # space exhausted

    def signature(self, value: str) -> str:
        """Surrogate of a signature: letters and digits replaced, every other character kept."""
        if not isinstance(value, str) or not value or value == PLACEHOLDER_SIGNATURE:
            return value
        stream = self._stream(b"sig", _encode(value), len(value)).translate(_TO_ALNUM)
        return "".join(
            chr(s) if c.isascii() and c.isalnum() else c for c, s in zip(value, stream, strict=True)
        )

    def ident(self, value: str) -> str:
        """Surrogate of a tool, session or owner id (an embedded `__thought__<sig>` too)."""
        if not isinstance(value, str) or not value:
            return value
        head, mark, tail = value.partition(_THOUGHT_MARK)
        if mark:
            return self.ident(head) + mark + self.signature(tail)
        out = []
        context = b""  # the hidden tokens so far: ids sharing leading tokens share surrogates,
        last = 0  # and stripping `call_` or `_2` (extract_base_tool_id) commutes with redaction
        for match in _TOKEN.finditer(value):
            token = match.group()
            out.append(value[last : match.start()])
            last = match.end()
            if _KEPT_TOKEN.fullmatch(token):
                out.append(token)
            else:
                context += _encode(token) + b"\0"
                out.append(self._token(token, context))
        out.append(value[last:])
        return "".join(out)

    def _token(self, token: str, context: bytes) -> str:
        # Character classes survive (digits stay digits, hex stays hex): id parsers such as
        # extract_base_tool_id treat a digit run differently from a word.
        stream = self._stream(b"id", context, len(token))
        lower = _TO_HEX_LETTER if all(c in "0123456789abcdef" for c in token) else _TO_LOWER
        chars = []
        for c, b in zip(token, stream, strict=True):
            table = _TO_DIGIT if c.isdigit() else _TO_UPPER if c.isupper() else lower
            chars.append(chr(table[b]))
        return "".join(chars)

    def args(self, args: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of a recorded call, redacted by name."""
        out = dict(args)
        for name, value in args.items():
            if name == "thinking_text":
                out[name] = self.text(value)
            elif name == "signature":
                out[name] = self.signature(value)
            elif name in ("tool_id", "session_id", "owner_id", "conversation_id", "scope"):
                out[name] = self.ident(value)
        return out

    def result(self, op: str, result: Any) -> Any:
        """What a recorded call returned, redacted by op."""
        if op in _SIGNATURE_RESULT_OPS:
            return self.signature(result)
        if op in PAIR_OPS and isinstance(result, tuple | list) and len(result) == 2:
            return (self.signature(result[0]), self.text(result[1]))
        return result

    def event(self, event: RecordedEvent) -> RecordedEvent:
        """A redacted copy of a recorded event."""
        return dataclasses.replace(
            event, args=self.args(event.args), result=self.result(event.op, event.result)
        )
