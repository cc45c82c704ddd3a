"""Pure helpers of the legacy module API: session fingerprints, tool ids, client TTL windows."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

# Moved to `sigcache.provenance` (issue 13); importable from here as before.
from sigcache.provenance import extract_base_tool_id, model_family

__all__ = [
    "CLIENT_TTL_CONFIG",
    "extract_base_tool_id",
    "generate_full_fingerprint",
    "generate_last_n_fingerprint",
    "generate_multi_level_fingerprint",
    "generate_session_fingerprint",
    "get_ttl_for_client",
    "model_family",
    "recent_window",
]

# Seconds per client type. In the replaced system (and here, for compatibility) this only sizes
# the time windows of the recent-signature fallback; it never changes entry expiry.
CLIENT_TTL_CONFIG: Mapping[str, int] = {
    "cursor": 7200,
    "windsurf": 7200,
    "claude_code": 3600,
    "cline": 3600,
    "aider": 3600,
    "continue_dev": 3600,
    "openai_api": 3600,
    "default": 3600,
}


def get_ttl_for_client(client_type: str | None) -> int:
    """Seconds for a client type; empty, None or unknown types give the default (3600)."""
    if not client_type or not isinstance(client_type, str):
        return CLIENT_TTL_CONFIG["default"]
    return CLIENT_TTL_CONFIG.get(client_type.lower().strip(), CLIENT_TTL_CONFIG["default"])


def recent_window(time_window_seconds: float, client_type: str | None) -> float:
    """The recent-signature window: half the client TTL when a client type is given."""
    if client_type:
        return get_ttl_for_client(client_type) // 2
    return time_window_seconds


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            item.get("text", "")
            for item in content
            if isinstance(item, dict) and item.get("type") == "text"
        ]
        return " ".join(part for part in parts if isinstance(part, str))
    return ""


def _md5_16(text: str) -> str:
    digest = hashlib.md5(text.encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return digest.hexdigest()[:16]


def _dict_messages(messages: object) -> list[Mapping[str, Any]]:
    if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
        return []
    return [m for m in messages if isinstance(m, Mapping)]


def generate_session_fingerprint(messages: object) -> str:
    """First 16 hex of MD5 of the first user message (else the first system message); "" if none."""
    candidates = _dict_messages(messages)
    chosen = next((m for m in candidates if m.get("role") == "user"), None)
    if chosen is None:
        chosen = next((m for m in candidates if m.get("role") == "system"), None)
    if chosen is None:
        return ""
    text = _message_text(chosen.get("content"))
    return _md5_16(text) if text else ""


def _role_fingerprint(messages: list[Mapping[str, Any]], chars: int) -> str:
    parts = []
    for message in messages:
        text = _message_text(message.get("content"))
        if text:
            parts.append(f"{message.get('role')}:{text[:chars]}")
    return _md5_16("|".join(parts)) if parts else ""


def generate_last_n_fingerprint(messages: object, n: int = 3) -> str:
    """MD5[:16] over `role:content[:100]` of the last n messages, joined by "|"."""
    candidates = _dict_messages(messages)
    if not isinstance(n, int) or n <= 0:
        return ""
    return _role_fingerprint(candidates[-n:], 100)


def generate_full_fingerprint(messages: object) -> str:
    """MD5[:16] over `role:content[:50]` of every message, joined by "|"."""
    return _role_fingerprint(_dict_messages(messages), 50)


def generate_multi_level_fingerprint(messages: object) -> dict[str, str]:
    """The three fingerprints: first_user, last_n (n=3) and full."""
    return {
        "first_user": generate_session_fingerprint(messages),
        "last_n": generate_last_n_fingerprint(messages, 3),
        "full": generate_full_fingerprint(messages),
    }
