"""The module API callers import (legacy-only form).

Every function works on a process-default legacy `SignatureCache`; the migration layer will put
the phase proxy between. Observers registered with `add_observer` see every operation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sigcache.fingerprints import (
    extract_base_tool_id,
    generate_full_fingerprint,
    generate_last_n_fingerprint,
    generate_multi_level_fingerprint,
    generate_session_fingerprint,
)
from sigcache.legacy import SignatureCache
from sigcache.observers import Observer, ObserverList, OperationEvent

__all__ = [
    "add_observer",
    "cache_session_signature",
    "cache_signature",
    "cache_tool_signature",
    "cleanup_expired",
    "clear",
    "extract_base_tool_id",
    "generate_full_fingerprint",
    "generate_last_n_fingerprint",
    "generate_multi_level_fingerprint",
    "generate_session_fingerprint",
    "get_cache_stats",
    "get_cached_signature",
    "get_last_signature",
    "get_last_signature_with_text",
    "get_recent_signature",
    "get_recent_signature_with_text",
    "get_session_signature",
    "get_session_signature_multi_level",
    "get_session_signature_with_text",
    "get_signature_cache",
    "get_tool_signature",
    "get_tool_signature_fuzzy",
    "invalidate",
    "remove_observer",
    "reset_cache_stats",
    "reset_signature_cache",
]

Clock = Callable[[], float]

_lock = threading.Lock()
_cache: SignatureCache | None = None
_clock: Clock = time.time
_observers = ObserverList()


def get_signature_cache() -> SignatureCache:
    """The process-default legacy cache, built on first use."""
    global _cache
    cache = _cache
    if cache is None:
        with _lock:
            if _cache is None:
                _cache = SignatureCache(clock=_clock)
            cache = _cache
    return cache


def reset_signature_cache(*, clock: Clock | None = None) -> None:
    """Drop the process-default cache (and its observers); the next call builds a fresh one."""
    global _cache, _clock
    with _lock:
        _cache = None
        _clock = clock or time.time
        _observers.clear()


def add_observer(observer: Observer) -> None:
    """Call `observer(event)` after every module-level cache operation."""
    _observers.add(observer)


def remove_observer(observer: Observer) -> None:
    """Stop calling an observer."""
    _observers.remove(observer)


def _observed(op: str, call: Callable[[SignatureCache], Any], args: dict[str, Any]) -> Any:
    cache = get_signature_cache()
    if not _observers:
        return call(cache)
    started = _clock()
    t0 = time.perf_counter()
    result = call(cache)
    latency_us = (time.perf_counter() - t0) * 1e6
    event = OperationEvent(
        op=op,
        args=args,
        result=result,
        phase="LEGACY_ONLY",
        t=started,
        latency_us=latency_us,
        source="legacy",
        tier="legacy" if result not in (None, False) else None,
    )
    _observers.publish(event)
    return result


def cache_signature(
    thinking_text: str, signature: str, model: str | None = None, owner_id: str | None = None
) -> bool:
    """Cache a signature for a thinking text."""
    args: dict[str, Any] = {
        "thinking_text": thinking_text,
        "signature": signature,
        "model": model,
        "owner_id": owner_id,
    }
    return bool(_observed("cache_signature", lambda c: c.set(**args), args))


def get_cached_signature(thinking_text: str, owner_id: str | None = None) -> str | None:
    """The signature cached for a thinking text, or None."""
    args: dict[str, Any] = {"thinking_text": thinking_text, "owner_id": owner_id}
    result: str | None = _observed("get_cached_signature", lambda c: c.get(**args), args)
    return result


def invalidate(thinking_text: str) -> bool:
    """Forget the signature of a thinking text."""
    args: dict[str, Any] = {"thinking_text": thinking_text}
    return bool(_observed("invalidate", lambda c: c.invalidate(thinking_text), args))


def clear() -> int:
    """Empty the main store; returns the number of entries removed."""
    result: int = _observed("clear", lambda c: c.clear(), {})
    return result


def cleanup_expired() -> int:
    """Remove expired entries; returns how many."""
    result: int = _observed("cleanup_expired", lambda c: c.cleanup_expired(), {})
    return result


def get_cache_stats() -> dict[str, Any]:
    """Counters of the cache."""
    return get_signature_cache().get_stats()


def reset_cache_stats() -> None:
    """Zero the counters."""
    get_signature_cache().reset_stats()


def get_last_signature() -> str | None:
    """The most recently written or read signature still live, or None."""
    result: str | None = _observed("get_last_signature", lambda c: c.get_last_signature(), {})
    return result


def get_last_signature_with_text() -> tuple[str, str] | None:
    """(signature, thinking text) of the most recently touched live entry, or None."""
    result: tuple[str, str] | None = _observed(
        "get_last_signature_with_text", lambda c: c.get_last_signature_with_text(), {}
    )
    return result


def get_recent_signature(
    time_window_seconds: float = 300, client_type: str | None = None, owner_id: str | None = None
) -> str | None:
    """A signature written within the time window (tool, session, then main store)."""
    args: dict[str, Any] = {
        "time_window_seconds": time_window_seconds,
        "client_type": client_type,
        "owner_id": owner_id,
    }
    result: str | None = _observed(
        "get_recent_signature", lambda c: c.get_recent_signature(**args), args
    )
    return result


def get_recent_signature_with_text(
    time_window_seconds: float = 300, client_type: str | None = None, owner_id: str | None = None
) -> tuple[str, str] | None:
    """(signature, text) written within the time window (main, then session store)."""
    args: dict[str, Any] = {
        "time_window_seconds": time_window_seconds,
        "client_type": client_type,
        "owner_id": owner_id,
    }
    result: tuple[str, str] | None = _observed(
        "get_recent_signature_with_text", lambda c: c.get_recent_signature_with_text(**args), args
    )
    return result


def cache_tool_signature(tool_id: str, signature: str, owner_id: str | None = None) -> bool:
    """Cache a signature for a tool-call id."""
    args: dict[str, Any] = {"tool_id": tool_id, "signature": signature, "owner_id": owner_id}
    return bool(_observed("cache_tool_signature", lambda c: c.cache_tool_signature(**args), args))


def get_tool_signature(tool_id: str, owner_id: str | None = None) -> str | None:
    """The signature cached for a tool-call id, or None."""
    args: dict[str, Any] = {"tool_id": tool_id, "owner_id": owner_id}
    result: str | None = _observed(
        "get_tool_signature", lambda c: c.get_tool_signature(**args), args
    )
    return result


def get_tool_signature_fuzzy(tool_id: str, max_candidates: int = 5) -> str | None:
    """Exact id, then its base id, then similar ids, newest first."""
    return get_signature_cache().get_tool_signature_fuzzy(tool_id, max_candidates)


def cache_session_signature(
    session_id: str, signature: str, thinking_text: str = "", owner_id: str | None = None
) -> bool:
    """Cache a signature (and its thinking text) for a session id."""
    args: dict[str, Any] = {
        "session_id": session_id,
        "signature": signature,
        "thinking_text": thinking_text,
        "owner_id": owner_id,
    }
    return bool(
        _observed("cache_session_signature", lambda c: c.cache_session_signature(**args), args)
    )


def get_session_signature(session_id: str, owner_id: str | None = None) -> str | None:
    """The signature cached for a session id, or None."""
    args: dict[str, Any] = {"session_id": session_id, "owner_id": owner_id}
    result: str | None = _observed(
        "get_session_signature", lambda c: c.get_session_signature(**args), args
    )
    return result


def get_session_signature_with_text(
    session_id: str, owner_id: str | None = None
) -> tuple[str, str] | None:
    """(signature, thinking text) cached for a session id, or None."""
    args: dict[str, Any] = {"session_id": session_id, "owner_id": owner_id}
    result: tuple[str, str] | None = _observed(
        "get_session_signature_with_text",
        lambda c: c.get_session_signature_with_text(**args),
        args,
    )
    return result


def get_session_signature_multi_level(
    messages: object, fingerprints: dict[str, str] | None = None
) -> str | None:
    """Try the first_user, last_n and full fingerprints as session ids, in that order."""
    levels = fingerprints or generate_multi_level_fingerprint(messages)
    for level in ("first_user", "last_n", "full"):
        fingerprint = levels.get(level, "")
        if fingerprint:
            found = get_session_signature(fingerprint)
            if found is not None:
                return found
    return None
