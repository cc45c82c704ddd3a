"""The module API callers import: the phase proxy over a process-default `CacheFacade`.

The facade is built from the environment on first use (`get_cache_facade()`) and rebuilt by
`reset_signature_cache()`. With no observer registered (`facade.direct`), a cache call is one
attribute check and a direct call: on the legacy cache with migration mode off, else the adapter.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sigcache.errors import ConfigError, SigcacheError
from sigcache.facade import CacheFacade, NewCacheFactory, PromotionGuard
from sigcache.fingerprints import (
    extract_base_tool_id,
    generate_full_fingerprint,
    generate_last_n_fingerprint,
    generate_multi_level_fingerprint,
    generate_session_fingerprint,
)
from sigcache.gate_guard import guard_from_env
from sigcache.interface import SignatureCacheProtocol, SignatureWithText
from sigcache.migration_config import MigrationConfig
from sigcache.observers import Observer
from sigcache.recorder import Recorder

__all__ = [
    "add_observer",
    "cache_session_signature",
    "cache_signature",
    "cache_tool_signature",
    "cleanup_expired",
    "clear",
    "disable_migration_mode",
    "enable_migration_mode",
    "extract_base_tool_id",
    "generate_full_fingerprint",
    "generate_last_n_fingerprint",
    "generate_multi_level_fingerprint",
    "generate_session_fingerprint",
    "get_cache_facade",
    "get_cache_stats",
    "get_cached_signature",
    "get_last_signature",
    "get_last_signature_with_text",
    "get_migration_history",
    "get_migration_status",
    "get_recent_signature",
    "get_recent_signature_with_text",
    "get_session_signature",
    "get_session_signature_multi_level",
    "get_session_signature_with_text",
    "get_signature_cache",
    "get_tool_signature",
    "get_tool_signature_fuzzy",
    "invalidate",
    "is_migration_mode_enabled",
    "remove_observer",
    "reset_cache_stats",
    "reset_signature_cache",
    "set_migration_phase",
]

log = logging.getLogger("sigcache.signature_cache")

Clock = Callable[[], float]

_lock = threading.Lock()
_facade: CacheFacade | None = None
_clock: Clock = time.time
_environ: Mapping[str, str] | None = None  # None: os.environ at build time
_factory: NewCacheFactory | None = None
_guard: PromotionGuard | None = None
_recorder: Recorder | None = None


def _build() -> CacheFacade:
    environ = os.environ if _environ is None else _environ
    try:
        config = MigrationConfig.from_env(environ)
    except ConfigError as exc:
        # A bad variable must not turn every cache call into an exception: run legacy only.
        log.error("[CACHE_MIGRATION] invalid environment, using defaults: %s", exc)
        config = MigrationConfig()
    facade = CacheFacade(
        config,
        clock=_clock,
        new_cache_factory=_factory or _redis_factory(environ),
        promotion_guard=_default_guard(environ),
    )
    _attach_recorder(facade, environ)
    _attach_phase_sync(facade, environ)
    return facade


def _redis_factory(environ: Mapping[str, str]) -> NewCacheFactory | None:
    """A layered cache over Redis when CACHE_NEW_L2_URL names one (else the SQLite default)."""
    from sigcache.redis_wiring import l2_url, redis_cache_factory

    try:
        url = l2_url(environ)
    except ConfigError as exc:
        log.error("[CACHE_MIGRATION] %s; using the SQLite L2", exc)
        return None
    return redis_cache_factory(url) if url else None


def _attach_phase_sync(facade: CacheFacade, environ: Mapping[str, str]) -> None:
    """Share the phase with every process on the same L2 (poll off the request path).

    On when the state can be shared: a Redis L2, an existing L2 database, or migration mode on at
    start. A pure legacy process that never migrated starts no thread and creates no file.
    """
    from sigcache.phase_sync import attach_phase_sync, interval_from_env, phase_backend_from_env
    from sigcache.redis_wiring import l2_url

    try:
        shared = (
            l2_url(environ) is not None
            or os.path.exists(facade.db_path)
            or facade.is_migration_mode_enabled()
        )
        if shared:
            backend = phase_backend_from_env(environ, facade.db_path)
            facade.phase_sync = attach_phase_sync(facade, backend, interval_from_env(environ))
    except Exception as exc:  # sharing is an addition: never a reason for calls to fail
        log.error("[CACHE_MIGRATION] phase sync disabled: %s", type(exc).__name__)


def _default_guard(environ: Mapping[str, str]) -> PromotionGuard:
    """The injected guard, else gate verdicts from SIGCACHE_GATE_DIR (default ./reports)."""
    if _guard is not None:
        return _guard
    try:
        return guard_from_env(environ, clock=_clock)
    except ConfigError as exc:
        log.error("[CACHE_MIGRATION] invalid gate settings, using defaults: %s", exc)
        return guard_from_env({}, clock=_clock)


def _attach_recorder(facade: CacheFacade, environ: Mapping[str, str]) -> None:
    """Record every operation when SIGCACHE_RECORD names a file."""
    global _recorder
    try:
        recorder = Recorder.from_env(environ)
    except SigcacheError as exc:
        log.error("[CACHE_MIGRATION] recording disabled: %s", exc)
        return
    if recorder is not None:
        _recorder = recorder
        facade.add_observer(recorder)


def get_cache_facade() -> CacheFacade:
    """The process-default facade, built from the environment on first use."""
    global _facade
    facade = _facade
    if facade is None:
        with _lock:
            if _facade is None:
                _facade = _build()
            facade = _facade
    return facade


def reset_signature_cache(
    *,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    new_cache_factory: NewCacheFactory | None = None,
    promotion_guard: PromotionGuard | None = None,
) -> None:
    """Close and drop the process-default facade (and its observers); the next call rebuilds it."""
    global _facade, _clock, _environ, _factory, _guard, _recorder
    with _lock:
        old, _facade = _facade, None
        _clock = clock or time.time
        _environ, _factory, _guard = environ, new_cache_factory, promotion_guard
        recorder, _recorder = _recorder, None
    if old is not None:
        old.close()
    if recorder is not None:
        recorder.close()


def get_signature_cache() -> SignatureCacheProtocol:
    """The legacy cache of the process-default facade."""
    return (_facade or get_cache_facade()).legacy


def add_observer(observer: Observer) -> None:
    """Call `observer(event)` after every module-level cache operation."""
    get_cache_facade().add_observer(observer)


def remove_observer(observer: Observer) -> None:
    """Stop calling an observer."""
    get_cache_facade().remove_observer(observer)


# -- migration control ------------------------------------------------------------------------


def enable_migration_mode(*, actor: str = "code", reason: str = "") -> None:
    """Route every call through the phase proxy."""
    get_cache_facade().enable_migration_mode(actor=actor, reason=reason)


def disable_migration_mode(*, actor: str = "code", reason: str = "") -> None:
    """Instant rollback to legacy only, whatever the phase."""
    get_cache_facade().disable_migration_mode(actor=actor, reason=reason)


def is_migration_mode_enabled() -> bool:
    """True while calls go through the phase proxy."""
    return get_cache_facade().is_migration_mode_enabled()


def set_migration_phase(
    phase: object, *, actor: str = "code", reason: str = "", force: bool = False
) -> None:
    """Move to a phase (name, 1-4 or MigrationPhase): one step forward or any step back."""
    get_cache_facade().set_migration_phase(phase, actor=actor, reason=reason, force=force)


def get_migration_status() -> dict[str, Any]:
    """Mode, phase, flags, stats, history and conflicts."""
    return get_cache_facade().get_migration_status()


def get_migration_history() -> list[dict[str, Any]]:
    """Every audited phase and mode change, oldest first."""
    return get_cache_facade().get_migration_history()


def get_cache_stats() -> dict[str, Any]:
    """Legacy stats shape plus the migration counters (numbers only)."""
    return get_cache_facade().get_cache_stats()


def reset_cache_stats() -> None:
    """Zero every counter (legacy, new cache, migration)."""
    get_cache_facade().reset_cache_stats()


# -- cache operations: `f.direct` is the whole cost of the proxy with migration mode off --------
#
# Provenance (issue 13): `model`, `scope` and `conversation_id` are keyword-only and optional. The
# new cache refuses an entry of another model family or scope, and answers last/recent only from
# the caller's conversation (nothing without one); legacy ignores them. `get_cached_signature`
# and `cache_signature` test for them first so the common call stays as cheap as before.


def cache_signature(
    thinking_text: str,
    signature: str,
    model: str | None = None,
    owner_id: str | None = None,
    *,
    scope: str | None = None,
    conversation_id: str | None = None,
) -> bool:
    """Cache a signature for a thinking text (with its provenance)."""
    f = _facade or get_cache_facade()
    d = f.direct
    if d is not None and scope is None and conversation_id is None:
        return d.set(thinking_text, signature, model, owner_id)
    return f.cache_signature(
        thinking_text, signature, model, owner_id, scope=scope, conversation_id=conversation_id
    )


def get_cached_signature(
    thinking_text: str,
    owner_id: str | None = None,
    *,
    model: str | None = None,
    scope: str | None = None,
    conversation_id: str | None = None,
) -> str | None:
    """The signature cached for a thinking text (of this model family and scope), or None."""
    f = _facade or get_cache_facade()
    d = f.direct
    if d is not None and model is None and scope is None and conversation_id is None:
        return d.get(thinking_text, owner_id)
    return f.get_cached_signature(
        thinking_text, owner_id, model=model, scope=scope, conversation_id=conversation_id
    )


def invalidate(thinking_text: str) -> bool:
    """Forget the signature of a thinking text (in every cache)."""
    return get_cache_facade().invalidate(thinking_text)


def clear() -> int:
    """Empty the main store; returns the number of entries removed."""
    return get_cache_facade().clear()


def cleanup_expired() -> int:
    """Remove expired entries; returns how many."""
    return get_cache_facade().cleanup_expired()


def get_last_signature(
    *,
    owner_id: str | None = None,
    conversation_id: str | None = None,
    model: str | None = None,
    scope: str | None = None,
) -> str | None:
    """The most recent live signature (the new cache: of this conversation only), or None."""
    f = _facade or get_cache_facade()
    return f.get_last_signature(
        owner_id=owner_id, conversation_id=conversation_id, model=model, scope=scope
    )


def get_last_signature_with_text(
    *,
    owner_id: str | None = None,
    conversation_id: str | None = None,
    model: str | None = None,
    scope: str | None = None,
) -> SignatureWithText | None:
    """(signature, thinking text) of the most recent live entry, or None."""
    f = _facade or get_cache_facade()
    return f.get_last_signature_with_text(
        owner_id=owner_id, conversation_id=conversation_id, model=model, scope=scope
    )


def get_recent_signature(
    time_window_seconds: float = 300,
    client_type: str | None = None,
    owner_id: str | None = None,
    *,
    conversation_id: str | None = None,
    model: str | None = None,
    scope: str | None = None,
) -> str | None:
    """A signature written within the time window (tool, session, then main store)."""
    f = _facade or get_cache_facade()
    return f.get_recent_signature(
        time_window_seconds,
        client_type,
        owner_id,
        model=model,
        scope=scope,
        conversation_id=conversation_id,
    )


def get_recent_signature_with_text(
    time_window_seconds: float = 300,
    client_type: str | None = None,
    owner_id: str | None = None,
    *,
    conversation_id: str | None = None,
    model: str | None = None,
    scope: str | None = None,
) -> SignatureWithText | None:
    """(signature, text) written within the time window (main, then session store)."""
    f = _facade or get_cache_facade()
    return f.get_recent_signature_with_text(
        time_window_seconds,
        client_type,
        owner_id,
        model=model,
        scope=scope,
        conversation_id=conversation_id,
    )


def cache_tool_signature(
    tool_id: str,
    signature: str,
    owner_id: str | None = None,
    *,
    model: str | None = None,
    scope: str | None = None,
    conversation_id: str | None = None,
) -> bool:
    """Cache a signature for a tool-call id (found later by its rewritten forms too)."""
    f = _facade or get_cache_facade()
    return f.cache_tool_signature(
        tool_id, signature, owner_id, model=model, scope=scope, conversation_id=conversation_id
    )


def get_tool_signature(
    tool_id: str,
    owner_id: str | None = None,
    *,
    model: str | None = None,
    scope: str | None = None,
    conversation_id: str | None = None,
) -> str | None:
    """The signature cached for a tool-call id (or a rewritten form of it), or None."""
    f = _facade or get_cache_facade()
    return f.get_tool_signature(
        tool_id, owner_id, model=model, scope=scope, conversation_id=conversation_id
    )


def get_tool_signature_fuzzy(
    tool_id: str,
    max_candidates: int = 5,
    *,
    owner_id: str | None = None,
    model: str | None = None,
    scope: str | None = None,
    conversation_id: str | None = None,
) -> str | None:
    """Exact id, then its base id, then similar ids, newest first."""
    f = _facade or get_cache_facade()
    return f.get_tool_signature_fuzzy(
        tool_id,
        max_candidates,
        owner_id=owner_id,
        model=model,
        scope=scope,
        conversation_id=conversation_id,
    )


def cache_session_signature(
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
    f = _facade or get_cache_facade()
    return f.cache_session_signature(
        session_id,
        signature,
        thinking_text,
        owner_id,
        model=model,
        scope=scope,
        conversation_id=conversation_id,
    )


def get_session_signature(
    session_id: str,
    owner_id: str | None = None,
    *,
    model: str | None = None,
    scope: str | None = None,
    conversation_id: str | None = None,
) -> str | None:
    """The signature cached for a session id, or None."""
    f = _facade or get_cache_facade()
    return f.get_session_signature(
        session_id, owner_id, model=model, scope=scope, conversation_id=conversation_id
    )


def get_session_signature_with_text(
    session_id: str,
    owner_id: str | None = None,
    *,
    model: str | None = None,
    scope: str | None = None,
    conversation_id: str | None = None,
) -> SignatureWithText | None:
    """(signature, thinking text) cached for a session id, or None."""
    f = _facade or get_cache_facade()
    return f.get_session_signature_with_text(
        session_id, owner_id, model=model, scope=scope, conversation_id=conversation_id
    )


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
