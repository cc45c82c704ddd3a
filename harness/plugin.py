"""The sigcache pytest plugin: recordings replayed under each phase become test items.

Inert unless ``--sigcache-recording`` is given (the fixtures of :mod:`harness.fixtures` are always
available and cost nothing until used). With recordings, each one is a node of the collection tree,
each requested phase a node under it, and under that one item per check::

    recordings/small.jsonl.gz::NEW_ONLY::aa_control
    recordings/small.jsonl.gz::NEW_ONLY::legacy_reproduced
    recordings/small.jsonl.gz::NEW_ONLY::value_mismatch      (one item per gate rule)

Recordings alone run only their items; name test paths as well to run both. A recording is
replayed once, lazily, for all its phases (see :mod:`harness.plugin_checks`), and the report with
its gate files is written under ``--sigcache-report`` as a side product.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from harness.fixtures import sigcache_clock, sigcache_replay, sigcache_stack
from harness.plugin_checks import RecordingRun, ReplayFailed, check, item_names, summary_lines

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "PluginSettings",
    "RecordingFile",
    "SigcacheItem",
    "sigcache_clock",
    "sigcache_replay",
    "sigcache_stack",
]

PHASES: Final = ("LEGACY_ONLY", "DUAL_WRITE", "NEW_PREFERRED", "NEW_ONLY")  # promotion order
MARKER: Final = "sigcache: an item of a replayed recording (sigcache plugin)"


@dataclass(frozen=True, slots=True)
class PluginSettings:
    """The plugin's options, checked and resolved against the invocation directory."""

    recordings: tuple[Path, ...]
    phases: tuple[str, ...]
    thresholds: Path | None
    reports: Path
    new_cache: str | None
    l2: str | None = None  # --sigcache-l2: a redis:// URL, or None for the SQLite default
    runs: dict[Path, RecordingRun] = field(default_factory=dict)  # one shared replay each


_SETTINGS: Final = pytest.StashKey[PluginSettings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """The --sigcache-* options."""
    group = parser.getgroup("sigcache", "sigcache: replay recordings and gate promotions")
    group.addoption(
        "--sigcache-recording", action="append", default=[], metavar="PATH",
        help="replay this recording under each phase as test items (repeatable)",
    )  # fmt: skip
    group.addoption(
        "--sigcache-phase", action="append", default=[], metavar="PHASE",
        help="target phase: name (any case) or 1-4 (repeatable; default all four)",
    )  # fmt: skip
    group.addoption(
        "--sigcache-thresholds", default=None, metavar="FILE",
        help="gate thresholds TOML (default: the shipped harness/thresholds.toml)",
    )  # fmt: skip
    group.addoption(
        "--sigcache-report", default="reports", metavar="DIR",
        help="write the replay report and gate files under DIR (default: reports)",
    )  # fmt: skip
    group.addoption(
        "--sigcache-new-cache", default=None, metavar="MODULE:FACTORY",
        help="build the new cache with this factory (a candidate implementation)",
    )  # fmt: skip
    group.addoption(
        "--sigcache-l2", default=None, metavar="URL",
        help="the new cache's L2 in the replay: 'sqlite' (default) or redis://host:port/db",
    )  # fmt: skip


def _phases(values: list[str]) -> tuple[str, ...]:
    from sigcache.errors import PhaseError
    from sigcache.gating import phase_name

    names: list[str] = []
    for value in values or PHASES:
        try:
            names.append(phase_name(int(value) if value.strip().isdigit() else value))
        except PhaseError:
            raise pytest.UsageError(
                f"--sigcache-phase {value!r}: expected one of {', '.join(PHASES)} or 1-4"
            ) from None
    return tuple(dict.fromkeys(names))


def _settings(config: pytest.Config) -> PluginSettings:
    """Read and check the options; a mistake is a usage error before anything runs."""
    from harness.gate import load_thresholds
    from harness.l2 import parse_l2
    from harness.pipeline import load_factory
    from sigcache.errors import ConfigError

    here = config.invocation_params.dir
    recordings = tuple((here / p).resolve() for p in config.getoption("sigcache_recording"))
    for path in recordings:
        if not path.is_file():
            raise pytest.UsageError(f"--sigcache-recording {path}: no such file")
    thresholds = config.getoption("sigcache_thresholds")
    new_cache = config.getoption("sigcache_new_cache")
    try:
        if thresholds is not None:
            thresholds = (here / thresholds).resolve()
            load_thresholds(thresholds)
        load_factory(new_cache)
        l2 = parse_l2(config.getoption("sigcache_l2"))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if l2 and new_cache:
        raise pytest.UsageError("--sigcache-l2 redis:// and --sigcache-new-cache: pick one")
    return PluginSettings(
        recordings=tuple(dict.fromkeys(recordings)),
        phases=_phases(config.getoption("sigcache_phase")),
        thresholds=thresholds,
        reports=(here / config.getoption("sigcache_report")).resolve(),
        new_cache=new_cache,
        l2=l2,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Activate on --sigcache-recording only; recordings join (or, alone, replace) the args."""
    if not config.getoption("sigcache_recording", default=None):
        return
    settings = _settings(config)
    config.stash[_SETTINGS] = settings
    config.addinivalue_line("markers", MARKER)
    paths = [str(p) for p in settings.recordings]
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        config.args.extend(p for p in paths if p not in config.args)
    else:
        # No test paths named: run only the recordings, not the testpaths' whole suite.
        config.args[:] = paths


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A recording named by --sigcache-recording becomes a collector of phases."""
    settings = parent.config.stash.get(_SETTINGS, None)
    if settings is None or file_path.resolve() not in settings.recordings:
        return None
    return RecordingFile.from_parent(parent, path=file_path)


class RecordingFile(pytest.File):
    """One recording: a phase collector per requested phase, sharing one replay."""

    def collect(self) -> Iterator[PhaseNode]:
        """The requested phases, in the order given."""
        settings = self.config.stash[_SETTINGS]
        key = self.path.resolve()
        if key not in settings.runs:
            settings.runs[key] = RecordingRun(
                key,
                settings.phases,
                reports_root=settings.reports,
                thresholds=settings.thresholds,
                new_cache=settings.new_cache,
                l2=settings.l2,
            )
        for phase in settings.phases:
            yield PhaseNode.from_parent(self, name=phase, run=settings.runs[key])


class PhaseNode(pytest.Collector):
    """One target phase of a recording: the harness checks and one item per gate rule."""

    def __init__(self, *, run: RecordingRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run

    def collect(self) -> Iterator[SigcacheItem]:
        """aa_control, legacy_reproduced, then the gate rules of this phase."""
        for name in item_names(self.name):
            item = SigcacheItem.from_parent(self, name=name, run=self.run, phase=self.name)
            item.add_marker(pytest.mark.sigcache)
            yield item


class CheckFailed(Exception):
    """An item's check failed; the message is the whole report."""


@dataclass(frozen=True, slots=True)
class _Crash:
    """What pytest's short summary and JUnit's `message` read: the failure's first line."""

    path: str
    lineno: int
    message: str


class FailureRepr:
    """A failure shown as its message alone; duck-types pytest's TerminalRepr."""

    def __init__(self, path: Path, message: str) -> None:
        self.message = message
        self.reprcrash = _Crash(str(path), 0, message.splitlines()[0] if message else "")

    def toterminal(self, tw: Any) -> None:
        """Write the message, line by line."""
        for line in self.message.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.message


class SigcacheItem(pytest.Item):
    """One check of one recording under one phase."""

    def __init__(self, *, run: RecordingRun, phase: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run
        self.phase = phase

    def runtest(self) -> None:
        """Replay on first use (shared), then judge this item's check."""
        outcome = check(self.run.result(), self.phase, self.name)
        # Properties land in JUnit XML, so CI can chart a rule's value across runs.
        for name in ("measured", "threshold"):
            value = getattr(outcome, name)
            if value is not None:
                self.user_properties.append((name, value))
        if outcome.skipped:
            pytest.skip(outcome.message)
        if not outcome.passed:
            raise CheckFailed(outcome.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """The check's own message, no traceback: it already says what broke and where."""
        if isinstance(excinfo.value, CheckFailed | ReplayFailed):
            return FailureRepr(self.path, str(excinfo.value))
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the item comes from: the recording, then phase and check."""
        return self.path, None, f"{self.phase}::{self.name}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The per-phase table of every replayed recording."""
    settings = config.stash.get(_SETTINGS, None)
    if settings is None:
        return
    done = [(run.recording, run.done) for run in settings.runs.values() if run.done is not None]
    if not done:
        return
    terminalreporter.write_sep("=", "sigcache replay")
    for recording, result in done:
        assert result is not None
        for line in summary_lines(recording, result):
            terminalreporter.write_line(line)
