"""The DuckDB schema. Tables hold the data; the views (one per data kind, store/kinds.py, and `runs`)
are the stable, documented surface for ad-hoc SQL (README, "Query with SQL").

Points refer to a series (run, kind, tag) by a small integer id, so a point row
is five numbers wide and a series' rows can be clustered by that id.

Scalar points live in two tables: the writer appends to scalar_points_hot; the compactor
(store/compactor.py) moves settled points into scalar_points, sorted by series and step, one
"generation" per compaction, and writes their rollup tiers (store/rollups.py) into
scalar_rollups in the same transaction. Every point is in exactly one of the two tables; the
`scalars` view reads both.
"""

from __future__ import annotations

import duckdb

# 3: the Visdom tables (visdom_envs, visdom_panes, visdom_trace_points). 4: audio, videos, PR curves, meshes,
# tensors, image boxes, tag_info, custom_scalar_layouts, writer_progress.source_offset. 5: run_labels (tags,
# note, archived), deleted_runs, status 'crashed' (store/lifecycle.py).
SCHEMA_VERSION = 5

TABLES = """
CREATE TABLE IF NOT EXISTS schema_info (version INTEGER NOT NULL);

CREATE TABLE IF NOT EXISTS run_meta (
    run_id      VARCHAR NOT NULL,
    project     VARCHAR NOT NULL,
    name        VARCHAR NOT NULL,
    config      JSON,
    status      VARCHAR NOT NULL,     -- running | finished | failed | crashed
    created_at  DOUBLE NOT NULL,      -- seconds since the Unix epoch
    finished_at DOUBLE,
    host        VARCHAR,
    world_size  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS run_labels (  -- what people say of a run (store/lifecycle.py); none: no row
    run_id     VARCHAR NOT NULL,
    tags       VARCHAR[] NOT NULL,
    note       VARCHAR NOT NULL,
    archived   BOOLEAN NOT NULL,      -- hidden by the web UI's runs panel unless asked for; kept
    updated_at DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS deleted_runs (  -- one row per deleted run; also refuses the run id afterwards
    run_id         VARCHAR NOT NULL,
    project        VARCHAR NOT NULL,
    name           VARCHAR NOT NULL,
    points         BIGINT NOT NULL,   -- rows of every kind removed with it
    deleted_by     VARCHAR NOT NULL,  -- 'token ABCD1234' (fingerprint), 'http, no tokens', 'cli --data' or 'retention'
    deleted_at     DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS run_ranks (
    run_id      VARCHAR NOT NULL,
    rank        INTEGER NOT NULL,
    host        VARCHAR,
    started_at  DOUBLE NOT NULL,
    finished_at DOUBLE,
    status      VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS series (
    series_id INTEGER NOT NULL,
    run_id    VARCHAR NOT NULL,
    kind      VARCHAR NOT NULL,       -- scalar | histogram | image | text
    tag       VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS scalar_points_hot (  -- as they arrive; the compactor empties it
    series_id INTEGER NOT NULL,
    step      BIGINT NOT NULL,
    rank      INTEGER NOT NULL,
    wall_time DOUBLE NOT NULL,
    value     DOUBLE                  -- NaN and +-Inf are kept
);

CREATE TABLE IF NOT EXISTS scalar_points (  -- compacted: each generation sorted by series_id, step, rank
    series_id  INTEGER NOT NULL,
    step       BIGINT NOT NULL,
    rank       INTEGER NOT NULL,
    wall_time  DOUBLE NOT NULL,
    value      DOUBLE,
    generation INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS scalar_rollups (  -- per compacted generation, series, level and bucket of 2^level steps
    generation  INTEGER NOT NULL,
    series_id   INTEGER NOT NULL,
    level       TINYINT NOT NULL,     -- bucket = step >> level
    bucket      BIGINT NOT NULL,
    points      BIGINT NOT NULL,
    numbers     BIGINT NOT NULL,      -- points whose value is not NaN
    sum         DOUBLE NOT NULL,      -- of those values
    first_step  BIGINT NOT NULL,
    first_value DOUBLE,
    last_step   BIGINT NOT NULL,
    last_value  DOUBLE,
    min_step    BIGINT,               -- min and max: NULL when numbers = 0
    min_value   DOUBLE,
    max_step    BIGINT,
    max_value   DOUBLE
);

CREATE TABLE IF NOT EXISTS scalar_generations (
    generation INTEGER NOT NULL,
    points     BIGINT NOT NULL,
    created_at DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS histogram_points (
    series_id     INTEGER NOT NULL,
    step          BIGINT NOT NULL,
    rank          INTEGER NOT NULL,
    wall_time     DOUBLE NOT NULL,
    count         DOUBLE NOT NULL,
    min           DOUBLE,
    max           DOUBLE,
    sum           DOUBLE,
    sum_squares   DOUBLE,
    bucket_limits DOUBLE[] NOT NULL,  -- the edges: one more than bucket_counts, ascending
    bucket_counts DOUBLE[] NOT NULL
);

CREATE TABLE IF NOT EXISTS image_points (
    series_id INTEGER NOT NULL,
    step      BIGINT NOT NULL,
    rank      INTEGER NOT NULL,
    wall_time DOUBLE NOT NULL,
    width     INTEGER NOT NULL,
    height    INTEGER NOT NULL,
    mime      VARCHAR NOT NULL,
    data      BLOB NOT NULL,
    boxes     VARCHAR                 -- NULL, or JSON {"boxes": [[x_min, y_min, x_max, y_max], ...], "labels": [...]}
);

CREATE TABLE IF NOT EXISTS text_points (
    series_id INTEGER NOT NULL,
    step      BIGINT NOT NULL,
    rank      INTEGER NOT NULL,
    wall_time DOUBLE NOT NULL,
    text      VARCHAR NOT NULL        -- as logged (TensorBoard shows it as Markdown)
);

CREATE TABLE IF NOT EXISTS embedding_points (  -- one row per point; an embedding is (series_id, step, rank)
    series_id  INTEGER NOT NULL,
    step       BIGINT NOT NULL,
    rank       INTEGER NOT NULL,
    wall_time  DOUBLE NOT NULL,
    idx        INTEGER NOT NULL,      -- the point's row in the logged matrix, 0..total_rows-1
    vector     FLOAT[] NOT NULL,
    metadata   JSON,                  -- {column: value}; one unnamed column is "label"
    image      BLOB,                  -- PNG thumbnail, or NULL
    total_rows INTEGER NOT NULL       -- the embedding's points: it is complete when all have arrived
);

CREATE TABLE IF NOT EXISTS graph_points (  -- one model graph per row (SummaryWriter.add_graph: tag graph)
    series_id  INTEGER NOT NULL,
    step       BIGINT NOT NULL,
    rank       INTEGER NOT NULL,
    wall_time  DOUBLE NOT NULL,
    nodes      BIGINT NOT NULL,       -- counts of the document's nodes and edges
    edges      BIGINT NOT NULL,
    parameters BIGINT NOT NULL,       -- the model's parameters
    doc        VARCHAR NOT NULL       -- the graph document, JSON (sdk/runstream/_graph.py)
);

CREATE TABLE IF NOT EXISTS audio_points (
    series_id   INTEGER NOT NULL,
    step        BIGINT NOT NULL,
    rank        INTEGER NOT NULL,
    wall_time   DOUBLE NOT NULL,
    sample_rate DOUBLE NOT NULL,      -- from the WAV header, as are channels and frames
    channels    INTEGER NOT NULL,
    frames      BIGINT NOT NULL,      -- samples per channel
    wav         BLOB NOT NULL         -- the WAV file as sent (integer PCM or float32)
);

CREATE TABLE IF NOT EXISTS video_points (
    series_id INTEGER NOT NULL,
    step      BIGINT NOT NULL,
    rank      INTEGER NOT NULL,
    wall_time DOUBLE NOT NULL,
    width     INTEGER NOT NULL,
    height    INTEGER NOT NULL,
    frames    INTEGER NOT NULL,
    fps       DOUBLE NOT NULL,
    mime      VARCHAR NOT NULL,       -- image/apng | image/gif: a browser plays either in an <img>
    data      BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS pr_curve_points (  -- TensorBoard's PR curve: six lists of `thresholds` values
    series_id       INTEGER NOT NULL,
    step            BIGINT NOT NULL,
    rank            INTEGER NOT NULL,
    wall_time       DOUBLE NOT NULL,
    thresholds      INTEGER NOT NULL,
    true_positives  DOUBLE[] NOT NULL,
    false_positives DOUBLE[] NOT NULL,
    true_negatives  DOUBLE[] NOT NULL,
    false_negatives DOUBLE[] NOT NULL,
    precision       DOUBLE[] NOT NULL,  -- in [0, 1], or NaN
    recall          DOUBLE[] NOT NULL
);

CREATE TABLE IF NOT EXISTS mesh_points (
    series_id    INTEGER NOT NULL,
    step         BIGINT NOT NULL,
    rank         INTEGER NOT NULL,
    wall_time    DOUBLE NOT NULL,
    sample       INTEGER NOT NULL,    -- the mesh's index in its logged batch
    vertex_count INTEGER NOT NULL,
    face_count   INTEGER NOT NULL,    -- 0 for a point cloud
    vertices     FLOAT[] NOT NULL,    -- x, y, z per vertex
    colors       UTINYINT[],          -- r, g, b per vertex; NULL when none
    faces        INTEGER[],           -- 3 vertex indices per face; NULL for a point cloud
    config       VARCHAR NOT NULL     -- JSON object (camera, lights, material); '{}' when none
);

CREATE TABLE IF NOT EXISTS tensor_points (
    series_id INTEGER NOT NULL,
    step      BIGINT NOT NULL,
    rank      INTEGER NOT NULL,
    wall_time DOUBLE NOT NULL,
    dtype     VARCHAR NOT NULL,       -- NumPy's name: bool, int8 .. int64, uint8 .. uint64, float16 .. float64
    shape     BIGINT[] NOT NULL,
    data      BLOB NOT NULL           -- prod(shape) little-endian values of dtype
);

CREATE TABLE IF NOT EXISTS tag_info (  -- what a writer said of a tag (display_name, summary_description); last wins
    run_id       VARCHAR NOT NULL,
    tag          VARCHAR NOT NULL,
    display_name VARCHAR NOT NULL,
    description  VARCHAR NOT NULL,
    updated_at   DOUBLE NOT NULL      -- seconds since the Unix epoch, of the commit
);

CREATE TABLE IF NOT EXISTS custom_scalar_layouts (  -- tensorboardX's add_custom_scalars; one per run, last wins
    run_id     VARCHAR NOT NULL,
    layout     VARCHAR NOT NULL,      -- JSON, as on the wire: {"categories": [...]}
    updated_at DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS series_stats (  -- kept by the writer in each commit: reads need no scan for these
    series_id  INTEGER NOT NULL,
    points     BIGINT NOT NULL,
    first_step BIGINT NOT NULL,
    last_step  BIGINT NOT NULL,
    first_wall DOUBLE NOT NULL,
    last_wall  DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS writer_progress (
    writer_id VARCHAR NOT NULL,       -- one per SDK sender
    seq       UBIGINT NOT NULL,       -- highest committed batch; replays at or below it are skipped
    source_offset UBIGINT DEFAULT 0   -- importers: where that batch ends in the writer's source file; else 0
);

-- Visdom (service/runstream_service/visdom/): an env is not a training run, so it has its own table,
-- with the project ('visdom') that project-level operations select by.
CREATE TABLE IF NOT EXISTS visdom_envs (
    env        VARCHAR NOT NULL,
    project    VARCHAR NOT NULL,
    created_at DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS visdom_panes (  -- one per window: its Visdom document without columnar traces' points
    pane_id    BIGINT NOT NULL,
    env        VARCHAR NOT NULL,
    win        VARCHAR NOT NULL,
    type       VARCHAR NOT NULL,      -- plot | image | image_history | text | properties | network | embeddings
    title      VARCHAR,
    position   INTEGER NOT NULL,      -- the window's order in its env
    opts       JSON NOT NULL,         -- the opts the client sent, merged over updates (NaN as null)
    doc        VARCHAR NOT NULL,      -- Visdom's JSON of the window, which may hold NaN and Infinity tokens
    created_at DOUBLE NOT NULL,
    updated_at DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS visdom_trace_points (  -- line and scatter traces: one row per point, appended
    pane_id BIGINT NOT NULL,
    trace   INTEGER NOT NULL,         -- the trace's id within its window (doc: data[i]._rs_trace)
    seq     BIGINT NOT NULL,          -- 0, 1, ... in the trace's order
    x       DOUBLE,
    y       DOUBLE,
    z       DOUBLE,                   -- 3-D scatter only
    text    VARCHAR,                  -- per-point text labels, if the trace has them
    color   VARCHAR                   -- per-point marker colours, if the trace has them
);
"""

VIEWS = """
CREATE OR REPLACE VIEW runs AS
SELECT m.run_id, m.project, m.name, m.config, m.status,
       make_timestamp(CAST(m.created_at * 1e6 AS BIGINT)) AS created_at,
       make_timestamp(CAST(m.finished_at * 1e6 AS BIGINT)) AS finished_at,
       m.host, m.world_size,
       coalesce(l.tags, CAST([] AS VARCHAR[])) AS tags, coalesce(l.note, '') AS note,
       coalesce(l.archived, false) AS archived
FROM run_meta m LEFT JOIN run_labels l USING (run_id);

CREATE OR REPLACE VIEW run_deletions AS
SELECT run_id, project, name, points, deleted_by,
       make_timestamp(CAST(deleted_at * 1e6 AS BIGINT)) AS deleted_at
FROM deleted_runs;

CREATE OR REPLACE VIEW scalars AS
SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.value
FROM (
    SELECT series_id, step, rank, wall_time, value FROM scalar_points
    UNION ALL
    SELECT series_id, step, rank, wall_time, value FROM scalar_points_hot
) p JOIN series s USING (series_id);

CREATE OR REPLACE VIEW histograms AS
SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.count, p.min, p.max, p.sum, p.sum_squares,
       p.bucket_limits, p.bucket_counts
FROM histogram_points p JOIN series s USING (series_id);

CREATE OR REPLACE VIEW images AS
SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.width, p.height, p.mime, p.data, p.boxes
FROM image_points p JOIN series s USING (series_id);

CREATE OR REPLACE VIEW texts AS
SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.text
FROM text_points p JOIN series s USING (series_id);

CREATE OR REPLACE VIEW embeddings AS
SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.idx, p.vector, p.metadata, p.image, p.total_rows
FROM embedding_points p JOIN series s USING (series_id);

CREATE OR REPLACE VIEW graphs AS
SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.nodes, p.edges, p.parameters, CAST(p.doc AS JSON) AS doc
FROM graph_points p JOIN series s USING (series_id);

-- The nodes of each graph, in the document's order, unnested from its JSON on each read.

CREATE OR REPLACE VIEW audio AS
SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.sample_rate, p.channels, p.frames, p.wav
FROM audio_points p JOIN series s USING (series_id);

CREATE OR REPLACE VIEW videos AS
SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.width, p.height, p.frames, p.fps, p.mime, p.data
FROM video_points p JOIN series s USING (series_id);

CREATE OR REPLACE VIEW pr_curves AS
SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.thresholds, p.true_positives, p.false_positives,
       p.true_negatives, p.false_negatives, p.precision, p.recall
FROM pr_curve_points p JOIN series s USING (series_id);

CREATE OR REPLACE VIEW meshes AS
SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.sample, p.vertex_count, p.face_count, p.vertices, p.colors,
       p.faces, p.config
FROM mesh_points p JOIN series s USING (series_id);

CREATE OR REPLACE VIEW tensors AS
SELECT s.run_id, s.tag, p.step, p.rank, p.wall_time, p.dtype, p.shape, p.data
FROM tensor_points p JOIN series s USING (series_id);

CREATE OR REPLACE VIEW visdom_windows AS
SELECT env, win, type, title, opts,
       make_timestamp(CAST(created_at * 1e6 AS BIGINT)) AS created_at,
       make_timestamp(CAST(updated_at * 1e6 AS BIGINT)) AS updated_at
FROM visdom_panes;

CREATE OR REPLACE VIEW visdom_points AS
SELECT w.env, w.win, p.trace, p.seq, p.x, p.y, p.z, p.text, p.color
FROM visdom_trace_points p JOIN visdom_panes w USING (pane_id);
"""


def graph_nodes_view(name: str, graphs: str) -> str:
    """The graph_nodes view (each node of each graph, one row) named `name`, over the graphs view `graphs`."""
    return f"""
CREATE OR REPLACE VIEW {name} AS
SELECT run_id, tag, step, rank, n.name, n.scope, n.op, n.output_shape, n.parameters
FROM (
    SELECT run_id, tag, step, rank,
           unnest(from_json(json_extract(doc, '$.nodes'),
                  '[{{"name": "VARCHAR", "scope": "VARCHAR", "op": "VARCHAR", "output_shape": "BIGINT[]",
                     "parameters": "BIGINT"}}]')) AS n
    FROM {graphs}
);
"""


class SchemaError(RuntimeError):
    """The database file was made by a newer runstream, or is not a runstream database."""


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create tables and views if missing, and check the schema version."""
    con.execute("BEGIN")
    con.execute("CREATE TABLE IF NOT EXISTS schema_info (version INTEGER NOT NULL)")
    rows = con.execute("SELECT version FROM schema_info").fetchall()
    if rows and rows[0][0] > SCHEMA_VERSION:
        con.execute("ROLLBACK")
        raise SchemaError(
            f"this database has schema version {rows[0][0]}, newer than this runstream "
            f"({SCHEMA_VERSION}); upgrade runstream"
        )
    if rows and rows[0][0] == 1:
        # Version 1 kept scalar points unclustered in scalar_points: they become hot points,
        # which the compactor sorts and rolls up like any others.
        con.execute("DROP VIEW IF EXISTS scalars")
        con.execute("ALTER TABLE scalar_points RENAME TO scalar_points_hot")
    if rows and rows[0][0] < SCHEMA_VERSION:
        # Version 2 lacked the Visdom tables, version 3 the tables of audio, videos, PR curves, meshes, tensors,
        # tag_info and custom_scalar_layouts, version 4 run_labels and deleted_runs; TABLES below creates them
        # (the runs view, replaced below, then reads the labels: none yet).
        con.execute("UPDATE schema_info SET version = ?", [SCHEMA_VERSION])
    con.execute(TABLES)
    if rows and rows[0][0] < 4:
        # Version 3's image_points lacked boxes and writer_progress lacked source_offset: added as last
        # columns, as the fresh tables have them (old rows: no boxes, offset 0).
        con.execute("ALTER TABLE image_points ADD COLUMN IF NOT EXISTS boxes VARCHAR")
        con.execute("ALTER TABLE writer_progress ADD COLUMN IF NOT EXISTS source_offset UBIGINT DEFAULT 0")
    if not rows:
        con.execute("INSERT INTO schema_info VALUES (?)", [SCHEMA_VERSION])
    con.execute(VIEWS + graph_nodes_view("graph_nodes", "graphs"))
    con.execute("COMMIT")
