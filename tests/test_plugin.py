"""The pytest plugin: items per recording and phase, failures naming events, inertness, fixtures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import harness.pipeline
from harness.bench_helper import bench_l1, bench_l2, recording_entries
from harness.fixtures import SettableClock, sigcache_clock, sigcache_replay, sigcache_stack
from harness.strategies import play, write_recording
from sigcache.keys import short_hash
from tests.contract import SIG_A, SIG_B
from tests.test_harness_cli import LAX
from tests.test_replayer import read, record, write

pytest_plugins = ("pytester",)
__all__ = ["sigcache_clock", "sigcache_replay", "sigcache_stack"]  # fixtures used below

# Once the pytest11 entry point is installed, naming the module again would register it twice.
_INSTALLED = any(ep.value == "harness.plugin" for ep in entry_points(group="pytest11"))
PLUGIN = () if _INSTALLED else ("-p", "harness.plugin")
PHASES = ("LEGACY_ONLY", "DUAL_WRITE", "NEW_PREFERRED", "NEW_ONLY")
RULES = (
    "min_reads", "value_mismatch", "foreign", "aa_differences", "errors", "recorded_mismatches",
    "legacy_only_hit_rate", "hit_rate_drop", "p99_latency_ratio",
)  # fmt: skip
ITEMS = ("aa_control", "legacy_reproduced", *RULES)
SECRET = "alice's private thought"


@pytest.fixture(scope="module", autouse=True)
def warm(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One whole job in this process first: pytester drops modules first imported inside a run,
    and re-importing pandas' Arrow extension types fails (they register once per process)."""
    root = tmp_path_factory.mktemp("warm")
    rec = record(root / "r.jsonl", [(0, "cache_signature", write("t", SIG_A))])
    harness.pipeline.run_job(rec, reports_root=root, phases=())


@pytest.fixture
def lax(pytester: pytest.Pytester) -> Path:
    path = pytester.path / "lax.toml"
    path.write_text(LAX)  # latency is noise on a shared machine: never gate on it here
    return path


@pytest.fixture
def clean(pytester: pytest.Pytester) -> Path:
    calls = [(float(i), "cache_signature", write(f"text {i}", SIG_A)) for i in range(5)]
    calls += [(10.0 + i, "get_cached_signature", read(f"text {i % 7}")) for i in range(20)]
    calls += [(40.0, "cache_signature", write("owned", SIG_B, "alice"))]
    calls += [(41.0, "get_cached_signature", read("owned"))]
    return record(pytester.path / "clean.jsonl", calls)


@pytest.fixture
def leaky(pytester: pytest.Pytester) -> Path:
    return record(
        pytester.path / "leaky.jsonl",
        [
            (0, "cache_signature", write(SECRET, SIG_A, "alice")),
            (1, "get_cached_signature", read(SECRET, "bob")),
            (2, "get_cached_signature", read(SECRET, "alice")),
        ],
    )


@pytest.fixture
def lossy(pytester: pytest.Pytester) -> Path:
    calls = [(float(i), "cache_signature", write(f"text {i}", SIG_A)) for i in range(20)]
    calls += [(100.0 + i, "get_cached_signature", read(f"text {i}")) for i in range(20)]
    return record(pytester.path / "lossy.jsonl", calls)


def options(recording: Path, lax: Path, *extra: str) -> list[str]:
    return [*PLUGIN, "--sigcache-recording", str(recording), "--sigcache-thresholds", str(lax),
            *extra]  # fmt: skip


def failures(reprec: Any) -> dict[str, str]:
    """Failed items as {'PHASE::item': message}."""
    return {"::".join(rep.nodeid.split("::")[1:]): rep.longreprtext for rep in reprec.getfailures()}


def test_clean_recording_passes_every_item(
    pytester: pytest.Pytester, clean: Path, lax: Path
) -> None:
    result = pytester.runpytest(*options(clean, lax), "--junitxml=junit.xml", "-v")
    result.assert_outcomes(passed=len(PHASES) * len(ITEMS))
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "clean.jsonl::LEGACY_ONLY::aa_control PASSED*",
            "clean.jsonl::NEW_ONLY::p99_latency_ratio PASSED*",
            "*= sigcache replay =*",
            "*clean.jsonl (27 events), report: *",
            "phase*events*reads*stack_hit*control_hit*match*verdict",
            "NEW_ONLY * 27 * 21 *pass",
        ]
    )
    (report,) = (pytester.path / "reports").iterdir()
    for name in ("report.md", "summary.json", "results.parquet", "gate-NEW_ONLY.json"):
        assert (report / name).is_file()
    cases = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    names = {(case.get("classname"), case.get("name")) for case in cases}
    assert ("clean.jsonl.NEW_ONLY", "foreign") in names and len(names) == 44


def test_owner_blind_candidate_fails_foreign_naming_the_event(
    pytester: pytest.Pytester, leaky: Path, lax: Path
) -> None:
    reprec = pytester.inline_run(
        *options(leaky, lax, "--sigcache-new-cache", "tests.broken_caches:owner_blind")
    )
    failed = failures(reprec)
    # DUAL_WRITE too: legacy misses bob, so the proxy falls back to the leaking new cache.
    assert set(failed) == {f"{phase}::foreign" for phase in PHASES[1:]}
    message = failed["NEW_ONLY::foreign"]
    assert message.startswith("NEW_ONLY foreign: measured 1 > threshold 0 (critical)")
    assert "verdict for NEW_ONLY: fail" in message
    expected = f"seq=1 op=get_cached_signature cls=foreign reason=owner text={short_hash(SECRET)}"
    assert expected in message
    assert SECRET not in message  # a short hash, never the text
    assert reprec.ret == pytest.ExitCode.TESTS_FAILED


def test_lossy_candidate_fails_only_the_new_only_hit_rules(
    pytester: pytest.Pytester, lossy: Path, lax: Path
) -> None:
    reprec = pytester.inline_run(
        *options(lossy, lax, "--sigcache-new-cache", "tests.broken_caches:drops_every_tenth")
    )
    failed = failures(reprec)
    assert set(failed) == {"NEW_ONLY::legacy_only_hit_rate", "NEW_ONLY::hit_rate_drop"}
    message = failed["NEW_ONLY::legacy_only_hit_rate"]
    assert message.startswith("NEW_ONLY legacy_only_hit_rate: measured 0.1 > threshold 0.001")
    assert "first offending events (2 of 2):" in message
    assert "seq=29 op=get_cached_signature cls=legacy_only_hit" in message
    assert "seq=39 " in message
    assert "hit_rate_drop: measured 0.1 > threshold 0.001" in failed["NEW_ONLY::hit_rate_drop"]


def test_short_summary_and_junit_carry_the_first_line(
    pytester: pytest.Pytester, leaky: Path, lax: Path
) -> None:
    args = options(leaky, lax, "--sigcache-new-cache", "tests.broken_caches:owner_blind")
    result = pytester.runpytest(*args, "--sigcache-phase", "4", "--junitxml=j.xml", "-rf")
    result.assert_outcomes(passed=len(ITEMS) - 1, failed=1)
    result.stdout.fnmatch_lines(["FAILED leaky.jsonl::NEW_ONLY::foreign - NEW_ONLY foreign*"])
    failure = next(ET.parse(pytester.path / "j.xml").getroot().iter("failure"))
    assert failure.get("message", "").startswith("NEW_ONLY foreign: measured 1")
    assert "seq=1 op=get_cached_signature" in (failure.text or "")


def test_phases_by_number_or_name_and_too_few_reads(pytester: pytest.Pytester, clean: Path) -> None:
    strict = pytester.path / "strict.toml"
    strict.write_text("[default]\nmin_reads = 1000\nmax_p99_latency_ratio = 1000.0\n")
    phases = ["--sigcache-phase", "new_preferred", "--sigcache-phase", "3", "--sigcache-phase", "1"]
    reprec = pytester.inline_run(*options(clean, strict, *phases))
    assert set(failures(reprec)) == {"NEW_PREFERRED::min_reads", "LEGACY_ONLY::min_reads"}
    message = failures(reprec)["NEW_PREFERRED::min_reads"]
    assert message.startswith("NEW_PREFERRED min_reads: measured 21 < threshold 1000")
    assert "inconclusive" in message
    passed, _, _ = reprec.listoutcomes()
    assert len(passed) == 2 * len(ITEMS) - 2


def test_legacy_reproduced_skips_without_legacy_events(
    pytester: pytest.Pytester, lax: Path
) -> None:
    calls = [(0.0, "cache_signature", write("t", SIG_A)), (1.0, "get_cached_signature", read("t"))]
    events = [replace(event, phase="DUAL_WRITE") for event in play(calls)]
    rec = write_recording(pytester.path / "dual.jsonl", events)
    result = pytester.runpytest(*options(rec, lax, "--sigcache-phase", "1"), "-rs")
    result.assert_outcomes(passed=len(ITEMS) - 1, skipped=1)
    result.stdout.fnmatch_lines(["*no events recorded under LEGACY_ONLY*"])


def test_unreadable_recording_fails_each_item_with_the_reason(
    pytester: pytest.Pytester, lax: Path
) -> None:
    bad = pytester.path / "bad.jsonl"
    bad.write_text('{"format": "something else"}\n')
    result = pytester.runpytest(*options(bad, lax, "--sigcache-phase", "NEW_ONLY"))
    result.assert_outcomes(failed=len(ITEMS))
    result.stdout.fnmatch_lines(["*replay of *bad.jsonl failed: RecordingError*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (("--sigcache-phase", "7"), "--sigcache-phase '7': expected one of*"),
        (("--sigcache-new-cache", "nowhere:nothing"), "*--new-cache 'nowhere:nothing'*"),
        (("--sigcache-recording", "missing.jsonl"), "*missing.jsonl: no such file"),
        (("--sigcache-thresholds", "missing.toml"), "*cannot read thresholds*"),
        (("--sigcache-l2", "http://h:1"), "*--l2 'http://h:1': expected*"),
    ],
)
def test_bad_options_are_usage_errors(
    pytester: pytest.Pytester, clean: Path, lax: Path, extra: tuple[str, str], error: str
) -> None:
    result = pytester.runpytest(*options(clean, lax), *extra)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{error}"])


def test_named_test_paths_run_alongside_the_recording(
    pytester: pytest.Pytester, clean: Path, lax: Path
) -> None:
    pytester.makepyfile(test_mine="def test_mine():\n    assert True\n")
    result = pytester.runpytest(*options(clean, lax, "--sigcache-phase", "1"), "test_mine.py")
    result.assert_outcomes(passed=len(ITEMS) + 1)
    only = pytester.runpytest(*options(clean, lax, "--sigcache-phase", "1"), "-m", "sigcache")
    only.assert_outcomes(passed=len(ITEMS))  # no paths named: the recording's items alone


def test_inert_without_its_options(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_plain="""
import sys

def test_plain(sigcache_clock):
    assert sigcache_clock.advance(5) == sigcache_clock()  # the plugin's fixtures are there
    assert "pandas" not in sys.modules and "harness.replayer" not in sys.modules
"""
    )
    # Loaded by name with autoload off, so the check holds whether or not the entry point is in.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_subprocess("-p", "harness.plugin")
    result.assert_outcomes(passed=1)
    # Nothing of ours in the output, but pytest's own header naming the installed plugin.
    lines = [line for line in result.outlines if not line.startswith("plugins:")]
    assert "sigcache" not in "\n".join(lines)
    assert not (pytester.path / "reports").exists()


def test_loads_through_the_pytest11_entry_point(
    pytester: pytest.Pytester, clean: Path, lax: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = pytester.path / "site" / "sigcache_probe-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sigcache-probe\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\nharness.plugin = harness.plugin\n")
    repo = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", f"{dist.parent}:{repo}")
    args = ["--sigcache-recording", str(clean), "--sigcache-thresholds", str(lax)]
    # Other plugins only cost start-up time here; block them.
    eps = entry_points(group="pytest11")
    others = [f"-pno:{ep.name}" for ep in eps if ep.value != "harness.plugin"]
    result = pytester.runpytest_subprocess(*others, *args, "--sigcache-phase", "2")
    result.assert_outcomes(passed=len(ITEMS))
    # Named after its module, the entry point also tolerates an explicit `-p harness.plugin`.
    again = pytester.runpytest_subprocess(*others, "-p", "harness.plugin", *args, "--co", "-q")
    assert again.ret == pytest.ExitCode.OK


# -- fixtures and the benchmark helper, used directly ----------------------------------------------


def test_stack_fixture_runs_on_the_settable_clock(
    sigcache_stack: Any, sigcache_clock: SettableClock
) -> None:
    new, legacy = sigcache_stack("new_only"), sigcache_stack(1)
    for stack in (new, legacy):
        assert stack.facade.cache_signature("a thought", SIG_A)
    assert sigcache_clock.advance(7_200) == sigcache_clock()  # past legacy's one-hour TTL
    assert new.facade.get_cached_signature("a thought") == SIG_A
    assert legacy.facade.get_cached_signature("a thought") is None


def test_replay_fixture_returns_a_frame(sigcache_replay: Any, tmp_path: Path) -> None:
    rec = record(tmp_path / "r.jsonl", [(0, "cache_signature", write("t", SIG_A)),
                                        (1, "get_cached_signature", read("t"))])  # fmt: skip
    frame = sigcache_replay(rec, phases=["new_only", 2])
    assert isinstance(frame, pd.DataFrame)
    assert sorted(set(frame["phase"])) == ["DUAL_WRITE", "NEW_ONLY"]
    assert set(frame[frame["kind"] == "read"]["cls"]) == {"match"}


@pytest.mark.parametrize(("helper", "tier"), [(bench_l1, "l1"), (bench_l2, "l2")])
def test_bench_helpers_time_each_tier(
    benchmark: Any, tmp_path: Path, helper: Any, tier: str
) -> None:
    calls = [(float(i), "cache_signature", write(f"text {i}", SIG_A, "o")) for i in range(8)]
    calls += [(9.0, "cache_signature", write("text 0", SIG_B, "o"))]  # a rewrite: same entry
    rec = record(tmp_path / "r.jsonl.gz", calls)
    assert [e.signature for e in recording_entries(rec)][:2] == [SIG_B, SIG_A]
    helper(benchmark, rec, tmp_path)  # raises unless the intended tier answered the timed reads
    assert benchmark.extra_info["tier"] == tier and benchmark.extra_info["texts"] == 8


def test_bench_helper_needs_two_texts(tmp_path: Path) -> None:
    rec = record(tmp_path / "r.jsonl", [(0.0, "cache_signature", write("only", SIG_A))])
    with pytest.raises(ValueError, match="needs >= 2"):
        bench_l1(object(), rec, tmp_path)  # type: ignore[arg-type]
