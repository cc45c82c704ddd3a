"""Provenance traffic for the generator (issue 13): who passes which keyword, and how clients
damage what they send back.

The `provenance` profile of :mod:`harness.synth` has callers that know where a signature was
made and say so: every read and write names its model, clients that carry a conversation id
name it (gateway `scid_` conversations, IDE clients with a composer/chat id, some
Anthropic-format clients), proxies that pin a conversation to one provider account name it as
the scope. On top of that it injects what real traffic does to provenance, each a few percent:

* a user switches model family mid-conversation (Claude to Gemini or back), so the resent
  history and legacy's last/recent fallbacks hand one family's signatures to the other;
* the proxy moves a conversation to another provider account (a rate limit on the pinned one);
* clients rewrite tool-call ids before sending them back (`rewrite_tool_id`: the forms of
  `sigcache.provenance.tool_id_forms`), and CLI clients that get `__thought__`-encoded ids cut
  them to 64 characters;
* streams abort: a signature cut mid-way is written, followed by the whole one (a resumed
  stream) or after it (the aborted stream re-sent) (`cut_signature`).

The rates are this module's constants, chosen where the references say nothing precise
(`traffic-facts.md` and origin-behaviour section 6 give shapes, not rates): small enough that
the replaced system's traffic still dominates, large enough that every kind shows up in a
5,000-event recording.
"""

from __future__ import annotations

import hashlib
import random
from typing import Final

from sigcache.provenance import TOOL_ID_MAX_LENGTH, sanitize_tool_id

__all__ = [
    "ABORTED_STREAM_RATE",
    "ANTHROPIC_GEMINI_RATE",
    "AWARE_RATE",
    "CONVERSATION_ID_RATE",
    "FAMILY_SWITCH_RATE",
    "LONG_TOOL_ID_RATE",
    "PROFILES",
    "REWRITE_RATE",
    "SCOPES_PER_OWNER",
    "SCOPE_RATE",
    "SCOPE_ROTATION_RATE",
    "TOOL_READ_RATE",
    "conversation_id",
    "cut_signature",
    "encoded_tool_id",
    "rewrite_tool_id",
    "scopes_for",
]

# `provenance`: callers as above (the default); `origin`: callers of the replaced system, which
# pass a model to cache_signature only and nothing else (origin-behaviour section 6); the same
# seed gives the same bytes it gave before provenance existed.
PROFILES: Final = ("provenance", "origin")

AWARE_RATE: Final = 0.9  # conversations whose call sites pass model/scope/conversation at all
# Who knows a conversation id: the gateway always (its `scid_`), IDE clients mostly (a chat
# id), Anthropic-format clients rarely (a Claude Code session id in metadata); agents always.
CONVERSATION_ID_RATE: Final = {"gateway": 1.0, "ide": 0.7, "anthropic": 0.3, "agent": 1.0}
SCOPE_RATE: Final = 0.6  # conversations served by a proxy that pins them to one account
SCOPES_PER_OWNER: Final = 3
SCOPE_ROTATION_RATE: Final = 0.005  # per turn: a rate limit moves the conversation's account
FAMILY_SWITCH_RATE: Final = 0.06  # conversations whose user switches model family mid-way
ANTHROPIC_GEMINI_RATE: Final = 0.15  # Anthropic-format clients pointed at a Gemini model
REWRITE_RATE: Final = 0.05  # tool ids a client sends back rewritten
LONG_TOOL_ID_RATE: Final = 0.3  # Gemini IDE conversations whose tool ids carry `__thought__`
ABORTED_STREAM_RATE: Final = 0.015  # thinking blocks whose stream aborted
TOOL_READ_RATE: Final = 0.5  # IDE turns that send a tool result back (a tool-signature read)


def scopes_for(owner: str | None) -> tuple[str, ...]:
    """The provider accounts a proxy serves an owner from (owner-less traffic: shared ones)."""
    tag = "shared" if owner is None else owner[:8]
    return tuple(f"acct-{tag}-{k}" for k in range(SCOPES_PER_OWNER))


def encoded_tool_id(tool_id: str, signature: str) -> str:
    """The id a CLI client gets when the proxy appends the signature (`__thought__<sig>`).

    In the OpenAI stream path, when upstream omits the id, this encoded id (hundreds or
    thousands of characters) is also the tool-cache key (origin-behaviour section 6).
    """
    return f"{tool_id}__thought__{signature}"


def rewrite_tool_id(rng: random.Random, tool_id: str) -> str:
    """A rewritten form of `tool_id` as a client sends it back (never the id itself).

    Ids over 64 characters or with characters outside `[A-Za-z0-9_-]` are sanitised and cut to
    64, as clients with an id limit do; others get a `call_`/`toolu_` prefix swapped, added or
    dropped, or a `_retry<n>`/`_copy<n>` suffix (agent frameworks retrying or copying a call).
    """
    sanitized = sanitize_tool_id(tool_id)
    if len(tool_id) > TOOL_ID_MAX_LENGTH or sanitized != tool_id:
        return sanitized[:TOOL_ID_MAX_LENGTH]
    if rng.random() < 0.5:
        return f"{tool_id}_{rng.choice(('retry', 'copy'))}{rng.randint(1, 3)}"
    if tool_id.startswith("toolu_"):
        return "call_" + tool_id.removeprefix("toolu_")
    if tool_id.startswith("call_"):
        rest = tool_id.removeprefix("call_")
        return rng.choice(("toolu_" + rest, rest))
    return "call_" + tool_id


def cut_signature(rng: random.Random, signature: str) -> str:
    """`signature` cut mid-way by an aborted stream: a strict prefix of at least 50 characters.

    Legacy stores it (it passes the 50-character check); about a quarter of the cuts leave a
    length no base64 encoding makes (the new cache's `rejected_truncated`), the rest are only
    known as cut by the whole value (`rejected_prefix` once the whole one is held).
    """
    return signature[: rng.randint(min(50, len(signature) - 1), len(signature) - 1)]


def conversation_id(rng: random.Random) -> str:
    """A client's conversation id (32 hex characters, like a UUID without dashes)."""
    return hashlib.md5(rng.randbytes(16)).hexdigest()
