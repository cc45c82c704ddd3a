"""Entries and counters of the legacy cache, in the replaced system's shapes."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "LAYER_STAT_KEYS",
    "CacheEntry",
    "CacheStats",
    "StoreCounters",
    "layer_rates",
    "new_layer_stats",
]

LAYER_STAT_KEYS = (
    "tool_cache_hits",
    "tool_cache_misses",
    "cache_hits",
    "cache_misses",
    "session_cache_hits",
    "session_cache_misses",
    "last_signature_hits",
    "last_signature_misses",
    "total_recoveries",
    "successful_recoveries",
)


@dataclass(slots=True)
class CacheEntry:
    """One legacy entry; `thinking_text` is the full text as passed, not normalised."""

    signature: str
    thinking_text: str
    thinking_text_preview: str
    timestamp: float
    access_count: int = 0
    model: str | None = None
    model_family: str | None = None
    owner_id: str | None = None

    def is_expired(self, ttl_seconds: float, now: float) -> bool:
        """True when more than `ttl_seconds` have passed since the write."""
        return now - self.timestamp > ttl_seconds


@dataclass(slots=True)
class CacheStats:
    """Main-store counters; `to_dict` keeps the legacy percentage string for `hit_rate`."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    evictions: int = 0
    expirations: int = 0

    @property
    def hit_rate(self) -> float:
        """hits / (hits + misses), 0.0 without look-ups."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def to_dict(self) -> dict[str, object]:
        """The legacy shape: counters, `hit_rate` as "66.67%", `total_requests`."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "writes": self.writes,
            "evictions": self.evictions,
            "expirations": self.expirations,
            "hit_rate": f"{self.hit_rate:.2%}",
            "total_requests": self.hits + self.misses,
        }


def _rate(hits: int, misses: int) -> float:
    total = hits + misses
    return hits / total * 100 if total else 0.0


def layer_rates(layer: dict[str, int]) -> dict[str, float]:
    """The four legacy layer rates, on a 0-100 scale."""
    return {
        "tool_cache_hit_rate": _rate(layer["tool_cache_hits"], layer["tool_cache_misses"]),
        "cache_hit_rate": _rate(layer["cache_hits"], layer["cache_misses"]),
        "session_cache_hit_rate": _rate(layer["session_cache_hits"], layer["session_cache_misses"]),
        "recovery_success_rate": (
            layer["successful_recoveries"] / layer["total_recoveries"] * 100
            if layer["total_recoveries"]
            else 0.0
        ),
    }


def new_layer_stats() -> dict[str, int]:
    """A zeroed layer-stats dict with exactly the legacy keys."""
    return dict.fromkeys(LAYER_STAT_KEYS, 0)


@dataclass(slots=True)
class StoreCounters:
    """Evictions of the bounded tool and session stores (absent from the replaced system)."""

    tool_evictions: int = 0
    session_evictions: int = 0
