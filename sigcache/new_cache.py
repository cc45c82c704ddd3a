"""The new cache behind the phase proxy: its factory protocol, default factory, lazy build."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from sigcache.interface import SignatureCacheProtocol
from sigcache.migration_config import MigrationConfig

__all__ = ["LazyCache", "NewCacheFactory", "default_new_cache_factory"]

log = logging.getLogger("sigcache.facade")

Clock = Callable[[], float]
Cache = SignatureCacheProtocol


class NewCacheFactory(Protocol):
    """Builds the new cache: `factory(db_path, config=MigrationConfig, clock=clock)`."""

    def __call__(self, db_path: str, *, config: MigrationConfig, clock: Clock) -> Cache: ...


def default_new_cache_factory(
    db_path: str, *, config: MigrationConfig, clock: Clock, durable: bool = True
) -> Cache:
    """A LayeredSignatureCache sized from the migration settings (imported on first need).

    `durable=False` is for throwaway stores only (a replay's): L2 commits are not synced.
    """
    from sigcache.config import L1Settings, L2Settings, LayeredConfig
    from sigcache.layered import LayeredSignatureCache  # deferred: legacy-only use never loads it

    l2 = L2Settings(
        ttl_seconds=config.new_l2_ttl_seconds,
        max_rows=config.new_l2_max_size,
        synchronous="NORMAL" if durable else "OFF",
    )
    layered = LayeredConfig(
        l1=L1Settings(max_entries=config.new_l1_max_size, ttl_seconds=config.new_l1_ttl_seconds),
        l2=l2,
    )
    cache: Cache = LayeredSignatureCache(db_path, config=layered, clock=clock)
    return cache


class LazyCache:
    """The new cache, built on first need; a failed build is logged and retried with backoff.

    A database that cannot be opened at first use (a missing mount, a directory in its place) must
    not leave the process without its new cache until a restart: the build is tried again after
    `retry_base` seconds, doubling up to `retry_max`, so recovery follows the fault by seconds
    while an outage costs one open attempt per backoff period, not one per call.
    """

    def __init__(
        self,
        factory: Callable[[], Cache],
        *,
        retry_base: float = 1.0,
        retry_max: float = 30.0,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._cache: Cache | None = None
        self._closed = False
        self._retry_base = retry_base
        self._retry_max = retry_max
        self._monotonic = monotonic
        self._failures = 0
        self._retry_at = 0.0
        self.error: str | None = None

    def get(self, build: bool = True) -> Cache | None:
        """The cache, built first if `build`; None while unbuilt, failing or closed."""
        cache = self._cache
        if cache is not None or not build or self._closed:
            return cache
        if self.error is not None and self._monotonic() < self._retry_at:
            return None
        with self._lock:
            if self._cache is None and not self._closed and self._due():
                self._build()
            return self._cache

    def _due(self) -> bool:
        return self.error is None or self._monotonic() >= self._retry_at

    def _build(self) -> None:
        try:
            self._cache = self._factory()
        except Exception as exc:  # a broken new cache must not break cache calls
            self._failures += 1
            delay = min(self._retry_base * 2 ** (self._failures - 1), self._retry_max)
            self._retry_at = self._monotonic() + delay
            if self.error is None:
                log.error("[LEGACY_ADAPTER] new cache unavailable: %s", type(exc).__name__)
            self.error = f"{type(exc).__name__}: {exc}"
            return
        if self.error is not None:
            log.warning(
                "[LEGACY_ADAPTER] new cache available again after %d failures", self._failures
            )
        self.error, self._failures = None, 0

    @property
    def built(self) -> bool:
        """True once the cache exists."""
        return self._cache is not None

    def retry(self) -> None:
        """Try a failed build again at the next `get`, whatever the backoff."""
        with self._lock:
            self._retry_at = 0.0

    def close(self) -> None:
        """Flush and close the cache if built; later `get`s return None."""
        with self._lock:
            cache, self._cache, self._closed = self._cache, None, True
        close = getattr(cache, "close", None)
        if callable(close):
            try:
                close()
            except Exception as exc:  # shutting down must work even with a broken new cache
                log.error("[LEGACY_ADAPTER] new cache failed to close: %s", type(exc).__name__)
