"""The README is part of the interface: these fail when it drifts from the code."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from runstream_service.cli import build_parser
from runstream_service.store.schema import create_schema

README = (Path(__file__).parents[2] / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_views_and_their_columns_are_as_documented() -> None:
    con = duckdb.connect()
    create_schema(con)
    rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", _section("## Query with SQL"), flags=re.M)
    views = {name for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    # every view is documented, and so are the two tables users query directly
    assert {view for view, _ in rows} == views | {"tag_info", "custom_scalar_layouts"}
    for view, described in rows:
        documented = re.findall(r"`(\w+)`", described)
        actual = [name for name, *_ in con.execute(f"DESCRIBE {view}").fetchall()]
        assert documented == actual, view


def test_the_documented_query_runs() -> None:
    con = duckdb.connect()
    create_schema(con)
    query = re.search(r"```sql\n(.*?)```", README, flags=re.S)
    assert query is not None
    con.execute(query.group(1)).fetchall()


def test_every_documented_command_line_parses() -> None:
    usage = re.search(r"## Run the server\n\n```\n(.*?)```", README, flags=re.S)
    assert usage is not None
    parser = build_parser()
    for line in usage.group(1).splitlines():
        words = line.split()
        flags = [w.strip("[]") for w in words if w.startswith("[--")]
        subcommand = parser._subparsers._group_actions[0].choices[words[1]]  # type: ignore[union-attr]
        known = {option for action in subcommand._actions for option in action.option_strings}
        assert set(flags) <= known, f"{words[1]}: {set(flags) - known} documented but not accepted"
