"""The module functions as `CacheFacade` methods: a direct call while unobserved, else `run`.

`direct` is the cache that answers (legacy with migration mode off, else the adapter) while no
observer is registered; then a method costs one attribute check, and the event's arguments are
never built. With observers, `run` times the call and publishes an `OperationEvent`.

Provenance (issue 13): every method takes the keyword-only `model` (reads; writes of the tool
and session stores), `scope` and `conversation_id`. An event's `args` carry them only when given,
so recordings of callers that never pass them stay as they were (format version 1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sigcache.interface import SignatureCacheProtocol, SignatureWithText

__all__ = ["FacadeOperations", "with_provenance"]

log = logging.getLogger("sigcache.facade")

R = TypeVar("R")
Cache = SignatureCacheProtocol


def with_provenance(args: dict[str, Any], **given: object) -> dict[str, Any]:
    """`args` plus the provenance keywords that were given (not None), for the event."""
    for name, value in given.items():
        if value is not None:
            args[name] = value
    return args


class FacadeOperations:
    """Cache operations of the facade; the facade supplies `direct`, `run` and the new cache."""

    direct: Cache | None

    def run(self, op: str, args: dict[str, Any], call: Callable[[Cache], R]) -> R:
        """Run one operation on the active cache and publish it (the facade implements it)."""
        raise NotImplementedError

    def _forget_in_new_when_off(self, call: Callable[[Cache], object]) -> None:
        """With mode off the adapter is bypassed; a built new cache must still forget."""
        raise NotImplementedError

    def cache_signature(
        self,
        thinking_text: str,
        signature: str,
        model: str | None = None,
        owner_id: str | None = None,
        *,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> bool:
        """Cache a signature for a thinking text."""
        d = self.direct
        if d is not None:
            if scope is None and conversation_id is None:
                return d.set(thinking_text, signature, model, owner_id)
            return d.set(
                thinking_text,
                signature,
                model,
                owner_id,
                scope=scope,
                conversation_id=conversation_id,
            )
        args = {
            "thinking_text": thinking_text,
            "signature": signature,
            "model": model,
            "owner_id": owner_id,
        }
        return self.run(
            "cache_signature",
            with_provenance(args, scope=scope, conversation_id=conversation_id),
            lambda c: c.set(
                thinking_text,
                signature,
                model,
                owner_id,
                scope=scope,
                conversation_id=conversation_id,
            ),
        )

    def get_cached_signature(
        self,
        thinking_text: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The signature cached for a thinking text, or None."""
        d = self.direct
        if d is not None:
            if model is None and scope is None and conversation_id is None:
                return d.get(thinking_text, owner_id)
            return d.get(
                thinking_text, owner_id, model=model, scope=scope, conversation_id=conversation_id
            )
        args = with_provenance(
            {"thinking_text": thinking_text, "owner_id": owner_id},
            model=model,
            scope=scope,
            conversation_id=conversation_id,
        )
        return self.run(
            "get_cached_signature",
            args,
            lambda c: c.get(
                thinking_text, owner_id, model=model, scope=scope, conversation_id=conversation_id
            ),
        )

    def invalidate(self, thinking_text: str) -> bool:
        """Forget a thinking text in every cache, so no later phase can bring it back."""
        args = {"thinking_text": thinking_text}
        result = self.run("invalidate", args, lambda c: c.invalidate(thinking_text))
        self._forget_in_new_when_off(lambda c: c.invalidate(thinking_text))
        return result

    def clear(self) -> int:
        """Empty the main store of every cache; returns how many the active cache held."""
        result = self.run("clear", {}, lambda c: c.clear())
        self._forget_in_new_when_off(lambda c: c.clear())
        return result

    def cleanup_expired(self) -> int:
        """Remove expired entries; returns how many the active cache held."""
        return self.run("cleanup_expired", {}, lambda c: c.cleanup_expired())

    def get_last_signature(
        self,
        *,
        owner_id: str | None = None,
        conversation_id: str | None = None,
        model: str | None = None,
        scope: str | None = None,
    ) -> str | None:
        """The most recent live signature (of this conversation, in the new cache), or None."""
        d = self.direct
        if d is not None:
            return d.get_last_signature(
                owner_id, model=model, scope=scope, conversation_id=conversation_id
            )
        args = with_provenance(
            {}, owner_id=owner_id, conversation_id=conversation_id, model=model, scope=scope
        )
        return self.run(
            "get_last_signature",
            args,
            lambda c: c.get_last_signature(
                owner_id, model=model, scope=scope, conversation_id=conversation_id
            ),
        )

    def get_last_signature_with_text(
        self,
        *,
        owner_id: str | None = None,
        conversation_id: str | None = None,
        model: str | None = None,
        scope: str | None = None,
    ) -> SignatureWithText | None:
        """(signature, thinking text) of the most recent live entry, or None."""
        d = self.direct
        if d is not None:
            return d.get_last_signature_with_text(
                owner_id, model=model, scope=scope, conversation_id=conversation_id
            )
        args = with_provenance(
            {}, owner_id=owner_id, conversation_id=conversation_id, model=model, scope=scope
        )
        return self.run(
            "get_last_signature_with_text",
            args,
            lambda c: c.get_last_signature_with_text(
                owner_id, model=model, scope=scope, conversation_id=conversation_id
            ),
        )

    def get_recent_signature(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """A signature written within the time window, or None."""
        d = self.direct
        if d is not None:
            return d.get_recent_signature(
                time_window_seconds,
                client_type,
                owner_id,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            )
        args = {
            "time_window_seconds": time_window_seconds,
            "client_type": client_type,
            "owner_id": owner_id,
        }
        return self.run(
            "get_recent_signature",
            with_provenance(args, model=model, scope=scope, conversation_id=conversation_id),
            lambda c: c.get_recent_signature(
                time_window_seconds,
                client_type,
                owner_id,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            ),
        )

    def get_recent_signature_with_text(
        self,
        time_window_seconds: float = 300,
        client_type: str | None = None,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> SignatureWithText | None:
        """(signature, text) written within the time window, or None."""
        d = self.direct
        if d is not None:
            return d.get_recent_signature_with_text(
                time_window_seconds,
                client_type,
                owner_id,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            )
        args = {
            "time_window_seconds": time_window_seconds,
            "client_type": client_type,
            "owner_id": owner_id,
        }
        return self.run(
            "get_recent_signature_with_text",
            with_provenance(args, model=model, scope=scope, conversation_id=conversation_id),
            lambda c: c.get_recent_signature_with_text(
                time_window_seconds,
                client_type,
                owner_id,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            ),
        )

    def cache_tool_signature(
        self,
        tool_id: str,
        signature: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> bool:
        """Cache a signature for a tool-call id."""
        d = self.direct
        if d is not None:
            return d.cache_tool_signature(
                tool_id,
                signature,
                owner_id,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            )
        args = {"tool_id": tool_id, "signature": signature, "owner_id": owner_id}
        return self.run(
            "cache_tool_signature",
            with_provenance(args, model=model, scope=scope, conversation_id=conversation_id),
            lambda c: c.cache_tool_signature(
                tool_id,
                signature,
                owner_id,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            ),
        )

    def get_tool_signature(
        self,
        tool_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The signature cached for a tool-call id (or a rewritten form of it), or None."""
        d = self.direct
        if d is not None:
            return d.get_tool_signature(
                tool_id, owner_id, model=model, scope=scope, conversation_id=conversation_id
            )
        args = {"tool_id": tool_id, "owner_id": owner_id}
        return self.run(
            "get_tool_signature",
            with_provenance(args, model=model, scope=scope, conversation_id=conversation_id),
            lambda c: c.get_tool_signature(
                tool_id, owner_id, model=model, scope=scope, conversation_id=conversation_id
            ),
        )

    def get_tool_signature_fuzzy(
        self,
        tool_id: str,
        max_candidates: int = 5,
        *,
        owner_id: str | None = None,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """Exact id, then its base id, then similar ids, newest first."""
        d = self.direct
        if d is not None:
            return d.get_tool_signature_fuzzy(
                tool_id,
                max_candidates,
                owner_id,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            )
        args = with_provenance(
            {"tool_id": tool_id, "max_candidates": max_candidates},
            owner_id=owner_id,
            model=model,
            scope=scope,
            conversation_id=conversation_id,
        )
        return self.run(
            "get_tool_signature_fuzzy",
            args,
            lambda c: c.get_tool_signature_fuzzy(
                tool_id,
                max_candidates,
                owner_id,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            ),
        )

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
    ) -> bool:
        """Cache a signature (and its thinking text) for a session id."""
        d = self.direct
        if d is not None:
            return d.cache_session_signature(
                session_id,
                signature,
                thinking_text,
                owner_id,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            )
        args = {
            "session_id": session_id,
            "signature": signature,
            "thinking_text": thinking_text,
            "owner_id": owner_id,
        }
        return self.run(
            "cache_session_signature",
            with_provenance(args, model=model, scope=scope, conversation_id=conversation_id),
            lambda c: c.cache_session_signature(
                session_id,
                signature,
                thinking_text,
                owner_id,
                model=model,
                scope=scope,
                conversation_id=conversation_id,
            ),
        )

    def get_session_signature(
        self,
        session_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The signature cached for a session id, or None."""
        d = self.direct
        if d is not None:
            return d.get_session_signature(
                session_id, owner_id, model=model, scope=scope, conversation_id=conversation_id
            )
        args = {"session_id": session_id, "owner_id": owner_id}
        return self.run(
            "get_session_signature",
            with_provenance(args, model=model, scope=scope, conversation_id=conversation_id),
            lambda c: c.get_session_signature(
                session_id, owner_id, model=model, scope=scope, conversation_id=conversation_id
            ),
        )

    def get_session_signature_with_text(
        self,
        session_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> SignatureWithText | None:
        """(signature, thinking text) cached for a session id, or None."""
        d = self.direct
        if d is not None:
            return d.get_session_signature_with_text(
                session_id, owner_id, model=model, scope=scope, conversation_id=conversation_id
            )
        args = {"session_id": session_id, "owner_id": owner_id}
        return self.run(
            "get_session_signature_with_text",
            with_provenance(args, model=model, scope=scope, conversation_id=conversation_id),
            lambda c: c.get_session_signature_with_text(
                session_id, owner_id, model=model, scope=scope, conversation_id=conversation_id
            ),
        )
