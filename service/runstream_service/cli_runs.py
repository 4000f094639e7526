"""`runstream runs list|delete|rename|tag|archive|unarchive|note`: a run's lifecycle from the shell, and
`runstream compact --data DIR`: the database file of a stopped server rewritten without the space of deleted runs.

Two ways to reach the runs: `--url URL`, a running server's HTTP API (runs_api.py; RUNSTREAM_TOKEN is sent,
and needs `read` plus `admin:PROJECT` or `admin:*` for changes), or `--data DIR`, the database file of a
stopped server, changed directly with store/lifecycle.py's SQL (deletes logged as `cli --data`).

Space: DuckDB reuses the blocks a delete freed once a checkpoint has run (the server runs one after
each delete), so new points fill them and the file stops growing; the file itself does not shrink.
`compact` gives the space back to the file system: it copies every table into a new file (backup.py's
copy) and puts it in place of the old one.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

COMMANDS = ("runs", "compact")
ACTIONS = ("list", "delete", "rename", "tag", "archive", "unarchive", "note")


class RunsError(RuntimeError):
    pass


def add_commands(commands: Any) -> None:
    runs = commands.add_parser("runs", help="list, delete, rename, tag, archive or annotate runs")
    actions = runs.add_subparsers(dest="action", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=help)
        where = parser.add_mutually_exclusive_group()
        where.add_argument(
            "--data", default="runstream-data", help="data directory of a stopped server (default: runstream-data)"
        )
        where.add_argument("--url", help="a running server's HTTP address, e.g. http://127.0.0.1:8080")
        return parser

    listing = action("list", "list runs, newest first (archived ones with --archived)")
    listing.add_argument("--project", help="only this project's runs")
    listing.add_argument("--archived", action="store_true", help="also list archived runs")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    delete = action("delete", "delete runs with every point they own (cannot be undone)")
    delete.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rename = action("rename", "give a run a new name")
    rename.add_argument("run_id")
    rename.add_argument("name")
    tag = action("tag", "add tags to a run (or remove them with --remove)")
    tag.add_argument("run_id")
    tag.add_argument("tags", nargs="+", metavar="TAG")
    tag.add_argument("--remove", action="store_true", help="remove these tags instead")
    for name, help in (("archive", "hide runs in the web UI (kept, still in SQL)"), ("unarchive", "show them again")):
        archive = action(name, help)
        archive.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    note = action("note", "set a run's note (an empty string clears it)")
    note.add_argument("run_id")
    note.add_argument("text")
    compact = commands.add_parser(
        "compact", help="rewrite a stopped server's database without the space deleted runs left (shrinks the file)"
    )
    compact.add_argument("--data", default="runstream-data", help="data directory (default: runstream-data)")


def run(args: argparse.Namespace, confirm: Callable[[str], bool] | None = None) -> int:
    if args.command == "compact":
        try:
            before, after = compact_file(Path(args.data))
        except RunsError as exc:
            print(f"runstream compact: {exc}", file=sys.stderr)
            return 1
        print(f"runstream compact: {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB")
        return 0
    target: Target = HttpTarget(args.url) if args.url else FileTarget(Path(args.data))
    try:
        return _act(args, target, confirm or _ask)
    except RunsError as exc:
        print(f"runstream runs {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        target.close()


def _act(args: argparse.Namespace, target: Target, confirm: Callable[[str], bool]) -> int:
    if args.action == "list":
        found = target.list(args.project, args.archived)
        print(json.dumps(found) if args.format == "json" else _table(found))
    elif args.action == "delete":
        if not args.yes and not confirm(f"Delete {len(args.run_ids)} run(s) ({', '.join(args.run_ids)}) for good?"):
            print("nothing deleted", file=sys.stderr)
            return 1
        for run_id in args.run_ids:
            deleted = target.delete(run_id)
            name, project, points = deleted["name"], deleted["project"], deleted["points"]
            print(f"deleted run {run_id} ({name!r}, project {project!r}): {points} points")
    elif args.action == "rename":
        target.change(args.run_id, {"name": args.name})
    elif args.action == "tag":
        answer = target.change(args.run_id, {"remove_tags" if args.remove else "add_tags": args.tags})
        print(f"{args.run_id}: tags {', '.join(answer['tags']) or '(none)'}")
    elif args.action in ("archive", "unarchive"):
        for run_id in args.run_ids:
            target.change(run_id, {"archived": args.action == "archive"})
    elif args.action == "note":
        target.change(args.run_id, {"note": args.text})
    return 0


def compact_file(data: Path) -> tuple[int, int]:
    """Rewrite the database of `data` (no server may hold it) table by table; returns its sizes before and after."""
    import duckdb

    from runstream_service.backup import BackupError, backup_file
    from runstream_service.settings import DATABASE_FILE

    path = data / DATABASE_FILE
    if not path.exists():
        raise RunsError(f"no runstream database at {path}; pass --data DIR of a `runstream serve`")
    try:  # fold the write-ahead log into the file first: the copy must be all there is
        con = duckdb.connect(str(path), config={"enable_external_access": False})
    except duckdb.IOException as exc:
        raise RunsError(f"cannot open {path}: {exc}. Stop the server that holds it first") from None
    con.execute("CHECKPOINT")
    con.close()
    before = path.stat().st_size
    fresh = path.with_name(path.name + ".compacted")
    for leftover in (fresh, fresh.with_name(fresh.name + ".partial")):
        leftover.unlink(missing_ok=True)
    try:
        backup_file(data, fresh)
    except BackupError as exc:
        raise RunsError(str(exc)) from None
    os.replace(fresh, path)  # atomic: the old file or the new one, never neither
    return before, path.stat().st_size


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        raise RunsError("not asking without a terminal: pass --yes to delete")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _table(runs: list[dict[str, Any]]) -> str:
    columns = ("run_id", "project", "name", "status", "tags", "archived", "note")
    cells = [list(columns)] + [[_cell(run.get(c)) for c in columns] for run in runs]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.append(f"({len(runs)} run{'s' if len(runs) != 1 else ''})")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "yes" if value else ""
    text = "" if value is None else str(value)
    return text if len(text) <= 40 else text[:39] + "…"


class Target:
    def list(self, project: str | None, archived: bool) -> list[dict[str, Any]]:
        raise NotImplementedError

    def delete(self, run_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def change(self, run_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class FileTarget(Target):
    """The database file of a stopped server, changed in one transaction per action."""

    def __init__(self, data: Path) -> None:
        self._data = data
        self._con: Any = None

    def _open(self) -> Any:
        if self._con is not None:
            return self._con
        import duckdb

        from runstream_service.settings import DATABASE_FILE
        from runstream_service.store.schema import create_schema

        path = self._data / DATABASE_FILE
        if not path.exists():
            raise RunsError(f"no runstream database at {path}; pass --data DIR of a `runstream serve`")
        try:
            self._con = duckdb.connect(str(path), config={"enable_external_access": False})
        except duckdb.IOException as exc:
            raise RunsError(f"cannot open {path}: {exc}. A running server holds it: use --url instead") from None
        create_schema(self._con)
        return self._con

    def _transaction(self, work: Callable[[Any], Any]) -> Any:
        from runstream_service.errors import RunstreamError

        con = self._open()
        con.execute("BEGIN")
        try:
            result = work(con)
            con.execute("COMMIT")
        except RunstreamError as exc:
            con.execute("ROLLBACK")
            raise RunsError(str(exc)) from None
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return result

    def list(self, project: str | None, archived: bool) -> list[dict[str, Any]]:
        from runstream_service.store import lifecycle

        return list(self._transaction(lambda con: lifecycle.list_runs(con, project, archived)))

    def delete(self, run_id: str) -> dict[str, Any]:
        from runstream_service.store import lifecycle

        deleted = self._transaction(lambda con: lifecycle.delete_run(con, run_id, lifecycle.CLI_DATA))
        self._con.execute("CHECKPOINT")  # freed blocks are reused from here on
        return dict(deleted.as_json())

    def change(self, run_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        from runstream_service.store import lifecycle

        def work(con: Any) -> dict[str, Any]:
            labels_changes = {k: v for k, v in changes.items() if k != "name"}
            if "name" in changes:
                lifecycle.rename_run(con, run_id, changes["name"])
            labels = lifecycle.set_labels(con, run_id, **labels_changes)
            return {"tags": labels.tags, "note": labels.note, "archived": labels.archived}

        return dict(self._transaction(work))

    def close(self) -> None:
        if self._con is not None:
            self._con.close()


class HttpTarget(Target):
    """A running server's HTTP API; sends RUNSTREAM_TOKEN, trusts RUNSTREAM_TLS_CA for https://."""

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if os.environ.get("RUNSTREAM_TOKEN"):
            headers["Authorization"] = f"Bearer {os.environ['RUNSTREAM_TOKEN']}"
        context = None
        if os.environ.get("RUNSTREAM_TLS_CA") and self._url.startswith("https://"):
            context = ssl.create_default_context(cafile=os.environ["RUNSTREAM_TLS_CA"])
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self._url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=120, context=context) as reply:
                return json.load(reply)
        except urllib.error.HTTPError as exc:
            try:
                message = json.load(exc)["error"]
            except (ValueError, KeyError):
                message = f"HTTP {exc.code}"
            raise RunsError(message) from None
        except urllib.error.URLError as exc:
            raise RunsError(f"cannot reach {self._url}: {exc.reason}; is `runstream serve` running there?") from None

    def list(self, project: str | None, archived: bool) -> list[dict[str, Any]]:
        query = f"?{urllib.parse.urlencode({'project': project})}" if project else ""
        runs: list[dict[str, Any]] = self._call("GET", f"/api/runs{query}")["runs"]
        return [run for run in runs if archived or not run.get("archived")]

    def delete(self, run_id: str) -> dict[str, Any]:
        deleted: dict[str, Any] = self._call("DELETE", f"/api/runs/{urllib.parse.quote(run_id, safe='')}")["deleted"]
        return deleted

    def change(self, run_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("PATCH", f"/api/runs/{urllib.parse.quote(run_id, safe='')}", changes)
        return answer
