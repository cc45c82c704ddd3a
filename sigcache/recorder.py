"""The recorder: an observer appending every cache operation to a recording, off the request path.

The observer call only puts the event on a bounded queue (`put_nowait`); a writer thread numbers,
filters, redacts, encodes and writes it. A full queue drops the event and counts it. At the size
limit the recorder **stops** (it never rotates): a recording is always one contiguous, replayable
prefix of the traffic, and the limit counts uncompressed bytes, so a `.gz` file stays well under it.
Nothing here raises into a cache call; writer-side failures are counted and logged once.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, cast

from sigcache.errors import ConfigError, RecordingError
from sigcache.observers import OperationEvent
from sigcache.recording import (
    VALID_OPS,
    RecordedEvent,
    RecordingHeader,
    RecordingWriter,
    encode_event,
    read_recording,
)
from sigcache.redaction import Redactor

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EventFilter",
    "RecordMode",
    "Recorder",
    "RecorderConfig",
    "RecorderStats",
    "default_worker",
]

log = logging.getLogger("sigcache.recorder")

RecordMode = Literal["off", "once", "append"]
EventFilter = Callable[[RecordedEvent], RecordedEvent | None]  # None drops the event
DEFAULT_MAX_BYTES: Final = 1 << 30  # 1 GiB of uncompressed lines
_STOP: Final = object()
_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, slots=True)
class RecorderConfig:
    """How a recorder writes; the defaults suit a live proxy."""

    mode: RecordMode = "once"
    source: str = "sigcache"
    max_bytes: int = DEFAULT_MAX_BYTES  # uncompressed bytes, header and existing file included
    queue_size: int = 100_000  # events waiting for the writer thread
    flush_interval: float | None = 1.0  # seconds idle before a flush; None: only on close
    compresslevel: int = 6
    record_latency: bool = True  # False writes latency_us 0.0 (virtual-time generators)
    block_when_full: bool = False  # True only for offline generators: never drop, wait instead


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """Counters of one recorder."""

    recorded: int
    dropped_queue_full: int
    dropped_over_limit: int
    filtered: int
    skipped_ops: int  # operations outside format v1 (e.g. fuzzy tool look-ups)
    errors: int


def default_worker() -> str:
    """`host:pid:thread` of the calling thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


class Recorder:
    """Observer (`facade.add_observer(recorder)`) writing every operation to one recording."""

    def __init__(
        self,
        path: str | Path,
        config: RecorderConfig | None = None,
        *,
        redactor: Redactor | None = None,
        filters: Sequence[EventFilter] = (),
        clock: Callable[[], float] = time.time,
        worker: Callable[[], str] = default_worker,
        created_at: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.config = config or RecorderConfig()
        self._redactor = redactor
        self._filters = tuple(filters)
        self._worker = worker
        self._counts = dict.fromkeys(RecorderStats.__slots__, 0)
        self._count_lock = threading.Lock()
        self._closed = self.config.mode == "off"
        self._full = False
        if self._closed:
            return
        self._writer, self._start, self._next_seq = self._open(clock, created_at)
        self._queue: queue.Queue[object] = queue.Queue(self.config.queue_size)
        self._thread = threading.Thread(target=self._run, name="sigcache-recorder", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _open(
        self, clock: Callable[[], float], created_at: str | None
    ) -> tuple[RecordingWriter, float, int]:
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and self.config.mode == "once":
            raise RecordingError(f"{self.path} exists; record mode 'once' never overwrites it")
        if exists:
            header, last_seq = _scan(self.path)
            if header.redacted != (self._redactor is not None):
                raise RecordingError(f"{self.path}: cannot append with a different redaction")
            writer = RecordingWriter(
                self.path, header, mode="a", compresslevel=self.config.compresslevel
            )
            writer.bytes_written = self.path.stat().st_size
            return writer, datetime.fromisoformat(header.created_at).timestamp(), last_seq + 1
        start = clock()
        stamp = created_at or datetime.fromtimestamp(start, UTC).isoformat()
        header = RecordingHeader(stamp, self.config.source, redacted=self._redactor is not None)
        writer = RecordingWriter(self.path, header, compresslevel=self.config.compresslevel)
        return writer, start, 0

    def __call__(self, event: OperationEvent) -> None:
        """Queue one operation; never blocks (unless configured to), never raises."""
        if self._closed or self._full:
            if self._full:
                self._count("dropped_over_limit")
            return
        try:
            item = (event, self._worker())
            if self.config.block_when_full:
                self._queue.put(item)
            else:
                self._queue.put_nowait(item)
        except queue.Full:
            self._count("dropped_queue_full")
        except Exception:  # the recorder must never break a cache call
            self._count("errors")

    def _count(self, name: str, n: int = 1) -> None:
        with self._count_lock:
            self._counts[name] += n

    def stats(self) -> RecorderStats:
        """A snapshot of the counters."""
        with self._count_lock:
            return RecorderStats(**self._counts)

    def _run(self) -> None:
        dirty = False
        while True:
            try:
                item = self._queue.get(timeout=self.config.flush_interval)
            except queue.Empty:
                dirty = dirty and not self._safe(self._writer.flush)
                continue
            if item is _STOP:
                break
            if isinstance(item, threading.Event):
                self._safe(self._writer.flush)
                item.set()
                continue
            event, worker = cast(tuple[OperationEvent, str], item)
            self._safe(self._write, event, worker)
            dirty = True
        self._safe(self._writer.close)

    def _safe(self, action: Callable[..., object], *args: object) -> bool:
        try:
            action(*args)
        except Exception:
            self._count("errors")
            if self._counts["errors"] == 1:
                log.warning("[RECORDER] writing %s failed", self.path, exc_info=True)
            return False
        return True

    def _write(self, event: OperationEvent, worker: str) -> None:
        if event.op not in VALID_OPS:
            self._count("skipped_ops")
            return
        latency = round(event.latency_us, 3) if self.config.record_latency else 0.0
        record: RecordedEvent | None = RecordedEvent(
            self._next_seq, round(event.t - self._start, 6), event.op, dict(event.args),
            event.result, worker, event.phase, latency,
        )  # fmt: skip
        for keep in self._filters:
            record = keep(record) if record is not None else None
        if record is None:
            self._count("filtered")
            return
        if self._redactor is not None:
            record = self._redactor.event(record)
        line = encode_event(record)
        if self._writer.bytes_written + len(line) > self.config.max_bytes:
            self._full = True
            self._count("dropped_over_limit")
            log.warning("[RECORDER] %s reached %d bytes; recording stopped", self.path,
                        self.config.max_bytes)  # fmt: skip
            return
        self._writer.write_line(line)
        self._next_seq += 1
        self._count("recorded")

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every queued event is written and flushed; False on timeout or when closed."""
        if self._closed:
            return False
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Write what is queued, finish the file and stop the writer thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("[RECORDER] %s: writer stuck; queued events lost", self.path)
            return
        self._thread.join(timeout)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, filters: Iterable[EventFilter] = ()
    ) -> Recorder | None:
        """A recorder from `SIGCACHE_RECORD*` variables, or None when recording is off or unset.

        `SIGCACHE_RECORD=PATH` turns it on; `SIGCACHE_RECORD_MODE` is off | once (default) | append;
        `SIGCACHE_RECORD_REDACT=1` redacts (key: hex `SIGCACHE_RECORD_REDACT_KEY`, else random);
        `SIGCACHE_RECORD_MAX_BYTES` bounds the file.
        """
        path = environ.get("SIGCACHE_RECORD", "").strip()
        mode = environ.get("SIGCACHE_RECORD_MODE", "once").strip().lower() or "once"
        if mode not in ("off", "once", "append"):
            raise ConfigError(f"SIGCACHE_RECORD_MODE={mode!r}: expected off, once or append")
        if not path or mode == "off":
            return None
        config = RecorderConfig(
            mode=mode,  # type: ignore[arg-type]  # checked above
            source=f"sigcache@{socket.gethostname()}",
            max_bytes=_positive_int(environ, "SIGCACHE_RECORD_MAX_BYTES", DEFAULT_MAX_BYTES),
        )
        redactor = None
        if environ.get("SIGCACHE_RECORD_REDACT", "").strip().lower() in _TRUE:
            key = environ.get("SIGCACHE_RECORD_REDACT_KEY", "").strip()
            try:
                redactor = Redactor(bytes.fromhex(key)) if key else Redactor.random()
            except ValueError:
                raise ConfigError("SIGCACHE_RECORD_REDACT_KEY must be non-empty hex") from None
        return cls(path, config, redactor=redactor, filters=tuple(filters))


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a positive integer") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r}: expected a positive integer")
    return value


def _scan(path: Path) -> tuple[RecordingHeader, int]:
    """The header and last seq of an existing recording (streamed; any bad line refuses)."""
    header, events = read_recording(path)
    last = -1
    with events:
        for event in events:
            last = event.seq
    return header, last
