"""Readable terminal output of the `sigcache` client commands (rich tables)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["flatten", "render"]

_STATUS_KEYS = (
    "migration_mode_enabled",
    "phase",
    "effective_phase",
    "runtime_override",
    "env_var",
)
_READ_KEYS = ("total_reads", "legacy_hits", "new_hits", "fallback_hits", "read_repairs", "hit_rate")
_BACKFILL_KEYS = (
    "supported",
    "seen",
    "copied",
    "replaced",
    "skipped_expired",
    "skipped_present",
    "failed",
    "aborted",
    "error",
)
_WRITE_KEYS = ("total_writes", "legacy_writes", "new_writes", "new_failures", "shadow_failures")


def _text(value: Any) -> Text:
    # Text, not str: server values (a reason, an actor) must never be read as rich markup.
    if isinstance(value, float):
        return Text(f"{value:.4g}")
    return Text("-" if value is None else str(value))


def flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, scalar) pairs of a nested mapping, in order."""
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, name + ".")
        elif not isinstance(value, list):
            yield name, value


def _pairs(title: str, rows: Iterator[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in rows:
        table.add_row(Text(key), _text(value))
    return table


def _status_tables(status: Mapping[str, Any]) -> list[Table]:
    reads = status.get("read_stats") or {}
    writes = status.get("dual_write_stats") or {}
    live = status.get("live_consistency") or {}
    tables = [
        _pairs("Migration", ((k, status.get(k)) for k in _STATUS_KEYS)),
        _pairs("Reads", ((k, reads.get(k)) for k in _READ_KEYS if k in reads)),
        _pairs("Writes", ((k, writes.get(k)) for k in _WRITE_KEYS if k in writes)),
    ]
    if live.get("samples"):
        rows = [("samples", live["samples"]), *(live.get("classes") or {}).items()]
        tables.append(_pairs("Live consistency", iter(rows)))
    return tables


def _history_table(entries: list[Mapping[str, Any]]) -> Table:
    table = Table(title="Migration history", title_justify="left")
    for column in ("time (UTC)", "kind", "from", "to", "mode", "actor", "forced", "reason"):
        table.add_column(column)
    for entry in entries:
        when = datetime.fromtimestamp(float(entry.get("t", 0.0)), UTC).strftime("%Y-%m-%d %H:%M:%S")
        cells = (
            when,
            entry.get("kind"),
            entry.get("from"),
            entry.get("to"),
            "on" if entry.get("mode_enabled") else "off",
            entry.get("actor"),
            "yes" if entry.get("forced") else "",
            entry.get("reason") or "",
        )
        table.add_row(*map(_text, cells))
    return table


def render(command: str, body: Mapping[str, Any], console: Console | None = None) -> None:
    """Print a successful answer of `command` for a person."""
    # Piped output keeps whole tables rather than 80-column truncation.
    out = console or Console(width=None if sys.stdout.isatty() else 160)
    data = body.get("data")
    if body.get("message"):
        out.print(str(body["message"]), markup=False)
    if command in ("status", "enable", "disable", "phase") and isinstance(data, Mapping):
        for table in _status_tables(data):
            out.print(table)
    elif command == "backfill" and isinstance(data, Mapping):
        out.print(_pairs("Backfill", ((k, data.get(k)) for k in _BACKFILL_KEYS)))
    elif command == "history" and isinstance(data, list):
        out.print(_history_table(data) if data else "no history yet")
    elif isinstance(data, Mapping):
        out.print(_pairs("Cache statistics", flatten(data)))
    else:
        out.print(_text(data), markup=False)
