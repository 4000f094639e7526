"""Tokens and scopes (README "Security"): parsing the token file, looking a token up, checking a scope.

The token file has one token per line, `TOKEN SCOPE[,SCOPE...]`; blank lines and lines starting
with `#` are ignored. Scopes: `read` (the dashboard, the HTTP API, SQL, /metrics), `write:PROJECT`
(OpenRun, Write and FinishRun on runs of PROJECT), `write:*` (every project), and `admin:PROJECT` /
`admin:*`: deleting, renaming, tagging, noting and archiving the project's runs (`runstream runs`, the
runs API, the page's run actions). Admin is a scope of its own because a delete cannot be undone and
a training job's token (`write`) is copied into many job scripts; neither `read` nor `write` implies it,
and it implies neither (the page needs `read` too).

Pure: no I/O except `load_tokens`, no logging of tokens (at most `fingerprint`, a short hash).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

# Re-exported: the errors of this module (401 / 403) are part of the service's one error tree.
from runstream_service.errors import AuthError as AuthError
from runstream_service.errors import PermissionDenied as PermissionDenied
from runstream_service.errors import Unauthenticated as Unauthenticated

READ = "read"
WRITE_ANY = "write:*"
WRITE_PREFIX = "write:"
ADMIN_ANY = "admin:*"
ADMIN_PREFIX = "admin:"
MIN_TOKEN_CHARS = 16
MAX_TOKEN_CHARS = 512
# Printable ASCII without spaces or commas: safe in an HTTP header, gRPC metadata and this file.
_TOKEN_RE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
_PROJECT_RE = re.compile(r"[^\s,]+")


class TokenFileError(ValueError):
    """The token file cannot be used; the message names the file, the line and what is wrong."""


@dataclass(frozen=True)
class Token:
    """One line of the token file; `digest` is the SHA-256 of the token, the token itself is not kept."""

    digest: bytes
    scopes: frozenset[str]
    line: int

    @property
    def fingerprint(self) -> str:
        return self.digest.hex()[:8]

    def can_read(self) -> bool:
        return READ in self.scopes

    def can_write(self, project: str) -> bool:
        return WRITE_ANY in self.scopes or f"{WRITE_PREFIX}{project}" in self.scopes

    def can_admin(self, project: str) -> bool:
        return ADMIN_ANY in self.scopes or f"{ADMIN_PREFIX}{project}" in self.scopes


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def fingerprint(token: str) -> str:
    """A short, non-reversible name of a token for logs: the first 8 hex digits of its SHA-256."""
    return _digest(token).hex()[:8]


class TokenTable:
    """The loaded tokens; `lookup` compares against every one of them in constant time."""

    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tuple(tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def lookup(self, presented: str | None) -> Token | None:
        """The token entry matching `presented`, or None.

        Both sides are hashed first (equal lengths), then compared with hmac.compare_digest
        against every token without stopping at a match, so the time taken does not reveal
        which token matched, or how much of one.
        """
        if not presented:
            return None
        digest = _digest(presented)
        found: Token | None = None
        for token in self._tokens:
            if hmac.compare_digest(digest, token.digest):
                found = token
        return found

    def authenticate(self, presented: str | None) -> Token:
        """The token's entry; raises Unauthenticated for a missing or unknown token."""
        if not presented:
            raise Unauthenticated("a token is required: send the header `authorization: Bearer TOKEN`")
        token = self.lookup(presented)
        if token is None:
            raise Unauthenticated(f"unknown token (fingerprint {fingerprint(presented)}); check RUNSTREAM_TOKEN")
        return token


def require_read(token: Token) -> None:
    if not token.can_read():
        raise PermissionDenied(f"this token (fingerprint {token.fingerprint}) lacks the scope 'read'")


def require_write(token: Token, project: str) -> None:
    if not token.can_write(project):
        raise PermissionDenied(
            f"this token (fingerprint {token.fingerprint}) may not write to project {project!r}: "
            f"it needs the scope 'write:{project}' or 'write:*'"
        )


def require_admin(token: Token, project: str) -> None:
    if not token.can_admin(project):
        raise PermissionDenied(
            f"this token (fingerprint {token.fingerprint}) may not change runs of project {project!r}: "
            f"deleting, renaming, tagging and archiving need the scope 'admin:{project}' or 'admin:*'"
        )


def bearer(value: str | None) -> str | None:
    """The token of an `authorization: Bearer TOKEN` value; None when absent or of another scheme."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def parse_scope(scope: str) -> str:
    """Check one scope; raises ValueError naming what is wrong."""
    if scope in (READ, WRITE_ANY, ADMIN_ANY):
        return scope
    for prefix in (WRITE_PREFIX, ADMIN_PREFIX):
        if scope.startswith(prefix):
            project = scope[len(prefix) :]
            if project and _PROJECT_RE.fullmatch(project):
                return scope
            raise ValueError(f"scope {scope!r} needs a project name after {prefix!r}")
    raise ValueError(
        f"unknown scope {scope!r}; scopes are 'read', 'write:PROJECT', 'write:*', 'admin:PROJECT' and 'admin:*'"
    )


def parse_tokens(text: str, source: str = "<tokens>") -> TokenTable:
    """Parse a token file's text; raises TokenFileError at the first bad line (never quoting a token)."""
    tokens: list[Token] = []
    seen: dict[bytes, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue

        def fail(problem: str, number: int = number) -> TokenFileError:
            return TokenFileError(f"{source}, line {number}: {problem}")

        parts = line.split(None, 1)
        if len(parts) < 2:
            raise fail("expected `TOKEN SCOPE[,SCOPE...]`, found no scope")
        secret, scope_text = parts
        if not _TOKEN_RE.fullmatch(secret):
            raise fail("the token may hold only printable ASCII characters other than spaces and commas")
        if not MIN_TOKEN_CHARS <= len(secret) <= MAX_TOKEN_CHARS:
            raise fail(
                f"the token has {len(secret)} characters; use {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        scopes: set[str] = set()
        for scope in scope_text.split(","):
            scope = scope.strip()
            if not scope:
                raise fail("empty scope (a stray comma?)")
            try:
                scopes.add(parse_scope(scope))
            except ValueError as exc:
                raise fail(str(exc)) from None
        digest = _digest(secret)
        if digest in seen:
            raise fail(f"the same token is already on line {seen[digest]}; give each token one line")
        seen[digest] = number
        tokens.append(Token(digest=digest, scopes=frozenset(scopes), line=number))
    if not tokens:
        raise TokenFileError(f"{source}: no tokens; add lines of `TOKEN SCOPE[,SCOPE...]`")
    return TokenTable(tokens)


def load_tokens(path: Path) -> TokenTable:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenFileError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TokenFileError(f"{path}: not UTF-8 text") from None
    return parse_tokens(text, str(path))
