"""Live consistency sampling: off the caller's path, classified like the replay, never raising."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from sigcache.errors import ConfigError
from sigcache.facade import CacheFacade
from sigcache.layered import LayeredSignatureCache
from sigcache.migration_config import MigrationConfig
from sigcache.phases import MigrationPhase
from sigcache.sampling import LIVE_CLASSES, classify_live
from tests.contract import SIG_A, SIG_B, SIG_C, FakeClock

P = MigrationPhase
TEXTS = [f"<think>sampled thinking text number {i}</think>" for i in range(50)]
WRONG = set(TEXTS[::5])  # the new cache answers these with a wrong signature


class WrongLayered(LayeredSignatureCache):
    """A new cache that returns SIG_C for the texts in WRONG (a key-derivation bug, say)."""

    def get(self, thinking_text: str, owner_id: str | None = None) -> str | None:
        found = super().get(thinking_text, owner_id)
        return SIG_C if found is not None and thinking_text in WRONG else found


def wrong_factory(db_path: str, *, config: MigrationConfig, clock: Any) -> WrongLayered:
    return WrongLayered(db_path, clock=clock)


def make(tmp_path: Path, phase: MigrationPhase, rate: float, factory: Any = None) -> CacheFacade:
    config = MigrationConfig(
        new_l2_db_path=str(tmp_path / f"l2-{rate}.db"),
        use_migration_adapter=True,
        consistency_sample_rate=rate,
    )
    facade = CacheFacade(config, clock=FakeClock(), new_cache_factory=factory)
    for step in range(2, int(phase) + 1):
        facade.set_migration_phase(step)
    return facade


def live(facade: CacheFacade) -> dict[str, Any]:
    assert facade.sampler.drain(30)
    stats: dict[str, Any] = facade.get_migration_status()["live_consistency"]
    return stats


@pytest.mark.parametrize(
    ("new", "legacy", "crossed", "cls"),
    [
        (None, None, False, "both_miss"),
        (SIG_A, SIG_A, False, "match"),
        (SIG_A, None, False, "new_only_hit"),
        (None, SIG_A, False, "legacy_only_hit"),
        (SIG_A, SIG_B, False, "value_mismatch"),
        (None, SIG_A, True, "isolation"),
        (SIG_B, SIG_A, True, "isolation"),
        ((SIG_A, "t"), (SIG_A, "t"), False, "match"),
    ],
)
def test_classify_live(new: object, legacy: object, crossed: bool, cls: str) -> None:
    assert classify_live(new, legacy, crossed) == cls


@pytest.mark.parametrize("phase", [P.DUAL_WRITE, P.NEW_PREFERRED])
def test_mismatches_are_found_at_about_the_configured_rate(
    tmp_path: Path, phase: MigrationPhase
) -> None:
    facade = make(tmp_path, phase, 0.1, wrong_factory)
    for text in TEXTS:
        assert facade.cache_signature(text, SIG_A)
    reads = 4_000
    for i in range(reads):
        facade.get_cached_signature(TEXTS[i % len(TEXTS)])
    stats = live(facade)
    # Expected: 400 samples, 80 of them on a wrong key (5 standard deviations either side).
    assert 300 <= stats["samples"] <= 500
    assert 40 <= stats["classes"]["value_mismatch"] <= 120
    assert stats["classes"]["match"] + stats["classes"]["value_mismatch"] == stats["samples"]
    assert stats["by_phase"][phase.name]["samples"] == stats["samples"]
    assert stats["dropped"] == 0 and stats["errors"] == 0
    facade.close()


def test_a_correct_new_cache_shows_no_mismatch(tmp_path: Path) -> None:
    facade = make(tmp_path, P.DUAL_WRITE, 0.5)
    for index, text in enumerate(TEXTS):
        assert facade.cache_signature(text, SIG_A, owner_id=f"o{index % 3}")
    for i in range(2_000):
        index = i % len(TEXTS)
        facade.get_cached_signature(TEXTS[index], f"o{index % 3}")
    stats = live(facade)
    assert stats["samples"] > 500
    assert stats["classes"]["value_mismatch"] == 0 and stats["value_mismatch_rate"] == 0.0
    assert stats["classes"]["match"] == stats["samples"]
    facade.close()


@pytest.mark.parametrize("phase", [P.DUAL_WRITE, P.NEW_PREFERRED])
def test_callers_see_the_same_answers_with_sampling_on_and_off(
    tmp_path: Path, phase: MigrationPhase
) -> None:
    answers = []
    for rate in (0.0, 1.0):
        facade = make(tmp_path, phase, rate, wrong_factory)
        assert (facade.adapter.sampler is None) is (rate == 0.0)
        got: list[object] = [facade.cache_signature(text, SIG_A) for text in TEXTS[:20]]
        got += [facade.get_cached_signature(text) for text in TEXTS]
        got += [facade.cache_tool_signature("toolu_1", SIG_B), facade.get_tool_signature("toolu_1")]
        answers.append(got)
        facade.close()
    assert answers[0] == answers[1]


def test_isolation_legacy_only_and_new_only_are_told_apart(tmp_path: Path) -> None:
    facade = make(tmp_path, P.LEGACY_ONLY, 1.0)
    assert facade.cache_signature(TEXTS[0], SIG_A)  # legacy only: a backfill would copy it
    facade.set_migration_phase(P.DUAL_WRITE)
    assert facade.cache_signature(TEXTS[1], SIG_B, owner_id="alice")
    new = facade.new_cache()
    assert new is not None and new.set(TEXTS[2], SIG_C)  # in the new cache only
    assert facade.get_cached_signature(TEXTS[0]) == SIG_A  # legacy hit, new miss
    assert facade.get_cached_signature(TEXTS[1]) == SIG_B  # legacy crossed owners
    assert facade.get_cached_signature(TEXTS[1], "alice") == SIG_B
    assert facade.get_cached_signature(TEXTS[2]) == SIG_C  # legacy miss, new fallback hit
    assert facade.get_cached_signature(TEXTS[3]) is None
    classes = live(facade)["classes"]
    expected = dict.fromkeys(LIVE_CLASSES, 0)
    expected.update(legacy_only_hit=1, isolation=1, match=1, new_only_hit=1, both_miss=1)
    assert classes == expected
    facade.close()


def test_mismatch_logs_hashes_never_texts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    facade = make(tmp_path, P.DUAL_WRITE, 1.0, wrong_factory)
    text = sorted(WRONG)[0]
    facade.cache_signature(text, SIG_A)
    with caplog.at_level(logging.WARNING, logger="sigcache.migration"):
        facade.get_cached_signature(text)
        live(facade)
    lines = [r.getMessage() for r in caplog.records if "value_mismatch" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("[CACHE_MIGRATION]")
    assert text not in lines[0] and "sampled" not in lines[0]
    assert SIG_A not in lines[0] and SIG_C not in lines[0]
    facade.close()


def test_counts_appear_in_status_and_stats_and_legacy_only_is_not_sampled(tmp_path: Path) -> None:
    facade = make(tmp_path, P.LEGACY_ONLY, 1.0)
    facade.cache_signature(TEXTS[0], SIG_A)
    facade.get_cached_signature(TEXTS[0])
    assert live(facade)["samples"] == 0
    facade.set_migration_phase(P.DUAL_WRITE)
    facade.get_cached_signature(TEXTS[0])
    assert live(facade)["samples"] == 1
    assert facade.get_cache_stats()["live_consistency"]["samples"] == 1
    flags = facade.get_migration_status()["flags"]
    assert flags["debug"]["validate_consistency"] is True
    facade.close()


def test_a_failing_other_cache_is_counted_never_raised(tmp_path: Path) -> None:
    class Broken(LayeredSignatureCache):
        def get(self, thinking_text: str, owner_id: str | None = None) -> str | None:
            raise RuntimeError("boom")

    def factory(db_path: str, *, config: MigrationConfig, clock: Any) -> Broken:
        return Broken(db_path, clock=clock)

    facade = make(tmp_path, P.DUAL_WRITE, 1.0, factory)
    facade.cache_signature(TEXTS[0], SIG_A)
    assert facade.get_cached_signature(TEXTS[0]) == SIG_A
    stats = live(facade)
    assert stats["errors"] == 1 and stats["samples"] == 0
    facade.close()


def test_sample_rate_from_the_environment() -> None:
    env = {"CACHE_CONSISTENCY_SAMPLE_RATE": "0.25", "CACHE_BACKFILL_ON_DUAL_WRITE": "auto"}
    config = MigrationConfig.from_env(env)
    assert config.consistency_sample_rate == 0.25 and config.backfill_on_dual_write == "auto"
    assert MigrationConfig.from_env({}).consistency_sample_rate == 0.01
    for bad in ("1.5", "-0.1", "often"):
        with pytest.raises(ConfigError, match="CACHE_CONSISTENCY_SAMPLE_RATE"):
            MigrationConfig.from_env({"CACHE_CONSISTENCY_SAMPLE_RATE": bad})
    with pytest.raises(ConfigError, match="CACHE_BACKFILL_ON_DUAL_WRITE"):
        MigrationConfig.from_env({"CACHE_BACKFILL_ON_DUAL_WRITE": "sometimes"})
