"""Shared helpers of the reliability suite: data, facades per phase, a loopback server, figures."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections import Counter
from pathlib import Path

from sigcache.config import L1Settings, L2Settings, LayeredConfig
from sigcache.facade import CacheFacade
from sigcache.interface import SignatureCacheProtocol
from sigcache.layered import LayeredSignatureCache
from sigcache.migration_config import MigrationConfig
from tests.servers import serve  # noqa: F401 (re-exported for the suite)

PHASES = ("LEGACY_ONLY", "DUAL_WRITE", "NEW_PREFERRED", "NEW_ONLY")
SOAK = os.environ.get("SIGCACHE_SOAK", "").strip().lower() in ("1", "true", "yes", "on")
BUSY_TIMEOUT_MS = 250  # short, so a lock held "longer than the busy timeout" costs little time


def sig(tag: str) -> str:
    """A valid, distinct signature (base64, 88 characters) for a tag."""
    digest = hashlib.sha256(tag.encode("utf-8", "surrogatepass")).digest()
    return base64.b64encode(digest * 2).decode("ascii")


def text(tag: str, size: int = 300) -> str:
    """A thinking text of about `size` characters, distinct per tag."""
    unit = f"Reasoning about {tag}: weigh the options, then decide. "
    return (unit * (size // len(unit) + 1))[:size]


class Figures:
    """Counters the suite reports in reports/reliability.md (one process, one session)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.notes: list[str] = []

    def add(self, name: str, amount: int = 1) -> None:
        """Add to one figure."""
        with self._lock:
            self.counts[name] += amount

    def note(self, line: str) -> None:
        """Keep one line for the report."""
        with self._lock:
            self.notes.append(line)


FIGURES = Figures()


def layered_factory(
    db_path: str, *, config: MigrationConfig, clock: object
) -> SignatureCacheProtocol:
    """The default layered cache, but with a short busy timeout and batch interval."""
    layered = LayeredConfig(
        l1=L1Settings(max_entries=config.new_l1_max_size, ttl_seconds=config.new_l1_ttl_seconds),
        l2=L2Settings(
            ttl_seconds=config.new_l2_ttl_seconds,
            max_rows=config.new_l2_max_size,
            busy_timeout_ms=BUSY_TIMEOUT_MS,
            batch_interval_ms=5.0,
            close_timeout_s=5.0,
        ),
    )
    cache: SignatureCacheProtocol = LayeredSignatureCache(
        db_path,
        config=layered,
        clock=clock,  # type: ignore[arg-type]
    )
    return cache


def make_facade(db_path: Path, phase: str, *, l1_size: int = 10_000) -> CacheFacade:
    """A facade on `db_path`, migration mode on, promoted step by step to `phase` (no gate)."""
    config = MigrationConfig(new_l2_db_path=str(db_path), new_l1_max_size=l1_size)
    facade = CacheFacade(config, new_cache_factory=layered_factory)
    facade.enable_migration_mode(actor="reliability")
    for step in PHASES[1 : PHASES.index(phase) + 1]:
        facade.set_migration_phase(step, actor="reliability")
    assert facade.effective_phase.name == phase
    return facade


def layered(facade: CacheFacade) -> LayeredSignatureCache | None:
    """The facade's new cache if it was built."""
    cache = facade.new_cache(build=False)
    assert cache is None or isinstance(cache, LayeredSignatureCache)
    return cache
