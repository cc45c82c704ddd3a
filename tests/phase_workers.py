"""Worker processes for the shared-state tests and benchmark: one real CacheFacade each.

Each worker builds a facade, attaches `PhaseSync` to the shared backend and reports its
(effective phase, mode, applied version) whenever it changes; commands arrive on its queue.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigcache.facade import CacheFacade
from sigcache.migration_config import MigrationConfig
from sigcache.phase_state import PhaseStateBackend, RedisPhaseState, SQLitePhaseState
from sigcache.phase_sync import attach_phase_sync
from sigcache.redis_store import RedisSettings
from sigcache.redis_wiring import redis_cache_factory

__all__ = ["WorkerPool"]


def _backend(kind: str, target: str, db_path: str, prefix: str) -> PhaseStateBackend:
    if kind == "redis":
        return RedisPhaseState(target, prefix=prefix)
    return SQLitePhaseState(db_path)


def _command(facade: CacheFacade, command: tuple[Any, ...]) -> Any:
    name = command[0]
    if name == "promote":
        facade.enable_migration_mode(actor="worker")
        facade.set_migration_phase(command[1], actor="worker", force=True)
    elif name == "disable":
        facade.disable_migration_mode(actor="worker")
    elif name == "write":
        facade.cache_signature(command[1], command[2])
        new = facade.new_cache()
        return bool(new is not None and new.flush(5))  # type: ignore[attr-defined]
    elif name == "read":
        return facade.get_cached_signature(command[1])
    return None


def worker_main(
    index: int,
    kind: str,
    target: str,
    workdir: str,
    interval: float,
    commands: Any,
    results: Any,
    prefix: str = "phase-test",
) -> None:
    """A worker process: serve commands, report state changes (run by multiprocessing)."""
    # SQLite: one shared file. Redis: a file per worker (as on separate hosts), L2 in Redis.
    db_path = str(Path(workdir) / ("shared.db" if kind == "sqlite" else f"w{index}.db"))
    l2 = RedisSettings(prefix=f"{prefix}-l2")
    factory = redis_cache_factory(target, l2) if kind == "redis" else None
    facade = CacheFacade(MigrationConfig(new_l2_db_path=db_path), new_cache_factory=factory)
    sync = attach_phase_sync(facade, _backend(kind, target, db_path, prefix), interval)
    last: tuple[Any, ...] | None = None
    results.put(("ready", index, None, time.time()))
    while True:
        try:
            command = commands.get(timeout=0.002)
        except queue.Empty:
            command = None
        if command == ("stop",):
            break
        if command is not None:
            answer = _command(facade, command)
            results.put(("done", index, answer, time.time()))
        state = (facade.effective_phase.name, facade.is_migration_mode_enabled(), sync.version)
        if state != last:
            results.put(("state", index, state, time.time()))
            last = state
    sync.stop()
    facade.close()


@dataclass
class WorkerPool:
    """Four (or `size`) spawned workers sharing one backend."""

    kind: str  # "sqlite" | "redis"
    target: str  # the Redis URL (redis) or "" (sqlite)
    workdir: Path
    interval: float = 0.1
    size: int = 4
    prefix: str = "phase-test"  # Redis keys: phase state under it, L2 entries under "<it>-l2"
    states: dict[int, tuple[Any, ...]] = field(default_factory=dict)

    def __enter__(self) -> WorkerPool:
        ctx = multiprocessing.get_context("spawn")
        self.results: Any = ctx.Queue()
        self.commands: list[Any] = [ctx.Queue() for _ in range(self.size)]
        args = (self.kind, self.target, str(self.workdir), self.interval)
        self.processes = [
            ctx.Process(
                target=worker_main,
                args=(i, *args, self.commands[i], self.results, self.prefix),
            )
            for i in range(self.size)
        ]
        for process in self.processes:
            process.start()
        ready = 0
        while ready < self.size:
            ready += self.next(30.0)[0] == "ready"
        return self

    def next(self, timeout: float = 10.0) -> tuple[Any, ...]:
        """The next report: (what, worker, value, time)."""
        report: tuple[Any, ...] = self.results.get(timeout=timeout)
        if report[0] == "state":
            self.states[report[1]] = report[2]
        return report

    def call(self, worker: int, *command: Any) -> tuple[Any, float]:
        """Run a command in one worker: (its answer, the time it finished)."""
        self.commands[worker].put(command)
        while True:
            what, index, value, at = self.next()
            if what == "done" and index == worker:
                return value, at

    def wait_all(self, predicate: Any, timeout: float = 10.0) -> dict[int, float]:
        """Wait until every worker's state satisfies `predicate`: when each first did."""
        seen: dict[int, float] = {}
        deadline = time.monotonic() + timeout
        for index, state in self.states.items():
            if predicate(state):
                seen[index] = 0.0  # already true: satisfied before this wait
        while len(seen) < self.size:
            what, index, value, at = self.next(max(deadline - time.monotonic(), 0.01))
            if what == "state" and predicate(value):
                seen.setdefault(index, at)
        return seen

    def __exit__(self, *exc: object) -> None:
        for commands in self.commands:
            commands.put(("stop",))
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
        self.results.close()
        for commands in self.commands:
            commands.close()
