"""`sigcache-harness`: generate, replay, report, gate and promote from the command line.

Exit codes: 0 success (for `gate`: pass), 1 gate fail, 2 gate inconclusive, 64 usage error
(a malformed `--l2` URL included), 65 bad input (an unreadable recording, results or thresholds
file, an unreachable `--l2` server), 70 promotion refused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

from harness import cli_commands as commands
from harness.l2 import parse_l2
from sigcache.errors import ConfigError, SigcacheError

__all__ = ["main"]

EXIT_USAGE = 64
EXIT_DATA = 65

DEFAULT_RECORDING = Path("recordings/large.jsonl.gz")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _l2_value(value: str) -> str:
    """`--l2`: 'sqlite' or a redis:// URL, checked for syntax here (a usage error otherwise)."""
    try:
        parse_l2(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--l2 ")) from None
    return value


def _add_l2(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--l2",
        type=_l2_value,
        default=None,
        metavar="URL",
        help="the new cache's L2: 'sqlite' (default: a temporary file) or redis://host:port/db "
        "(a fresh key prefix per phase, deleted afterwards)",
    )


def _add_replay(sub: Any) -> None:
    p = sub.add_parser("replay", help="replay a recording under each phase, report and gate")
    p.add_argument("recording", type=Path, nargs="?", default=DEFAULT_RECORDING)
    p.add_argument(
        "--phase",
        action="append",
        dest="phases",
        metavar="PHASE",
        help="phase to replay (repeatable; default: all four)",
    )
    p.add_argument(
        "--new-cache",
        metavar="MODULE:FACTORY",
        help="build the new cache with this factory (a candidate to verify)",
    )
    p.add_argument("--summary-json", type=Path, metavar="PATH", help="also write the summary here")
    p.add_argument("--skip-bad-lines", action="store_true", help="skip and count bad lines")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="reports root directory")
    p.add_argument("--thresholds", type=Path, help="gate thresholds TOML (default: shipped)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_l2(p)
    p.set_defaults(func=commands.cmd_replay)


def _add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="rebuild a report from a results file")
    p.add_argument(
        "results",
        type=Path,
        nargs="?",
        help="results.parquet written by replay (default: the latest report's)",
    )
    p.add_argument(
        "--recording",
        type=Path,
        help="the recording replayed (default: the one the latest summary names)",
    )
    p.add_argument(
        "--bench",
        type=Path,
        nargs="*",
        metavar="JSON",
        help="instead: a bench report from pytest-benchmark JSON files",
    )
    p.add_argument("--out", type=Path, help="output directory (default: beside the results)")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="reports root directory")
    p.add_argument("--thresholds", type=Path, help="gate thresholds TOML (default: shipped)")
    p.set_defaults(func=commands.cmd_report)


def _add_gate(sub: Any) -> None:
    p = sub.add_parser("gate", help="judge a report for a promotion; exit 0 pass, 1 fail, 2 inc.")
    p.add_argument(
        "report",
        type=Path,
        nargs="?",
        help="a report directory or its summary.json (default: the latest report)",
    )
    p.add_argument("--to", dest="target", required=True, metavar="PHASE", help="target phase")
    p.add_argument("--thresholds", type=Path, help="gate thresholds TOML (default: shipped)")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="reports root directory")
    p.set_defaults(func=commands.cmd_gate)


def _add_generate(sub: Any) -> None:
    p = sub.add_parser("generate", help="generate a seeded synthetic recording")
    p.add_argument("--out", type=Path, required=True, help="recording path (.jsonl or .jsonl.gz)")
    p.add_argument("--events", type=int, default=5000, help="approximate number of events")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same file)")
    p.add_argument("--signatures", type=Path, help="real_signatures.jsonl to draw from")
    p.add_argument(
        "--profile",
        choices=("provenance", "origin"),
        default="provenance",
        help="callers passing model/scope/conversation, with family switches, rewritten tool "
        "ids and aborted streams (default), or the replaced system's callers alone",
    )
    p.set_defaults(func=commands.cmd_generate)


def _add_promote(sub: Any) -> None:
    p = sub.add_parser("promote", help="replay + gate + promote one phase, stopping on failure")
    p.add_argument("--to", dest="target", required=True, metavar="PHASE", help="target phase")
    p.add_argument("--recording", type=Path, default=DEFAULT_RECORDING)
    p.add_argument("--server", metavar="URL", help="a running `sigcache serve` (else: local)")
    p.add_argument("--token", help="API token (default: $SIGCACHE_API_TOKEN)")
    p.add_argument("--reports", type=Path, default=Path("reports"))
    p.add_argument("--thresholds", type=Path)
    p.add_argument("--new-cache", metavar="MODULE:FACTORY")
    _add_l2(p)
    p.set_defaults(func=commands.cmd_promote)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="sigcache-harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_replay, _add_report, _add_gate, _add_generate, _add_promote):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `sigcache-harness`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if parse_l2(getattr(args, "l2", None)) and getattr(args, "new_cache", None):
        # A candidate factory builds its own L2: there is nothing to point at Redis.
        parser.error("--l2 redis:// and --new-cache cannot be combined")
    # Piped output (CI logs, files) gets a fixed wide layout instead of rich's 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
    try:
        code: int = args.func(args, console)
    except SigcacheError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        return EXIT_DATA
    except FileNotFoundError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] no such file: {exc.filename}")
        return EXIT_DATA
    return code


if __name__ == "__main__":
    raise SystemExit(main())
