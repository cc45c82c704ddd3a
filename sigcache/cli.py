"""The `sigcache` command: `serve` runs the HTTP API; the other commands call a running server.

Exit codes: 0 done; 1 the server refused or failed (one line on stderr says why); 2 usage or
configuration error; 3 the server could not be reached.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import httpx

from sigcache import __version__
from sigcache.auth import (
    ENV_TOKEN,
    ENV_TOKEN_FILE,
    TokenSet,
    generate_token,
    load_tokens,
    read_token_file,
    write_token_file,
)
from sigcache.cli_render import render
from sigcache.errors import ConfigError

__all__ = ["DEFAULT_URL", "ENV_URL", "build_parser", "main"]

ENV_URL = "SIGCACHE_URL"
DEFAULT_URL = "http://127.0.0.1:8000"
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

# command -> (method, path); `phase` adds its query parameters.
_ROUTES: dict[str, tuple[str, str]] = {
    "status": ("GET", "/cache/migration/status"),
    "enable": ("POST", "/cache/migration/enable"),
    "disable": ("POST", "/cache/migration/disable"),
    "phase": ("POST", "/cache/migration/phase"),
    "history": ("GET", "/cache/migration/history"),
    "stats": ("GET", "/cache/signature/stats"),
    "backfill": ("POST", "/cache/migration/backfill"),
}


class _Fail(Exception):
    """A one-line failure with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get(ENV_URL, DEFAULT_URL),
        help=f"server URL (default: ${ENV_URL} or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token",
        help=f"bearer token (default: ${ENV_TOKEN}, else the first of ${ENV_TOKEN_FILE}); "
        "prefer the environment: arguments show in process lists",
    )
    parser.add_argument("--json", action="store_true", help="print the server's JSON answer")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default: 10)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="sigcache", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sigcache {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP API under uvicorn")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    serve.add_argument("--ssl-certfile", help="TLS certificate (PEM)")
    serve.add_argument("--ssl-keyfile", help="TLS private key (PEM)")
    serve.add_argument(
        "--write-token",
        metavar="PATH",
        help="with no token configured, store the generated one "
        "in this 0600 token file instead of printing it",
    )

    serve.add_argument("--no-data-plane", action="store_true", help="serve the control routes only")

    token = sub.add_parser("token", help="generate an API token")
    token.add_argument("--name", default="operator", help="token name, the audit actor")
    token.add_argument("--file", help="append `name:token` to this token file (mode 0600)")

    helps = {
        "status": "show migration mode, phase and counters",
        "enable": "turn migration mode on",
        "disable": "turn migration mode off (instant rollback to legacy)",
        "phase": "move to a migration phase",
        "history": "show the audit history",
        "stats": "show cache statistics",
        "backfill": "copy the legacy cache's live entries into the new cache",
    }
    for name, text in helps.items():
        cmd = sub.add_parser(name, help=text)
        if name == "phase":
            cmd.add_argument("name", help="LEGACY_ONLY, DUAL_WRITE, NEW_PREFERRED, NEW_ONLY or 1-4")
            cmd.add_argument("--force", action="store_true", help="promote without a gate verdict")
        if name == "backfill":
            cmd.add_argument("--chunk-size", type=int, help="entries per hold of the legacy lock")
        if name in ("phase", "enable", "disable", "backfill"):
            cmd.add_argument("--reason", default="", help="why; kept in the audit history")
        if name == "history":
            cmd.add_argument("--limit", type=int, default=50, help="newest entries (default 50)")
        _add_client_options(cmd)
    return parser


def _client_token(args: argparse.Namespace) -> str:
    if args.token:
        return str(args.token)
    token = os.environ.get(ENV_TOKEN, "").strip()
    if token:
        return token
    file = os.environ.get(ENV_TOKEN_FILE, "").strip()
    if file:
        return read_token_file(file).tokens[0].token
    raise ConfigError(f"no token: pass --token or set {ENV_TOKEN} or {ENV_TOKEN_FILE}")


def _params(args: argparse.Namespace) -> dict[str, str]:
    params: dict[str, str] = {}
    if args.command == "phase":
        params["phase"] = args.name
        if args.force:
            params["force"] = "true"
    if getattr(args, "reason", ""):
        params["reason"] = args.reason
    if args.command == "history":
        params["limit"] = str(args.limit)
    if args.command == "backfill" and args.chunk_size:
        params["chunk_size"] = str(args.chunk_size)
    return params


def _refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    line = f"{error or response.reason_phrase} (HTTP {response.status_code})"
    if isinstance(body, dict):
        if body.get("failed_rules"):
            line += "; failed rules: " + ", ".join(map(str, body["failed_rules"]))
        if body.get("valid_phases"):
            line += "; valid phases: " + ", ".join(map(str, body["valid_phases"]))
        if body.get("hint"):
            line += f"; {body['hint']}"
        if body.get("error_id"):
            line += f"; error id {body['error_id']}"
    return line


def _call(args: argparse.Namespace) -> dict[str, Any]:
    method, path = _ROUTES[args.command]
    headers = {"Authorization": f"Bearer {_client_token(args)}"}
    url = args.url.rstrip("/") + path
    try:
        with httpx.Client(timeout=args.timeout) as client:
            response = client.request(method, url, params=_params(args), headers=headers)
    except httpx.HTTPError as exc:
        raise _Fail(f"cannot reach {args.url}: {type(exc).__name__}", EXIT_UNREACHABLE) from None
    if args.json:
        print(response.text)
    if response.is_success:
        body: dict[str, Any] = response.json()
        return body
    raise _Fail(_refusal(response), EXIT_REFUSED)


def _token_command(args: argparse.Namespace) -> int:
    token = generate_token()
    if args.file:
        write_token_file(args.file, args.name, token)
        print(f"token {args.name!r} appended to {args.file}", file=sys.stderr)
    else:
        print(token)
    return EXIT_OK


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sigcache.api import create_app
    from sigcache.signature_cache import reset_signature_cache

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    tokens = load_tokens(os.environ)
    if tokens is None:
        token = generate_token()
        tokens = TokenSet.single(token, name="generated")
        if args.write_token:
            write_token_file(args.write_token, "generated", token)
            print(f"sigcache: generated API token written to {args.write_token}", file=sys.stderr)
        else:
            # Printed once, never logged: the token lives only in this process and its operator.
            print(f"sigcache: generated API token (valid until exit): {token}", file=sys.stderr)
    if not _is_loopback(args.host) and not args.ssl_certfile:
        logging.getLogger("sigcache.cli").warning(
            "[SIGCACHE_API] serving on %s without TLS: bearer tokens cross the network in clear",
            args.host,
        )
    app = create_app(token=tokens, data_plane=not args.no_data_plane)
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            ssl_certfile=args.ssl_certfile,
            ssl_keyfile=args.ssl_keyfile,
        )
    finally:
        reset_signature_cache()  # closes the facade: queued L2 writes are flushed
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sigcache` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "token":
            return _token_command(args)
        body = _call(args)
        if not args.json:
            render(args.command, body)
        return EXIT_OK
    except _Fail as exc:
        print(f"sigcache: {exc}", file=sys.stderr)
        return exc.code
    except ConfigError as exc:
        print(f"sigcache: {exc}", file=sys.stderr)
        return EXIT_USAGE
