"""The new cache behind the phase proxy: its factory protocol, default factory, lazy build."""

from __future__ import annotations

import logging
import threading
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


def default_new_cache_factory(db_path: str, *, config: MigrationConfig, clock: Clock) -> Cache:
    """A LayeredSignatureCache sized from the migration settings (imported on first need)."""
    from sigcache.config import L1Settings, L2Settings, LayeredConfig
    from sigcache.layered import LayeredSignatureCache  # deferred: legacy-only use never loads it

    layered = LayeredConfig(
        l1=L1Settings(max_entries=config.new_l1_max_size, ttl_seconds=config.new_l1_ttl_seconds),
        l2=L2Settings(ttl_seconds=config.new_l2_ttl_seconds, max_rows=config.new_l2_max_size),
    )
    cache: Cache = LayeredSignatureCache(db_path, config=layered, clock=clock)
    return cache


class LazyCache:
    """The new cache, built on first need; a failed build is remembered and logged once."""

    def __init__(self, factory: Callable[[], Cache]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._cache: Cache | None = None
        self._closed = False
        self.error: str | None = None

    def get(self, build: bool = True) -> Cache | None:
        """The cache, built first if `build`; None while unbuilt, failed or closed."""
        cache = self._cache
        if cache is not None or not build or self.error is not None or self._closed:
            return cache
        with self._lock:
            if self._cache is None and self.error is None and not self._closed:
                try:
                    self._cache = self._factory()
                except Exception as exc:  # a broken new cache must not break cache calls
                    self.error = f"{type(exc).__name__}: {exc}"
                    log.error("[LEGACY_ADAPTER] new cache unavailable: %s", self.error)
            return self._cache

    @property
    def built(self) -> bool:
        """True once the cache exists."""
        return self._cache is not None

    def retry(self) -> None:
        """Forget a failed build so the next `get` tries again."""
        with self._lock:
            self.error = None

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
