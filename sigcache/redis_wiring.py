"""Selecting the Redis L2 from configuration: `CACHE_NEW_L2_URL=redis://...` (else SQLite)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sigcache.errors import ConfigError
from sigcache.interface import SignatureCacheProtocol
from sigcache.migration_config import MigrationConfig
from sigcache.redis_store import RedisSettings, RedisStore

__all__ = ["ENV_L2_URL", "ENV_REDIS_PREFIX", "build_store_from_env", "redis_cache_factory"]

ENV_L2_URL = "CACHE_NEW_L2_URL"
ENV_REDIS_PREFIX = "CACHE_NEW_L2_REDIS_PREFIX"
_SCHEMES = ("redis://", "rediss://", "unix://")


def l2_url(environ: Mapping[str, str]) -> str | None:
    """The Redis URL configured for L2, or None (the embedded SQLite default)."""
    url = environ.get(ENV_L2_URL, "").strip()
    if not url:
        return None
    if not url.startswith(_SCHEMES):
        raise ConfigError(f"{ENV_L2_URL} must be a redis:// URL, got {url.split('@')[-1]!r}")
    return url


def build_store_from_env(
    environ: Mapping[str, str], settings: RedisSettings | None = None
) -> RedisStore | None:
    """A RedisStore when `CACHE_NEW_L2_URL` is set, else None (keep SQLite)."""
    url = l2_url(environ)
    if url is None:
        return None
    prefix = environ.get(ENV_REDIS_PREFIX, "").strip() or "sigcache"
    base = settings or RedisSettings()
    return RedisStore(
        url,
        RedisSettings(
            prefix=prefix,
            socket_timeout_s=base.socket_timeout_s,
            connect_timeout_s=base.connect_timeout_s,
            backoff_initial_s=base.backoff_initial_s,
            backoff_max_s=base.backoff_max_s,
            recent_horizon_s=base.recent_horizon_s,
            max_connections=base.max_connections,
            page_size=base.page_size,
        ),
    )


def redis_cache_factory(
    url: str, settings: RedisSettings | None = None
) -> Callable[..., SignatureCacheProtocol]:
    """A `NewCacheFactory` building the default layered cache over `RedisStore(url)`."""

    def factory(
        db_path: str, *, config: MigrationConfig, clock: Callable[[], float]
    ) -> SignatureCacheProtocol:
        from sigcache.config import L1Settings, L2Settings, LayeredConfig
        from sigcache.layered import LayeredSignatureCache

        layered = LayeredConfig(
            l1=L1Settings(
                max_entries=config.new_l1_max_size, ttl_seconds=config.new_l1_ttl_seconds
            ),
            l2=L2Settings(ttl_seconds=config.new_l2_ttl_seconds, max_rows=config.new_l2_max_size),
        )
        horizon = RedisSettings(recent_horizon_s=config.new_l2_ttl_seconds)
        store = RedisStore(url, settings or horizon)
        cache: SignatureCacheProtocol = LayeredSignatureCache(
            db_path, config=layered, clock=clock, store=store
        )
        return cache

    return factory
