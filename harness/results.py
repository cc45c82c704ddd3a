"""Per-event replay results, streamed to Parquet in batches (columns: docs/contracts.md 4)."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["RESULTS_SCHEMA", "ResultsWriter"]

RESULTS_SCHEMA: Final = pa.schema(
    [
        ("phase", pa.string()),
        ("seq", pa.int64()),
        ("t", pa.float64()),
        ("op", pa.string()),
        ("kind", pa.string()),
        ("store", pa.string()),
        ("cls", pa.string()),
        ("reason", pa.string()),
        ("stack_hit", pa.bool_()),
        ("control_hit", pa.bool_()),
        ("aa_equal", pa.bool_()),
        ("recorded_equal", pa.bool_()),
        ("control_recorded_equal", pa.bool_()),
        ("source", pa.string()),
        ("tier", pa.string()),
        ("fallback", pa.bool_()),
        ("read_repair", pa.bool_()),
        ("shadow_error", pa.bool_()),
        ("error", pa.string()),
        ("latency_us", pa.float64()),
        ("control_latency_us", pa.float64()),
        ("text_hash", pa.string()),
    ]
)
_NAMES: Final = tuple(RESULTS_SCHEMA.names)


class ResultsWriter:
    """Collects rows column-wise and writes a Parquet row group every `batch_rows` rows."""

    def __init__(self, path: Path, batch_rows: int = 50_000) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(str(path), RESULTS_SCHEMA)
        self._batch_rows = batch_rows
        self._rows: list[tuple[Any, ...]] = []
        self.rows = 0

    def add(self, **row: Any) -> None:
        """Append one row by column name; every column of the schema must be given."""
        self.add_row(tuple(row[name] for name in _NAMES))

    def add_row(self, row: tuple[Any, ...]) -> None:
        """Append one row as a tuple in schema order (the replay's fast path)."""
        self._rows.append(row)
        if len(self._rows) >= self._batch_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        columns = dict(zip(_NAMES, (list(c) for c in zip(*self._rows, strict=True)), strict=True))
        self._writer.write_table(pa.Table.from_pydict(columns, schema=RESULTS_SCHEMA))
        self.rows += len(self._rows)
        self._rows = []

    def close(self) -> None:
        """Write what is pending and close the file."""
        self._flush()
        self._writer.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
