"""sigcache: a thinking-signature cache for LLM API proxies, with a gated migration.

The names users of the replaced system look for are all importable from here.
"""

from __future__ import annotations

import logging

from sigcache.adapter import LegacySignatureCacheAdapter
from sigcache.aio import AsyncLayeredSignatureCache
from sigcache.config import L1Settings, L2Settings, LayeredConfig, default_db_path
from sigcache.errors import (
    ConfigError,
    GateRefusedError,
    PhaseError,
    PhaseTransitionError,
    RecordingError,
    SigcacheError,
    StorageBusyError,
    StorageError,
    StorageOpenError,
)
from sigcache.facade import CacheFacade
from sigcache.layered import LayeredSignatureCache
from sigcache.legacy import SignatureCache
from sigcache.migration_config import MigrationConfig
from sigcache.phases import MigrationFeatureFlags, MigrationPhase
from sigcache.signature_cache import (
    cache_session_signature,
    cache_signature,
    cache_tool_signature,
    disable_migration_mode,
    enable_migration_mode,
    extract_base_tool_id,
    generate_session_fingerprint,
    get_cache_stats,
    get_cached_signature,
    get_last_signature,
    get_last_signature_with_text,
    get_migration_status,
    get_recent_signature,
    get_recent_signature_with_text,
    get_session_signature,
    get_session_signature_with_text,
    get_signature_cache,
    get_tool_signature,
    get_tool_signature_fuzzy,
    is_migration_mode_enabled,
    reset_cache_stats,
    reset_signature_cache,
    set_migration_phase,
)
from sigcache.strategies import DualWriteStrategy, ReadStrategy

__version__ = "0.1.0"

__all__ = [
    "AsyncLayeredSignatureCache",
    "CacheFacade",
    "ConfigError",
    "DualWriteStrategy",
    "GateRefusedError",
    "L1Settings",
    "L2Settings",
    "LayeredConfig",
    "LayeredSignatureCache",
    "LegacySignatureCacheAdapter",
    "MigrationConfig",
    "MigrationFeatureFlags",
    "MigrationPhase",
    "PhaseError",
    "PhaseTransitionError",
    "ReadStrategy",
    "RecordingError",
    "SigcacheError",
    "SignatureCache",
    "StorageBusyError",
    "StorageError",
    "StorageOpenError",
    "__version__",
    "cache_session_signature",
    "cache_signature",
    "cache_tool_signature",
    "default_db_path",
    "disable_migration_mode",
    "enable_migration_mode",
    "extract_base_tool_id",
    "generate_session_fingerprint",
    "get_cache_stats",
    "get_cached_signature",
    "get_last_signature",
    "get_last_signature_with_text",
    "get_migration_status",
    "get_recent_signature",
    "get_recent_signature_with_text",
    "get_session_signature",
    "get_session_signature_with_text",
    "get_signature_cache",
    "get_tool_signature",
    "get_tool_signature_fuzzy",
    "is_migration_mode_enabled",
    "reset_cache_stats",
    "reset_signature_cache",
    "set_migration_phase",
]

# A library never configures logging; this keeps Python's last-resort handler from printing our
# warnings when the host application has not configured any.
logging.getLogger("sigcache").addHandler(logging.NullHandler())
