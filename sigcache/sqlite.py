"""The sync L2 store over sqlite3: connections, pragmas, schema set-up and every query.

Connections are reused: one reader connection per thread (query_only, so reads never write) and
one writer connection, used only by the background writer thread (`sigcache.writer`). A reader
of a thread that has exited is closed when the next reader opens. After a fork the child
abandons the parent's connections (SQLite forbids carrying them across a fork) and opens its
own. A missing parent directory is created (`L2Settings.create_directory`); a path that cannot
hold a database fails at open with `StorageOpenError` naming it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from time import monotonic

from sigcache import forksafe, schema
from sigcache.config import L2Settings
from sigcache.errors import StorageError, StorageOpenError, translate_sqlite_error
from sigcache.schema import bind_text, ensure_schema
from sigcache.storage import Entry, StorageRecreatedError
from sigcache.writer import BatchWriter

__all__ = ["BatchWriter", "SQLiteStore", "ensure_schema"]  # BatchWriter: importable as before

_GET_VALUES = schema.GET_VALUES
_from_row = Entry.from_row
# Reads re-check that the path still names the open file at most this often (seconds); the
# writer checks before every batch.
IDENTITY_CHECK_INTERVAL_S = 0.25


def _prepare_directory(path: str, create: bool) -> None:
    if path == ":memory:" or path.startswith("file:"):
        # Readers on other connections could not see a private in-memory database.
        raise StorageOpenError(f"open {path!r}: a database file path is required", path)
    parent = Path(path).parent
    if parent.is_dir():
        return
    if not create:
        raise StorageOpenError(f"open {path!r}: directory {str(parent)!r} does not exist", path)
    missing = [parent, *(p for p in parent.parents if not p.is_dir())]
    try:
        for directory in reversed(missing):
            directory.mkdir(mode=0o700, exist_ok=True)
            os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask
    except OSError as exc:
        raise StorageOpenError(f"open {path!r}: cannot create its directory: {exc}", path) from exc


def _create_owner_only(path: str) -> None:
    """Create a missing database file 0600: SQLite would create it with the umask's mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)  # os.open's mode is masked by the umask too
    finally:
        os.close(fd)


def _restrict_sidecars(path: str) -> None:
    """-wal/-shm of an owner-only database are owner-only too (texts live in the WAL)."""
    with contextlib.suppress(OSError):
        if os.stat(path).st_mode & 0o077:
            return  # a database shared on purpose keeps its sidecars as SQLite made them
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(path + suffix, 0o600)


def _failure(exc: sqlite3.Error | OSError, path: str, action: str) -> StorageError:
    if isinstance(exc, sqlite3.Error):
        return translate_sqlite_error(exc, path, action)
    return StorageError(f"{action} {path!r}: {type(exc).__name__}: {exc}", path)


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`; None when nothing is there."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino)


class SQLiteStore:
    """L2 over one SQLite file in WAL mode; implements `storage.QueryStorage`."""

    def __init__(self, path: str | os.PathLike[str], settings: L2Settings | None = None) -> None:
        self.path = os.fspath(path)
        self._settings = settings or L2Settings()
        self._lock = threading.Lock()  # guards the connection registry, not queries
        self._local = threading.local()
        self._readers: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._writer: sqlite3.Connection | None = None
        self._closed = False
        # The file this store opened (device, inode): a path that names another file, or none,
        # means the database was deleted or replaced under us (see `_check_file`).
        self._file: tuple[int, int] | None = None
        self._generation = 0  # bumped when the file is recreated: connections reopen
        self._writer_generation = 0
        self._next_check = 0.0
        try:
            self._writer = self._open_file()
        except (sqlite3.Error, OSError) as exc:
            raise StorageOpenError(str(_failure(exc, self.path, "open")), self.path) from exc
        forksafe.register(self)

    # -- connections ------------------------------------------------------------------------

    def _connect(self, pragmas: Sequence[schema.Pragma]) -> sqlite3.Connection:
        settings = self._settings
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in the writer).
        conn = sqlite3.connect(
            self.path,
            timeout=settings.busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            for statement in schema.connection_pragmas(
                pragmas, settings.busy_timeout_ms, settings.cache_size_kib, settings.mmap_size_bytes
            ):
                conn.execute(statement).fetchall()
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_file(self) -> sqlite3.Connection:
        """Create the file (owner-only) and its schema if missing; a writer connection on it."""
        _prepare_directory(self.path, self._settings.create_directory)
        _create_owner_only(self.path)
        conn = self._connect(schema.writer_pragmas(self._settings.synchronous))
        try:
            ensure_schema(conn, self.path)
        except BaseException:
            conn.close()
            raise
        _restrict_sidecars(self.path)
        self._file = _identity(self.path)
        return conn

    def _check_file(self) -> None:
        """Recreate a database deleted or replaced under us; raise `StorageRecreatedError`.

        Connections on an unlinked file keep working (into the void): without this check,
        committed writes vanish. The caller counts the error; connections reopen lazily.
        """
        if _identity(self.path) == self._file:
            return
        with self._lock:
            if _identity(self.path) == self._file:
                return  # another thread recreated it
            old = self._file
            try:
                self._open_file().close()
            except (sqlite3.Error, OSError) as exc:
                raise _failure(exc, self.path, "recreate") from exc
            self._generation += 1
        raise StorageRecreatedError(
            f"recreate {self.path!r}: the database file {old} was deleted or replaced", self.path
        )

    def verify(self, force: bool = False) -> int:
        """Check the file's identity (at most once per interval unless forced); the generation.

        Readers call it before a read, and always before connecting: connecting to a missing
        path would create an empty file without the schema (or its owner-only mode). A
        connection opened in an older generation is on a file since recreated.
        """
        now = monotonic()
        if force or now >= self._next_check:
            self._next_check = now + IDENTITY_CHECK_INTERVAL_S
            self._check_file()
        return self._generation

    def after_fork_in_child(self) -> None:
        """Abandon the parent's connections (unusable in the child); reopen lazily."""
        # 2026-11: never close them here: closing would roll back the parent's transaction.
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers = []
        self._writer = None

    def _reader(self) -> sqlite3.Connection:
        """This thread's reader connection on the current file, opened on first use."""
        if self._closed:
            raise StorageError(f"read {self.path!r}: store is closed", self.path)
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        fresh = conn is not None and local.generation == self._generation
        self.verify(force=not fresh)
        if conn is not None and fresh:
            return conn
        if conn is not None:  # opened on a file since recreated
            self._forget_reader(conn)
        generation = self._generation
        try:
            conn = self._connect(schema.READER_PRAGMAS)
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, self.path, "read") from exc
        with self._lock:
            dead = [pair for pair in self._readers if not pair[0].is_alive()]
            self._readers = [pair for pair in self._readers if pair[0].is_alive()]
            self._readers.append((threading.current_thread(), conn))
        for _, stale in dead:  # a thread that exited cannot use its connection again
            stale.close()
        # get()'s own cursor: reusing one saves creating and freeing a cursor per hit (~3%).
        # A point look-up runs to completion in fetchone, so it holds no read transaction open.
        local.conn, local.cursor, local.generation = conn, conn.cursor(), generation
        return conn

    def _forget_reader(self, conn: sqlite3.Connection) -> None:
        """Close this thread's reader and drop it from the registry."""
        self._local.conn = self._local.cursor = None
        with self._lock:
            self._readers = [pair for pair in self._readers if pair[1] is not conn]
        conn.close()

    def reader_count(self) -> int:
        """Reader connections open in this process (one per live thread that has read)."""
        with self._lock:
            return len(self._readers)

    def _read_failed(self, exc: sqlite3.Error, action: str) -> StorageError:
        """Drop this thread's reader (a fresh one lets a cleared fault recover); translate."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._forget_reader(conn)
        return translate_sqlite_error(exc, self.path, action)

    def _rows(self, sql: str, params: Sequence[object], action: str = "read") -> list[Entry]:
        try:
            rows = self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._read_failed(exc, action) from exc
        return [_from_row(row) for row in rows]

    def _scalar(self, sql: str, params: Sequence[object], action: str) -> int | None:
        try:
            row = self._reader().execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise self._read_failed(exc, action) from exc
        return None if row is None else int(row[0])

    def _write_conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageError(f"write {self.path!r}: store is closed", self.path)
        try:
            self._check_file()
        finally:  # a recreated file (or a failed check) invalidates this connection
            if self._writer is not None and self._writer_generation != self._generation:
                self._drop_writer()
        if self._writer is None:
            generation = self._generation
            self._writer = self._open_file()  # heals a schema dropped under us
            self._writer_generation = generation
        return self._writer

    def _drop_writer(self) -> None:
        conn, self._writer = self._writer, None
        if conn is not None:
            conn.close()

    @contextmanager
    def _writing(self, action: str) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._write_conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError) as exc:
            self._drop_writer()
            raise _failure(exc, self.path, action) from exc

    # -- Storage ----------------------------------------------------------------------------

    def get(self, store: str, owner: str, key: str, now: float) -> Entry | None:
        """The live entry for a key, or None."""
        # 2026-11: the hot L2 path, kept flat: no context manager, no per-call fork check,
        # bind_text only for non-ASCII; this wrapper used to cost as much as the SELECT.
        local = self._local
        cur = getattr(local, "cursor", None)
        if cur is None or local.generation != self._generation or monotonic() >= self._next_check:
            self._reader()
            cur = local.cursor
        params = (
            store,
            owner if owner.isascii() else bind_text(owner),
            key if key.isascii() else bind_text(key),
            now,
        )
        try:
            row = cur.execute(_GET_VALUES, params).fetchone()
        except sqlite3.Error as exc:
            raise self._read_failed(exc, "read") from exc
        # The row holds the columns after the key (GET_VALUES); the caller's own store, owner
        # and key complete it (equal to the stored ones: the look-up matched them exactly).
        return None if row is None else _from_row((store, owner, key, *row))

    def get_many(self, store: str, owner: str, keys: Sequence[str], now: float) -> dict[str, Entry]:
        """Live entries for many keys, one query per `schema.MAX_KEYS_PER_QUERY` keys."""
        found: dict[str, Entry] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), schema.MAX_KEYS_PER_QUERY):
            chunk = unique[start : start + schema.MAX_KEYS_PER_QUERY]
            params = (store, bind_text(owner), *map(bind_text, chunk), now)
            for entry in self._rows(schema.get_many_sql(len(chunk)), params):
                found[entry.key] = entry
        return found

    def put_many(self, entries: Sequence[Entry]) -> int:
        """Upsert entries with one executemany in one transaction."""
        if not entries:
            return 0
        with self._writing("write") as conn:
            conn.executemany(schema.UPSERT, [entry.as_row() for entry in entries])
        return len(entries)

    def delete(self, store: str, owner: str | None, key: str) -> int:
        """Delete a key of one owner, or of every owner when `owner` is None."""
        with self._writing("delete") as conn:
            if owner is None:
                return conn.execute(schema.DELETE_ANY_OWNER, (store, bind_text(key))).rowcount
            return conn.execute(schema.DELETE, (store, bind_text(owner), bind_text(key))).rowcount

    def cleanup(self, now: float, max_rows: int) -> int:
        """Delete expired rows, then trim to the newest-written `max_rows` rows."""
        with self._writing("cleanup") as conn:
            removed = conn.execute(schema.DELETE_EXPIRED, (now,)).rowcount
            if conn.execute(schema.COUNT).fetchone()[0] > max_rows:
                removed += conn.execute(schema.TRIM, (max_rows,)).rowcount
        return int(removed)

    def clear_store(self, store: str) -> int:
        """Delete every row of one store."""
        with self._writing("clear") as conn:
            return int(conn.execute(schema.DELETE_STORE, (store,)).rowcount)

    # -- ordered look-ups ---------------------------------------------------------------------

    def latest(
        self,
        store: str,
        owner: str,
        since: float,
        now: float,
        with_text: bool = False,
        conversation: str | None = None,
    ) -> Entry | None:
        """The newest live entry written after `since` (in one conversation if given)."""
        if conversation is not None:
            sql = (
                schema.LATEST_IN_CONVERSATION_WITH_TEXT
                if with_text
                else schema.LATEST_IN_CONVERSATION
            )
            params: tuple[object, ...] = (
                store,
                bind_text(owner),
                bind_text(conversation),
                since,
                now,
            )
        else:
            sql = schema.LATEST_WITH_TEXT if with_text else schema.LATEST
            params = (store, bind_text(owner), since, now)
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def search(
        self, store: str, owner: str, needle: str, exclude: str, limit: int, now: float
    ) -> list[Entry]:
        """Live entries whose key contains `needle`, newest first."""
        params = (store, bind_text(owner), bind_text(exclude), bind_text(needle), now, limit)
        return self._rows(schema.SEARCH_KEY, params)

    def exists_any_owner(self, store: str, key: str, now: float) -> bool:
        """Whether any owner holds a live row for the key."""
        params = (store, bind_text(key), now)
        return self._scalar(schema.EXISTS_ANY_OWNER, params, "read") is not None

    def count_live(self, store: str, now: float) -> int:
        """Live rows of one store."""
        return self._scalar(schema.COUNT_LIVE_STORE, (store, now), "count") or 0

    def count_rows(self) -> int:
        """Every row, live or not."""
        return self._scalar(schema.COUNT, (), "count") or 0

    def scan(self, now: float) -> Iterator[Entry]:
        """Every live entry, oldest write first, fetched in chunks."""
        try:
            cursor = self._reader().execute(schema.SCAN_LIVE, (now,))
            while rows := cursor.fetchmany(256):
                yield from (_from_row(row) for row in rows)
        except sqlite3.Error as exc:
            raise self._read_failed(exc, "scan") from exc

    def close(self) -> None:
        """Close every connection this process opened (all threads' readers and the writer)."""
        with self._lock:
            self._closed = True
            readers, self._readers = self._readers, []
        self._local = threading.local()  # no thread may reuse a closed connection
        for _, conn in readers:
            conn.close()
        self._drop_writer()
