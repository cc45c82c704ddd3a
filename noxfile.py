"""Nox sessions for sigcache: tests, lint and typecheck by default; replay, report, gate, bench,
replay-speed and soak on demand. Dependencies come from pyproject (the `dev` extra); posargs pass
through."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
PHASES = ["LEGACY_ONLY", "DUAL_WRITE", "NEW_PREFERRED", "NEW_ONLY"]
RECORDING = "recordings/large.jsonl.gz"


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The default test suite (fast; long runs live in their own sessions)."""
    _install(session)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Mypy in strict mode over both packages."""
    _install(session)
    session.run("mypy", *session.posargs)


def _sigcache_args(session: nox.Session, phase: str) -> list[str]:
    """posargs pass through to pytest; the committed large recording unless one is named."""
    args = list(session.posargs)
    if not any(a.startswith("--sigcache-recording") for a in args):
        args += ["--sigcache-recording", RECORDING]
    return [*args, "--sigcache-phase", phase]


@nox.session(python=PYTHON, default=False)
@nox.parametrize("phase", PHASES)
def replay(session: nox.Session, phase: str) -> None:
    """Replay under a phase as pytest items (A/A control, legacy reproduced); report in reports/."""
    _install(session)
    session.run("pytest", *_sigcache_args(session, phase), "-k", "aa_control or legacy_reproduced")


@nox.session(python=PYTHON, default=False)
def report(session: nox.Session) -> None:
    """Rebuild the latest report from its results (or `-- RESULTS --recording R`)."""
    _install(session)
    session.run("sigcache-harness", "report", *session.posargs)


@nox.session(python=PYTHON, default=False)
@nox.parametrize("phase", PHASES)
def gate(session: nox.Session, phase: str) -> None:
    """Gate a promotion to a phase: one pytest item per rule; failures name the events."""
    _install(session)
    session.run(
        "pytest", *_sigcache_args(session, phase), f"--junitxml=reports/gate-{phase}.junit.xml"
    )


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """The pytest-benchmark suite (about 4 minutes); JSON and report under reports/bench/.

    The Redis groups measure against SIGCACHE_BENCH_REDIS_URL when set (keys under a fresh
    prefix, deleted afterwards), else against a redis-server they start when one is installed.
    """
    _install(session)
    session.run(
        "python",
        "-c",
        "import pathlib; pathlib.Path('reports/bench').mkdir(parents=True, exist_ok=True)",
    )
    session.run(
        "pytest",
        "tests/benchmarks",
        "--benchmark-enable",
        "--benchmark-json",
        "reports/bench/bench.json",
        "--benchmark-min-time=0.0001",
        "--benchmark-max-time=0.5",
        "--benchmark-warmup=on",
        "--benchmark-warmup-iterations=1000",
        "-q",
        *session.posargs,
    )
    session.run("sigcache-harness", "report", "--bench", "reports/bench/bench.json")


@nox.session(name="replay-speed", python=PYTHON, default=False)
def replay_speed(session: nox.Session) -> None:
    """Time the main job and the replay alone on the large recording, pinned to one CPU."""
    _install(session)
    cpu = ["--cpu", "0"] if sys.platform == "linux" else []
    session.run("python", "-m", "harness.replay_speed", "--job", *cpu, *session.posargs)
    session.run("python", "-m", "harness.replay_speed", *cpu, *session.posargs)


@nox.session(name="replay-speed-10x", python=PYTHON, default=False)
def replay_speed_10x(session: nox.Session) -> None:
    """The main job on a 10x longer generated recording (made once, ~110 MB, in the temp dir).

    About 4 minutes on one core (generating the recording the first time adds one): memory must
    not follow the recording's length (compare the peak RSS and the RSS at each quarter with
    `nox -s replay-speed`). `-- PATH` names another place for the recording.
    """
    _install(session)
    # The generator's profile is in the name: a recording made by an older generator (the
    # 'origin' callers alone) is not the traffic the large recording has now.
    default = Path(tempfile.gettempdir()) / "sigcache-replay-x10-seed2-provenance.jsonl.gz"
    recording = session.posargs[0] if session.posargs else str(default)
    cpu = ["--cpu", "0"] if sys.platform == "linux" else []
    session.run(
        "python", "-m", "harness.replay_speed", recording, "--job", "--generate", "1500000", *cpu
    )


@nox.session(python=PYTHON, default=False)
def soak(session: nox.Session) -> None:
    """Long reliability runs: many crash rounds, longer load (SIGCACHE_SOAK=1)."""
    _install(session)
    session.run(
        "pytest", "tests/reliability", "-m", "slow", *session.posargs, env={"SIGCACHE_SOAK": "1"}
    )
