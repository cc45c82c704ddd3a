"""Fork safety without a per-call check: objects re-initialise their locks in the child.

2026-11: the tiers used to compare `os.getpid()` on every call (a system call, ~0.2 µs, on
each L1 and L2 access) and still missed the L1 lock, which another thread may hold at the
moment of fork and which would then stay locked forever in the child. `os.register_at_fork`
runs once per fork instead, in the child, before any other code, so every registered object
resets its locks, queues and connections there.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol

__all__ = ["ForkAware", "register"]


class ForkAware(Protocol):
    """An object that re-initialises its process-local state in a forked child."""

    def after_fork_in_child(self) -> None:
        """Drop what belongs to the parent (locks, threads, connections); runs in the child."""
        ...


_objects: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_lock = threading.Lock()


def register(obj: ForkAware) -> None:
    """Call `obj.after_fork_in_child()` in the child of every later fork, while `obj` lives."""
    with _lock:
        _objects.add(obj)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # the parent's may have been held mid-register
    for obj in list(_objects):
        obj.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
