"""What the phase proxy precomputes per phase (routes), reports per call, and repairs with."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sigcache.interface import SignatureCacheProtocol
from sigcache.keys import normalize_thinking_text
from sigcache.migration_stats import CacheSide, Tally
from sigcache.phases import PhaseFlags
from sigcache.strategies import ReadPlan, WritePlan, read_plan, write_plan

__all__ = [
    "ABSENT",
    "LEGACY_HIT",
    "NO_DIAG",
    "REPAIRS",
    "SAMPLED_READS",
    "CallDiagnostics",
    "Route",
    "ShadowLog",
    "legacy_tally",
    "route_for",
]

log = logging.getLogger("sigcache.adapter")

Cache = SignatureCacheProtocol
# (cache that missed, cache that answered, read args, value, model legacy stored) -> written back.
# A repair never passes the reader's conversation or scope: the copy's provenance is unknown,
# so it must not become a conversation's "last" signature (issue 13).
Repair = Callable[[Cache, Cache, tuple[Any, ...], Any, str | None], bool]


@dataclass(frozen=True, slots=True)
class CallDiagnostics:
    """Where the last routed call on this thread was answered (for observers)."""

    source: str | None = None  # "legacy" | "new"
    tier: str | None = None  # "legacy" | "l1" | "l2"
    fallback: bool = False
    read_repair: bool = False
    shadow_error: bool = False


# A read's "other cache not consulted" marker, shared by the router and the sampler.
ABSENT: Final = object()
NO_DIAG = CallDiagnostics()
LEGACY_HIT = CallDiagnostics("legacy", "legacy")


@dataclass(frozen=True, slots=True)
class Route:
    """Everything a call needs to know about the flags in force, computed once per change."""

    read: ReadPlan
    write: WritePlan
    legacy_only: bool  # reads and writes reach the legacy cache alone
    both_read: bool  # both caches readable: live consistency sampling applies

    @property
    def each(self) -> tuple[CacheSide, ...]:
        """Every cache, the authoritative one first (for invalidate, clear, cleanup)."""
        return (*self.write.targets, *(s for s in CacheSide if s not in self.write.targets))


@functools.cache  # called on flag changes only; PhaseFlags is frozen
def route_for(flags: PhaseFlags) -> Route:
    """The route of a set of effective flags."""
    read, write = read_plan(flags), write_plan(flags)
    legacy_alone = (CacheSide.LEGACY,)
    legacy_only = write.targets == legacy_alone and read.primary is CacheSide.LEGACY
    return Route(read, write, legacy_only and read.fallback is None, read.fallback is not None)


class ShadowLog:
    """Logs the first failure of a burst and then every 100th, so a dead cache cannot flood logs."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._count = 0

    def failure(self, side: CacheSide, op: str, detail: str) -> None:
        """Note one failure of a cache (logged with `[LEGACY_ADAPTER]` now and then)."""
        self._count += 1  # racy by design: only decides whether to log, counts live in stats
        if self.enabled and (self._count == 1 or self._count % 100 == 0):
            log.warning(
                "[LEGACY_ADAPTER] %s cache failed in %s (%s); failures so far: %d",
                side.value,
                op,
                detail,
                self._count,
            )


def _repair_main(
    missed: Cache, _src: Cache, args: tuple[Any, ...], sig: str, model: str | None
) -> bool:
    # The normalised text, not the reader's: a `<think>`-wrapped read must not make the repaired
    # cache's last/recent `_with_text` answers return the wrapper the writer never sent.
    text = normalize_thinking_text(args[0]) if isinstance(args[0], str) else args[0]
    return missed.set(text, sig, model, args[1])


def _repair_tool(
    missed: Cache, _src: Cache, args: tuple[Any, ...], sig: str, _model: str | None
) -> bool:
    return missed.cache_tool_signature(args[0], sig, args[1])


def _repair_session(
    missed: Cache, src: Cache, args: tuple[Any, ...], sig: str, _model: str | None
) -> bool:
    found = src.get_session_signature_with_text(args[0], args[1])
    text = found[1] if found and found[0] == sig else ""
    return missed.cache_session_signature(args[0], sig, text, args[1])


def _repair_session_text(
    missed: Cache, _src: Cache, args: tuple[Any, ...], value: tuple[str, str], _model: str | None
) -> bool:
    return missed.cache_session_signature(args[0], value[0], value[1], args[1])


# Reads keyed by (key, owner_id) whose fallback hit can be written back; the rest have no key.
REPAIRS: dict[str, Repair] = {
    "get": _repair_main,
    "get_tool_signature": _repair_tool,
    "get_session_signature": _repair_session,
    "get_session_signature_with_text": _repair_session_text,
}
# The same keyed reads are the ones live consistency sampling compares.
SAMPLED_READS = frozenset(REPAIRS)


def legacy_tally(legacy: object) -> Callable[[], Tally] | None:
    """(hits, misses, writes) of a legacy `SignatureCache`'s main store; None for other caches."""
    from sigcache.legacy import SignatureCache  # the only cache whose counters we know exactly

    if type(legacy) is not SignatureCache:
        return None

    def tally() -> Tally:
        stats = legacy.get_stats()
        return int(stats["hits"]), int(stats["misses"]), int(stats["writes"])  # type: ignore[call-overload]

    return tally
