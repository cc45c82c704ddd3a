"""MigrationConfig: defaults, environment parsing and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

import sigcache
from sigcache.errors import ConfigError
from sigcache.migration_config import MigrationConfig, default_l2_db_path
from sigcache.phases import MigrationPhase


def test_defaults() -> None:
    config = MigrationConfig.from_env({})
    assert config == MigrationConfig()
    assert config.use_migration_adapter is False  # off unless asked for (the origin was on)
    assert config.initial_phase is MigrationPhase.LEGACY_ONLY
    assert config.env_phase is None
    assert (config.legacy_max_size, config.legacy_ttl_seconds) == (10_000, 3_600.0)
    assert config.legacy_key_prefix_length == 500
    assert config.read_repair is True
    assert config.dual_write_failure_policy == "log"
    assert config.new_l1_ttl_seconds <= config.new_l2_ttl_seconds


def test_every_variable() -> None:
    env = {
        "CACHE_USE_MIGRATION_ADAPTER": "Yes",
        "CACHE_MIGRATION_PHASE": "dual_write",
        "CACHE_LEGACY_MAX_SIZE": "50",
        "CACHE_LEGACY_TTL": "60.5",
        "CACHE_NEW_L1_MAX_SIZE": "70",
        "CACHE_NEW_L1_TTL": "30",
        "CACHE_NEW_L2_DB_PATH": "/tmp/x/sig.db",
        "CACHE_NEW_L2_MAX_SIZE": "900",
        "CACHE_NEW_L2_TTL": "120",
        "CACHE_DUAL_WRITE_FAILURE_POLICY": "IGNORE",
    }
    config = MigrationConfig.from_env(env)
    assert config.use_migration_adapter is True
    assert config.initial_phase is MigrationPhase.DUAL_WRITE
    assert config.env_phase is MigrationPhase.DUAL_WRITE
    assert config.env_use_migration_adapter == "Yes"
    assert config.legacy_max_size == 50 and config.legacy_ttl_seconds == 60.5
    assert config.new_l1_max_size == 70 and config.new_l1_ttl_seconds == 30.0
    assert config.resolved_l2_db_path() == "/tmp/x/sig.db"
    assert config.new_l2_max_size == 900 and config.new_l2_ttl_seconds == 120.0
    assert config.dual_write_failure_policy == "ignore"
    assert config.to_dict()["initial_phase"] == "DUAL_WRITE"


@pytest.mark.parametrize("raw", ["true", "1", "YES", " on "])
def test_mode_on_values(raw: str) -> None:
    assert MigrationConfig.from_env({"CACHE_USE_MIGRATION_ADAPTER": raw}).use_migration_adapter


@pytest.mark.parametrize("raw", ["false", "0", "no", "OFF", ""])
def test_mode_off_values(raw: str) -> None:
    config = MigrationConfig.from_env({"CACHE_USE_MIGRATION_ADAPTER": raw})
    assert config.use_migration_adapter is False


@pytest.mark.parametrize(
    ("raw", "phase"), [("1", 1), ("4", 4), ("NEW_ONLY", 4), ("legacy_only", 1)]
)
def test_phase_names_and_numbers(raw: str, phase: int) -> None:
    config = MigrationConfig.from_env({"CACHE_MIGRATION_PHASE": raw})
    assert config.initial_phase == phase


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("CACHE_USE_MIGRATION_ADAPTER", "maybe"),
        ("CACHE_MIGRATION_PHASE", "PHASE_9"),
        ("CACHE_MIGRATION_PHASE", "7"),
        ("CACHE_LEGACY_MAX_SIZE", "ten"),
        ("CACHE_LEGACY_MAX_SIZE", "0"),
        ("CACHE_LEGACY_TTL", "-5"),
        ("CACHE_LEGACY_TTL", "nan"),
        ("CACHE_NEW_L1_MAX_SIZE", "1.5"),
        ("CACHE_NEW_L1_TTL", "soon"),
        ("CACHE_NEW_L2_MAX_SIZE", "-1"),
        ("CACHE_NEW_L2_TTL", "inf"),
        ("CACHE_DUAL_WRITE_FAILURE_POLICY", "raise"),
        ("CACHE_DUAL_WRITE_FAILURE_POLICY", "shout"),
    ],
)
def test_errors_name_variable_and_value(var: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        MigrationConfig.from_env({var: raw})
    assert var in str(info.value)
    assert repr(raw) in str(info.value)


def test_l1_ttl_may_not_exceed_l2_ttl() -> None:
    with pytest.raises(ConfigError, match="CACHE_NEW_L1_TTL"):
        MigrationConfig.from_env({"CACHE_NEW_L1_TTL": "100", "CACHE_NEW_L2_TTL": "10"})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"legacy_max_size": 0},
        {"legacy_ttl_seconds": True},
        {"new_l2_max_size": 2.5},
        {"dual_write_failure_policy": "raise"},
    ],
)
def test_direct_construction_is_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        MigrationConfig(**kwargs)  # type: ignore[arg-type]


def test_default_path_is_per_user_not_in_package() -> None:
    path = default_l2_db_path()
    package_dir = Path(sigcache.__file__).resolve().parent
    assert package_dir not in path.resolve().parents
    assert "sigcache" in str(path)
    assert MigrationConfig().resolved_l2_db_path() == str(path)
    assert not MigrationConfig().new_l2_db_path


def test_frozen() -> None:
    with pytest.raises(AttributeError):
        MigrationConfig().legacy_max_size = 5  # type: ignore[misc]
