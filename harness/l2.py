"""The replay's L2: the embedded SQLite default, or a Redis server (`--l2 redis://...`).

With Redis, every new cache the replay builds (one per phase stack, through the facade's
new-cache factory) gets a fresh key prefix, `sigcache-replay:<run>:<n>-<phase>`, so phases and
concurrent runs never see each other's entries; when the replay ends, every key under the run's
prefixes is deleted (SCAN + UNLINK), whether the replay succeeded or not. A run killed before
that leaves keys behind under `sigcache-replay:*`; their values carry Redis TTLs, the index sets
do not (delete them by that pattern).
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from redis.exceptions import RedisError

from sigcache.errors import ConfigError
from sigcache.migration_config import MigrationConfig
from sigcache.redis_store import RedisSettings, redacted_url
from sigcache.redis_wiring import redis_cache_factory

__all__ = [
    "REDIS_SCHEMES",
    "REPLAY_PREFIX",
    "RedisReplayL2",
    "parse_l2",
    "purge_prefix",
    "replay_l2",
]

log = logging.getLogger("harness.l2")

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
REPLAY_PREFIX = "sigcache-replay"
SQLITE = "sqlite"
# Generous timeouts: a replay wants every read answered (a timed-out read would degrade to a
# miss and show up as a regression that is not one), not the 100 ms a live proxy wants.
_TIMEOUT_S = 5.0
_PHASE_PART = re.compile(r"[^A-Za-z0-9_.-]")


def _shown(url: str) -> str:
    """A URL for messages: never its user name or password, even when it does not parse."""
    try:
        return redacted_url(url)
    except ValueError:
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}{rest.rsplit('@', 1)[-1]}"


def parse_l2(value: str | None) -> str | None:
    """The Redis URL of an `--l2` value, None for the SQLite default; ConfigError if neither."""
    text = (value or "").strip()
    if not text or text.lower() == SQLITE:
        return None
    if not text.startswith(REDIS_SCHEMES):
        raise ConfigError(
            f"--l2 {_shown(text)!r}: expected 'sqlite' or a redis://, rediss:// or unix:// URL"
        )
    try:
        redis.connection.parse_url(text)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ConfigError(f"--l2 {_shown(text)!r}: {exc}") from None
    return text


def purge_prefix(client: redis.Redis, prefix: str, batch: int = 1000) -> int:
    """Delete every key under `{prefix}:` (SCAN + UNLINK in batches); how many were deleted."""
    removed = 0
    names: list[bytes] = []
    # The prefix holds no glob character (KeyLayout allows [A-Za-z0-9_.:-] only).
    for name in client.scan_iter(match=f"{prefix}:*", count=batch):
        names.append(name)
        if len(names) >= batch:
            removed += int(client.unlink(*names))
            names.clear()
    if names:
        removed += int(client.unlink(*names))
    return removed


class RedisReplayL2:
    """A new-cache factory over one Redis server: a fresh prefix per cache built, purged later."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = _shown(url)
        self.run_prefix = f"{REPLAY_PREFIX}:{secrets.token_hex(6)}"
        self.prefixes: list[str] = []
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        try:
            self._client = redis.Redis.from_url(
                url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S
            )
        except ValueError as exc:
            raise ConfigError(f"--l2 {self.where!r}: {exc}") from None

    def check(self) -> None:
        """Fail early with a clear message (ConfigError) when the server does not answer."""
        try:
            self._client.ping()
        except RedisError as exc:
            detail = str(exc).split("\n")[0] or type(exc).__name__
            raise ConfigError(f"--l2 {self.where!r}: Redis is unreachable ({detail})") from None

    def _prefix(self, db_path: str) -> str:
        # The facade's L2 path names the phase (`<phase>.db`): keep it readable in the prefix.
        phase = _PHASE_PART.sub("-", Path(db_path).stem) or "cache"
        with self._lock:
            prefix = f"{self.run_prefix}:{next(self._numbers)}-{phase}"
            self.prefixes.append(prefix)
        return prefix

    def factory(self, db_path: str, *, config: MigrationConfig, clock: Callable[[], float]) -> Any:
        """A `NewCacheFactory`: the default layered cache over Redis, under a fresh prefix."""
        settings = RedisSettings(
            prefix=self._prefix(db_path),
            socket_timeout_s=_TIMEOUT_S,
            connect_timeout_s=_TIMEOUT_S,
            recent_horizon_s=config.new_l2_ttl_seconds,
        )
        return redis_cache_factory(self.url, settings)(db_path, config=config, clock=clock)

    def purge(self) -> int:
        """Delete every key this run wrote (all its prefixes); failures are logged, not raised."""
        try:
            return purge_prefix(self._client, self.run_prefix)
        except RedisError as exc:
            log.warning(
                "replay L2 %s: could not delete keys under %s:* (%s)",
                self.where,
                self.run_prefix,
                type(exc).__name__,
            )
            return 0

    def close(self) -> None:
        """Release the connections of the purge client."""
        self._client.close()

    def finish(self) -> None:
        """Purge every key of the run, then close."""
        self.purge()
        self.close()


@contextmanager
def replay_l2(
    l2: str | None, new_cache_factory: Callable[..., Any] | None = None
) -> Iterator[Callable[..., Any] | None]:
    """The new-cache factory a replay should use for `--l2` (None: the SQLite default).

    With Redis: checked reachable first, a fresh prefix per cache, every key purged at exit.
    A candidate factory (`--new-cache`) builds its own L2, so it cannot be combined with Redis.
    """
    url = parse_l2(l2)
    if url is None:
        yield new_cache_factory
        return
    if new_cache_factory is not None:
        raise ConfigError("--l2 redis:// and --new-cache cannot be combined")
    backend = RedisReplayL2(url)
    try:
        backend.check()
    except ConfigError:
        backend.close()
        raise
    try:
        yield backend.factory
    finally:
        backend.finish()
