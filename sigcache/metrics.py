"""Prometheus metrics for operators: counters, queue depth, phase and state version per process.

A `MetricsPublisher` reads the facade's `get_cache_stats()` / `get_migration_status()` (numbers
only) off the request path, every `interval` seconds and on each scrape, and moves prometheus
metrics by the difference: counters by their increase, gauges to their value. A counter found
below its last reading was reset (`reset_cache_stats()`) and counts from zero; a reset that
climbs back past the last reading within one interval under-counts by that reading.
Under `PROMETHEUS_MULTIPROC_DIR` (set before prometheus_client is imported, as its docs
require) every worker writes its own files and `/metrics` aggregates them all
(`MultiProcessCollector`): counters and queue depth summed, phase, mode and state version one
series per live process (`pid` label). Without it, the publisher's own registry is served.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from sigcache.migration_stats import FALLBACK_REFUSALS
from sigcache.provenance import PROVENANCE_REASONS, REJECTION_REASONS

__all__ = ["MetricsPublisher", "metrics_router", "multiprocess_enabled"]

log = logging.getLogger("sigcache.metrics")

FacadeProvider = Callable[[], Any]
SyncProvider = Callable[[], Any]
_STORES = (("main", "cache"), ("tool", "tool_cache"), ("session", "session_cache"))
_TIERS = ("l1", "pending", "l2")
_Mode = Literal["livesum", "liveall"]


def multiprocess_enabled() -> bool:
    """Whether prometheus_client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class _Metrics:
    """The metric objects of one publisher, in one registry (no module-level singletons)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def gauge(name: str, doc: str, mode: _Mode, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=registry, multiprocess_mode=mode)

        self.hits = counter("sigcache_hits", "Look-ups answered", ("cache", "store"))
        self.misses = counter("sigcache_misses", "Look-ups not answered", ("cache", "store"))
        self.tier_hits = counter("sigcache_tier_hits", "New-cache hits by tier", ("tier",))
        self.tier_misses = counter("sigcache_tier_misses", "New-cache misses by tier", ("tier",))
        self.fallbacks = counter("sigcache_fallback_hits", "Reads answered by the fallback cache")
        self.read_repairs = counter("sigcache_read_repairs", "Fallback hits written back")
        self.rejected = counter("sigcache_rejected_writes", "Writes refused (invalid input)")
        # Issue 13: what the new cache refused, and the fallbacks the phase proxy withheld.
        self.rejected_by_reason = counter(
            "sigcache_rejected_writes_by_reason", "Writes a cache refused", ("cache", "reason")
        )
        self.provenance_misses = counter(
            "sigcache_provenance_misses", "Reads refused for provenance", ("cache", "reason")
        )
        self.fallback_refusals = counter(
            "sigcache_fallback_provenance_refusals",
            "Fallback answers withheld for provenance (cache: whose provenance decided)",
            ("cache", "reason"),
        )
        # Every reason is known up front: its series exists at 0, so an alert can tell "none
        # refused" from "not exported".
        for reason in REJECTION_REASONS:
            self.rejected_by_reason.labels("new", reason)
        for reason in PROVENANCE_REASONS:
            self.provenance_misses.labels("new", reason)
        for refusal in FALLBACK_REFUSALS:
            self.fallback_refusals.labels(*refusal.split("_", 1))
        self.dropped = counter("sigcache_dropped_writes", "L2 writes dropped (queue full)")
        self.l2_errors = counter("sigcache_l2_errors", "L2 failures seen", ("kind",))
        self.new_failures = counter("sigcache_new_write_failures", "New-cache write failures")
        self.queue = gauge("sigcache_l2_queue_depth", "Queued L2 writes", "livesum")
        self.l1_entries = gauge("sigcache_l1_entries", "Entries in L1", "livesum")
        self.phase = gauge("sigcache_phase", "Effective phase (1-4)", "liveall")
        self.mode = gauge("sigcache_migration_mode_enabled", "Migration mode (0/1)", "liveall")
        self.version = gauge("sigcache_phase_state_version", "Shared state version", "liveall")


class MetricsPublisher:
    """Moves prometheus metrics from a facade's stats; `collect_once()` or a daemon thread."""

    def __init__(
        self,
        facade_provider: FacadeProvider,
        *,
        sync_provider: SyncProvider | None = None,
        registry: CollectorRegistry | None = None,
        interval: float = 1.0,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self._metrics = _Metrics(self.registry)
        self._facade, self._sync = facade_provider, sync_provider
        self.interval = interval
        self._last: dict[tuple[str, tuple[str, ...]], float] = {}
        self._lock = threading.Lock()  # one collection at a time (thread and scrape)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _inc(self, counter: Counter, value: object, *labels: str) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return
        key = (counter._name, labels)
        last = self._last.get(key, 0.0)
        delta = value - last if value >= last else value  # below the last: stats were reset
        self._last[key] = float(value)
        if delta > 0:
            (counter.labels(*labels) if labels else counter).inc(delta)

    def collect_once(self) -> None:
        """Read the stats once and move the metrics; never raises."""
        with self._lock:
            try:
                facade = self._facade()
                self._collect(facade.get_cache_stats(), facade.get_migration_status())
            except Exception as exc:  # metrics never break the cache or the scrape
                log.warning("metrics collection failed: %s", type(exc).__name__)

    def _collect(self, stats: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        m = self._metrics
        layer = stats.get("layer_stats", {})
        for store, legacy_name in _STORES:
            self._inc(m.hits, layer.get(f"{legacy_name}_hits"), "legacy", store)
            self._inc(m.misses, layer.get(f"{legacy_name}_misses"), "legacy", store)
        new = stats.get("new_cache_stats") or {}
        for store, _ in _STORES:
            self._inc(m.hits, new.get(f"{store}_hits"), "new", store)
            self._inc(m.misses, new.get(f"{store}_misses"), "new", store)
        for tier in _TIERS:
            self._inc(m.tier_hits, new.get(f"{tier}_hits"), tier)
            self._inc(m.tier_misses, new.get(f"{tier}_misses"), tier)
        reads, writes = status.get("read_stats", {}), status.get("dual_write_stats", {})
        self._inc(m.fallbacks, reads.get("fallback_hits"))
        self._inc(m.read_repairs, reads.get("read_repairs"))
        self._inc(m.rejected, writes.get("rejected"))
        for reason in REJECTION_REASONS:
            self._inc(m.rejected_by_reason, new.get(f"rejected_{reason}"), "new", reason)
        for reason in PROVENANCE_REASONS:
            self._inc(m.provenance_misses, new.get(f"provenance_misses_{reason}"), "new", reason)
        for refusal in FALLBACK_REFUSALS:  # "<cache>_<reason>"
            cache, reason = refusal.split("_", 1)
            found = reads.get(f"fallback_refused_{refusal}")
            self._inc(m.fallback_refusals, found, cache, reason)
        self._inc(m.new_failures, writes.get("new_failures"))
        self._inc(m.dropped, new.get("dropped_writes"))
        self._inc(m.l2_errors, new.get("l2_errors"), "read")
        self._inc(m.l2_errors, new.get("write_errors"), "write")
        m.queue.set(float(new.get("l2_queue_depth", 0)))
        m.l1_entries.set(float(new.get("l1_size", 0)))
        m.phase.set(
            float(status.get("phase_value", 0)) if status.get("migration_mode_enabled") else 1.0
        )
        m.mode.set(1.0 if status.get("migration_mode_enabled") else 0.0)
        sync = self._sync() if self._sync is not None else None
        if sync is not None:
            m.version.set(float(sync.version))

    def start(self) -> MetricsPublisher:
        """Collect every `interval` seconds in a daemon thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sigcache-metrics", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.collect_once()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the thread (idempotent)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def exposition(self) -> bytes:
        """The text format of every process's metrics (multiprocess) or of this registry."""
        self.collect_once()
        if multiprocess_enabled():
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))


def metrics_router(publisher: MetricsPublisher, path: str = "/metrics") -> APIRouter:
    """A router serving `GET {path}` in the Prometheus text format."""
    router = APIRouter()

    @router.get(path, include_in_schema=False)
    def metrics() -> Response:
        return Response(publisher.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
