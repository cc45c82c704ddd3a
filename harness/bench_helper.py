"""pytest-benchmark helpers: time L1 and L2 reads of the new cache on your recording's texts.

Usage in a project's own benchmark module (pytest-benchmark's ``benchmark`` fixture)::

    from harness.bench_helper import bench_l1, bench_l2

    def test_l1_on_prod(benchmark, tmp_path):
        bench_l1(benchmark, "recordings/prod.jsonl.gz", tmp_path)

Each helper fills a fresh ``LayeredSignatureCache`` with the recording's written (text, signature,
owner) entries, then times reads cycling through them: every read of :func:`bench_l1` is answered
by L1, every read of :func:`bench_l2` by L2 (an L1 of one entry cycled past). Redacted recordings
keep text lengths and shared prefixes, so timings stay representative.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sigcache.config import L1Settings, LayeredConfig
from sigcache.keys import is_valid_signature, normalize_thinking_text
from sigcache.layered import LayeredSignatureCache
from sigcache.recording import read_recording

__all__ = ["BenchEntry", "Benchmark", "bench_l1", "bench_l2", "filled_cache", "recording_entries"]

GROUP = "sigcache: reads on recording texts"
L2_ONLY = LayeredConfig(l1=L1Settings(max_entries=1))  # cycling >= 2 texts misses L1 every time


class Benchmark(Protocol):
    """What the helpers use of pytest-benchmark's `benchmark` fixture."""

    group: str | None
    extra_info: dict[str, Any]

    def __call__(self, function_: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class BenchEntry:
    """One entry written by the recording: what a read asks for and must get back."""

    text: str
    signature: str
    owner_id: str | None


def recording_entries(recording: str | Path, limit: int = 1_000) -> list[BenchEntry]:
    """The first `limit` distinct valid main-store writes of a recording (last signature wins)."""
    entries: dict[tuple[str, str | None], BenchEntry] = {}
    _, events = read_recording(recording)
    with events:
        for event in events:
            args = event.args
            text, signature = args.get("thinking_text"), args.get("signature")
            owner = args.get("owner_id")
            if event.op != "cache_signature" or not isinstance(text, str):
                continue
            if not normalize_thinking_text(text) or not is_valid_signature(signature):
                continue
            if not (owner is None or isinstance(owner, str)):
                continue
            key = (normalize_thinking_text(text), owner)
            if key in entries or len(entries) < limit:
                entries[key] = BenchEntry(text, str(signature), owner)
    return list(entries.values())


@contextmanager
def filled_cache(
    entries: Sequence[BenchEntry], directory: str | Path, config: LayeredConfig | None = None
) -> Iterator[LayeredSignatureCache]:
    """A fresh layered cache under `directory` holding `entries`, every L2 write committed."""
    cache = LayeredSignatureCache(Path(directory) / "bench.db", config=config)
    try:
        for entry in entries:
            cache.set(entry.text, entry.signature, None, entry.owner_id)
        cache.flush()
        yield cache
    finally:
        cache.close()


def _reader(cache: LayeredSignatureCache, entries: Sequence[BenchEntry]) -> Callable[[], Any]:
    cycle = itertools.cycle([(e.text, e.owner_id) for e in entries])

    def read() -> Any:
        text, owner = next(cycle)
        return cache.get(text, owner)

    return read


def _bench(
    benchmark: Benchmark,
    recording: str | Path,
    directory: str | Path,
    tier: str,
    limit: int,
) -> None:
    entries = recording_entries(recording, limit)
    if len(entries) < 2:
        raise ValueError(f"{recording}: needs >= 2 distinct cache_signature writes to time reads")
    config = L2_ONLY if tier == "l2" else LayeredConfig(l1=L1Settings(max_entries=len(entries)))
    with filled_cache(entries, directory, config) as cache:
        read = _reader(cache, entries)
        for _ in entries:  # warm: L1 holds every entry (l1) or has been cycled past (l2)
            read()
        benchmark.group = GROUP
        benchmark.extra_info.update(
            label=f"LayeredSignatureCache.get, {tier.upper()} hit",
            tier=tier,
            texts=len(entries),
            mean_text_chars=sum(len(e.text) for e in entries) / len(entries),
            recording=str(recording),
        )
        benchmark(read)
        if cache.read_tier() != tier:  # a timing of the wrong tier would mislead, so say so
            raise AssertionError(f"expected reads answered by {tier}, got {cache.read_tier()}")


def bench_l1(
    benchmark: Benchmark, recording: str | Path, directory: str | Path, limit: int = 1_000
) -> None:
    """Time L1 hits on the recording's texts (every entry fits in L1)."""
    _bench(benchmark, recording, directory, "l1", limit)


def bench_l2(
    benchmark: Benchmark, recording: str | Path, directory: str | Path, limit: int = 1_000
) -> None:
    """Time L2 hits on the recording's texts (an L1 of one entry, cycled past)."""
    _bench(benchmark, recording, directory, "l2", limit)
