"""Provenance of a signature: model family, scope, conversation, tool-id forms, write checks (pure).

A signature is only valid where it was made: for the model family that produced it, under the
provider account (credential) that received it, in its conversation. The new cache records that
provenance on every entry and refuses to hand a signature to another place. Everything here is
pure (no clock, no I/O); `sigcache.layered` and the harness apply it.

Matching a read against an entry (`mismatch`):

* **family** (`model_family`: "claude", "gemini" or "other", from the model name) and **scope** (an
  optional provider or credential scope, any string) filter only when both the read and the entry
  carry one: a read without a model matches any family (the legacy API keeps working), and an
  entry written without a model matches any read. A legacy answer copied into the new cache keeps
  the model legacy stored, so it is filtered like any other entry.
* **owner** is not decided here: the new cache keys every entry by its owner (strict isolation).
* **conversation** does not filter keyed reads (exact text, tool id, session id): they are keyed
  by content, and forks of a conversation (an edited message, a retried turn, a sub-agent)
  legitimately resend the same thinking text or tool id under another conversation id. It
  filters the key-less look-ups strictly (`LayeredConfig.strict_conversation_fallbacks`): the
  "last" and "recent" signature of a conversation come from that conversation only, and with no
  conversation given they answer nothing rather than a stranger's signature.

Tool-call ids (`tool_id_forms`, `tool_id_lookup_forms`): clients and proxies rewrite ids on the
way back. An entry is found by its raw id and by these rewritten forms:

* characters outside `[A-Za-z0-9_-]` replaced (each by one `_`: `sanitize_tool_id`);
* the prefixes `call_` and `toolu_` added, removed or swapped (repeatedly: `call_toolu_x`);
* the suffixes `_retry<n>` and `_copy<n>` added (any case, repeatedly), as `extract_base_tool_id`
  knows them (its bare `_<digits>` is not a form: `read_file_0` and `read_file_1` are two calls);
* the whole id cut to 64 characters (`TOOL_ID_MAX_LENGTH`), before or after any of the above,
  including a suffix cut part-way (`..._ret`).

Two ids are forms of one call when their cores (sanitised, known prefixes and suffixes dropped)
are equal, or when one was cut at 64 characters and the cores agree on what the cut kept (at
least 58 characters). Provider-made ids are random (`toolu_01` + 22 characters, `call_` + 24),
so two calls share a form only through rewriting; where two different raw ids do share one,
the form is ambiguous and answers nothing, so a read never gets another call's signature.

Write checks (`rejection_reason`, `shortens`): the empty text is never a key; a known placeholder,
a value outside the signature alphabet or shorter than 50 characters (`keys.is_valid_signature`),
a value cut short (not base64: a length of 1 mod 4, padding where it cannot be, bad characters
for the alphabet) and a strict prefix of the value already held for the key are refused.
"""

from __future__ import annotations

import base64
import re
from typing import Final, NamedTuple

from sigcache.keys import PLACEHOLDER_SIGNATURE, is_valid_signature

__all__ = [
    "FAMILIES",
    "PLACEHOLDERS",
    "PROVENANCE_REASONS",
    "REJECTION_REASONS",
    "TOOL_ID_MAX_LENGTH",
    "TOOL_ID_PREFIXES",
    "Want",
    "extract_base_tool_id",
    "is_truncated",
    "mismatch",
    "model_family",
    "rejection_reason",
    "sanitize_tool_id",
    "scope_of",
    "shortens",
    "tool_id_core",
    "tool_id_forms",
    "tool_id_lookup_forms",
    "want",
]

FAMILIES: Final = ("claude", "gemini", "other")
# Why a read was refused (counted as `provenance_misses_<reason>`).
PROVENANCE_REASONS: Final = ("family", "scope", "conversation")
# Why the new cache refuses a write (counted as `rejected_<reason>` and `rejected_writes`):
# no usable text (main) or id (tool, session), an owner that is not a str, a known placeholder,
# not the signature alphabet/length, cut short (an aborted stream), or a strict prefix of the
# value already held for the key.
REJECTION_REASONS: Final = (
    "empty_text",
    "empty_id",
    "invalid_owner",
    "placeholder",
    "invalid",
    "truncated",
    "prefix",
)


# -- model family and matching --------------------------------------------------------------------


def model_family(model: object) -> str | None:
    """ "claude", "gemini" or "other" for a model name; None when no model is given."""
    if not model or not isinstance(model, str):
        return None
    name = model.lower()
    if "claude" in name:
        return "claude"
    if "gemini" in name:
        return "gemini"
    return "other"


def scope_of(scope: object) -> str | None:
    """The scope a value names: a non-empty str, else None (no scope)."""
    return scope if isinstance(scope, str) and scope else None


class Want(NamedTuple):
    """What a read asks of an entry's provenance (None: anything)."""

    family: str | None
    scope: str | None


def want(model: object = None, scope: object = None) -> Want | None:
    """The provenance a read asks for; None when it asks for none (every entry matches)."""
    family, scoped = model_family(model), scope_of(scope)
    if family is None and scoped is None:
        return None
    return Want(family, scoped)


def mismatch(wanted: Want | None, model: object, scope: object) -> str | None:
    """Why an entry (its model and scope) does not match a read: "family", "scope" or None.

    A dimension filters only when both the read and the entry carry it (module docstring).
    """
    if wanted is None:
        return None
    if wanted.family is not None:
        family = model_family(model)
        if family is not None and family != wanted.family:
            return "family"
    if wanted.scope is not None:
        stored = scope_of(scope)
        if stored is not None and stored != wanted.scope:
            return "scope"
    return None


# -- write checks -------------------------------------------------------------------------------


def _placeholders() -> frozenset[str]:
    names = (PLACEHOLDER_SIGNATURE, "context_engineering_is_the_way_to_go")
    found = set(names)
    for name in names:
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(name.encode()).decode()
            found |= {encoded, encoded.rstrip("=")}
    return frozenset(found)


PLACEHOLDERS: Final = _placeholders()  # what clients send to skip validation: never a signature
_BASE64_BODY: Final = re.compile(r"[A-Za-z0-9+/_-]*")  # standard or url-safe, unpadded


def is_truncated(signature: str) -> bool:
    """True unless `signature` is base64 (url-safe or standard, padding optional).

    A stream cut mid-value leaves a length no encoding produces (1 mod 4), padding on a length
    that is not a multiple of 4 (a cut inside `==`), or bad padding. (Equivalent to decoding it,
    which Python does without checking the unused bits, at a fraction of the cost: a regex scan,
    no allocation.)
    """
    body = len(signature)
    pad = signature.find("=")
    if pad >= 0:
        if body % 4 or body - pad > 2 or signature.count("=", pad) != body - pad:
            return True
        body = pad
    if body % 4 == 1:
        return True
    return _BASE64_BODY.fullmatch(signature, 0, body) is None


def rejection_reason(
    signature: object, *, validated: bool = False, reject_truncated: bool = True
) -> str | None:
    """Why a signature may not be stored ("placeholder", "invalid", "truncated"), or None.

    `validated=True` skips the alphabet/length check (a caller that ran it already); the
    placeholder and truncation checks always run.
    """
    if not isinstance(signature, str) or not signature:
        return "invalid"
    if signature in PLACEHOLDERS:
        return "placeholder"
    if not validated and not is_valid_signature(signature):
        return "invalid"
    if reject_truncated and is_truncated(signature):
        return "truncated"
    return None


def shortens(stored: str | None, signature: str) -> bool:
    """Whether `signature` is a strict prefix of the value `stored` (an aborted stream re-sent)."""
    return stored is not None and len(signature) < len(stored) and stored.startswith(signature)


# -- tool-call ids ------------------------------------------------------------------------------

TOOL_ID_MAX_LENGTH: Final = 64
TOOL_ID_PREFIXES: Final = ("call_", "toolu_")
_OUTSIDE: Final = re.compile(r"[^A-Za-z0-9_-]")
_SUFFIXES: Final = re.compile(r"(?:_(?:retry|copy)\d*)+$", re.IGNORECASE)
# A `_retry<n>` / `_copy<n>` suffix cut part-way by the 64-character limit.
_PARTIAL_SUFFIX: Final = re.compile(
    r"_(?:r(?:e(?:t(?:r(?:y\d*)?)?)?)?|c(?:o(?:p(?:y\d*)?)?)?)?$", re.IGNORECASE
)
_FULL: Final = "="  # form prefix: the whole core
_CUT: Final = "<"  # form prefix: the core as a 64-character cut kept it
# The legacy base id (extract_base_tool_id), kept exactly as the replaced system had it.
_TRAILING_DIGITS: Final = re.compile(r"_\d+$")
_TRAILING_RETRY: Final = re.compile(r"_retry\d*$", re.IGNORECASE)
_TRAILING_COPY: Final = re.compile(r"_copy\d*$", re.IGNORECASE)


def extract_base_tool_id(tool_id: str) -> str:
    """Strip `_<digits>`, `_retry<n>`, `_copy<n>` suffixes and `call_`, `req_` prefixes."""
    if not tool_id or not isinstance(tool_id, str):
        return ""
    base = _TRAILING_DIGITS.sub("", tool_id)
    base = _TRAILING_RETRY.sub("", base)
    base = _TRAILING_COPY.sub("", base)
    base = base.removeprefix("call_")
    base = base.removeprefix("req_")
    return base or tool_id


def sanitize_tool_id(tool_id: str) -> str:
    """The id with every character outside `[A-Za-z0-9_-]` replaced by `_` (length kept)."""
    return _OUTSIDE.sub("_", tool_id)


def _strip_prefixes(ident: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in TOOL_ID_PREFIXES:
            if ident.startswith(prefix) and len(ident) > len(prefix):
                ident, changed = ident[len(prefix) :], True
    return ident


def _strip_suffixes(ident: str) -> str:
    return _SUFFIXES.sub("", ident) or ident


def tool_id_core(tool_id: str) -> str:
    """What identifies the call: sanitised, known prefixes and suffixes dropped (never empty)."""
    return _strip_suffixes(_strip_prefixes(sanitize_tool_id(tool_id)))


def _cut_forms(core: str, longer_only: bool) -> list[str]:
    """What a 64-character cut of `prefix + core` keeps of the core, for each known prefix."""
    forms = []
    for prefix in ("", *TOOL_ID_PREFIXES):
        room = TOOL_ID_MAX_LENGTH - len(prefix)
        if len(core) > room or (not longer_only and len(core) == room):
            forms.append(_CUT + core[:room])
    return forms


def tool_id_forms(tool_id: str) -> tuple[str, ...]:
    """The forms a written raw id is found under (alias keys; the raw id itself is not one)."""
    core = tool_id_core(tool_id)
    return tuple(dict.fromkeys((_FULL + core, *_cut_forms(core, longer_only=False))))


def tool_id_lookup_forms(tool_id: str) -> tuple[str, ...]:
    """The forms a read tries after its raw id missed, most specific first."""
    core = tool_id_core(tool_id)
    forms = [_FULL + core]
    sanitized = sanitize_tool_id(tool_id)
    if len(sanitized) == TOOL_ID_MAX_LENGTH:  # perhaps cut by a client: match what a cut keeps
        kept = _strip_prefixes(sanitized)
        forms.append(_CUT + kept)
        partial = _PARTIAL_SUFFIX.sub("", kept)
        if partial and partial != kept:
            forms.append(_FULL + _strip_suffixes(partial))
    # The stored id may itself be the cut one: match what a cut would have kept of this core.
    forms.extend(_cut_forms(core, longer_only=True))
    return tuple(dict.fromkeys(forms))
