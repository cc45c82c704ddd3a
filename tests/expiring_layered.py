"""Deprecated shim: `LayeredSignatureCache` itself takes `expires_at=` / `written_at=` now.

Kept only while tests/test_api_backfill.py imports `expiring_factory`; delete with that import.
"""

from __future__ import annotations

from sigcache.layered import LayeredSignatureCache as ExpiringLayered
from sigcache.new_cache import default_new_cache_factory as expiring_factory

__all__ = ["ExpiringLayered", "expiring_factory"]
