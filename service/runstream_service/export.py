"""`runstream export`: the documented SQL views, filtered, into one Parquet or CSV file per view.

What is read is plain SQL over the views (README "Query with SQL"), built here by pure functions,
so the same rows come out whether the CLI reads a stopped server's file (`--data`: the file is
opened read-only and DuckDB's own COPY writes each file) or asks a running server (`--url`: the
server streams each view as Arrow record batches from a cursor of its own, and the CLI writes the
file with DuckDB's COPY from that stream). The server never writes a file: its database stays
opened with external access disabled. Parquet keeps every type: histograms' and PR curves' lists,
images', audio's and videos' bytes (BLOB), timestamps. CSV writes lists as `[a, b]` text and bytes
as `\\xNN`-escaped text.

With `--data` every view is read in one transaction; through a server each view is read in its
own (a view exported later may hold points written meanwhile).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from runstream_service.errors import BadRequest
from runstream_service.settings import DATABASE_FILE
from runstream_service.store.lake import without_the_lake

FORMATS = ("parquet", "csv")
BATCH_ROWS = 65_536  # rows per Arrow record batch streamed by the server


@dataclass(frozen=True)
class ExportView:
    name: str
    by_run: bool = True  # has run_id (and is filtered by project and run)
    by_tag: bool = False  # has tag (and is filtered by tag)
    has_project: bool = False  # has its own project column (runs of a deleted run are no longer in `runs`)


# The documented views. Visdom's belong to no run: exported whole, unless runs or tags are asked for,
# or a project other than `visdom` (the project of Visdom's envs).
EXPORT_VIEWS: tuple[ExportView, ...] = (
    ExportView("runs", has_project=True),
    ExportView("scalars", by_tag=True),
    ExportView("histograms", by_tag=True),
    ExportView("images", by_tag=True),
    ExportView("texts", by_tag=True),
    ExportView("audio", by_tag=True),
    ExportView("videos", by_tag=True),
    ExportView("pr_curves", by_tag=True),
    ExportView("meshes", by_tag=True),
    ExportView("tensors", by_tag=True),
    ExportView("graphs", by_tag=True),
    ExportView("graph_nodes", by_tag=True),
    ExportView("embeddings", by_tag=True),
    ExportView("tag_info", by_tag=True),
    ExportView("custom_scalar_layouts"),
    ExportView("run_deletions", has_project=True),
    ExportView("visdom_windows", by_run=False),
    ExportView("visdom_points", by_run=False),
)
VIEWS_BY_NAME = {view.name: view for view in EXPORT_VIEWS}
VISDOM_PROJECT = "visdom"


class ExportError(RuntimeError):
    """An export that cannot be done; the message says what to do instead."""


@dataclass(frozen=True)
class Selection:
    """What to export: runs of these projects, these runs, these tags (each empty: no filter)."""

    projects: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Exported:
    view: str
    path: Path | None  # None: no rows, no file
    rows: int


def view_named(name: str) -> ExportView:
    try:
        return VIEWS_BY_NAME[name]
    except KeyError:
        raise BadRequest(f"view: {name!r} is not exported; one of {', '.join(VIEWS_BY_NAME)}") from None


def selected(view: ExportView, selection: Selection) -> bool:
    """Whether the selection can hold rows of `view` at all (Visdom's views: only without a run filter)."""
    if view.by_run:
        return True
    return not selection.runs and not selection.tags and selection.projects in ((), (VISDOM_PROJECT,))


def view_sql(view: ExportView, selection: Selection) -> str:
    """SELECT of the view's rows in the selection; values are quoted literals (COPY takes no parameters)."""
    where: list[str] = []
    if view.by_run and selection.projects:
        projects = _list(selection.projects)
        if view.has_project:
            where.append(f"list_contains({projects}, project)")
        else:
            where.append(f"run_id IN (SELECT run_id FROM run_meta WHERE list_contains({projects}, project))")
    if view.by_run and selection.runs:
        where.append(f"list_contains({_list(selection.runs)}, run_id)")
    if view.by_tag and selection.tags:
        where.append(f"list_contains({_list(selection.tags)}, tag)")
    return f"SELECT * FROM {view.name}" + (" WHERE " + " AND ".join(where) if where else "")


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::VARCHAR[]"


def copy_sql(query: str, path: Path, fmt: str) -> str:
    options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER true"
    return f"COPY ({query}) TO '{str(path).replace(chr(39), chr(39) * 2)}' ({options})"


def prepare_dest(dest: Path) -> None:
    """The export's directory: made when missing; one that holds files is refused (nothing is overwritten)."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ExportError(f"{dest} exists and is not an empty directory; give a new directory for the export")
    dest.mkdir(parents=True, exist_ok=True)


def export_file(data_dir: Path, dest: Path, fmt: str, selection: Selection) -> list[Exported]:
    """Export from the database of `data_dir`, which no server holds, in one read transaction."""
    source = data_dir / DATABASE_FILE
    if not source.exists():
        raise ExportError(f"no runstream database at {source}; pass --data DIR of a `runstream serve`")
    try:
        con = duckdb.connect(str(source), read_only=True)
    except duckdb.IOException as exc:
        raise ExportError(
            f"cannot open {source}: {exc}. A running server holds it: export through the server "
            "instead, with --url http://HOST:PORT"
        ) from None
    try:
        prepare_dest(dest)
        present = {name for (name,) in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        con.execute("BEGIN TRANSACTION")
        done = []
        for view in EXPORT_VIEWS:
            if view.name in present and selected(view, selection):
                done.append(_copy(con, view_sql(view, selection), view.name, dest, fmt))
        con.execute("ROLLBACK")
        return done
    except duckdb.CatalogException as exc:
        raise ExportError(without_the_lake(exc)) from None
    finally:
        con.close()


def write_stream(reader: pa.RecordBatchReader, view: str, dest: Path, fmt: str) -> Exported:
    """Write one view's rows from an Arrow stream (`export --url`) with DuckDB's COPY, as `export_file` does."""
    with tempfile.TemporaryDirectory(prefix="runstream-export-") as spill:
        con = duckdb.connect(config={"temp_directory": spill, "memory_limit": "512MB", "threads": 2})
        try:
            con.register("streamed_rows", reader)
            return _copy(con, "SELECT * FROM streamed_rows", view, dest, fmt)
        finally:
            con.close()


def _copy(con: duckdb.DuckDBPyConnection, query: str, view: str, dest: Path, fmt: str) -> Exported:
    path = dest / f"{view}.{fmt}"
    (rows,) = con.execute(copy_sql(query, path, fmt)).fetchall()[0]
    if not rows:
        path.unlink(missing_ok=True)
        return Exported(view, None, 0)
    return Exported(view, path, int(rows))
