"""Operation events published by the phase proxy, and the observer list that fans them out."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Observer", "ObserverList", "OperationEvent"]

log = logging.getLogger("sigcache.observers")


@dataclass(frozen=True, slots=True)
class OperationEvent:
    """One completed cache call as a caller saw it, plus where inside the stack it was answered."""

    op: str
    args: dict[str, Any]
    result: Any
    phase: str
    t: float  # the facade clock when the call started (absolute seconds)
    latency_us: float
    source: str | None = None  # "legacy" | "new" | None: which cache gave the caller its answer
    tier: str | None = None  # "l1" | "l2" | "legacy" | None
    fallback: bool = False  # answered by the fallback cache after a primary miss
    read_repair: bool = False  # the fallback hit was written back into the cache that missed
    shadow_error: bool = False  # the non-authoritative side failed (never seen by the caller)
    extra: dict[str, Any] = field(default_factory=dict)


Observer = Callable[[OperationEvent], None]


class ObserverList:
    """Observers called after each operation; an observer's failure is logged and swallowed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._observers: tuple[Observer, ...] = ()

    def add(self, observer: Observer) -> None:
        """Register an observer (idempotent)."""
        with self._lock:
            if observer not in self._observers:
                self._observers = (*self._observers, observer)

    def remove(self, observer: Observer) -> None:
        """Unregister an observer; unknown ones are ignored."""
        with self._lock:
            self._observers = tuple(o for o in self._observers if o != observer)

    def clear(self) -> None:
        """Drop every observer."""
        with self._lock:
            self._observers = ()

    def __bool__(self) -> bool:
        return bool(self._observers)

    def publish(self, event: OperationEvent) -> None:
        """Hand the event to every observer; never raises."""
        for observer in self._observers:  # a tuple snapshot: add/remove never race the loop
            try:
                observer(event)
            except Exception:  # an observer must never break a cache call
                log.warning("observer %r failed on %s", observer, event.op, exc_info=True)
