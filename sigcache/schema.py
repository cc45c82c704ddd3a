"""The one L2 schema: DDL, versioning, migrations, pragmas and every SQL statement, as data.

Both the sync store (sqlite3) and the async bridge (aiosqlite) take their SQL from here, so
there is never a second copy of it.

One table holds the three stores (`store` = "main" | "tool" | "session"). `owner` is the
namespace ("" = no owner); `key` is the SHA-256 hex of the normalised text for main entries and
the id itself for tool and session entries (the fuzzy tool look-up searches inside ids).
Times are epoch seconds (REAL) from the cache's injected clock; a row is live while
`expires_at >= now`, matching the legacy rule "expired when more than TTL has passed".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from sigcache.errors import StorageOpenError

__all__ = [
    "COLUMNS",
    "MIGRATIONS",
    "READER_PRAGMAS",
    "SCHEMA_VERSION",
    "WRITER_PRAGMAS",
    "Pragma",
    "bind_text",
    "connection_pragmas",
    "ensure_schema",
    "get_many_sql",
    "migration_steps",
    "read_text",
    "writer_pragmas",
]

SCHEMA_VERSION = 2

Pragma = tuple[str, str]

# Applied on every connect, in order. journal_mode=WAL is persistent in the file; the writer
# sets it. Readers are query_only so a read can never write (DESIGN 3: reads never write).
WRITER_PRAGMAS: tuple[Pragma, ...] = (
    ("journal_mode", "WAL"),
    ("synchronous", "NORMAL"),  # WAL + NORMAL: durable at checkpoint, never corrupt
    ("temp_store", "MEMORY"),
)
READER_PRAGMAS: tuple[Pragma, ...] = (("query_only", "ON"),)


def writer_pragmas(synchronous: str = "NORMAL") -> tuple[Pragma, ...]:
    """WRITER_PRAGMAS with another `synchronous` (`L2Settings.synchronous`)."""
    return tuple((name, synchronous if name == "synchronous" else value)
                 for name, value in WRITER_PRAGMAS)  # fmt: skip


# 2026-11, measured (sqlite 3.40, 2 KB texts, random point look-ups, file in the OS cache):
# a larger `cache_size` or a non-zero `mmap_size` bought nothing measurable at 10^5 rows (both
# ~17 µs per hit; the OS page cache already holds the file, and a hit copies ~4 KB either way),
# so they stay settings (`L2Settings.cache_size_kib`, `mmap_size_bytes`, default 0 = off) for
# deployments whose file outgrows the OS cache, not defaults.
# 2026-11, re-measured at 10^3..10^6 rows (sqlite 3.40.1, 512-char texts + real signatures,
# ~2.1 KB a row, 10^6 rows = 2.08 GB; entries depth 4 and 467k pages, 11% overflow pages, its
# key index depth 4 and 22k pages; `tests/benchmarks/test_bench_scaling.py`): the L2 hit grows
# with the file, but no faster than the store's own SELECT run bare on the same file (hit /
# bare 1.27x, 1.15x, 1.13x, 1.10x at 10^3..10^6, medians of 3 runs): the growth is SQLite's.
# Its cause, counted in read() syscalls per hit (/proc/self/io, noise-free): with the default
# 8 MiB cache 0 / 0.74 / 1.68 / 2.90 pages per hit come from the OS cache at 10^3..10^6 (the
# index leaf, the table leaf, evicted interior pages). 64 MiB reads none only while the keys
# read fit (the benchmark's 4,096 keys); over 65,536 random keys it still reads 0.82 (10^5)
# and 1.74 (10^6), 256 MiB 1.12 at 10^6, paid per reader connection. mmap reads none, but the
# build caps it at 2 GiB (MAX_MMAP_SIZE), below a 10^6-row file, and the time it saved on the
# shared machine (30 -> 23 us at 10^6) was within that run's noise. Defaults unchanged.
def connection_pragmas(
    base: Sequence[Pragma], busy_timeout_ms: int, cache_size_kib: int, mmap_size_bytes: int = 0
) -> list[str]:
    """The PRAGMA statements for one connection: the settings first, then `base`."""
    pragmas = [
        ("busy_timeout", str(int(busy_timeout_ms))),
        ("cache_size", f"-{int(cache_size_kib)}"),  # negative: KiB, not pages
        ("mmap_size", str(int(mmap_size_bytes))),
    ]
    return [f"PRAGMA {name}={value}" for name, value in (*pragmas, *base)]


CREATE_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
SELECT_VERSION = "SELECT MAX(version) FROM schema_version"
INSERT_VERSION = "INSERT INTO schema_version (version) VALUES (?)"
UPDATE_VERSION = "UPDATE schema_version SET version = ?"
FORGET_VERSION = "DELETE FROM schema_version"
HAS_ENTRIES = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entries'"

# Version 1, idempotent. A rowid table with a UNIQUE (store, owner, key) index: a point look-up
# descends the index, then the table. 2026-11, measured at 10^3 and 10^5 rows of 2 KB texts:
# - WITHOUT ROWID with PRIMARY KEY (store, owner, key) is faster at 10^3 (one descent) but ~3x
#   slower at 10^5 (56 vs 17 µs): rows of several KB leave a few records per leaf page, so the
#   tree is deep and every look-up walks overflow pages. Rowid it stays.
# - Moving the large columns (signature, text) after the small ones saved ~1-3 µs at 10^3 and
#   nothing at 10^5, not worth a table-rebuilding migration.
# - Not selecting `text` saves ~2-4 µs, but "last"/"recent" with text need the stored text of a
#   promoted entry, so GET selects every column.
DDL_V1: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS entries (
        store TEXT NOT NULL,
        owner TEXT NOT NULL DEFAULT '',
        key TEXT NOT NULL,
        signature TEXT NOT NULL,
        text TEXT NOT NULL DEFAULT '',
        model TEXT,
        conversation_id TEXT,
        written_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        UNIQUE (store, owner, key)
    )""",
    # Expired-row cleanup is a range delete on this index.
    "CREATE INDEX IF NOT EXISTS entries_expires_at ON entries (expires_at)",
    # Last/recent look-ups: newest write of one store and owner.
    "CREATE INDEX IF NOT EXISTS entries_recent ON entries (store, owner, written_at)",
)

# MIGRATIONS[n] takes a version-n database to version n+1 (a new file is created at version 1
# and migrated like any other, so there is one path to the current schema).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # Version 2 (issue 13, provenance): the provider/credential scope of an entry, and the index
    # of the conversation-strict last/recent look-ups (newest write of one conversation). ADD
    # COLUMN is O(1) in SQLite (existing rows read NULL: no scope); the index is built once.
    1: (
        "ALTER TABLE entries ADD COLUMN scope TEXT",
        "CREATE INDEX IF NOT EXISTS entries_conversation "
        "ON entries (store, owner, conversation_id, written_at)",
    ),
}


def migration_steps(current: int) -> list[str]:
    """The statements taking a version-`current` database to SCHEMA_VERSION, in order."""
    steps: list[str] = []
    for version in range(current, SCHEMA_VERSION):
        steps.extend(MIGRATIONS[version])
    return steps


def ensure_schema(conn: sqlite3.Connection, path: str) -> None:
    """Create the schema if missing and migrate it to `SCHEMA_VERSION` (idempotent)."""
    conn.execute("BEGIN IMMEDIATE")  # two processes opening one new file must not race the DDL
    try:
        conn.execute(CREATE_VERSION_TABLE)
        if conn.execute(HAS_ENTRIES).fetchone() is None:
            # No table (a new file, or the table dropped under us): whatever version is noted,
            # the version-1 DDL below starts from scratch, so every migration must run.
            conn.execute(FORGET_VERSION)
        for statement in DDL_V1:
            conn.execute(statement)
        version = conn.execute(SELECT_VERSION).fetchone()[0]
        if version is None:
            conn.execute(INSERT_VERSION, (1,))
            version = 1
        if version > SCHEMA_VERSION:
            raise StorageOpenError(
                f"open {path!r}: schema version {version} is newer than this sigcache "
                f"({SCHEMA_VERSION})",
                path,
            )
        for statement in migration_steps(version):
            conn.execute(statement)
        if version < SCHEMA_VERSION:
            conn.execute(UPDATE_VERSION, (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


COLUMNS = (
    "store, owner, key, signature, text, model, conversation_id, written_at, expires_at, scope"
)
_COLUMNS = COLUMNS  # `Entry` field order

UPSERT = (
    f"INSERT INTO entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (store, owner, key) DO UPDATE SET signature = excluded.signature, "
    "text = excluded.text, model = excluded.model, conversation_id = excluded.conversation_id, "
    "written_at = excluded.written_at, expires_at = excluded.expires_at, scope = excluded.scope"
)
GET = (
    f"SELECT {_COLUMNS} FROM entries WHERE store = ? AND owner = ? AND key = ? AND expires_at >= ?"
)
# The key look-up of `SQLiteStore.get` and the async bridge: only the columns after the key
# (store, owner and key are the caller's own parameters). Every selected column costs sqlite3
# several API calls, each taking the connection mutex: three fewer cut ~15% of the
# instructions of an L2 hit (2026-11, callgrind). Follows COLUMNS when columns are appended.
VALUE_COLUMNS = COLUMNS.split(", ", 3)[3]
GET_VALUES = (
    f"SELECT {VALUE_COLUMNS} FROM entries "
    "WHERE store = ? AND owner = ? AND key = ? AND expires_at >= ?"
)
EXISTS_ANY_OWNER = "SELECT 1 FROM entries WHERE store = ? AND key = ? AND expires_at >= ? LIMIT 1"
DELETE = "DELETE FROM entries WHERE store = ? AND owner = ? AND key = ?"
DELETE_ANY_OWNER = "DELETE FROM entries WHERE store = ? AND key = ?"
DELETE_STORE = "DELETE FROM entries WHERE store = ?"
DELETE_EXPIRED = "DELETE FROM entries WHERE expires_at < ?"
# Keep the newest-written `max_rows` rows (the documented L2 bound), applied by cleanup.
TRIM = (
    "DELETE FROM entries WHERE rowid IN (SELECT rowid FROM entries "
    "ORDER BY written_at DESC LIMIT -1 OFFSET ?)"
)
COUNT = "SELECT COUNT(*) FROM entries"
COUNT_LIVE_STORE = "SELECT COUNT(*) FROM entries WHERE store = ? AND expires_at >= ?"
LATEST = (
    f"SELECT {_COLUMNS} FROM entries WHERE store = ? AND owner = ? AND written_at > ? "
    "AND expires_at >= ? ORDER BY written_at DESC LIMIT 1"
)
LATEST_WITH_TEXT = (
    f"SELECT {_COLUMNS} FROM entries WHERE store = ? AND owner = ? AND written_at > ? "
    "AND expires_at >= ? AND text != '' ORDER BY written_at DESC LIMIT 1"
)
# The same within one conversation (index entries_conversation).
LATEST_IN_CONVERSATION = (
    f"SELECT {_COLUMNS} FROM entries WHERE store = ? AND owner = ? AND conversation_id = ? "
    "AND written_at > ? AND expires_at >= ? ORDER BY written_at DESC LIMIT 1"
)
LATEST_IN_CONVERSATION_WITH_TEXT = (
    f"SELECT {_COLUMNS} FROM entries WHERE store = ? AND owner = ? AND conversation_id = ? "
    "AND written_at > ? AND expires_at >= ? AND text != '' ORDER BY written_at DESC LIMIT 1"
)
# instr() rather than LIKE: ids may contain % and _ (the origin's LIKE did not escape them).
SEARCH_KEY = (
    f"SELECT {_COLUMNS} FROM entries WHERE store = ? AND owner = ? AND key != ? "
    "AND instr(key, ?) > 0 AND expires_at >= ? ORDER BY written_at DESC LIMIT ?"
)
SCAN_LIVE = f"SELECT {_COLUMNS} FROM entries WHERE expires_at >= ? ORDER BY written_at"


def bind_text(value: str) -> str | bytes:
    """A str as sqlite3 can bind it: lone surrogates (which UTF-8 cannot encode) as a BLOB.

    The mapping is deterministic, so equality look-ups of such texts and ids still match;
    `read_text` reverses it.
    """
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")
    return value


def read_text(value: object) -> str:
    """The str a column held, reversing `bind_text`."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogatepass")
    return str(value)


# SQLite's default bound on host parameters is 32766 (since 3.32); stay well under it.
MAX_KEYS_PER_QUERY = 500


def get_many_sql(count: int) -> str:
    """SELECT of up to `count` keys of one store and owner in one query."""
    marks = ", ".join("?" * count)
    return (
        f"SELECT {_COLUMNS} FROM entries WHERE store = ? AND owner = ? "
        f"AND key IN ({marks}) AND expires_at >= ?"
    )
