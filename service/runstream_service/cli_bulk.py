"""The CLI's `backup`, `restore` and `export` commands (cli.py adds them and hands their arguments here)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when used: the CLI starts without DuckDB or pyarrow
    from runstream_service.export import Exported, Selection
    from runstream_service.retention import RetentionPolicy

COMMANDS = ("backup", "restore", "export")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = commands.add_parser(
        "backup", help="copy a runstream database as of one moment, while its server goes on ingesting"
    )
    backup.add_argument("dest", help="the backup file to make (a directory: a file named by the time in it)")
    _source(backup, "back up")

    restore = commands.add_parser("restore", help="put a backup in place as the database of a data directory")
    restore.add_argument("src", help="a file made by `runstream backup`")
    restore.add_argument(
        "--data", required=True, help="the data directory to restore into; it must hold no database yet"
    )

    export = commands.add_parser("export", help="the SQL views, filtered, to Parquet or CSV files (one per view)")
    export.add_argument("dest", help="a new (or empty) directory for the files")
    export.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="default: parquet")
    export.add_argument("--project", action="append", default=[], help="only runs of this project (repeatable)")
    export.add_argument("--run", action="append", default=[], help="only this run id (repeatable)")
    export.add_argument("--tag", action="append", default=[], help="only this tag (repeatable)")
    _source(export, "export")


def _source(parser: argparse.ArgumentParser, verb: str) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data", default="runstream-data", help=f"{verb} the data directory of a stopped server (default: %(default)s)"
    )
    source.add_argument("--url", help=f"{verb} through a running server's HTTP address, e.g. http://127.0.0.1:8080")


def run(args: argparse.Namespace) -> int:
    from runstream_service.backup import BackupError
    from runstream_service.export import ExportError
    from runstream_service.remote import RemoteError

    try:
        if args.command == "backup":
            return _backup(args)
        if args.command == "restore":
            return _restore(args)
        return _export(args)
    except (BackupError, ExportError, RemoteError, OSError) as exc:
        print(f"runstream {args.command}: {exc}", file=sys.stderr)
        return 1


def _backup(args: argparse.Namespace) -> int:
    from runstream_service.backup import backup_file, backup_path

    dest = backup_path(Path(args.dest))
    started = time.perf_counter()
    if args.url:
        _download_backup(args.url, dest)
        where = args.url
    else:
        backup_file(Path(args.data), dest)
        where = args.data
    print(
        f"runstream backup: {where} -> {dest} ({dest.stat().st_size / 1e6:,.1f} MB) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0


def _download_backup(url: str, dest: Path) -> None:
    from runstream_service.backup import BackupError, check_backup
    from runstream_service.remote import CHUNK_BYTES, open_url

    if dest.exists():
        raise BackupError(f"{dest} exists; give a new file name (or a directory) for the backup")
    partial = dest.with_name(dest.name + ".partial")
    try:
        with open_url(url, "/api/admin/backup", method="POST") as reply, open(partial, "wb") as out:
            expected = int(reply.headers.get("Content-Length", "-1"))
            while chunk := reply.read(CHUNK_BYTES):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
            if out.tell() != expected:
                raise BackupError(f"the transfer was cut after {out.tell():,} of {expected:,} bytes; try again")
        check_backup(partial)
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)


def _restore(args: argparse.Namespace) -> int:
    from runstream_service.backup import restore

    target = restore(Path(args.src), Path(args.data))
    print(f"runstream restore: {args.src} -> {target}; start it with `runstream serve --data {args.data}`")
    return 0


def _export(args: argparse.Namespace) -> int:
    from runstream_service.export import Selection, export_file, prepare_dest

    selection = Selection(tuple(args.project), tuple(args.run), tuple(args.tag))
    dest = Path(args.dest)
    if args.url:
        prepare_dest(dest)
        done = _export_url(args.url, dest, args.format, selection)
    else:
        done = export_file(Path(args.data), dest, args.format, selection)
    for exported in done:
        if exported.path is not None:
            print(f"{exported.view}: {exported.rows:,} rows -> {exported.path}")
    written = [e for e in done if e.path is not None]
    print(f"runstream export: {len(written)} files, {sum(e.rows for e in written):,} rows in {dest}")
    return 0


def _export_url(url: str, dest: Path, fmt: str, selection: Selection) -> list[Exported]:
    import pyarrow as pa

    from runstream_service.export import EXPORT_VIEWS, ExportError, selected, write_stream
    from runstream_service.remote import open_url

    done: list[Exported] = []
    query = {"project": list(selection.projects), "run": list(selection.runs), "tag": list(selection.tags)}
    for view in EXPORT_VIEWS:
        if not selected(view, selection):
            continue
        with open_url(url, "/api/export", query={"view": view.name, **query}) as reply:
            try:
                reader = pa.ipc.open_stream(reply)
                done.append(write_stream(reader, view.name, dest, fmt))
            except (pa.ArrowInvalid, OSError) as exc:
                raise ExportError(f"the server's stream of {view.name} was cut ({exc}); try again") from None
    return done


def add_retention_flags(serve: argparse.ArgumentParser) -> None:
    """`runstream serve`'s retention flags (README "Retention"; service/runstream_service/retention.py)."""
    serve.add_argument(
        "--retention", metavar="FILE", help="retention rules per project, a TOML or JSON file (README: Retention)"
    )
    serve.add_argument(
        "--delete-runs-after",
        action="append",
        default=[],
        metavar="PROJECT=DAYS",
        help="delete a project's runs (PROJECT may be '*') that ended this many days ago (repeatable)",
    )
    serve.add_argument(
        "--raw-points-after",
        action="append",
        default=[],
        metavar="PROJECT=DAYS",
        help="keep only the rollup tiers' points of scalar series last written this many days ago (repeatable)",
    )
    serve.add_argument(
        "--retention-interval", type=float, default=None, help="seconds between applications of the rules (3600)"
    )


def retention_policy(args: argparse.Namespace) -> RetentionPolicy:
    """The policy of the file and flags; RetentionError says what is wrong."""
    from runstream_service.retention import RetentionPolicy, load_policy, with_flags

    policy = load_policy(Path(args.retention)) if args.retention else RetentionPolicy()
    return with_flags(policy, args.delete_runs_after, args.raw_points_after, args.retention_interval)
