"""Scale-out on DuckLake: several ingest servers write one lake (a PostgreSQL catalog, Parquet data files on a
shared path or on S3-compatible storage), and any DuckDB 1.5.5 client ATTACHes it read-only.

The design, and why
-------------------
* Acknowledge locally, move in bulk. Each server keeps its own DuckDB file as a single server does, and
  acknowledges a batch once the local transaction holding it commits. A small commit to DuckLake costs
  about 9 ms at best and seconds under contention, and a Parquet file per batch would ruin reads, so the
  batch is not written to the lake then. In that local transaction, the batch's scalar points go into an
  outbox (``lake_outbox_batches``: one row per batch, its ``(writer_id, seq)``; ``lake_outbox_scalars``:
  its points in the lake's shape) (store/lake_store.py), and only there: the file's own scalar tables stay
  empty (a second copy, written and compacted for nothing, halved ingest: bench/lake.py), and every read
  of scalars on a lake server reads the lake and the unmoved outbox (store/lake_queries.py, and the
  file's `scalars` view, which store/lake_store.py replaces).
* The mover (store/lake_mover.py), one thread per server, moves the outbox to the lake in large commits:
  every ``move_seconds`` it takes the outbox's batches, and in ONE lake transaction inserts their points
  and their keys into ``lake_batches(writer_id, seq, server, moved_at)``; only after that commit does it
  delete them from the outbox (a second, local transaction: DuckDB writes one database per transaction).
* Exactly once across servers: per-batch keys, not "a writer's highest seq". A batch whose key is
  already in ``lake_batches`` is not moved again, only dropped from the outbox; so a mover that died
  between its lake commit and its local delete moves nothing twice, and a batch that two servers both
  committed (the first server committed it but died before its ack reached the client, which replayed it
  to the second) lands once. Because the keys are per batch, order does not matter: server B may move a
  writer's seq 6 long before a restarted server A moves its acknowledged seq 5, and seq 5 is still moved
  (tests/lake/test_lake_exactly_once.py plays exactly that). Each server's own refusal of replays (its local
  highest seq per writer) stays valid, since a writer's seqs only grow and a client replays only what
  it was not acknowledged. Movers serialise on a PostgreSQL advisory lock (a session lock: it goes when
  a dead server's connection does), so the "not yet in lake_batches" check and the insert cannot race.
  So that ``lake_batches`` does not keep every batch ever moved (and each check scan them all), maintenance
  folds each writer's unbroken run of seqs from 1 into ``lake_writer_marks(writer_id, seq_done)`` (every
  seq up to ``seq_done`` is in the lake) and deletes those keys, in one lake transaction under the movers'
  lock. A batch is in the lake when its key is in ``lake_batches`` or its seq is at most its writer's
  mark. A gap (a batch refused, or not moved yet) stops the mark there; the keys after it stay.
* Global identifiers: the lake keys points by ``(run_id, tag)``, the documented views' columns, so the
  small series ids each server hands out never leave it and cannot collide. Runs: ``lake_runs`` holds
  rank 0's metadata (name, config, project) whichever server rank 0 reached, ``lake_run_ranks`` one row
  per rank, so the ranks of one run may reach different servers. A run's row changes on whichever server
  its writer reached last, so each row carries ``noted_at``, the wall time of the OpenRun or FinishRun
  it reflects, and a server replaces a row only with a newer one: a server that comes back with an old
  note (its OpenRun, unmoved when it died) does not turn a run that finished elsewhere back to running.
  (Servers' clocks are assumed in step to well under the time between a run's open and its finish.)
* Deletion: a run deleted on any server (CLI, API, page, retention) is deleted there as on a single
  server and, in the same local transaction, noted in the outbox (``lake_outbox_deletions``); the mover
  then, in one lake transaction, records it in ``lake_deleted_runs`` and deletes its points and rows
  from the lake. Every mover leaves out points of a run deleted in the lake (another server's unmoved
  ones included), and every server refuses the run's later batches, as a single server does. Other
  servers' own files keep what they took of the run (their pages read the lake).
* Names and labels: a rename or label change on a server notes the run's name and labels as they now are
  in its outbox (``lake_outbox_labels``, in the change's transaction); the mover puts each run's newest
  into ``lake_run_labels`` unless the lake's is newer. A run row (``lake_runs``) is replaced whole by a
  newer run note from any server, which may hold an old name, so the name as renamed lives here, and
  the ``runs`` view and every server's runs list take it from here first. A change on a server first
  takes the lake's newer name and labels into its file, so it changes them rather than undoes them.
* Maintenance: DuckLake's own ``ducklake_merge_adjacent_files`` and ``ducklake_expire_snapshots`` /
  ``ducklake_cleanup_old_files``, run by whichever server takes a second advisory lock (one at a time).
* Every kind goes to the lake: the other kinds' points (histograms, images, ...) are put, in the batch's
  local transaction, into the file's own tables (its page reads them there) and into an outbox table per
  kind (``lake_outbox_<point table>``); the move inserts them into ``lake_<view>`` in its one lake
  transaction with the batch's scalars and key, so they too land exactly once. A lake server's reads of
  them (its tabs, store/series_points.py) go through its views, which read the outbox and the lake.
* Reads: any DuckDB 1.5.5 client ATTACHes the lake read-only and queries ``scalars``, ``runs``,
  ``run_ranks``, ``deleted_runs`` and every other kind's documented view (views over the lake tables,
  created in the lake itself). A point is
  visible there ``move_seconds`` plus one lake commit after its acknowledgement. A lake server's page
  reads the lake plus its own unmoved outbox (store/lake_queries.py): runs, tags, and scalar series, whose
  step axis reads ``lake_rollups``, the rollup partials the mover writes with the points they summarise;
  its ``/api/events`` announce what any server moved (store/lake_changes.py).
* Loss of one server's disk loses exactly the batches it acknowledged and had not moved yet: at most
  ``move_seconds`` plus one move's duration of that server's ingest (at the defaults, about 1-2 s), and
  never more than ``max_backlog_points`` (``--lake-max-backlog``): while the lake is unreachable the
  outbox grows, and past that many points the server refuses batches with RESOURCE_EXHAUSTED and a
  retry-after (clients keep them, spooling, and send them again; to another server if they know one).
  The lake (catalog and data path) is the durable copy; back it up with PostgreSQL's and the storage's tools.

What is not built yet: the time axes of a chart aggregate the lake's points (no tiers for them); backup
acts on the local file only (retention deletes through the deletion above; crashed runs are watched
across servers by store/lake_crashes.py).

DuckLake installs offline only for DuckDB 1.5.5 (the ``runstream[lake]`` extra: the extension wheels,
loaded from their files), so the lake needs that version; the rest of runstream runs on 1.5.5 and 2.x.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from runstream_service.store import schema
from runstream_service.store.kinds import GRAPH, KINDS, SCALAR, Kind

LAKE = "lake"  # the name the lake is attached under, on servers and in the README's notebook example
EXTENSIONS = (
    ("duckdb_extension_postgres_scanner", "postgres_scanner"),
    ("duckdb_extension_ducklake", "ducklake"),
    ("duckdb_extension_httpfs", "httpfs"),
)
ATTACH_ATTEMPTS = 5


# The rows of a query's FROM item `alias` (with writer_id and seq) whose batch the lake does not hold yet:
# its key is not in lake_batches, and its seq is past its writer's mark (lake_writer_marks).
def not_in_lake(alias: str) -> str:
    return (
        f"ANTI JOIN {LAKE}.lake_batches lake_b USING (writer_id, seq) "
        f"LEFT JOIN {LAKE}.lake_writer_marks lake_w USING (writer_id) "
        f"WHERE {alias}.seq > coalesce(lake_w.seq_done, 0)"
    )


MOVER_LOCK = 0x72756E01  # PostgreSQL advisory lock keys (pg_advisory_lock): one mover at a time
MAINTENANCE_LOCK = 0x72756E02  # ... and one maintainer


def without_the_lake(error: duckdb.Error) -> str:
    """`error`'s message, saying what to do when it came from a lake server's view read without the lake."""
    message = str(error)
    if isinstance(error, duckdb.CatalogException) and f'"{LAKE}"' in message:
        message += (
            ". This file is a lake server's: its views read the lake, which is not attached here. Query through "
            'a server (--url http://HOST:PORT), or ATTACH the lake read-only (README "Scale-out on DuckLake")'
        )
    return message


class LakeError(RuntimeError):
    """The lake cannot be used as configured; the message says what to do."""


@dataclass(frozen=True)
class LakeConfig:
    """Where the lake is: a PostgreSQL catalog (libpq key=value string or postgresql:// URL), a data path."""

    catalog: str
    data_path: str
    s3_endpoint: str | None = None  # HOST:PORT of an S3-compatible server, for an s3:// data path
    move_seconds: float = 1.0  # how often the mover moves the outbox to the lake
    maintenance_seconds: float = 300.0  # how often a server tries to compact the lake's small files
    # Points acknowledged and not yet moved, at most: beyond, the server refuses batches until the lake takes
    # them (RESOURCE_EXHAUSTED with a retry-after; clients spool and send again), so that the loss of its
    # disk while the lake is unreachable is bounded by size as well as by time.
    max_backlog_points: int = 20_000_000

    @property
    def is_s3(self) -> bool:
        return self.data_path.startswith("s3://")


def extension_file(module: str, name: str) -> Path:
    """The extension's binary inside its PyPI wheel (duckdb-extension-NAME), for this DuckDB version."""
    try:
        package = importlib.import_module(module)
    except ImportError as exc:
        raise LakeError(
            f"the lake needs DuckDB 1.5.5 and its extension wheels: pip install 'runstream[lake]' ({exc})"
        ) from exc
    path = Path(str(package.__file__)).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise LakeError(
            f"no {name} extension for DuckDB {duckdb.__version__} in {path.parent}: the lake runs on DuckDB 1.5.5; "
            "install it with pip install 'runstream[lake]'"
        )
    return path


def load_extensions(con: duckdb.DuckDBPyConnection) -> None:
    for module, name in EXTENSIONS:
        con.execute(f"LOAD '{extension_file(module, name)}'")


def catalog_dsn(catalog: str) -> str:
    """A libpq key=value string (what DuckLake's postgres catalog takes) from either accepted form."""
    if not catalog.startswith(("postgres://", "postgresql://")):
        return catalog
    match = re.fullmatch(r"postgres(?:ql)?://(?:([^:@/]*)(?::([^@/]*))?@)?([^:/?]*)(?::(\d+))?/([^?]+)", catalog)
    if match is None:
        raise LakeError(f"--lake: cannot read {catalog!r}; give postgresql://USER@HOST:PORT/DB or 'dbname=DB host=...'")
    user, password, host, port, dbname = match.groups()
    parts = {"dbname": dbname, "host": host or None, "port": port, "user": user or None, "password": password}
    return " ".join(f"{key}={value}" for key, value in parts.items() if value)


def attach(con: duckdb.DuckDBPyConnection, config: LakeConfig, *, read_only: bool = False) -> None:
    """Load the extensions and ATTACH the lake as `lake` on `con`'s database (every cursor sees it)."""
    load_extensions(con)
    if config.is_s3:
        con.execute(s3_secret(config, os.environ))
    data_path = config.data_path if config.is_s3 else str(Path(config.data_path).resolve()) + "/"
    options = [f"DATA_PATH '{_quote(data_path)}'", "METADATA_SCHEMA 'runstream_lake'"]
    if read_only:
        options.append("READ_ONLY")
    for attempt in range(ATTACH_ATTEMPTS):
        try:
            con.execute(
                f"ATTACH IF NOT EXISTS 'ducklake:postgres:{_quote(catalog_dsn(config.catalog))}' AS {LAKE} "
                f"({', '.join(options)})"
            )
            return
        except duckdb.Error as exc:
            # Servers started together on an empty catalog race to create DuckLake's schema and tables there;
            # the loser gets PostgreSQL's "duplicate key" or "relation ... already exists", and its next
            # try finds them made.
            if attempt + 1 < ATTACH_ATTEMPTS and ("duplicate key" in str(exc) or "already exists" in str(exc)):
                time.sleep(0.5 * (attempt + 1))
                continue
            raise LakeError(
                f"cannot attach the lake (catalog {config.catalog!r}, data {config.data_path!r}): {exc}"
            ) from exc


def s3_secret(config: LakeConfig, env: Mapping[str, str]) -> str:
    """The S3 secret for an s3:// data path: keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and
    AWS_REGION), a plain-HTTP path-style endpoint when --lake-s3-endpoint names one (a local S3 server)."""
    options = ["TYPE s3", f"REGION '{_quote(env.get('AWS_REGION', 'us-east-1'))}'"]
    if "AWS_ACCESS_KEY_ID" in env:
        options += [
            f"KEY_ID '{_quote(env['AWS_ACCESS_KEY_ID'])}'",
            f"SECRET '{_quote(env.get('AWS_SECRET_ACCESS_KEY', ''))}'",
        ]
    if config.s3_endpoint:
        options += [f"ENDPOINT '{_quote(config.s3_endpoint)}'", "URL_STYLE 'path'", "USE_SSL false"]
    return f"CREATE OR REPLACE SECRET runstream_lake_s3 ({', '.join(options)})"


def _quote(text: str) -> str:
    return text.replace("'", "''")


SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {LAKE}.lake_scalars (
    run_id VARCHAR, tag VARCHAR, step BIGINT, rank INTEGER, wall_time DOUBLE, value DOUBLE
);
CREATE TABLE IF NOT EXISTS {LAKE}.lake_batches (writer_id VARCHAR, seq UBIGINT, server VARCHAR, moved_at DOUBLE);
CREATE TABLE IF NOT EXISTS {LAKE}.lake_writer_marks (writer_id VARCHAR, seq_done UBIGINT);
CREATE TABLE IF NOT EXISTS {LAKE}.lake_runs (
    run_id VARCHAR, project VARCHAR, name VARCHAR, config VARCHAR, status VARCHAR, created_at DOUBLE,
    finished_at DOUBLE, host VARCHAR, world_size INTEGER, noted_at DOUBLE
);
CREATE TABLE IF NOT EXISTS {LAKE}.lake_run_ranks (
    run_id VARCHAR, rank INTEGER, host VARCHAR, started_at DOUBLE, finished_at DOUBLE, status VARCHAR,
    noted_at DOUBLE
);
CREATE TABLE IF NOT EXISTS {LAKE}.lake_deleted_runs (run_id VARCHAR, deleted_at DOUBLE, server VARCHAR);
CREATE TABLE IF NOT EXISTS {LAKE}.lake_run_labels (  -- a run's name as renamed and what people say of it
    run_id VARCHAR, name VARCHAR, tags VARCHAR[], note VARCHAR, archived BOOLEAN, noted_at DOUBLE
);
CREATE TABLE IF NOT EXISTS {LAKE}.lake_rollups (
    run_id VARCHAR, tag VARCHAR, level TINYINT, bucket BIGINT, points BIGINT, numbers BIGINT, sum DOUBLE,
    first_step BIGINT, first_value DOUBLE, last_step BIGINT, last_value DOUBLE,
    min_step BIGINT, min_value DOUBLE, max_step BIGINT, max_value DOUBLE
);
CREATE TABLE IF NOT EXISTS {LAKE}.lake_tag_info (  -- what writers said of their tags; the newest per (run, tag)
    run_id VARCHAR, tag VARCHAR, display_name VARCHAR, description VARCHAR, updated_at DOUBLE
);
CREATE TABLE IF NOT EXISTS {LAKE}.lake_custom_scalar_layouts (run_id VARCHAR, layout VARCHAR, updated_at DOUBLE);
CREATE OR REPLACE VIEW {LAKE}.tag_info AS SELECT * FROM {LAKE}.lake_tag_info;
CREATE OR REPLACE VIEW {LAKE}.custom_scalar_layouts AS SELECT * FROM {LAKE}.lake_custom_scalar_layouts;
CREATE TABLE IF NOT EXISTS {LAKE}.lake_thinned (  -- retention's raw_after_days: series thinned, as of their last point
    run_id VARCHAR, tag VARCHAR, last_wall DOUBLE, thinned_at DOUBLE
);
ALTER TABLE {LAKE}.lake_runs ADD COLUMN IF NOT EXISTS noted_at DOUBLE;
ALTER TABLE {LAKE}.lake_run_ranks ADD COLUMN IF NOT EXISTS noted_at DOUBLE;
CREATE OR REPLACE VIEW {LAKE}.scalars AS SELECT run_id, tag, step, rank, wall_time, value FROM {LAKE}.lake_scalars;
CREATE OR REPLACE VIEW {LAKE}.runs AS
SELECT r.run_id, r.project, coalesce(l.name, r.name) AS name, r.config, r.status,
       make_timestamp(CAST(r.created_at * 1e6 AS BIGINT)) AS created_at,
       make_timestamp(CAST(r.finished_at * 1e6 AS BIGINT)) AS finished_at,
       r.host, r.world_size, coalesce(l.tags, CAST([] AS VARCHAR[])) AS tags, coalesce(l.note, '') AS note,
       coalesce(l.archived, false) AS archived
FROM {LAKE}.lake_runs r LEFT JOIN {LAKE}.lake_run_labels l USING (run_id);
CREATE OR REPLACE VIEW {LAKE}.deleted_runs AS
SELECT run_id, make_timestamp(CAST(deleted_at * 1e6 AS BIGINT)) AS deleted_at, server FROM {LAKE}.lake_deleted_runs;
CREATE OR REPLACE VIEW {LAKE}.run_ranks AS
SELECT run_id, rank, host, started_at, finished_at, status FROM {LAKE}.lake_run_ranks;
"""


# -- the other kinds (histograms, images, texts, ...): one lake table each, in the documented view's shape ------

OTHER_KINDS = tuple(kind for kind in KINDS if kind is not SCALAR)


@functools.cache
def value_columns(kind: Kind) -> tuple[tuple[str, str], ...]:
    """(name, type) of `kind`'s value columns (after step, rank, wall_time), as store/schema.py declares them."""
    con = duckdb.connect()
    try:
        con.execute(schema.TABLES)
        declared = {name: kind_type for name, kind_type, *_ in con.execute(f"DESCRIBE {kind.table}").fetchall()}
    finally:
        con.close()
    return tuple((name, declared[name]) for name in kind.values)


def lake_table(kind: Kind) -> str:
    return f"{LAKE}.lake_{kind.view}"


def view_values(kind: Kind, alias: str = "") -> str:
    """The value columns of `kind`'s documented view (store/schema.py's: a graph's doc is JSON there)."""
    return ", ".join(
        f"CAST({alias}doc AS JSON) AS doc" if kind is GRAPH and name == "doc" else f"{alias}{name}"
        for name in kind.values
    )


def _kind_schema(kind: Kind) -> str:
    columns = ", ".join(f"{name} {kind_type}" for name, kind_type in value_columns(kind))
    return (
        f"CREATE TABLE IF NOT EXISTS {lake_table(kind)} (run_id VARCHAR, tag VARCHAR, step BIGINT, rank INTEGER, "
        f"wall_time DOUBLE, {columns});\n"
        f"CREATE OR REPLACE VIEW {LAKE}.{kind.view} AS SELECT run_id, tag, step, rank, wall_time, {view_values(kind)} "
        f"FROM {lake_table(kind)};\n"
    )


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """The lake's tables and documented views, if missing (several servers may start at once: retried)."""
    kinds = "".join(_kind_schema(kind) for kind in OTHER_KINDS)
    for attempt in range(5):
        try:
            con.execute(SCHEMA + kinds + schema.graph_nodes_view(f"{LAKE}.graph_nodes", f"{LAKE}.graphs"))
            return
        except duckdb.TransactionException:  # another server created them at the same moment
            if attempt == 4:
                raise
