"""LegacySignatureCacheAdapter: the legacy cache interface routed through the phase strategies.

Every store (main, tool, session) and every last/recent look-up obeys the phase (see
`sigcache.router`). In LEGACY_ONLY with a legacy `SignatureCache`, main-store `get` and `set` go
straight to the legacy cache and are counted by its own counters (`MigrationStats.derive_from`):
the proxy then costs one attribute check per call.

Provenance (issue 13): the keyword-only `model`, `scope` and `conversation_id` of every call go
to the new cache in every phase (legacy ignores them); in NEW_PREFERRED a fallback answer is
withheld when the new cache refused the key for its family or scope, or when legacy's entry is of
another model family (`PhaseRouter._read_fallback`); read repair never copies a legacy entry of
another owner or model family, and never attributes it to the reader's conversation.
"""

from __future__ import annotations

from typing import Any

from sigcache.interface import SignatureWithText
from sigcache.migration_stats import CacheSide
from sigcache.router import NO_KWARGS, NewCacheProvider, PhaseRouter, provenance_kwargs
from sigcache.routing import LEGACY_HIT, NO_DIAG, CallDiagnostics

__all__ = ["CallDiagnostics", "LegacySignatureCacheAdapter", "NewCacheProvider"]


class LegacySignatureCacheAdapter(PhaseRouter):
    """The legacy interface (SignatureCacheProtocol) routed through the phase strategies."""

    def __bool__(self) -> bool:
        # Never falsy because it is empty: the replaced system's proxy died of exactly that.
        return True

    # -- main store -----------------------------------------------------------------------------

    def set(
        self,
        thinking_text: str,
        signature: str,
        model: str | None = None,
        owner_id: str | None = None,
        *,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> bool:
        """Cache a signature in the phase's caches; the authoritative result is returned."""
        if self.fast_legacy:
            try:
                ok = self.legacy.set(thinking_text, signature, model, owner_id)
            except (
                Exception
            ):  # the legacy cache never raises; if it did, the caller must not see it
                ok = False
            if not ok:
                self.stats.record_rejected_write()  # the legacy cache refuses bad input only
            if self.diagnose:
                self._local.diag = CallDiagnostics("legacy" if ok else None)
            return ok
        kwargs = (
            NO_KWARGS
            if scope is None and conversation_id is None
            else provenance_kwargs(None, scope, conversation_id)
        )
        return self._write("set", (thinking_text, signature, model, owner_id), signature, kwargs)

    def get(
        self,
        thinking_text: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The signature for a thinking text from the phase's primary, then fallback cache."""
        if self.fast_legacy:
            try:
                value = self.legacy.get(thinking_text, owner_id)
            except Exception:  # counted as a failed read; the caller sees a miss
                self.stats.record_primary(CacheSide.LEGACY, False, 1)
                value = None
            if self.diagnose:
                self._local.diag = NO_DIAG if value is None else LEGACY_HIT
            return value
        kwargs = provenance_kwargs(model, scope, conversation_id)
        result: str | None = self._read("get", (thinking_text, owner_id), owner_id, kwargs)
        return result

    def invalidate(self, thinking_text: str, owner_id: str | None = None) -> bool:
        """Forget a thinking text in every cache (so a fallback cannot bring it back)."""
        return bool(self._each("invalidate", (thinking_text, owner_id)))

    def clear(self) -> int:
        """Empty the main store of every cache; the authoritative count is returned."""
        return int(self._each("clear"))

    def cleanup_expired(self) -> int:
        """Remove expired entries in every cache; the authoritative count is returned."""
        return int(self._each("cleanup_expired"))

    def get_stats(self) -> dict[str, object]:
        """The legacy stats shape plus the migration counters (numbers only)."""
        stats: dict[str, object] = dict(self.legacy.get_stats())
        writes, reads = self.stats.snapshot()
        for key in ("legacy_hits", "new_hits", "fallback_hits", "read_repairs"):
            stats[key] = reads[key]
        stats["hit_rate"] = reads["hit_rate"]
        stats["dual_write_stats"] = writes
        stats["read_stats"] = reads
        return stats

    def reset_stats(self) -> None:
        """Zero the migration counters and both caches' counters."""
        self.stats.reset(also=self.legacy.reset_stats)
        new = self._new(False)
        if new is not None:
            new.reset_stats()

    @property
    def size(self) -> int:
        """Main-store entries of the cache reads ask first."""
        primary = self.route.read.primary
        cache = self._cache(primary, build=False) if primary else None
        return cache.size if cache is not None else 0

    def __len__(self) -> int:
        return self.size

    # -- tool and session stores ------------------------------------------------------------------

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
        """Cache a signature for a tool-call id in the phase's caches."""
        args = (tool_id, signature, owner_id)
        kwargs = provenance_kwargs(model, scope, conversation_id)
        return self._write("cache_tool_signature", args, signature, kwargs)

    def get_tool_signature(
        self,
        tool_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The signature for a tool-call id (primary, then fallback with read repair)."""
        kwargs = provenance_kwargs(model, scope, conversation_id)
        args = (tool_id, owner_id)
        result: str | None = self._read("get_tool_signature", args, owner_id, kwargs)
        return result

    def get_tool_signature_fuzzy(
        self,
        tool_id: str,
        max_candidates: int = 5,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """Fuzzy tool look-up in the primary, then the fallback (no repair: the id is unknown)."""
        args = (tool_id, max_candidates, owner_id)
        kwargs = provenance_kwargs(model, scope, conversation_id)
        result: str | None = self._read("get_tool_signature_fuzzy", args, None, kwargs)
        return result

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
        """Cache a signature (and its thinking text) for a session id in the phase's caches."""
        args = (session_id, signature, thinking_text, owner_id)
        kwargs = provenance_kwargs(model, scope, conversation_id)
        return self._write("cache_session_signature", args, signature, kwargs)

    def get_session_signature(
        self,
        session_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The signature for a session id (primary, then fallback with read repair)."""
        kwargs = provenance_kwargs(model, scope, conversation_id)
        args = (session_id, owner_id)
        result: str | None = self._read("get_session_signature", args, owner_id, kwargs)
        return result

    def get_session_signature_with_text(
        self,
        session_id: str,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> SignatureWithText | None:
        """(signature, text) for a session id (primary, then fallback with read repair)."""
        args = (session_id, owner_id)
        kwargs = provenance_kwargs(model, scope, conversation_id)
        result: SignatureWithText | None = self._read(
            "get_session_signature_with_text", args, owner_id, kwargs
        )
        return result

    # -- last / recent (no key to repair under) -------------------------------------------------

    def get_last_signature(
        self,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> str | None:
        """The last signature from the primary cache, else the fallback."""
        kwargs = provenance_kwargs(model, scope, conversation_id)
        result: str | None = self._read("get_last_signature", (owner_id,), None, kwargs)
        return result

    def get_last_signature_with_text(
        self,
        owner_id: str | None = None,
        *,
        model: str | None = None,
        scope: str | None = None,
        conversation_id: str | None = None,
    ) -> SignatureWithText | None:
        """(signature, text) of the last entry from the primary cache, else the fallback."""
        kwargs = provenance_kwargs(model, scope, conversation_id)
        result: SignatureWithText | None = self._read(
            "get_last_signature_with_text", (owner_id,), None, kwargs
        )
        return result

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
        """A signature written within the window, from the primary cache, else the fallback."""
        args = (time_window_seconds, client_type, owner_id)
        kwargs = provenance_kwargs(model, scope, conversation_id)
        result: str | None = self._read("get_recent_signature", args, None, kwargs)
        return result

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
        """(signature, text) written within the window, from the primary, else the fallback."""
        args = (time_window_seconds, client_type, owner_id)
        kwargs = provenance_kwargs(model, scope, conversation_id)
        result: SignatureWithText | None = self._read(
            "get_recent_signature_with_text", args, None, kwargs
        )
        return result

    def describe(self) -> dict[str, Any]:
        """The route in force, for the status (plain values)."""
        route = self.route
        return {
            "read_primary": route.read.primary.value if route.read.primary else None,
            "read_fallback": route.read.fallback.value if route.read.fallback else None,
            "write_targets": [side.value for side in route.write.targets],
            "legacy_fast_path": self.fast_legacy,
        }
