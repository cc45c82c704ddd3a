"""The sync L2 store over sqlite3: connections, pragmas, schema set-up and every query.

Connections are reused: one reader connection per thread (query_only, so reads never write) and
one writer connection, used only by the background writer thread (`BatchWriter`, below). After a
fork the child abandons the parent's connections (SQLite forbids carrying them across a fork)
and opens its own. A missing parent directory is created (`L2Settings.create_directory`); a
path that cannot hold a database fails at open with `StorageOpenError` naming it.
"""

from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sigcache import schema
from sigcache.config import L2Settings
from sigcache.errors import StorageError, StorageOpenError, translate_sqlite_error
from sigcache.schema import bind_text
from sigcache.storage import BurstLog, Entry, Storage

__all__ = ["BatchWriter", "SQLiteStore", "ensure_schema"]

log = logging.getLogger("sigcache.sqlite")


def _prepare_directory(path: str, create: bool) -> None:
    if path == ":memory:" or path.startswith("file:"):
        # Readers on other connections could not see a private in-memory database.
        raise StorageOpenError(f"open {path!r}: a database file path is required", path)
    parent = Path(path).parent
    if parent.is_dir():
        return
    if not create:
        raise StorageOpenError(f"open {path!r}: directory {str(parent)!r} does not exist", path)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageOpenError(f"open {path!r}: cannot create its directory: {exc}", path) from exc


def ensure_schema(conn: sqlite3.Connection, path: str) -> None:
    """Create the schema if missing and migrate it to `schema.SCHEMA_VERSION` (idempotent)."""
    conn.execute("BEGIN IMMEDIATE")  # two processes opening one new file must not race the DDL
    try:
        conn.execute(schema.CREATE_VERSION_TABLE)
        for statement in schema.DDL_V1:
            conn.execute(statement)
        version = conn.execute(schema.SELECT_VERSION).fetchone()[0]
        if version is None:
            conn.execute(schema.INSERT_VERSION, (1,))
            version = 1
        if version > schema.SCHEMA_VERSION:
            raise StorageOpenError(
                f"open {path!r}: schema version {version} is newer than this sigcache "
                f"({schema.SCHEMA_VERSION})",
                path,
            )
        for statement in schema.migration_steps(version):
            conn.execute(statement)
        if version < schema.SCHEMA_VERSION:
            conn.execute(schema.UPDATE_VERSION, (schema.SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class SQLiteStore:
    """L2 over one SQLite file in WAL mode; implements `storage.QueryStorage`."""

    def __init__(self, path: str | os.PathLike[str], settings: L2Settings | None = None) -> None:
        self.path = os.fspath(path)
        self._settings = settings or L2Settings()
        self._lock = threading.Lock()  # guards the connection registry, not queries
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._writer: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._closed = False
        _prepare_directory(self.path, self._settings.create_directory)
        try:
            self._writer = self._connect(schema.WRITER_PRAGMAS)
            ensure_schema(self._writer, self.path)
        except sqlite3.Error as exc:
            self._drop_writer()
            error = translate_sqlite_error(exc, self.path, "open")
            raise StorageOpenError(str(error), self.path) from exc
        except StorageOpenError:
            self._drop_writer()
            raise

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
                pragmas, settings.busy_timeout_ms, settings.cache_size_kib
            ):
                conn.execute(statement).fetchall()
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            # 2026-11: after fork the parent's connections (and their locks) are unusable in
            # the child; abandon them without closing and reopen lazily.
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._local = threading.local()
            self._readers = []
            self._writer = None

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageError(f"read {self.path!r}: store is closed", self.path)
        self._check_fork()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(schema.READER_PRAGMAS)
            with self._lock:
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    def _write_conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageError(f"write {self.path!r}: store is closed", self.path)
        self._check_fork()
        if self._writer is None:
            self._writer = self._connect(schema.WRITER_PRAGMAS)
            ensure_schema(self._writer, self.path)  # heals a schema dropped under us
        return self._writer

    def _drop_reader(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._readers:
                    self._readers.remove(conn)
            conn.close()

    def _drop_writer(self) -> None:
        conn, self._writer = self._writer, None
        if conn is not None:
            conn.close()

    @contextmanager
    def _reading(self, action: str) -> Iterator[sqlite3.Connection]:
        try:
            yield self._reader()
        except sqlite3.Error as exc:
            self._drop_reader()  # a fresh connection next time: lets a cleared fault recover
            raise translate_sqlite_error(exc, self.path, action) from exc

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
        except sqlite3.Error as exc:
            self._drop_writer()
            raise translate_sqlite_error(exc, self.path, action) from exc

    # -- Storage ----------------------------------------------------------------------------

    def get(self, store: str, owner: str, key: str, now: float) -> Entry | None:
        """The live entry for a key, or None."""
        with self._reading("read") as conn:
            row = conn.execute(
                schema.GET, (store, bind_text(owner), bind_text(key), now)
            ).fetchone()
        return None if row is None else Entry.from_row(row)

    def get_many(self, store: str, owner: str, keys: Sequence[str], now: float) -> dict[str, Entry]:
        """Live entries for many keys, one query per `schema.MAX_KEYS_PER_QUERY` keys."""
        found: dict[str, Entry] = {}
        unique = list(dict.fromkeys(keys))
        with self._reading("read") as conn:
            for start in range(0, len(unique), schema.MAX_KEYS_PER_QUERY):
                chunk = unique[start : start + schema.MAX_KEYS_PER_QUERY]
                sql = schema.get_many_sql(len(chunk))
                params = (store, bind_text(owner), *map(bind_text, chunk), now)
                for row in conn.execute(sql, params):
                    entry = Entry.from_row(row)
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
        self, store: str, owner: str, since: float, now: float, with_text: bool = False
    ) -> Entry | None:
        """The newest live entry written after `since`."""
        sql = schema.LATEST_WITH_TEXT if with_text else schema.LATEST
        with self._reading("read") as conn:
            row = conn.execute(sql, (store, bind_text(owner), since, now)).fetchone()
        return None if row is None else Entry.from_row(row)

    def search(
        self, store: str, owner: str, needle: str, exclude: str, limit: int, now: float
    ) -> list[Entry]:
        """Live entries whose key contains `needle`, newest first."""
        params = (store, bind_text(owner), bind_text(exclude), bind_text(needle), now, limit)
        with self._reading("read") as conn:
            return [Entry.from_row(row) for row in conn.execute(schema.SEARCH_KEY, params)]

    def exists_any_owner(self, store: str, key: str, now: float) -> bool:
        """Whether any owner holds a live row for the key."""
        with self._reading("read") as conn:
            return (
                conn.execute(schema.EXISTS_ANY_OWNER, (store, bind_text(key), now)).fetchone()
                is not None
            )

    def count_live(self, store: str, now: float) -> int:
        """Live rows of one store."""
        with self._reading("count") as conn:
            return int(conn.execute(schema.COUNT_LIVE_STORE, (store, now)).fetchone()[0])

    def count_rows(self) -> int:
        """Every row, live or not."""
        with self._reading("count") as conn:
            return int(conn.execute(schema.COUNT).fetchone()[0])

    def scan(self, now: float) -> Iterator[Entry]:
        """Every live entry, oldest write first, fetched in chunks."""
        with self._reading("scan") as conn:
            cursor = conn.execute(schema.SCAN_LIVE, (now,))
            while rows := cursor.fetchmany(256):
                yield from (Entry.from_row(row) for row in rows)

    def close(self) -> None:
        """Close every connection this process opened (all threads' readers and the writer)."""
        if self._pid != os.getpid():
            self._closed = True  # the parent's connections are not ours to close
            return
        with self._lock:
            self._closed = True
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._drop_writer()


class _Call:
    """An admin operation run on the writer thread, in queue order, with its result."""

    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[Storage], object]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None


PendingKey = tuple[str, str | None, str]  # (store, owner or None = every owner, key)
_Op = Entry | PendingKey | _Call  # a put, a delete, or an admin call


class BatchWriter:
    """Commits queued L2 writes on one background thread, in batches; callers never wait.

    A batch closes at `batch_size` operations or `batch_interval_ms` after the writer woke,
    whichever comes first, and is committed with one executemany in one transaction. Puts beyond
    `max_pending` queued operations are dropped and counted (`dropped_writes`, a warning once
    per burst); deletes and admin calls are always queued, since dropping a delete could let
    an invalidated signature come back from L2. A failed batch is counted (`write_errors`
    rows, `l2_errors` events), logged once per burst and dropped; its entries stay in L1.
    """

    def __init__(self, storage: Storage, settings: L2Settings) -> None:
        self._storage = storage
        self._settings = settings
        self._failures = BurstLog(log, f"L2 writes to {storage.path!r}")
        self._overflow = BurstLog(log, "L2 write queue (full: dropping writes)")
        self._atexit: Callable[[], None] | None = None
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[tuple[int, _Op]] = deque()
        self._pending: dict[PendingKey, tuple[int, Entry | None]] = {}  # None = pending delete
        self._seq = self._done = self._flushers = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.counts = {"writes_batched": 0, "batches": 0, "dropped_writes": 0, "write_errors": 0}
        self.error_events = 0

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            self._reset()  # the parent's queue and thread belong to the parent

    # -- request side ---------------------------------------------------------------------

    def put(self, entry: Entry) -> bool:
        """Queue an upsert; False (counted) when the queue is full or the writer closed."""
        self._check_fork()
        limit = self._settings.max_pending
        with self._cond:
            accepted = not self._stopping and len(self._queue) < limit
            if accepted:
                self._pending[(entry.store, entry.owner, entry.key)] = (self._enqueue(entry), entry)
            else:
                self.counts["dropped_writes"] += 1
            overflowing = not accepted and not self._stopping
            # Hysteresis: a burst of drops ends once the queue is half empty, not at the first
            # accepted write, so a saturated queue warns once rather than once per drop.
            drained = accepted and len(self._queue) * 2 < limit
        if overflowing:
            self._overflow.failure(f"{limit} writes queued")
        elif drained:
            self._overflow.success()
        return accepted

    def delete(self, store: str, owner: str | None, key: str) -> bool:
        """Queue a delete (owner None = every owner), never dropped; True if it undid a put."""
        self._check_fork()
        with self._cond:
            if self._stopping:
                return False
            if owner is None:  # a wildcard delete supersedes every owner's pending write
                keys = [k for k in self._pending if k[0] == store and k[2] == key]
            else:
                keys = [(store, owner, key)] if (store, owner, key) in self._pending else []
            undone = any(self._pending.pop(k)[1] is not None for k in keys)
            self._pending[(store, owner, key)] = (self._enqueue((store, owner, key)), None)
        return undone

    def call(self, fn: Callable[[Storage], object], timeout: float | None) -> _Call | None:
        """Run `fn(storage)` on the writer thread after every queued write; None on timeout."""
        self._check_fork()
        op = _Call(fn)
        with self._cond:
            if self._stopping:
                return None
            self._enqueue(op)
            self._flushers += 1  # no reason to wait for the batch timer
            self._cond.notify_all()
        try:
            return op if op.done.wait(timeout) else None
        finally:
            with self._cond:
                self._flushers -= 1

    def _enqueue(self, op: _Op) -> int:
        self._seq += 1
        self._queue.append((self._seq, op))
        if self._thread is None:
            self._start()
        elif len(self._queue) == 1 or len(self._queue) >= self._settings.batch_size:
            self._cond.notify()
        return self._seq

    def lookup(self, store: str, owner: str, key: str) -> tuple[bool, Entry | None]:
        """(found, entry) from queued-but-uncommitted writes; found with None = pending delete."""
        if not self._pending:  # unlocked fast path: nothing queued
            return False, None
        with self._cond:
            item = self._pending.get((store, owner, key)) or self._pending.get((store, None, key))
        return (False, None) if item is None else (True, item[1])

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every write queued before the call is committed; False on timeout/error."""
        self._check_fork()
        with self._cond:
            target, errors = self._seq, self.counts["write_errors"]
            self._flushers += 1
            self._cond.notify_all()
            try:
                done = self._cond.wait_for(lambda: self._done >= target, timeout)
            finally:
                self._flushers -= 1
            return done and self.counts["write_errors"] == errors

    def reset_counts(self) -> None:
        """Zero the counters."""
        with self._cond:
            self.counts = dict.fromkeys(self.counts, 0)
            self.error_events = 0

    def depth(self) -> int:
        """Operations queued and not yet committed."""
        with self._cond:
            return self._seq - self._done

    # -- writer thread ----------------------------------------------------------------------

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sigcache-l2-writer", daemon=True)
        self._thread.start()
        if self._settings.flush_on_exit and self._atexit is None:
            ref = weakref.ref(self)
            timeout = self._settings.close_timeout_s

            def flush_at_exit() -> None:
                writer = ref()
                if writer is not None:
                    writer.close(timeout)

            self._atexit = flush_at_exit
            atexit.register(flush_at_exit)

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._apply(batch)
            with self._cond:
                for seq, op in batch:
                    if not isinstance(op, _Call):
                        key = (op.store, op.owner, op.key) if isinstance(op, Entry) else op
                        if self._pending.get(key, (0, None))[0] == seq:
                            del self._pending[key]
                self._done = batch[-1][0]
                self._cond.notify_all()

    def _next_batch(self) -> list[tuple[int, _Op]] | None:
        size = self._settings.batch_size
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return None
            deadline = time.monotonic() + self._settings.batch_interval_ms / 1000
            while len(self._queue) < size and not self._stopping and not self._flushers:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return [self._queue.popleft() for _ in range(min(size, len(self._queue)))]

    def _apply(self, batch: list[tuple[int, _Op]]) -> None:
        puts: list[Entry] = []
        for _, op in batch:
            if isinstance(op, Entry):
                puts.append(op)
                continue
            self._write(puts)
            puts = []
            if isinstance(op, _Call):
                try:
                    op.result = op.fn(self._storage)
                except Exception as exc:  # handed back to the waiting caller
                    op.error = exc
                    self._record_failure(0, exc)
                op.done.set()
            else:
                self._delete(*op)
        self._write(puts)

    def _write(self, puts: list[Entry]) -> None:
        if not puts:
            return
        try:
            self._storage.put_many(puts)
        except Exception as exc:  # the writer thread must survive any store failure
            self._record_failure(len(puts), exc)
            return
        self._failures.success()
        with self._cond:
            self.counts["writes_batched"] += len(puts)
            self.counts["batches"] += 1

    def _delete(self, store: str, owner: str | None, key: str) -> None:
        try:
            self._storage.delete(store, owner, key)
        except Exception as exc:  # counted as one failed write
            self._record_failure(1, exc)
            return
        self._failures.success()

    def _record_failure(self, rows: int, exc: Exception) -> None:
        with self._cond:
            self.counts["write_errors"] += rows
            self.error_events += 1
        self._failures.failure(f"{type(exc).__name__}: {exc}")

    def close(self, timeout: float | None = None) -> bool:
        """Commit what is queued, stop the thread; True when it stopped in time."""
        if self._atexit is not None:
            atexit.unregister(self._atexit)
            self._atexit = None
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None or self._pid != os.getpid():
            return True
        thread.join(timeout)
        return not thread.is_alive()
