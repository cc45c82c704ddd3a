"""Measure the replay: wall and CPU time, events per second and peak RSS, one recording per run.

`python -m harness.replay_speed [RECORDING] [--job] [--cpu N] [--phase P ...]
[--generate EVENTS --seed S] [--json PATH]`

Replays RECORDING (default the committed large one) under all four phases, as the main job does
(plus the legacy control and the A/A twin), and prints the figures. `--job` runs the whole main
job instead (replay, summary, gates and the report, written under a temporary directory).
`--phase P` (repeatable) builds only those phases' stacks, and `--phase none` none at all: the
harness alone, the baseline that each stack's cost is measured against (one stack per run).
`--cpu N` pins the process to one CPU first (Linux), so threads compete as on a one-core host.
`--generate EVENTS` writes RECORDING with `harness.synth` first when it does not exist yet (the
10x recording is generated once and kept outside the repository). Peak RSS is the process's own
(`ru_maxrss`), so each measurement needs its own process; RSS is also sampled along the way to
show whether memory follows the recording's length.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sigcache.phases import MigrationPhase

__all__ = ["SpeedResult", "main", "measure"]

DEFAULT_RECORDING = Path("recordings/large.jsonl.gz")


@dataclass(slots=True)
class SpeedResult:
    """What one measured run took."""

    recording: str
    job: bool
    events: int
    phases: int
    wall_s: float
    cpu_s: float  # every thread of the process, user + system
    main_thread_cpu_s: float | None  # Linux only; up to the replay's last 1000 events
    other_threads_cpu_s: float | None  # the L2 writer threads, mostly
    peak_rss_mb: float
    rss_mb_by_quarter: list[float] = field(default_factory=list)  # 25/50/75/100 % of the replay

    @property
    def events_per_s(self) -> float:
        """Recording events replayed per wall second (each under every phase)."""
        return self.events / self.wall_s if self.wall_s else 0.0


def _rss_mb() -> float | None:
    """Current resident set size (Linux /proc), or None elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each live thread of this process (Linux), by thread id."""
    found: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the thread ended meanwhile
        found[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def measure(
    recording: Path, *, job: bool = False, phases: Sequence[MigrationPhase] | None = None
) -> SpeedResult:
    """Replay (or run the main job on) `recording` once and measure it.

    `phases` (replay only) are the stacks to build; none given: all four; an empty sequence:
    the harness alone (reading, the legacy control and A/A twin, the oracle and
    the results file), the baseline each stack's cost is measured against.
    """
    from harness.pipeline import run_job
    from harness.replayer import ReplayOptions, replay
    from sigcache.phases import MigrationPhase

    samples: list[float] = []  # RSS every 1000 events (the replayer's progress interval)
    threads: dict[int, float] = {}

    def progress(done: int) -> None:
        rss = _rss_mb()
        if rss is not None:
            samples.append(rss)
        # Kept up to date while the writer threads live: they stop when the replay ends.
        threads.update(_thread_cpu())

    if job and phases is not None:
        raise ValueError("phases apply to a replay, not to the main job (all four phases)")
    chosen = tuple(MigrationPhase) if phases is None else tuple(phases)
    with tempfile.TemporaryDirectory(prefix="sigcache-speed-") as tmp:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if job:
            events = run_job(recording, reports_root=Path(tmp), progress=progress).outcome.events
        else:
            options = ReplayOptions(
                phases=chosen, results_path=Path(tmp) / "results.parquet", progress=progress
            )
            events = replay(recording, options).events
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    main_cpu = threads.pop(os.getpid(), None)
    quarters = [samples[max(len(samples) * q // 4 - 1, 0)] for q in (1, 2, 3, 4)] if samples else []
    return SpeedResult(
        recording=str(recording),
        job=job,
        events=events,
        phases=len(chosen),
        wall_s=wall,
        cpu_s=cpu,
        main_thread_cpu_s=main_cpu,
        other_threads_cpu_s=sum(threads.values()) if main_cpu is not None else None,
        peak_rss_mb=_peak_rss_mb(),
        rss_mb_by_quarter=[round(mb, 1) for mb in quarters],
    )


def _report(result: SpeedResult) -> str:
    what = "main job (replay + report)" if result.job else "replay"
    lines = [
        f"{what} of {result.recording}: {result.events:,} events x {result.phases} phases "
        "(+ legacy control and A/A)",
        f"  wall {result.wall_s:.1f} s, CPU {result.cpu_s:.1f} s, "
        f"{result.events_per_s:,.0f} events/s, peak RSS {result.peak_rss_mb:.0f} MB",
    ]
    during = " during the replay" if result.job else ""  # the probes stop when the report starts
    if result.main_thread_cpu_s is not None:
        lines.append(
            f"  CPU by thread{during}: main {result.main_thread_cpu_s:.1f} s, "
            f"others (L2 writers) {result.other_threads_cpu_s or 0.0:.1f} s"
        )
    if result.rss_mb_by_quarter:
        marks = ", ".join(f"{mb:.0f}" for mb in result.rss_mb_by_quarter)
        lines.append(f"  RSS at 25/50/75/100 % of the events{during}: {marks} MB")
    return "\n".join(lines)


def _phase_names(
    parser: argparse.ArgumentParser, given: list[str] | None
) -> tuple[MigrationPhase, ...] | None:
    """Phases from --phase (as `sigcache-harness replay` reads them); 'none' alone: no stack."""
    from harness.cli_commands import phases_named
    from sigcache.errors import PhaseError

    if given is None:
        return None
    if [g.strip().lower() for g in given] == ["none"]:
        return ()
    try:
        return phases_named(given)
    except PhaseError as exc:
        parser.error(f"--phase: {exc} ('none' alone: the harness without a stack)")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: measure one recording, print the figures (and optionally write JSON)."""
    parser = argparse.ArgumentParser(prog="python -m harness.replay_speed", description=__doc__)
    parser.add_argument("recording", type=Path, nargs="?", default=DEFAULT_RECORDING)
    parser.add_argument("--job", action="store_true", help="the whole main job, report included")
    parser.add_argument("--cpu", type=int, metavar="N", help="pin the process to CPU N first")
    parser.add_argument("--generate", type=int, metavar="EVENTS", help="generate if missing")
    parser.add_argument("--seed", type=int, default=2, help="seed for --generate (default 2)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument(
        "--phase",
        action="append",
        metavar="P",
        help="replay only this phase's stack (repeatable; 'none': the harness alone)",
    )
    args = parser.parse_args(argv)
    phases = _phase_names(parser, args.phase)
    if args.job and phases is not None:
        parser.error("--phase measures a replay; --job always runs all four phases")
    if args.cpu is not None:
        if not hasattr(os, "sched_setaffinity"):
            parser.error("--cpu needs Linux (os.sched_setaffinity)")
        # Before anything starts a thread: threads inherit the affinity of their creator.
        os.sched_setaffinity(0, {args.cpu})
    if args.generate and not args.recording.exists():
        from harness.synth import generate_recording

        start = time.perf_counter()
        stats = generate_recording(args.recording, events=args.generate, seed=args.seed)
        print(f"generated {args.recording}: {stats.events:,} events in "
              f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    result = measure(args.recording, job=args.job, phases=phases)
    print(_report(result))
    if args.json is not None:
        payload: dict[str, Any] = {**asdict(result), "events_per_s": result.events_per_s}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
