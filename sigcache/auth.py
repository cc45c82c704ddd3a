"""Bearer tokens of the HTTP control API: loading, generating, token files, constant-time checks.

Tokens come from `SIGCACHE_API_TOKEN` (one token, named `default`) and from a token file named by
`SIGCACHE_API_TOKEN_FILE`: one token per line, `name:token` (the name becomes the audit actor) or
a bare token (named `token<line>`); blank lines and `#` comments are skipped. A token is never
logged and never recorded: the audit history only ever sees its name.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sigcache.errors import ConfigError

__all__ = [
    "ENV_TOKEN",
    "ENV_TOKEN_FILE",
    "MAX_TOKEN_LENGTH",
    "MIN_TOKEN_LENGTH",
    "ApiToken",
    "TokenSet",
    "generate_token",
    "load_tokens",
    "read_token_file",
    "write_token_file",
]

log = logging.getLogger("sigcache.auth")

ENV_TOKEN = "SIGCACHE_API_TOKEN"
ENV_TOKEN_FILE = "SIGCACHE_API_TOKEN_FILE"
# A short shared secret is how the replaced system ended up guarded by "pwd": refuse it.
MIN_TOKEN_LENGTH = 16  # characters
MAX_TOKEN_LENGTH = 512  # characters; a longer presented credential is rejected unread
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces: fits one header


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A named bearer token; `repr` hides the secret."""

    name: str
    token: str

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            # The value is not echoed: a misparsed line may have put a secret in the name.
            raise ConfigError("token name: expected 1-64 characters of [A-Za-z0-9._@-]")
        if not MIN_TOKEN_LENGTH <= len(self.token) <= MAX_TOKEN_LENGTH:
            raise ConfigError(
                f"token {self.name!r}: expected {MIN_TOKEN_LENGTH}-{MAX_TOKEN_LENGTH} characters"
            )
        if not _TOKEN_CHARS.fullmatch(self.token):
            raise ConfigError(f"token {self.name!r}: only printable ASCII without spaces")

    def __repr__(self) -> str:
        return f"ApiToken(name={self.name!r}, token=<hidden>)"


class TokenSet:
    """The tokens a server accepts; `identify` maps a presented token to its name."""

    def __init__(self, tokens: Iterable[ApiToken]) -> None:
        self._tokens = tuple(tokens)
        if not self._tokens:
            raise ConfigError("no API token configured")
        names = [t.name for t in self._tokens]
        if len(set(names)) != len(names):
            raise ConfigError("duplicate token names")
        self._secrets = tuple((t.name, t.token.encode("ascii")) for t in self._tokens)

    @classmethod
    def single(cls, token: str, name: str = "default") -> TokenSet:
        """A set of one token."""
        return cls([ApiToken(name, token)])

    @property
    def tokens(self) -> tuple[ApiToken, ...]:
        """The tokens, in configuration order."""
        return self._tokens

    @property
    def names(self) -> tuple[str, ...]:
        """The token names (never the tokens)."""
        return tuple(name for name, _ in self._secrets)

    def identify(self, presented: str | None) -> str | None:
        """The name of the token presented, or None; constant-time per configured token."""
        if not presented or len(presented) > MAX_TOKEN_LENGTH:
            return None
        try:
            candidate = presented.encode("ascii")
        except UnicodeEncodeError:
            return None
        found: str | None = None
        # Compare against every token, without stopping early, so timing names no token.
        for name, secret in self._secrets:
            if hmac.compare_digest(candidate, secret) and found is None:
                found = name
        return found

    def __repr__(self) -> str:
        return f"TokenSet(names={self.names!r})"


def generate_token() -> str:
    """A fresh random token (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def _parse_line(line: str, lineno: int) -> ApiToken | None:
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    name, sep, token = text.partition(":")
    if not sep:
        name, token = f"token{lineno}", text
    try:
        return ApiToken(name.strip(), token.strip())
    except ConfigError as exc:
        raise ConfigError(f"token file line {lineno}: {exc}") from None


def read_token_file(path: str | Path) -> TokenSet:
    """Tokens from a file of `name:token` lines; a group- or world-readable file is a warning."""
    file = Path(path)
    try:
        mode = file.stat().st_mode
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = type(exc).__name__
        raise ConfigError(f"{ENV_TOKEN_FILE}={str(path)!r}: cannot read ({reason})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("[SIGCACHE_API] token file %s is readable by others; chmod 600 it", file)
    tokens = [t for n, line in enumerate(text.splitlines(), 1) if (t := _parse_line(line, n))]
    if not tokens:
        raise ConfigError(f"{ENV_TOKEN_FILE}={str(path)!r}: no token in the file")
    return TokenSet(tokens)


def write_token_file(path: str | Path, name: str, token: str) -> None:
    """Append `name:token` to a token file, creating it with mode 0600."""
    entry = ApiToken(name, token)  # validates before anything touches the disk
    file = Path(path)
    if file.exists() and entry.name in read_token_file(file).names:
        raise ConfigError(f"token file {str(file)!r} already holds a token named {name!r}")
    # O_CREAT with 0600: the file never exists, even briefly, with wider permissions.
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(f"{entry.name}:{entry.token}\n")


def load_tokens(environ: Mapping[str, str]) -> TokenSet | None:
    """The tokens of the variable and the token file together, or None when neither is set."""
    tokens: list[ApiToken] = []
    token = environ.get(ENV_TOKEN, "").strip()
    if token:
        try:
            tokens.append(ApiToken("default", token))
        except ConfigError as exc:
            raise ConfigError(f"{ENV_TOKEN}: {exc}") from None
    file = environ.get(ENV_TOKEN_FILE, "").strip()
    if file:
        tokens.extend(read_token_file(file).tokens)
    return TokenSet(tokens) if tokens else None
