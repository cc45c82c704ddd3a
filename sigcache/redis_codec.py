"""Redis key layout and value codec of the Redis L2 (pure: no connection, no clock).

Keys (bytes), every part percent-encoded so none holds a ':' or a glob character::

    {prefix}:e:{store}:{owner}:{key}   one entry (a string value, with a Redis TTL)
    {prefix}:x:{store}                 sorted set of entry keys, score = expires_at
    {prefix}:z:{store}:{owner}         sorted set of encoded keys, score = written_at

The owner ("" = no owner) and the key (a SHA-256 hex digest for main entries, the id itself for
tool and session entries) are separate parts, so owners can never match each other. Values are
the `Entry` fields as a JSON array (the tenth, `scope`, only when set, so a value without a scope
reads the same in every version): orjson when it can, the stdlib (which escapes lone surrogates)
when a text holds one; the first byte says which.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from urllib.parse import quote, unquote_to_bytes

import orjson

from sigcache.errors import ConfigError
from sigcache.storage import STORES, Entry

__all__ = ["KeyLayout", "decode_entry", "encode_entry", "encode_part"]

_SAFE = re.compile(r"[A-Za-z0-9_.\-]*")  # left as is; anything else is percent-encoded
_ORJSON = b"o"
_STDJSON = b"j"


def encode_part(value: str) -> bytes:
    """One key part as bytes without ':' or glob characters (injective; lone surrogates too)."""
    if _SAFE.fullmatch(value):
        return value.encode("ascii")
    return quote(value.encode("utf-8", "surrogatepass"), safe="").encode("ascii")


def decode_part(part: bytes) -> str:
    """The str `encode_part` encoded."""
    return unquote_to_bytes(part).decode("utf-8", "surrogatepass")


class KeyLayout:
    """Builds the Redis keys of one prefix (see the module docstring)."""

    def __init__(self, prefix: str) -> None:
        if not prefix or not _SAFE.fullmatch(prefix.replace(":", "")):
            raise ConfigError(f"redis key prefix must be [A-Za-z0-9_.:-]+, got {prefix!r}")
        self.prefix = prefix.encode("ascii")
        self._entry = {store: self.prefix + f":e:{store}:".encode() for store in STORES}
        self._index = {store: self.prefix + f":x:{store}".encode() for store in STORES}
        self._recent = {store: self.prefix + f":z:{store}:".encode() for store in STORES}

    def entry(self, store: str, owner: str, key: str) -> bytes:
        """The key of one entry."""
        return self._entry[store] + encode_part(owner) + b":" + encode_part(key)

    def entry_of_member(self, store: str, owner: str, member: bytes) -> bytes:
        """The entry key behind a member of the owner's recent set."""
        return self._entry[store] + encode_part(owner) + b":" + member

    def index(self, store: str) -> bytes:
        """The store's expiry index."""
        return self._index[store]

    def recent(self, store: str, owner: str) -> bytes:
        """The owner's recent set (newest write = highest score) in one store."""
        return self._recent[store] + encode_part(owner)

    def recent_pattern(self, store: str) -> bytes:
        """SCAN pattern of every owner's recent set of one store."""
        return self._recent[store] + b"*"

    def any_owner_pattern(self, store: str, key: str) -> bytes:
        """SCAN pattern of one key's entries under every owner."""
        return self._entry[store] + b"*:" + encode_part(key)

    def split_entry(self, store: str, entry_key: bytes) -> tuple[bytes, bytes]:
        """(encoded owner, encoded key) of an entry key of `store`."""
        owner, _, member = entry_key[len(self._entry[store]) :].rpartition(b":")
        return owner, member

    def recent_of_entry(self, store: str, entry_key: bytes) -> tuple[bytes, bytes]:
        """(recent-set key, member) an entry key is indexed under."""
        owner, member = self.split_entry(store, entry_key)
        return self._recent[store] + owner, member


def encode_entry(entry: Entry) -> bytes:
    """An entry as a Redis value (nine fields without a scope, so older readers read it too)."""
    fields = list(entry) if entry.scope is not None else list(entry[:9])
    try:
        return _ORJSON + orjson.dumps(fields)
    except orjson.JSONEncodeError:  # a lone surrogate: orjson refuses, the stdlib escapes it
        return _STDJSON + json.dumps(fields).encode("ascii")


def decode_entry(raw: bytes) -> Entry:
    """The entry a Redis value holds; ValueError if it is not one."""
    marker, body = raw[:1], memoryview(raw)[1:]
    if marker == _ORJSON:
        fields: Sequence[object] = orjson.loads(body)
    elif marker == _STDJSON:
        fields = json.loads(bytes(body))
    else:
        raise ValueError("not a sigcache entry")
    # Nine fields: written before issue 13 or without a scope (scope None); ten: with one.
    if not isinstance(fields, list) or len(fields) not in (9, 10):
        raise ValueError("not a sigcache entry")
    return Entry(*fields)
