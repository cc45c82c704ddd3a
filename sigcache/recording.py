"""Recording format v1 (DESIGN section 6): header, events, encode/decode, writer, streaming reader.

A recording is JSON Lines, optionally gzip-compressed: line 1 is the header, every other line one
cache call in completion order. Pairs returned by the `*_with_text` look-ups are written as
two-element lists; `decode_event` (and so the reader) turns them back into tuples.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

import orjson

from sigcache.errors import RecordingError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PAIR_OPS",
    "VALID_OPS",
    "RecordedEvent",
    "RecordingHeader",
    "RecordingReader",
    "RecordingWriter",
    "decode_event",
    "decode_header",
    "encode_event",
    "encode_header",
    "read_recording",
    "restore_result",
]

FORMAT_NAME: Final = "sigcache-recording"
FORMAT_VERSION: Final = 1
_PAIRS = ("get_session_signature_with_text", "get_last_signature_with_text")
PAIR_OPS: Final = frozenset((*_PAIRS, "get_recent_signature_with_text"))
_OPS = ("cache_signature", "get_cached_signature", "cache_tool_signature", "get_tool_signature")
_MORE_OPS = ("cache_session_signature", "get_session_signature", "get_last_signature")
_ADMIN_OPS = ("get_recent_signature", "invalidate", "clear", "cleanup_expired")
VALID_OPS: Final = PAIR_OPS | frozenset((*_OPS, *_MORE_OPS, *_ADMIN_OPS))
_GZIP_MAGIC: Final = b"\x1f\x8b"
_Stream = IO[bytes] | gzip.GzipFile


@dataclass(frozen=True, slots=True)
class RecordingHeader:
    """Line 1 of a recording."""

    created_at: str  # ISO-8601
    source: str
    redacted: bool = False
    version: int = FORMAT_VERSION


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One recorded cache call; `t` is seconds since the recording started."""

    seq: int
    t: float
    op: str
    args: dict[str, Any]
    result: Any
    worker: str
    phase: str
    latency_us: float


def restore_result(op: str, result: Any) -> Any:
    """Turn a recorded two-element list back into the tuple the `*_with_text` look-ups return."""
    if op in PAIR_OPS and isinstance(result, list) and len(result) == 2:
        return (result[0], result[1])
    return result


def _json_default(value: object) -> object:
    # Callers may pass anything (the caches accept wrong types): record the type, never the content.
    return {"$unrepresentable": type(value).__name__}


def _dumps(obj: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(obj, default=_json_default)
    except orjson.JSONEncodeError:
        # orjson refuses lone surrogates, which callers may send; the stdlib escapes them as \udXXX.
        return json.dumps(obj, ensure_ascii=True, default=_json_default).encode("ascii")


def _loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        try:  # lines escaped by the stdlib fallback above
            return json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise RecordingError(f"not valid JSON ({exc})") from None


def encode_header(header: RecordingHeader) -> bytes:
    """The header line, newline included."""
    return (
        _dumps(
            {
                "format": FORMAT_NAME,
                "version": header.version,
                "created_at": header.created_at,
                "source": header.source,
                "redacted": header.redacted,
            }
        )
        + b"\n"
    )


def decode_header(line: bytes) -> RecordingHeader:
    """Parse and check a header line; raises RecordingError saying why."""
    obj = _loads(line)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
        raise RecordingError(f"not a sigcache recording (expected format {FORMAT_NAME!r})")
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordingError(f"bad version {version!r}")
    if version != FORMAT_VERSION:
        raise RecordingError(f"unsupported major version {version} (this reader knows 1)")
    created_at, source, redacted = obj.get("created_at"), obj.get("source"), obj.get("redacted")
    if not isinstance(created_at, str) or not isinstance(source, str):
        raise RecordingError("header needs string 'created_at' and 'source'")
    if not isinstance(redacted, bool):
        raise RecordingError("header needs a boolean 'redacted'")
    return RecordingHeader(created_at=created_at, source=source, redacted=redacted, version=version)


def encode_event(event: RecordedEvent) -> bytes:
    """One event line, newline included."""
    return (
        _dumps(
            {
                "seq": event.seq,
                "t": event.t,
                "op": event.op,
                "args": event.args,
                "result": event.result,
                "worker": event.worker,
                "phase": event.phase,
                "latency_us": event.latency_us,
            }
        )
        + b"\n"
    )


def _number(obj: Mapping[str, Any], name: str) -> float:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordingError(f"{name!r} must be a finite number, got {value!r}")
    return float(value)


def decode_event(line: bytes) -> RecordedEvent:
    """Parse and check an event line (pairs become tuples); raises RecordingError saying why."""
    obj = _loads(line)
    if not isinstance(obj, dict):
        raise RecordingError("an event must be a JSON object")
    seq, op, args = obj.get("seq"), obj.get("op"), obj.get("args")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise RecordingError(f"'seq' must be a non-negative integer, got {seq!r}")
    if op not in VALID_OPS:
        raise RecordingError(f"unknown op {op!r}")
    if not isinstance(args, dict):
        raise RecordingError("'args' must be an object")
    if "result" not in obj:
        raise RecordingError("missing 'result'")
    worker, phase = obj.get("worker"), obj.get("phase")
    if not isinstance(worker, str) or not isinstance(phase, str):
        raise RecordingError("'worker' and 'phase' must be strings")
    return RecordedEvent(
        seq=seq,
        t=_number(obj, "t"),
        op=op,
        args=args,
        result=restore_result(op, obj["result"]),
        worker=worker,
        phase=phase,
        latency_us=_number(obj, "latency_us"),
    )


def _open_private(path: Path, mode: str) -> IO[bytes]:
    """Open for writing, owner-only (0600) whatever the umask: recordings hold texts."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through os.open: tighten it too
    return os.fdopen(fd, mode + "b")


class RecordingWriter:
    """Append-only writer of one recording; gzip when the path ends in `.gz`.

    `mode="w"` creates (or truncates) the file and writes the header; `mode="a"` appends events to
    an existing recording (gzip: a new member, which every gzip reader concatenates). The gzip
    header carries no name and no mtime, so the same events give the same bytes.
    """

    def __init__(
        self, path: str | Path, header: RecordingHeader, *, mode: str = "w", compresslevel: int = 6
    ) -> None:
        if mode not in ("w", "a"):
            raise ValueError(f"mode must be 'w' or 'a', got {mode!r}")
        self.path = Path(path)
        self.header = header
        self._raw: IO[bytes] = _open_private(self.path, mode)
        self._out: _Stream = self._raw
        if self.path.suffix == ".gz":
            self._out = gzip.GzipFile(
                filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=compresslevel
            )
        self.bytes_written = 0  # uncompressed bytes handed to the file by this writer
        if mode == "w":
            self._put(encode_header(header))

    def _put(self, data: bytes) -> None:
        self._out.write(data)
        self.bytes_written += len(data)

    def write(self, event: RecordedEvent) -> int:
        """Write one event; returns the number of (uncompressed) bytes it took."""
        line = encode_event(event)
        self._put(line)
        return len(line)

    def write_line(self, line: bytes) -> None:
        """Write one already-encoded event line (newline included)."""
        self._put(line)

    def flush(self) -> None:
        """Push buffered lines to the OS (a gzip sync point: the file stays readable so far)."""
        if isinstance(self._out, gzip.GzipFile):
            self._out.flush(zlib.Z_SYNC_FLUSH)
        self._raw.flush()

    def close(self) -> None:
        """Finish the gzip stream (if any) and close the file."""
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RecordingReader:
    """Streaming iterator over the events of one recording; memory stays flat in its length."""

    def __init__(self, path: str | Path, *, skip_bad_lines: bool = False) -> None:
        self.path = Path(path)
        self.skip_bad_lines = skip_bad_lines
        self.skipped_lines = 0
        self.truncated = False  # a truncated gzip ended the stream early (skip_bad_lines only)
        self._line_no = 1
        self._file = self._open()
        try:
            first = self._next_line()
            if first is None:
                raise RecordingError("empty recording: no header line", line=1)
            try:
                self.header = decode_header(first)
            except RecordingError as exc:
                raise RecordingError(f"bad header: {exc}", line=1) from None
        except BaseException:
            self.close()  # the gzip wrapper does not close the raw file it was given
            raise

    def _open(self) -> _Stream:
        raw = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        self._raw = raw
        if raw.read(2) == _GZIP_MAGIC:
            raw.seek(0)
            return gzip.GzipFile(fileobj=raw, mode="rb")
        raw.seek(0)
        return raw

    def _next_line(self) -> bytes | None:
        try:
            line = self._file.readline()
        except EOFError as exc:  # gzip stream cut short: the writer died or the copy is partial
            raise RecordingError(f"truncated gzip ({exc})", line=self._line_no) from None
        except (gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise RecordingError(f"corrupt gzip ({exc})", line=self._line_no) from None
        return line or None

    def __iter__(self) -> Iterator[RecordedEvent]:
        return self

    def __next__(self) -> RecordedEvent:
        while True:
            self._line_no += 1
            try:
                line = self._next_line()
            except RecordingError:
                if not self.skip_bad_lines:
                    self.close()
                    raise
                self.skipped_lines += 1
                self.truncated = True
                line = None
            if line is None:
                self.close()
                raise StopIteration
            try:
                return decode_event(line)
            except RecordingError as exc:
                if not self.skip_bad_lines:
                    self.close()
                    raise RecordingError(str(exc), line=self._line_no) from None
                self.skipped_lines += 1

    def close(self) -> None:
        """Close the underlying file (idempotent)."""
        self._file.close()
        self._raw.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_recording(
    path: str | Path, *, skip_bad_lines: bool = False
) -> tuple[RecordingHeader, RecordingReader]:
    """Open a recording: its header and a streaming iterator of its events (see RecordingReader)."""
    reader = RecordingReader(path, skip_bad_lines=skip_bad_lines)
    return reader.header, reader
