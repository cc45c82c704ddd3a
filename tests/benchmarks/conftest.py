"""Shared data and helpers of the benchmark suite: realistic texts and signatures, labelled benches.

Every benchmark names its group, a human label and whether it is the group's baseline; targets
(ratio goals of the issues) travel in `extra_info`, so `harness.bench_report` reads everything
it needs from the pytest-benchmark JSON alone.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from sigcache import schema
from sigcache.config import L2Settings
from sigcache.keys import is_valid_signature, normalize_thinking_text, text_digest
from sigcache.storage import MAIN, Entry

REPO = Path(__file__).resolve().parents[2]
SIGNATURES_ENV = "SIGCACHE_REAL_SIGNATURES"
TEXT_SIZES = {"200B": 200, "2KB": 2_048, "8KB": 8_192}
OP_SIZE = "2KB"  # size of the per-operation groups (DESIGN 3 quotes legacy at 2 KB)
POOL = 1_000  # entries each cache holds in the per-operation groups
MAX_SIGNATURE = 6_500  # longer Gemini outliers exist but are not what a thinking block carries
MODEL = "claude-sonnet-4-5"

# Bare SQLite baseline: what a user would write by hand, a primary-key table of hash -> signature.
BARE_DDL = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, signature TEXT NOT NULL)"
BARE_SELECT = "SELECT signature FROM kv WHERE key = ?"
BARE_UPSERT = "INSERT OR REPLACE INTO kv (key, signature) VALUES (?, ?)"

_PROSE = (
    "the user wants a function that parses the config file and returns a typed object so I "
    "should first check which keys are required then handle missing values with defaults let "
    "me think about edge cases empty input unicode paths and very large files the test suite "
    "expects an error when the schema version is unknown wait that contradicts the earlier "
    "requirement so I will re-read the spec carefully before writing any code okay the approach "
    "is to stream the file validate each line and collect errors with their line numbers"
)
_WORDS = tuple(_PROSE.split())


@dataclass(frozen=True, slots=True)
class Target:
    """A ratio goal: this bench's median / the median of `vs` (same group) <= `max_ratio`."""

    goal: str
    vs: str
    max_ratio: float


def describe(
    benchmark: BenchmarkFixture,
    group: str,
    label: str,
    *,
    baseline: bool = False,
    targets: Iterable[Target] = (),
    **extra: Any,
) -> None:
    """Name a bench's group and label, flag its baseline and attach its targets."""
    benchmark.group = group
    benchmark.extra_info.update(label=label, baseline=baseline, **extra)
    goals = [asdict(target) for target in targets]
    if goals:
        benchmark.extra_info["targets"] = goals


@dataclass(frozen=True)
class Corpus:
    """Deterministic thinking texts of the stated sizes and a pool of realistic signatures."""

    signatures: tuple[str, ...]
    source: str  # "real: <path>" or "synthetic"

    def text(self, size: str, seed: int) -> str:
        """A thinking text of exactly TEXT_SIZES[size] characters, unique in its first chars."""
        length = TEXT_SIZES[size]
        rng = random.Random(seed * 7_919 + length)
        parts = [f"[{seed}] Let me think step by step."]
        total = len(parts[0])
        while total < length:
            word = rng.choice(_WORDS)
            parts.append(word)
            total += len(word) + 1
        return " ".join(parts)[:length].rstrip() + "."

    def texts(self, size: str, count: int, start: int = 0) -> list[str]:
        """`count` distinct texts of one size."""
        return [self.text(size, seed) for seed in range(start, start + count)]

    def signature(self, seed: int) -> str:
        """A signature from the pool (cycled)."""
        return self.signatures[seed % len(self.signatures)]


def _signature_file() -> Path | None:
    env = os.environ.get(SIGNATURES_ENV)
    candidates = [Path(env)] if env else []
    # CI clones have ../shared beside the repo; nothing else is assumed.
    candidates.append(REPO.parent / "shared" / "reference" / "real_signatures.jsonl")
    return next((path for path in candidates if path.is_file()), None)


def load_signatures(path: Path) -> list[str]:
    """Valid Claude thinking signatures of the file (any valid one if too few are Claude's)."""
    claude: list[str] = []
    other: list[str] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            signature = row.get("signature")
            if not is_valid_signature(signature) or len(signature) > MAX_SIGNATURE:
                continue
            if row.get("provider") == "anthropic" and row.get("kind") == "thinking":
                claude.append(signature)
            else:
                other.append(signature)
    return claude if len(claude) >= 20 else claude + other


def synthetic_signatures(count: int = 64, seed: int = 5) -> list[str]:
    """Base64 of random bytes at the lengths real Claude signatures have (~250-1,500, a few 5k)."""
    rng = random.Random(seed)
    lengths = (252, 344, 540, 540, 812, 1_024, 1_500, 5_200)
    return [
        base64.b64encode(rng.randbytes(lengths[i % len(lengths)] * 3 // 4)).decode("ascii")
        for i in range(count)
    ]


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    """The session's texts and signatures (real ones when the reference file is present)."""
    path = _signature_file()
    signatures = load_signatures(path) if path else []
    if signatures:
        return Corpus(tuple(signatures), f"real: {path.name} ({len(signatures)} signatures)")  # type: ignore[union-attr]
    return Corpus(tuple(synthetic_signatures()), "synthetic base64")


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop per module; async benches run each call with `run_until_complete`."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.run_until_complete(event_loop.shutdown_default_executor())
    event_loop.close()


def main_entry(text: str, signature: str, now: float, owner: str = "") -> Entry:
    """The L2 row of a thinking text, as the layered cache writes it."""
    ttl = L2Settings().ttl_seconds
    digest = text_digest(normalize_thinking_text(text))
    return Entry(MAIN, owner, digest, signature, text, MODEL, None, now, now + ttl)


def connect(path: Path, *, reader: bool) -> sqlite3.Connection:
    """A sqlite3 connection with sigcache's own pragmas (the same kind of file as L2)."""
    settings = L2Settings()
    conn = sqlite3.connect(
        path, timeout=settings.busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
    )
    base = schema.READER_PRAGMAS if reader else schema.WRITER_PRAGMAS
    for statement in schema.connection_pragmas(
        base, settings.busy_timeout_ms, settings.cache_size_kib
    ):
        conn.execute(statement).fetchall()
    return conn


def populate_bare(path: Path, rows: Iterable[tuple[str, str]]) -> None:
    """Create the bare key -> signature table and fill it in one transaction."""
    conn = connect(path, reader=False)
    try:
        conn.execute(BARE_DDL)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(BARE_UPSERT, rows)
        conn.execute("COMMIT")
    finally:
        conn.close()


def cycle(items: list[Any]) -> Callable[[], Any]:
    """A cheap round-robin picker (the same overhead in every bench that uses it)."""
    state = {"i": -1}
    count = len(items)

    def pick() -> Any:
        state["i"] = index = (state["i"] + 1) % count
        return items[index]

    return pick


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def pytest_benchmark_update_machine_info(
    config: pytest.Config, machine_info: dict[str, Any]
) -> None:
    """Add the library versions, the SQLite library and the core count to the JSON."""
    names = ("sigcache", "cachetools", "aiosqlite", "diskcache", "pytest-benchmark")
    machine_info["versions"] = {name: _version(name) for name in names}
    machine_info["versions"]["sqlite"] = sqlite3.sqlite_version
    machine_info["versions"]["python"] = sys.version.split()[0]
    machine_info["cpu_count"] = os.cpu_count()
    path = _signature_file()
    machine_info["signatures"] = f"real: {path.name}" if path else "synthetic base64"
