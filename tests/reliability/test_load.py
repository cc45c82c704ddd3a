"""Load: a real uvicorn server driven by a second process on 127.0.0.1; threads and tasks."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import httpx

from sigcache.aio import AsyncLayeredSignatureCache
from sigcache.api import create_app
from sigcache.config import L1Settings, L2Settings, LayeredConfig
from tests.reliability.support import FIGURES, SOAK, make_facade, serve, sig, text

TOKEN = "reliability-token-0123456789abcdef"
REQUESTS = 20_000 if SOAK else 2_400
CLIENT_THREADS = 12

# The load generator: CLIENT_THREADS threads share REQUESTS requests; thread 0 also moves the
# phase around DUAL_WRITE -> NEW_PREFERRED -> NEW_ONLY -> DUAL_WRITE. Every acknowledged write is
# looked up again later in the run and once more in a final sweep.
LOADER = textwrap.dedent(
    """
    import json, random, sys, threading
    import httpx
    from tests.reliability.support import sig, text

    url, token, total, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    assert url.startswith("http://127.0.0.1:")
    headers = {"Authorization": f"Bearer {token}"}
    lock = threading.Lock()
    stats = {"requests": 0, "status": {}, "puts": 0, "lookups": 0, "hits": 0, "wrong": 0,
             "lost": 0, "phase_changes": 0, "stats_calls": 0, "transport_errors": 0}
    acked = []
    cycle = ["NEW_PREFERRED", "NEW_ONLY", "DUAL_WRITE"]

    def count(response):
        with lock:
            stats["requests"] += 1
            key = str(response.status_code)
            stats["status"][key] = stats["status"].get(key, 0) + 1

    def lookup(client, tag, owner):
        body = {"thinking_text": text(tag), "owner_id": owner}
        r = client.post("/cache/signature/lookup", json=body)
        count(r)
        data = r.json()["data"]
        with lock:
            stats["lookups"] += 1
            stats["hits"] += data["hit"]
        return data["signature"]

    def run(me, quota):
        rng = random.Random(me)
        mine = []
        owner = f"owner-{me % 4}"
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for n in range(quota):
                try:
                    roll = rng.random()
                    if me == 0 and n % 40 == 39:
                        target = cycle[(n // 40) % 3]
                        r = client.post("/cache/migration/phase", params={"phase": target})
                        count(r)
                        with lock:
                            stats["phase_changes"] += r.status_code == 200
                    elif roll < 0.45 or not mine:
                        tag = f"t{me} n{n}"
                        r = client.put("/cache/signature", json={"thinking_text": text(tag),
                                       "signature": sig(tag), "owner_id": owner})
                        count(r)
                        if r.status_code == 200 and r.json()["data"]["cached"]:
                            mine.append(tag)
                            with lock:
                                stats["puts"] += 1
                    elif roll < 0.85:
                        tag = rng.choice(mine)
                        found = lookup(client, tag, owner)
                        if found != sig(tag):
                            with lock:
                                stats["wrong"] += 1
                    elif roll < 0.90:
                        lookup(client, f"never written {me} {n}", owner)
                    else:
                        path = rng.choice(["/cache/migration/status", "/cache/signature/stats",
                                           "/cache/migration/history", "/healthz"])
                        count(client.get(path))
                        with lock:
                            stats["stats_calls"] += 1
                except httpx.TransportError:
                    with lock:
                        stats["transport_errors"] += 1
            for tag in mine:  # final sweep: nothing acknowledged may be lost
                if lookup(client, tag, owner) != sig(tag):
                    with lock:
                        stats["lost"] += 1
        with lock:
            acked.extend(mine)

    workers = [threading.Thread(target=run, args=(i, total // threads)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(600)
    stats["acked"] = len(acked)
    print(json.dumps(stats), flush=True)
    """
)


def test_http_load_from_a_second_process(tmp_path: Path) -> None:
    """No 5xx, no lost write, and the server's counters add up to what the client did."""
    facade = make_facade(tmp_path / "load.db", "DUAL_WRITE")
    facade.reset_cache_stats()
    try:
        with serve(create_app(facade, token=TOKEN)) as url:
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path.cwd()), *sys.path]))
            done = subprocess.run(
                [sys.executable, "-c", LOADER, url, TOKEN, str(REQUESTS), str(CLIENT_THREADS)],
                capture_output=True,
                text=True,
                timeout=900,
                env=env,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-2000:]
            report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
            status = httpx.get(
                f"{url}/cache/migration/status",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            ).json()["data"]
    finally:
        facade.close()
    FIGURES.add("http_requests", report["requests"])
    FIGURES.add("http_phase_changes", report["phase_changes"])
    assert report["transport_errors"] == 0
    assert not [code for code in report["status"] if code.startswith("5")], report["status"]
    assert set(report["status"]) == {"200"}, report["status"]
    assert report["requests"] >= REQUESTS
    assert report["phase_changes"] >= 5
    assert report["wrong"] == 0 and report["lost"] == 0
    reads, writes = status["read_stats"], status["dual_write_stats"]
    assert reads["total_reads"] == report["lookups"]
    assert reads["hits"] == report["hits"]
    assert reads["hits"] + reads["misses"] == reads["total_reads"]
    assert writes["total_writes"] == report["puts"] == report["acked"]


def test_threads_hammer_the_facade_while_phases_change(tmp_path: Path) -> None:
    """Threads of different owners write one shared text: each only ever reads its own."""
    facade = make_facade(tmp_path / "threads.db", "NEW_PREFERRED", l1_size=256)
    owners, rounds = 8, (3_000 if SOAK else 300)
    problems: list[str] = []
    stop = threading.Event()

    def owner_thread(me: int) -> None:
        owner = f"tenant-{me}"
        for n in range(rounds):
            shared, own = text(f"shared {n % 50}"), text(f"own {me} {n}")
            mine = sig(f"{owner} {n % 50}")
            try:
                facade.cache_signature(shared, mine, None, owner)
                facade.cache_signature(own, sig(f"own {me} {n}"), None, owner)
                got = facade.get_cached_signature(shared, owner)
                if got is not None and got != mine:  # no other writer shares this owner
                    problems.append(f"{owner} got someone else's signature")
                if facade.get_cached_signature(own, owner) != sig(f"own {me} {n}"):
                    problems.append(f"{owner} lost its own write {n}")
                if facade.get_cached_signature(own, f"tenant-{(me + 1) % owners}") is not None:
                    problems.append(f"{owner}'s entry served to another owner")
            except Exception as exc:  # recorded: nothing may raise
                problems.append(f"{type(exc).__name__}: {exc}")
            FIGURES.add("library_ops", 5)

    def phase_thread() -> None:
        rng = random.Random(3)
        while not stop.is_set():
            facade.set_migration_phase(rng.choice(["NEW_PREFERRED", "NEW_ONLY"]), force=True)
            stop.wait(0.01)

    threads = [threading.Thread(target=owner_thread, args=(me,)) for me in range(owners)]
    flipper = threading.Thread(target=phase_thread)
    flipper.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    stop.set()
    flipper.join(30)
    facade.close()
    assert problems == []


def test_asyncio_tasks_hammer_the_async_cache(tmp_path: Path) -> None:
    """Many tasks of several owners through aiosqlite reads: right answers, strict owners."""
    config = LayeredConfig(L1Settings(max_entries=32), L2Settings(batch_interval_ms=5))
    cache = AsyncLayeredSignatureCache.open(tmp_path / "async.db", config=config)
    tasks_n, per_task = (64, 400) if SOAK else (24, 60)
    problems: list[str] = []

    async def task(me: int) -> None:
        owner = f"async-{me % 6}"
        for n in range(per_task):
            tag = f"task {me} {n}"
            await cache.aset(text(tag), sig(tag), None, owner)
            if n % 10 == 9:
                await cache.aflush(30)
            back = await cache.aget(text(f"task {me} {n // 2}"), owner)  # often an L2 read
            if back != sig(f"task {me} {n // 2}"):
                problems.append(f"{tag}: {back!r}")
            if await cache.aget(text(tag), f"async-{(me + 1) % 6}") is not None:
                problems.append(f"{tag} crossed owners")
            FIGURES.add("library_ops", 3)

    async def main() -> None:
        try:
            # One read first, so this test does not depend on the connect race (tested below).
            await cache.aget(text("warm-up"), "async-0")
            await asyncio.gather(*(task(me) for me in range(tasks_n)))
        finally:
            await cache.aclose()

    asyncio.run(main())
    assert problems == []


RACE = textwrap.dedent(
    """
    import asyncio, gc, os, sys, tempfile, warnings
    from sigcache.aio import AsyncLayeredSignatureCache

    async def main():
        cache = AsyncLayeredSignatureCache.open(os.path.join(tempfile.mkdtemp(), "a.db"))
        await asyncio.gather(*(cache.aget(f"text {i}") for i in range(20)))
        await cache.aclose()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        gc.collect()
    leaked = sum(issubclass(w.category, ResourceWarning) for w in caught)
    print(leaked, flush=True)
    os._exit(0)  # leaked aiosqlite threads would otherwise hold the interpreter open
    """
)


def test_concurrent_first_async_reads_open_one_connection() -> None:
    """Twenty tasks read at once on a fresh async cache: no connection is leaked (regression)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path.cwd()), *sys.path]))
    done = subprocess.run(
        [sys.executable, "-c", RACE], capture_output=True, text=True, timeout=120, env=env
    )
    FIGURES.add("library_ops", 20)
    assert done.stdout.strip() == "0", f"{done.stdout.strip()} aiosqlite connections leaked"
