"""The token file (README "Security"): its format, its errors, lookup and scopes."""

from __future__ import annotations

from pathlib import Path

import pytest

from runstream_service.auth import (
    PermissionDenied,
    TokenFileError,
    Unauthenticated,
    bearer,
    fingerprint,
    load_tokens,
    parse_tokens,
    require_read,
    require_write,
)

READ = "r" * 20
WRITE_A = "a" * 20
WRITE_ALL = "w" * 20
MIXED = "m" * 20


def table_text() -> str:
    return f"""# comment
{READ} read

   # indented comment
{WRITE_A}\twrite:A
{WRITE_ALL}   write:*
{MIXED} read, write:exp-1,write:exp_2
"""


def test_parses_tokens_scopes_comments_and_blank_lines() -> None:
    table = parse_tokens(table_text())
    assert len(table) == 4
    read, write_a, write_all, mixed = (table.lookup(t) for t in (READ, WRITE_A, WRITE_ALL, MIXED))
    assert read is not None and read.scopes == {"read"} and read.line == 2
    assert write_a is not None and write_a.scopes == {"write:A"} and write_a.line == 5
    assert write_all is not None and write_all.scopes == {"write:*"}
    assert mixed is not None and mixed.scopes == {"read", "write:exp-1", "write:exp_2"}


def test_scopes() -> None:
    table = parse_tokens(table_text())
    read, write_a, write_all, mixed = (table.authenticate(t) for t in (READ, WRITE_A, WRITE_ALL, MIXED))
    assert read.can_read() and not read.can_write("A")
    assert write_a.can_write("A") and not write_a.can_write("B") and not write_a.can_read()
    assert not write_a.can_write("a"), "project names are case-sensitive"
    assert write_all.can_write("A") and write_all.can_write("anything") and not write_all.can_read()
    assert mixed.can_read() and mixed.can_write("exp-1") and not mixed.can_write("exp")
    require_read(read)
    require_write(write_a, "A")
    with pytest.raises(PermissionDenied, match="lacks the scope 'read'"):
        require_read(write_a)
    with pytest.raises(PermissionDenied, match=r"project 'B'.*'write:B'"):
        require_write(write_a, "B")
    with pytest.raises(PermissionDenied):
        require_write(read, "A")


def test_lookup_of_unknown_missing_and_near_tokens() -> None:
    table = parse_tokens(table_text())
    for presented in ("", None, READ[:-1], READ + "r", READ.upper(), " " + READ):
        assert table.lookup(presented) is None
    with pytest.raises(Unauthenticated, match="token is required"):
        table.authenticate(None)
    with pytest.raises(Unauthenticated, match="unknown token") as raised:
        table.authenticate("x" * 30)
    assert "x" * 30 not in str(raised.value) and fingerprint("x" * 30) in str(raised.value)


def test_tokens_are_not_kept_in_the_clear() -> None:
    table = parse_tokens(table_text())
    token = table.lookup(READ)
    assert token is not None
    assert READ not in repr(token) and READ.encode() not in token.digest
    assert len(fingerprint(READ)) == 8 and fingerprint(READ) == token.fingerprint


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no tokens"),
        ("# only a comment\n\n", "no tokens"),
        (f"{READ}\n", "line 1: expected `TOKEN SCOPE"),
        (f"# c\n{READ} admin\n", "line 2: unknown scope 'admin'"),
        (f"{READ} Read\n", "unknown scope 'Read'"),
        (f"{READ} write\n", "unknown scope 'write'"),
        (f"{READ} write:\n", "line 1: scope 'write:' needs a project name"),
        (f"{READ} read,\n", "line 1: empty scope"),
        (f"{READ} read,,write:A\n", "empty scope"),
        ("short read\n", "line 1: the token has 5 characters"),
        ("é" * 20 + " read\n", "printable ASCII"),
        (f"{READ} read\n{WRITE_A} write:A\n{READ} write:B\n", "line 3: the same token is already on line 1"),
    ],
)
def test_errors_name_the_line_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(TokenFileError, match="^tokens.txt") as raised:
        parse_tokens(text, "tokens.txt")
    assert message in str(raised.value)
    for token in (READ, WRITE_A):
        assert token not in str(raised.value), "a token was quoted in an error"


def test_load_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text(table_text())
    assert len(load_tokens(path)) == 4
    with pytest.raises(TokenFileError, match="cannot read the token file"):
        load_tokens(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("BEARER abc", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
        ("abc", None),
    ],
)
def test_bearer(header: str | None, token: str | None) -> None:
    assert bearer(header) == token
