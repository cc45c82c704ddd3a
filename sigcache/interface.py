"""The cache interface every tier and router implements (see docs/contracts.md section 1).

Provenance (issue 13): every read takes the keyword-only `model`, `scope` and `conversation_id`,
and every write `scope` and `conversation_id` (and `model`). The legacy cache accepts and ignores
them; the new cache applies `sigcache.provenance`; the router passes them to the new cache.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["SignatureCacheProtocol", "SignatureWithText"]

SignatureWithText = tuple[str, str]


@runtime_checkable
class SignatureCacheProtocol(Protocol):
    """Main, tool and session stores plus last/recent look-ups; no method raises on bad input."""

    def set(
        self,
        thinking_text: str,
        signature: str,
        model: str | None = None,
        owner_id: str | None = None,
        *,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> bool: ...

    def get(
        self,
        thinking_text: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None: ...

    def invalidate(self, thinking_text: str, owner_id: str | None = None) -> bool: ...

    def clear(self) -> int: ...

    def cleanup_expired(self) -> int: ...

    def get_stats(self) -> dict[str, object]: ...

    def reset_stats(self) -> None: ...

    @property
    def size(self) -> int: ...

    def __len__(self) -> int: ...

    def cache_tool_signature(
        self,
        tool_id: str,
        signature: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> bool: ...

    def get_tool_signature(
        self,
        tool_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None: ...

    def get_tool_signature_fuzzy(
        self,
        tool_id: str,
        max_candidates: int = 5,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None: ...

    def cache_session_signature(
        self,
        session_id: str,
        signature: str,
        thinking_text: str = "",
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> bool: ...

    def get_session_signature(
        self,
        session_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None: ...

    def get_session_signature_with_text(
        self,
        session_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> SignatureWithText | None: ...

    def get_last_signature(
        self,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None: ...

    def get_last_signature_with_text(
        self,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> SignatureWithText | None: ...

    def get_recent_signature(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None: ...

    def get_recent_signature_with_text(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> SignatureWithText | None: ...
