"""Fixtures for users' own verification tests: a settable clock, fresh stacks, replays as frames.

Registered by :mod:`harness.plugin`. Each is cheap until used: the cache stack, pandas and the
replayer are imported inside the fixtures, so a suite that never asks for them pays nothing.
With `--sigcache-l2 redis://...` the stacks and replays put L2 in Redis, each cache under a fresh
key prefix, every key deleted at the end of the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    import pandas as pd

    from harness.run_state import PhaseStack

__all__ = [
    "L2_OPTION",
    "NEW_CACHE_OPTION",
    "ReplayFactory",
    "SettableClock",
    "StackFactory",
    "sigcache_clock",
    "sigcache_replay",
    "sigcache_stack",
]

NEW_CACHE_OPTION = "sigcache_new_cache"
L2_OPTION = "sigcache_l2"
_REDIS_L2: pytest.StashKey[Any] = pytest.StashKey()
START = 1_700_000_000.0  # the replayer's virtual epoch; only differences between times matter


class SettableClock:
    """A virtual clock for caches (`clock=`): it moves only when a test sets or advances it."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def set(self, now: float) -> None:
        """Jump to an absolute time (seconds since the epoch)."""
        self.now = now

    def advance(self, seconds: float) -> float:
        """Move forward by `seconds`; returns the new time."""
        self.now += seconds
        return self.now


class StackFactory(Protocol):
    """`sigcache_stack(phase)`: a fresh stack for a phase (name, 1-4 or MigrationPhase)."""

    def __call__(
        self, phase: object, *, new_cache_factory: Callable[..., Any] | None = None
    ) -> PhaseStack: ...


class ReplayFactory(Protocol):
    """`sigcache_replay(recording, phases=...)`: per-event results of a replay as a DataFrame."""

    def __call__(
        self,
        recording: str | Path,
        phases: Sequence[object] = ...,
        *,
        new_cache_factory: Callable[..., Any] | None = None,
    ) -> pd.DataFrame: ...


def _option_factory(config: pytest.Config) -> Callable[..., Any] | None:
    """The candidate named by --sigcache-new-cache, else a Redis L2 named by --sigcache-l2."""
    from harness.pipeline import load_factory

    spec = config.getoption(NEW_CACHE_OPTION, default=None)
    if spec:
        return load_factory(spec)
    return _redis_factory(config)


def _redis_factory(config: pytest.Config) -> Callable[..., Any] | None:
    """One Redis backend per session (checked once, every key purged at the session's end)."""
    from harness.l2 import RedisReplayL2, parse_l2

    url = parse_l2(config.getoption(L2_OPTION, default=None))
    if url is None:
        return None
    backend = config.stash.get(_REDIS_L2, None)
    if backend is None:
        backend = RedisReplayL2(url)
        backend.check()
        config.stash[_REDIS_L2] = backend
        config.add_cleanup(backend.finish)
    factory: Callable[..., Any] = backend.factory
    return factory


def _phase(phase: object) -> Any:
    from sigcache.gating import phase_name
    from sigcache.phases import MigrationPhase

    if isinstance(phase, str) and phase.strip().isdigit():
        phase = int(phase)
    return MigrationPhase[phase_name(phase)]


@pytest.fixture
def sigcache_clock() -> SettableClock:
    """A settable virtual clock; `sigcache_stack` stacks run on it."""
    return SettableClock()


@pytest.fixture
def sigcache_stack(
    sigcache_clock: SettableClock, tmp_path_factory: pytest.TempPathFactory, request: Any
) -> Iterator[StackFactory]:
    """Factory of fresh stacks: a facade in one phase on `sigcache_clock`, an empty L2."""
    from harness.run_state import build_stack

    default = _option_factory(request.config)
    with ExitStack() as exits:

        def make(phase: object, *, new_cache_factory: Callable[..., Any] | None = None) -> Any:
            workdir = tmp_path_factory.mktemp("sigcache-stack")
            factory = new_cache_factory or default
            return exits.enter_context(build_stack(_phase(phase), workdir, sigcache_clock, factory))

        yield make


@pytest.fixture
def sigcache_replay(tmp_path_factory: pytest.TempPathFactory, request: Any) -> ReplayFactory:
    """Factory replaying a recording (all phases by default) into a per-event DataFrame."""
    from harness.replayer import ReplayOptions, replay
    from harness.report import read_results

    default = _option_factory(request.config)

    def run(
        recording: str | Path,
        phases: Sequence[object] = (1, 2, 3, 4),
        *,
        new_cache_factory: Callable[..., Any] | None = None,
    ) -> Any:
        options = ReplayOptions(
            phases=tuple(dict.fromkeys(_phase(p) for p in phases)),
            new_cache_factory=new_cache_factory or default,
            results_path=tmp_path_factory.mktemp("sigcache-replay") / "results.parquet",
        )
        return read_results(replay(Path(recording), options).results_path)

    return run
