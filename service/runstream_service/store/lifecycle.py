"""A run's lifecycle in SQL: delete, rename, tags, note, archive, and the `crashed` status.

Plain functions over a DuckDB connection, run inside a transaction their caller owns: on a running
server the single writer thread (a store.base.Transaction, so no write races the writer's caches),
and with `runstream runs ... --data DIR` a connection of the CLI's own to a file no server holds.

What a run owns, table by table (RUN_TABLES; tests/unit/test_lifecycle.py fails when a table of
store/schema.py is in neither list, so a table added later must be placed in one):

- by run_id: run_meta, run_ranks, run_labels, tag_info, custom_scalar_layouts;
- by the run's series ids: every kind's point table (store/kinds.py; scalars also in the compacted
  scalar_points and their scalar_rollups), series_stats, then the series rows themselves;
- writer_progress: SDK writers have random ids that nothing ties to a run, so their rows stay (a
  few bytes each; a replayed batch of a deleted run is then still recognised as one). Importers'
  writers are named `RUN_ID-p-...` (tbfollow.py): theirs are deleted, so a re-import reads from the start.

Not a run's: schema_info, scalar_generations (its point counts are lowered by what was removed),
deleted_runs (the log this writes), and Visdom's tables: an env is not a run; it is deleted with
Visdom's own `delete_env`.

Deleting is logged in deleted_runs (the `run_deletions` view): who, what, how many rows, when. A
deleted run's id is then refused: its writers' next batches get an error saying the run was deleted,
and OpenRun of that id is refused, so a writer that comes back cannot recreate half a run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import duckdb

from runstream_service.errors import BadRequest, NotFound
from runstream_service.store.base import RunDeleted
from runstream_service.store.kinds import KINDS

# Tables holding a run's data, and those that do not (each explained above).
RUN_TABLES: tuple[str, ...] = (
    "run_meta",
    "run_ranks",
    "run_labels",
    "tag_info",
    "custom_scalar_layouts",
    "series",
    "series_stats",
    "scalar_points",
    "scalar_rollups",
    "writer_progress",
    *(kind.table for kind in KINDS),
)
NOT_RUN_TABLES: tuple[str, ...] = (
    "schema_info",
    "scalar_generations",
    "deleted_runs",
    "visdom_envs",
    "visdom_panes",
    "visdom_trace_points",
)
MAX_NAME_CHARS = 256
MAX_TAGS = 64
MAX_TAG_CHARS = 64
MAX_NOTE_CHARS = 64 * 1024
CLI_DATA = "cli --data"  # deleted_by for deletes made on a file with `runstream runs delete --data`


@dataclass(frozen=True)
class Deleted:
    """What one delete removed (also the row it logged in deleted_runs)."""

    run_id: str
    project: str
    name: str
    points: int  # rows of every point table, scalars hot and compacted
    deleted_by: str
    deleted_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "project": self.project,
            "name": self.name,
            "points": self.points,
            "deleted_by": self.deleted_by,
            "deleted_at": self.deleted_at,
        }


def project_of(con: duckdb.DuckDBPyConnection, run_id: str) -> str:
    """The run's project; NotFound (or RunDeleted) when there is no such run."""
    rows = con.execute("SELECT project FROM run_meta WHERE run_id = ?", [run_id]).fetchall()
    if rows:
        return str(rows[0][0])
    if con.execute("SELECT 1 FROM deleted_runs WHERE run_id = ?", [run_id]).fetchall():
        raise RunDeleted(deleted_message(run_id))
    raise NotFound(f"no run {run_id!r}; `runstream runs list` shows the runs")


def delete_run(con: duckdb.DuckDBPyConnection, run_id: str, deleted_by: str, now: float | None = None) -> Deleted:
    """Remove every row the run owns (RUN_TABLES) and log it in deleted_runs."""
    rows = con.execute("SELECT project, name FROM run_meta WHERE run_id = ?", [run_id]).fetchall()
    if not rows:
        project_of(con, run_id)  # raises the right NotFound
    project, name = rows[0]
    ids = [sid for (sid,) in con.execute("SELECT series_id FROM series WHERE run_id = ?", [run_id]).fetchall()]
    points = 0
    if ids:
        listed = ", ".join(str(int(i)) for i in ids)  # literals: zone maps skip the generations without them
        where = f"series_id IN ({listed})"
        removed = con.execute(
            f"SELECT generation, count(*) FROM scalar_points WHERE {where} GROUP BY generation"
        ).fetchall()
        for generation, count in removed:
            con.execute("UPDATE scalar_generations SET points = points - ? WHERE generation = ?", [count, generation])
        for table in ("scalar_points", *(kind.table for kind in KINDS)):
            points += _deleted(con.execute(f"DELETE FROM {table} WHERE {where}"))
        con.execute(f"DELETE FROM scalar_rollups WHERE {where}")
        con.execute(f"DELETE FROM series_stats WHERE {where}")
    for table in ("series", "run_meta", "run_ranks", "run_labels", "tag_info", "custom_scalar_layouts"):
        con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
    con.execute("DELETE FROM writer_progress WHERE starts_with(writer_id, ?)", [importer_writer_prefix(run_id)])
    deleted = Deleted(run_id, project, name, points, deleted_by, time.time() if now is None else now)
    con.execute(
        "INSERT INTO deleted_runs VALUES (?, ?, ?, ?, ?, ?)",
        [run_id, project, name, points, deleted_by, deleted.deleted_at],
    )
    return deleted


def deleted_message(run_id: str) -> str:
    """What a writer of a deleted run is told."""
    return (
        f"run {run_id!r} was deleted on this server (the run_deletions view says when and by whom); "
        "its batches are refused: log under a new run id"
    )


def importer_writer_prefix(run_id: str) -> str:
    """import-tensorboard's writers of a run are named RUN_ID-p-... (one per event file)."""
    return f"{run_id}-p-"


def _deleted(result: duckdb.DuckDBPyConnection) -> int:
    row = result.fetchone()
    return int(row[0]) if row else 0


def rename_run(con: duckdb.DuckDBPyConnection, run_id: str, name: str) -> None:
    project_of(con, run_id)
    con.execute("UPDATE run_meta SET name = ? WHERE run_id = ?", [check_name(name), run_id])


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name: a run's name must be a non-empty string")
    if len(name) > MAX_NAME_CHARS:
        raise BadRequest(f"name: at most {MAX_NAME_CHARS} characters")
    return name


def check_tags(tags: object) -> list[str]:
    """A list of distinct, non-empty tags without commas (the CLI and URLs list them comma-separated)."""
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadRequest("tags: must be a list of strings")
    cleaned: list[str] = []
    for tag in tags:
        tag = tag.strip()
        if not tag or "," in tag or len(tag) > MAX_TAG_CHARS:
            raise BadRequest(f"tags: {tag!r}: a tag is 1 to {MAX_TAG_CHARS} characters without commas")
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise BadRequest(f"tags: at most {MAX_TAGS} per run")
    return cleaned


def check_note(note: object) -> str:
    if not isinstance(note, str):
        raise BadRequest("note: must be a string")
    if len(note) > MAX_NOTE_CHARS:
        raise BadRequest(f"note: at most {MAX_NOTE_CHARS} characters")
    return note


@dataclass(frozen=True)
class Labels:
    tags: list[str]
    note: str
    archived: bool


def labels(con: duckdb.DuckDBPyConnection, run_id: str) -> Labels:
    project_of(con, run_id)
    rows = con.execute("SELECT tags, note, archived FROM run_labels WHERE run_id = ?", [run_id]).fetchall()
    if not rows:
        return Labels([], "", False)
    tags, note, archived = rows[0]
    return Labels(list(tags), str(note), bool(archived))


def set_labels(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    add_tags: list[str] | None = None,
    remove_tags: list[str] | None = None,
    tags: list[str] | None = None,
    note: str | None = None,
    archived: bool | None = None,
    now: float | None = None,
) -> Labels:
    """Change what is said of a run; what is not given stays. `tags` replaces them, then `add_tags` and
    `remove_tags` apply."""
    old = labels(con, run_id)
    new_tags = check_tags(tags) if tags is not None else old.tags
    new_tags = check_tags(new_tags + check_tags(add_tags or []))
    drop = set(check_tags(remove_tags or []))
    new = Labels(
        [t for t in new_tags if t not in drop],
        check_note(note) if note is not None else old.note,
        old.archived if archived is None else bool(archived),
    )
    con.execute("DELETE FROM run_labels WHERE run_id = ?", [run_id])
    con.execute(
        "INSERT INTO run_labels VALUES (?, ?, ?, ?, ?)",
        [run_id, new.tags, new.note, new.archived, time.time() if now is None else now],
    )
    return new


def mark_crashed(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[str]:
    """Runs still `running` among `run_ids` become `crashed`; returns those that did."""
    return _move(con, run_ids, "running", "crashed")


def mark_running(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[str]:
    """Crashed runs among `run_ids` whose writer came back are `running` again; returns those."""
    return _move(con, run_ids, "crashed", "running")


def _move(con: duckdb.DuckDBPyConnection, run_ids: list[str], old: str, new: str) -> list[str]:
    if not run_ids:
        return []
    rows = con.execute(
        "UPDATE run_meta SET status = ? WHERE status = ? AND list_contains(?, run_id) RETURNING run_id",
        [new, old, run_ids],
    ).fetchall()
    return [r for (r,) in rows]


def list_runs(
    con: duckdb.DuckDBPyConnection, project: str | None = None, archived: bool = False
) -> list[dict[str, Any]]:
    """The runs (newest first) with their labels; archived ones only when `archived`."""
    rows = con.execute(
        """
        SELECT run_id, project, name, status, epoch(created_at), epoch(finished_at), tags, note, archived
        FROM runs WHERE (? IS NULL OR project = ?) AND (? OR NOT archived)
        ORDER BY created_at DESC
        """,
        [project, project, archived],
    ).fetchall()
    names = ("run_id", "project", "name", "status", "created_at", "finished_at", "tags", "note", "archived")
    return [dict(zip(names, row)) for row in rows]


def deletions(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = con.execute(
        "SELECT run_id, project, name, points, deleted_by, deleted_at FROM deleted_runs ORDER BY deleted_at"
    ).fetchall()
    return [Deleted(*row).as_json() for row in rows]


def deleted_run_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r for (r,) in con.execute("SELECT run_id FROM deleted_runs").fetchall()}


def running_run_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r for (r,) in con.execute("SELECT run_id FROM run_meta WHERE status = 'running'").fetchall()]


def crashed_run_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r for (r,) in con.execute("SELECT run_id FROM run_meta WHERE status = 'crashed'").fetchall()]


def describe(value: Any) -> str:
    """A value as one line of the CLI's table."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value))
    return json.dumps(value) if isinstance(value, dict) else ("" if value is None else str(value))
