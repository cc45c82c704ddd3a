"""Keys of the layered cache: an L1 key per request, the L2 key derived from it when needed.

A request derives its L1 key once: `(store, owner, normalised text or id)`. Python caches a
str's hash, so an L1 look-up costs no digest. The SHA-256 of a main text (the L2 key) is
computed only where L2 is asked (an L1 and overlay miss) and by the writer thread for a write.
"""

from __future__ import annotations

from sigcache.fingerprints import recent_window
from sigcache.keys import normalize_thinking_text, text_digest
from sigcache.memory import L1Key

# The write checks live in `sigcache.provenance` (issue 13); importable from here as before.
from sigcache.provenance import PLACEHOLDERS, REJECTION_REASONS, is_truncated
from sigcache.storage import MAIN

__all__ = [
    "PLACEHOLDERS",
    "REJECTION_REASONS",
    "id_key",
    "is_truncated",
    "l2_key",
    "l2_key_of",
    "main_key",
    "owner_namespace",
    "window_start",
]


def owner_namespace(owner_id: object) -> str | None:
    """The namespace of an owner id ("" = no owner), or None when the value is not usable."""
    if owner_id is None:
        return ""
    return owner_id if isinstance(owner_id, str) else None


def main_key(thinking_text: object, owner_id: object) -> L1Key | None:
    """The L1 key of a thinking text, derived once per request; None for unusable input."""
    if owner_id is None:
        owner = ""
    elif isinstance(owner_id, str):
        owner = owner_id
    else:
        return None
    if not isinstance(thinking_text, str) or not thinking_text:
        return None
    normalized = normalize_thinking_text(thinking_text)
    return (MAIN, owner, normalized) if normalized else None


def id_key(store: str, ident: object, owner_id: object) -> L1Key | None:
    """The L1 key of a tool or session id; None for unusable input."""
    owner = owner_namespace(owner_id)
    if owner is None or not isinstance(ident, str) or not ident:
        return None
    return (store, owner, ident)


def l2_key_of(store: str, ident: str) -> str:
    """The L2 key: SHA-256 of the normalised text for main entries, the id otherwise."""
    return text_digest(ident) if store == MAIN else ident


def l2_key(key: L1Key) -> str:
    """The L2 key of an L1 key."""
    return l2_key_of(key[0], key[2])


def window_start(now: float, time_window_seconds: object, client_type: object) -> float | None:
    """The oldest write time inside a recent-signature window (legacy rule), None if unusable."""
    if not isinstance(client_type, str | None) or isinstance(time_window_seconds, bool):
        return None
    if not isinstance(time_window_seconds, int | float):
        return None
    # Legacy: an entry is recent when now - written_at < window, i.e. written_at > now - window.
    return now - recent_window(time_window_seconds, client_type)
