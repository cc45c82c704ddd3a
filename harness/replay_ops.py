"""What each recorded op is (read, write or admin), which store it touches, and how to call it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from sigcache.legacy import SignatureCache

__all__ = ["OPS", "OpSpec", "call_legacy"]

Kind = Literal["read", "write", "admin"]


@dataclass(frozen=True, slots=True)
class OpSpec:
    """One recorded op: its kind, store, the argument holding its key, the legacy method."""

    kind: Kind
    store: str | None  # main | tool | session | last | recent | None
    key_arg: str | None
    legacy_method: str
    oracle_store: str | None = None  # the store a read's answer must have been written into


OPS: Final[Mapping[str, OpSpec]] = {
    "cache_signature": OpSpec("write", "main", "thinking_text", "set"),
    "get_cached_signature": OpSpec("read", "main", "thinking_text", "get", "main"),
    "cache_tool_signature": OpSpec("write", "tool", "tool_id", "cache_tool_signature"),
    "get_tool_signature": OpSpec("read", "tool", "tool_id", "get_tool_signature", "tool"),
    "cache_session_signature": OpSpec("write", "session", "session_id", "cache_session_signature"),
    "get_session_signature": OpSpec(
        "read", "session", "session_id", "get_session_signature", "session"
    ),
    "get_session_signature_with_text": OpSpec(
        "read", "session", "session_id", "get_session_signature_with_text", "session"
    ),
    "get_last_signature": OpSpec("read", "last", None, "get_last_signature", "main"),
    "get_last_signature_with_text": OpSpec(
        "read", "last", None, "get_last_signature_with_text", "main"
    ),
    "get_recent_signature": OpSpec("read", "recent", None, "get_recent_signature", "any"),
    "get_recent_signature_with_text": OpSpec(
        "read", "recent", None, "get_recent_signature_with_text", "any"
    ),
    "invalidate": OpSpec("admin", "main", "thinking_text", "invalidate"),
    "clear": OpSpec("admin", None, None, "clear"),
    "cleanup_expired": OpSpec("admin", None, None, "cleanup_expired"),
}


def call_legacy(cache: SignatureCache, op: str, args: Mapping[str, Any]) -> Any:
    """Apply a recorded op to a plain legacy cache, as the module API would."""
    method: Callable[..., Any] = getattr(cache, OPS[op].legacy_method)
    return method(**args)
