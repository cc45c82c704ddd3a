"""sigcache: a thinking-signature cache for LLM API proxies, with a gated migration."""

from __future__ import annotations

__version__ = "0.1.0"
