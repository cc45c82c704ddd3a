"""Phases: parsing, transition rules and the feature-flag table."""

from __future__ import annotations

import pytest

from sigcache.errors import PhaseError, PhaseTransitionError
from sigcache.phases import (
    PHASE_FLAG_TABLE,
    VALID_PHASE_NAMES,
    MigrationFeatureFlags,
    MigrationPhase,
    TransitionKind,
    check_transition,
    parse_phase,
)

P = MigrationPhase


def test_values_match_the_replaced_system() -> None:
    assert [(p.name, int(p)) for p in P] == [
        ("LEGACY_ONLY", 1),
        ("DUAL_WRITE", 2),
        ("NEW_PREFERRED", 3),
        ("NEW_ONLY", 4),
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("DUAL_WRITE", P.DUAL_WRITE),
        ("dual_write", P.DUAL_WRITE),
        ("  New_Preferred ", P.NEW_PREFERRED),
        ("1", P.LEGACY_ONLY),
        (" 4 ", P.NEW_ONLY),
        (3, P.NEW_PREFERRED),
        (P.NEW_ONLY, P.NEW_ONLY),
    ],
)
def test_parse_accepts_names_ints_and_digits(raw: object, expected: MigrationPhase) -> None:
    assert parse_phase(raw) is expected
    assert MigrationPhase.parse(raw) is expected


@pytest.mark.parametrize("raw", ["", "0", "5", 0, 5, -1, "DUAL", True, None, 2.0, "phase2"])
def test_parse_rejects_everything_else_listing_valid_names(raw: object) -> None:
    with pytest.raises(PhaseError) as info:
        parse_phase(raw)
    assert info.value.valid == list(VALID_PHASE_NAMES)
    assert "DUAL_WRITE" in str(info.value)


@pytest.mark.parametrize("current", list(P))
@pytest.mark.parametrize("target", list(P))
def test_transition_rules(current: MigrationPhase, target: MigrationPhase) -> None:
    if target == current:
        assert check_transition(current, target) is TransitionKind.NOOP
    elif target < current:
        assert check_transition(current, target) is TransitionKind.ROLLBACK
    elif target == current + 1:
        assert check_transition(current, target) is TransitionKind.PROMOTION
    else:
        with pytest.raises(PhaseTransitionError, match="one phase at a time"):
            check_transition(current, target)


# phase: (write legacy, write new, read legacy, read new, prefer new) -- reference 3.2
TABLE = {
    P.LEGACY_ONLY: (True, False, True, False, False),
    P.DUAL_WRITE: (True, True, True, True, False),
    P.NEW_PREFERRED: (True, True, True, True, True),
    P.NEW_ONLY: (False, True, False, True, True),
}


@pytest.mark.parametrize("phase", list(P))
def test_flag_table(phase: MigrationPhase) -> None:
    flags = MigrationFeatureFlags(phase)
    got = (
        flags.should_write_to_legacy,
        flags.should_write_to_new,
        flags.should_read_from_legacy,
        flags.should_read_from_new,
        flags.prefer_new_on_read,
    )
    assert got == TABLE[phase]
    assert flags.is_dual_write_enabled == (got[0] and got[1])
    assert PHASE_FLAG_TABLE[phase] == flags.effective


def test_overrides_beat_the_phase_and_clear() -> None:
    flags = MigrationFeatureFlags(P.DUAL_WRITE)
    flags.override("write_to_new", False)
    flags.override("prefer_new_on_read", True)
    assert not flags.should_write_to_new
    assert flags.prefer_new_on_read
    flags.set_phase(P.LEGACY_ONLY)
    assert flags.prefer_new_on_read  # an override survives a phase change
    assert flags.get_status()["overrides"]["write_to_new"] is False
    flags.clear_overrides()
    assert flags.effective == PHASE_FLAG_TABLE[P.LEGACY_ONLY]
    with pytest.raises(ValueError, match="unknown flag"):
        flags.override("nope", True)


def test_status_shape() -> None:
    status = MigrationFeatureFlags(P.NEW_ONLY).get_status()
    assert status["phase"] == "NEW_ONLY"
    assert status["phase_value"] == 4
    assert set(status) == {"phase", "phase_value", "write", "read", "debug", "overrides"}
    assert set(status["write"]) == {"to_legacy", "to_new", "dual_write", "async_to_new"}
    assert status["read"] == {"from_legacy": False, "from_new": True, "prefer_new": True}
    assert all(v is None for v in status["overrides"].values())
