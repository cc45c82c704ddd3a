"""A layered cache whose writes take `expires_at=` / `written_at=`: the API backfill needs.

Stands in for the write API proposed to `sigcache.layered` until it ships; it writes through the
real L1 and L2 (real SQLite files), only the expiry is the caller's.
"""

from __future__ import annotations

from typing import Any

from sigcache.config import L1Settings, L2Settings, LayeredConfig
from sigcache.keys import is_valid_signature
from sigcache.layered import LayeredSignatureCache, id_key, main_key
from sigcache.memory import L1Key
from sigcache.migration_config import MigrationConfig
from sigcache.storage import MAIN, SESSION, TOOL, Entry


class ExpiringLayered(LayeredSignatureCache):
    """LayeredSignatureCache with `expires_at` / `written_at` keywords on its three writes."""

    def _put(
        self,
        key: L1Key | None,
        signature: str,
        text: str,
        model: object,
        expires_at: float | None,
        written_at: float | None,
    ) -> bool:
        if key is None or not is_valid_signature(signature):
            return False
        # Mirrors the private write path of sigcache.tiers (L1 now, L2 through the writer).
        now = self.clock()
        own = now + self.config.l2.ttl_seconds
        entry = Entry(
            key[0],
            key[1],
            "" if key[0] == MAIN else key[2],  # the writer derives a main entry's L2 key
            signature,
            text,
            model if isinstance(model, str) else None,
            None,
            now if written_at is None else written_at,
            own if expires_at is None else min(expires_at, own),  # never beyond its own TTL
        )
        self._l1.put(key, entry, min(now + self.config.l1.ttl_seconds, entry.expires_at))
        self._writer.put(entry, key[2])
        self._stats.add(f"{key[0]}_writes")
        return True

    def set(
        self,
        thinking_text: str,
        signature: str,
        model: str | None = None,
        owner_id: str | None = None,
        *,
        expires_at: float | None = None,
        written_at: float | None = None,
        **_: Any,
    ) -> bool:
        key = main_key(thinking_text, owner_id)
        return self._put(key, signature, thinking_text, model, expires_at, written_at)

    def cache_tool_signature(
        self,
        tool_id: str,
        signature: str,
        owner_id: str | None = None,
        *,
        expires_at: float | None = None,
        written_at: float | None = None,
    ) -> bool:
        key = id_key(TOOL, tool_id, owner_id)
        return self._put(key, signature, "", None, expires_at, written_at)

    def cache_session_signature(
        self,
        session_id: str,
        signature: str,
        thinking_text: str = "",
        owner_id: str | None = None,
        *,
        expires_at: float | None = None,
        written_at: float | None = None,
    ) -> bool:
        key = id_key(SESSION, session_id, owner_id)
        return self._put(key, signature, thinking_text or "", None, expires_at, written_at)


def expiring_factory(db_path: str, *, config: MigrationConfig, clock: Any) -> ExpiringLayered:
    """A `new_cache_factory` building an ExpiringLayered sized like the default."""
    layered = LayeredConfig(
        l1=L1Settings(max_entries=config.new_l1_max_size, ttl_seconds=config.new_l1_ttl_seconds),
        l2=L2Settings(ttl_seconds=config.new_l2_ttl_seconds, max_rows=config.new_l2_max_size),
    )
    return ExpiringLayered(db_path, config=layered, clock=clock)
