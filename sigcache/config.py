"""Settings of the layered cache (frozen data, units in the comments) and its default path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from sigcache.errors import ConfigError

__all__ = [
    "APP_NAME",
    "DB_FILENAME",
    "SYNCHRONOUS_MODES",
    "L1Settings",
    "L2Settings",
    "LayeredConfig",
    "default_db_path",
]

APP_NAME = "sigcache"
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL")
DB_FILENAME = "signatures.db"


@dataclass(frozen=True, slots=True)
class L1Settings:
    """The in-memory tier (cachetools LRU with per-entry expiry, under one lock)."""

    max_entries: int = 10_000  # entries per store (main, tool, session); LRU beyond, as legacy
    ttl_seconds: float = 3_600.0  # seconds from write or promotion; must be <= the L2 TTL


@dataclass(frozen=True, slots=True)
class L2Settings:
    """The SQLite tier and its background writer."""

    ttl_seconds: float = 604_800.0  # seconds from write (7 days): what survives a restart
    max_rows: int = 1_000_000  # rows over all stores; cleanup_expired() trims the oldest-written
    busy_timeout_ms: int = 5_000  # how long a connection waits on a lock before failing
    cache_size_kib: int = 8_192  # page cache per connection (the origin used 64 MB each)
    mmap_size_bytes: int = 0  # memory-mapped I/O per connection; 0 = off (see schema.py)
    batch_size: int = 256  # queued writes committed per transaction (size bound)
    batch_interval_ms: float = 50.0  # longest a queued write waits for its batch (time bound)
    max_pending: int = 10_000  # queue bound; beyond it a write is dropped and counted
    create_directory: bool = True  # create a missing parent directory of the database file
    flush_on_exit: bool = True  # flush queued writes at interpreter exit (atexit, via weakref)
    close_timeout_s: float = 10.0  # longest close() waits for queued writes to commit
    # SQLite `synchronous` of the writer connection. NORMAL (with WAL: durable at checkpoint,
    # never corrupt) is the only setting for a real cache; OFF skips the syncs and is for
    # throwaway stores alone (a replay's, deleted afterwards), where a crash may cost commits.
    synchronous: str = "NORMAL"


@dataclass(frozen=True, slots=True)
class LayeredConfig:
    """Settings of a `LayeredSignatureCache`; validated on construction (ConfigError)."""

    l1: L1Settings = field(default_factory=L1Settings)
    l2: L2Settings = field(default_factory=L2Settings)
    # Refuse (and count, `rejected_truncated`) signatures that are not base64 after normalising
    # base64url and padding: a value cut short by an aborted stream (issue 13).
    reject_truncated: bool = True
    # Refuse (and count, `rejected_prefix`) a write whose signature is a strict prefix of the
    # value held for the key: an aborted stream re-sent must not replace the whole value (issue
    # 13). Legacy keeps the last write; the replay reports that as `legacy_truncated`.
    reject_prefix_overwrite: bool = True
    # Last/recent look-ups answer only from the caller's conversation, and nothing when the
    # caller names none (issue 13: never a stranger's signature). False: with no conversation
    # given they answer from any conversation of the caller's owner (the owner-strict look-up
    # before issue 13), for deployments that keep one conversation per owner.
    strict_conversation_fallbacks: bool = True

    def __post_init__(self) -> None:
        _positive("l1.max_entries", self.l1.max_entries)
        _positive("l1.ttl_seconds", self.l1.ttl_seconds)
        _positive("l2.ttl_seconds", self.l2.ttl_seconds)
        _positive("l2.max_rows", self.l2.max_rows)
        _positive("l2.batch_size", self.l2.batch_size)
        _positive("l2.max_pending", self.l2.max_pending)
        _positive("l2.close_timeout_s", self.l2.close_timeout_s)
        if self.l2.busy_timeout_ms < 0 or self.l2.batch_interval_ms < 0:
            raise ConfigError("l2.busy_timeout_ms and l2.batch_interval_ms must be >= 0")
        if self.l2.cache_size_kib < 0:
            raise ConfigError(f"l2.cache_size_kib must be >= 0, got {self.l2.cache_size_kib!r}")
        if self.l2.synchronous not in SYNCHRONOUS_MODES:
            raise ConfigError(
                f"l2.synchronous must be one of {SYNCHRONOUS_MODES}, got {self.l2.synchronous!r}"
            )
        if self.l2.mmap_size_bytes < 0:
            raise ConfigError(f"l2.mmap_size_bytes must be >= 0, got {self.l2.mmap_size_bytes!r}")
        # An L1 entry outliving its L2 row would answer what a restart could not (DESIGN 3).
        if self.l1.ttl_seconds > self.l2.ttl_seconds:
            raise ConfigError(
                f"l1.ttl_seconds ({self.l1.ttl_seconds}) must be <= "
                f"l2.ttl_seconds ({self.l2.ttl_seconds})"
            )


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


def default_db_path() -> Path:
    """The default L2 file: in the per-user data directory, never the package or the cwd."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False) / DB_FILENAME
