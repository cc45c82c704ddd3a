"""The public surface: every name DESIGN section 2 promises, from `sigcache` and the module API."""

from __future__ import annotations

import subprocess
import sys

import sigcache
from sigcache import signature_cache

DESIGN_CLASSES = [
    "SignatureCache",
    "CacheFacade",
    "LegacySignatureCacheAdapter",
    "MigrationPhase",
    "MigrationFeatureFlags",
    "MigrationConfig",
    "DualWriteStrategy",
    "ReadStrategy",
]
DESIGN_FUNCTIONS = [
    "enable_migration_mode",
    "disable_migration_mode",
    "set_migration_phase",
    "get_migration_status",
    "is_migration_mode_enabled",
    "cache_signature",
    "get_cached_signature",
    "get_cache_stats",
    "reset_cache_stats",
    "get_last_signature",
    "get_last_signature_with_text",
    "get_recent_signature",
    "get_recent_signature_with_text",
    "cache_tool_signature",
    "get_tool_signature",
    "extract_base_tool_id",
    "get_tool_signature_fuzzy",
    "cache_session_signature",
    "get_session_signature",
    "get_session_signature_with_text",
    "generate_session_fingerprint",
    "get_signature_cache",
    "reset_signature_cache",
]


def test_design_names_exist_in_both_places() -> None:
    for name in DESIGN_CLASSES + DESIGN_FUNCTIONS:
        assert name in sigcache.__all__, name
        assert getattr(sigcache, name) is not None
    for name in DESIGN_FUNCTIONS:
        assert callable(getattr(signature_cache, name)), name
        assert getattr(sigcache, name) is getattr(signature_cache, name)


def test_all_is_exactly_what_is_exported() -> None:
    assert sorted(sigcache.__all__) == sorted(set(sigcache.__all__))
    for name in sigcache.__all__:
        assert hasattr(sigcache, name), name


def test_import_is_light_and_quiet() -> None:
    code = "import sys, sigcache; print('fastapi' in sys.modules, 'pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
    assert done.stderr == ""
