"""Retention's `raw_after_days` on the lake: old scalar series thinned as one server's file thins them
(retention_job.py), in one lake transaction by the server doing the lake's maintenance (one at a time).

A series (run, tag) is due when its last point's wall time is before its project's cutoff and it was not
thinned since that point (``lake_thinned``). Of a due series, a point is removed only when a rollup row of
the finest tier (``lake_rollups``, level THIN_LEVEL: buckets of 16 steps) covers its bucket and no row of
that bucket names its step (first, last, minimum, maximum): a point without its rollup row is never
removed, and the tiers stay whole, so charts at 16 steps a column and coarser draw as before. Points not
moved yet (this or another server's outbox) are not touched: a series that old has none.
"""

from __future__ import annotations

import time

import duckdb
import pyarrow as pa

from runstream_service.retention_job import THIN_LEVEL
from runstream_service.store.lake import LAKE
from runstream_service.store.transactions import registered, transaction

Cutoffs = dict[str, tuple[float | None, float | None]]  # project -> (delete before, thin before): retention.py

DUE = f"""
WITH series AS (
    SELECT s.run_id, s.tag, max(s.wall_time) AS last_wall, any_value(c.raw_before) AS raw_before
    FROM {LAKE}.lake_scalars s JOIN {LAKE}.lake_runs r USING (run_id) JOIN thin_cutoffs c USING (project)
    GROUP BY s.run_id, s.tag
)
SELECT d.run_id, d.tag, d.last_wall FROM series d LEFT JOIN {LAKE}.lake_thinned t USING (run_id, tag)
WHERE d.last_wall < d.raw_before AND (t.run_id IS NULL OR t.last_wall < d.last_wall)
"""

THIN = f"""
DELETE FROM {LAKE}.lake_scalars p
WHERE EXISTS (SELECT 1 FROM thin_due d WHERE d.run_id = p.run_id AND d.tag = p.tag)
  AND EXISTS (
      SELECT 1 FROM {LAKE}.lake_rollups r
      WHERE r.run_id = p.run_id AND r.tag = p.tag AND r.level = {THIN_LEVEL} AND r.bucket = p.step >> {THIN_LEVEL})
  AND NOT EXISTS (
      SELECT 1 FROM {LAKE}.lake_rollups r
      WHERE r.run_id = p.run_id AND r.tag = p.tag AND r.level = {THIN_LEVEL} AND r.bucket = p.step >> {THIN_LEVEL}
        AND p.step IN (r.first_step, r.last_step, r.min_step, r.max_step))
"""


def thin_lake(cur: duckdb.DuckDBPyConnection, cutoffs: Cutoffs) -> tuple[int, int]:
    """Thin the lake's due series (the caller holds the movers' lock); (series thinned, points removed)."""
    thinning = {project: raw for project, (_, raw) in cutoffs.items() if raw is not None}
    if not thinning:
        return 0, 0
    table = pa.table({"project": list(thinning), "raw_before": pa.array(list(thinning.values()), pa.float64())})
    with transaction(cur), registered(cur, "thin_cutoffs", table):
        due = cur.execute(DUE).to_arrow_table()
        assert due is not None  # a SELECT always has a result
        if not due.num_rows:
            return 0, 0
        with registered(cur, "thin_due", due):
            (removed,) = cur.execute(THIN).fetchall()[0]
            cur.execute(
                f"DELETE FROM {LAKE}.lake_thinned t USING thin_due d WHERE t.run_id = d.run_id AND t.tag = d.tag"
            )
            cur.execute(
                f"INSERT INTO {LAKE}.lake_thinned SELECT run_id, tag, last_wall, ? FROM thin_due", [time.time()]
            )
    return due.num_rows, int(removed)
