"""The lake's rollup tiers: a lake server's step-axis overlay, read from ``lake_rollups`` and the unmoved
outbox, equals one server's read of the same points (store/queries.py: M4 over whole rollup buckets).

Played without gRPC, as tests/lake/test_lake_exactly_once.py: two servers' stores and movers on one lake,
each run's batches alternating between them and moved in several moves, so most buckets are summarised by
several partials (from both servers, several moves, and this server's unmoved outbox) that the read combines.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest
from conftest import lake_query

from runstream._encode import encode_batch
from runstream_service.store import lake, lake_mover, lifecycle, queries, rollups
from runstream_service.store.base import OpenRun, Transaction
from runstream_service.store.downsample import Downsampled, sql_double
from runstream_service.store.file import FileStore
from runstream_service.store.lake import LakeConfig
from runstream_service.store.lake_mover import Mover
from runstream_service.store.lake_queries import LakeReads
from runstream_service.store.lake_store import LakeStore
from runstream_service.validate import DecodedBatch, decode_batch

RUNS = ("r1", "r2", "r3")  # r3 has no points of the tag
BATCHES = 40
STEPS_PER_BATCH = 100  # not a multiple of a bucket: buckets straddle batches, so servers and moves


def value(run: int, step: int) -> float:
    if step % 97 == 0:
        return math.nan
    if step % 251 == 0:
        return 1e3 * (run + 1)  # a spike M4 must keep
    return math.sin(step / 50.0) + run


def batch(run: int, seq: int) -> DecodedBatch:
    steps = range((seq - 1) * STEPS_PER_BATCH, seq * STEPS_PER_BATCH)
    packed = [(step, 1000.0 + step, ("loss",), np.array([value(run, step)], "<f8").tobytes()) for step in steps]
    return decode_batch(encode_batch(RUNS[run], 0, f"writer-{run}", seq, packed).message)


def open_runs(store: FileStore | LakeStore) -> None:
    for run in RUNS:
        store.open_run(OpenRun(run, "p", run, "{}", 0, 1, "host", 0.0))


class LakeServer:
    def __init__(self, data: Path, config: LakeConfig, name: str) -> None:
        self.con = duckdb.connect(str(data), config={"enable_external_access": True})
        lake.attach(self.con, config)
        lake.create_schema(self.con)
        self.store = LakeStore(FileStore(self.con), self.con)
        self.mover = Mover(self.con, config, server=name)
        open_runs(self.store)

    def close(self) -> None:
        self.mover._pg.close()
        self.con.close()


@pytest.fixture
def servers(
    tmp_path: Path, lake_config: LakeConfig, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LakeServer, LakeServer, duckdb.DuckDBPyConnection]]:
    """Servers A and B on one lake, and one server's file (no lake) holding the same points, for reference.
    A has moved all but its last batches; B has moved everything (its unmoved points A could not see).
    Movers summarise 1,000 points at a time, so chunks split buckets too."""
    monkeypatch.setattr(lake_mover, "ROLLUP_CHUNK", 1_000)
    a = LakeServer(tmp_path / "a.duckdb", lake_config, "a")
    b = LakeServer(tmp_path / "b.duckdb", lake_config, "b")
    one = duckdb.connect(str(tmp_path / "one.duckdb"))
    single = FileStore(one)
    open_runs(single)
    for seq in range(1, BATCHES + 1):
        for run in (0, 1):
            server = b if seq % 3 == 2 else a
            server.store.append([batch(run, seq)], {f"writer-{run}": seq})
            single.append([batch(run, seq)], {f"writer-{run}": seq})
        if seq in (16, 32):
            a.mover.move_once()
            b.mover.move_once()
    b.mover.move_once()
    yield a, b, one
    a.close()
    b.close()
    one.close()


def same(found: list[tuple[str, Downsampled]], want: list[tuple[str, Downsampled]], case: object) -> None:
    assert [run for run, _ in found] == [run for run, _ in want], case
    for (run, got), (_, expected) in zip(found, want):
        assert (got.exact, got.count) == (expected.exact, expected.count), (case, run)
        for field in ("x", "y", "band_x", "band_min", "band_max"):
            np.testing.assert_array_equal(
                getattr(got, field), getattr(expected, field), err_msg=f"{case} {run} {field}"
            )
        assert got.x.dtype == expected.x.dtype


CASES = [
    (None, None, 50),  # level 6: buckets of 64 steps, partials of both servers and several moves
    (None, None, 333),  # columns of unequal numbers of buckets
    (500.0, 3500.0, 100),  # level 4, the smallest stored; the range's end in A's unmoved points
    (1234.5, 1900.0, 50),  # level 3: from the points themselves
    (3700.0, None, 50),  # the range of A's unmoved points only
    (None, None, 10_000),  # fewer points than columns: every point
    (3990.0, 4200.0, 50),  # fewer points in range than columns: every point there
]


def test_a_lake_overlay_via_rollups_equals_one_servers_read(
    servers: tuple[LakeServer, LakeServer, duckdb.DuckDBPyConnection],
) -> None:
    a, _, one = servers
    assert a.con.execute("SELECT count(*) FROM lake_outbox_scalars").fetchall()[0][0] > 0  # some unmoved
    for x_min, x_max, width in CASES:
        found = LakeReads().scalar_series(a.con.cursor(), list(RUNS), "loss", "step", x_min, x_max, width)
        want = queries.scalar_series(one.cursor(), list(RUNS), "loss", "step", x_min, x_max, width)
        assert len(want) == 2
        same(found, want, (x_min, x_max, width))


def test_combined_partials_read_the_same_one_row_per_bucket(
    servers: tuple[LakeServer, LakeServer, duckdb.DuckDBPyConnection], lake_config: LakeConfig
) -> None:
    a, b, one = servers
    per_bucket = "SELECT max(n) FROM (SELECT count(*) AS n FROM lake.lake_rollups GROUP BY run_id, tag, level, bucket)"
    assert int(str(lake_query(lake_config, per_bucket)[0][0])) > 1
    before = partials_of(b.con)
    removed = b.mover.combine_rollups()
    assert removed > 0 and lake_query(lake_config, per_bucket) == [(1,)]
    assert b.mover.combine_rollups() == 0
    for x_min, x_max, width in CASES:
        found = LakeReads().scalar_series(a.con.cursor(), list(RUNS), "loss", "step", x_min, x_max, width)
        want = queries.scalar_series(one.cursor(), list(RUNS), "loss", "step", x_min, x_max, width)
        same(found, want, (x_min, x_max, width))
    # every field of each combined row equals NumPy's combine of the rows it replaced (store/rollups.py)
    want, got = rollups.combine(before), partials_of(b.con)
    for name in rollups.FIELDS:
        if name == "sum":  # the same values added in another order: equal to the last bits or so
            np.testing.assert_allclose(got.sum, want.sum, rtol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)


def partials_of(con: duckdb.DuckDBPyConnection) -> rollups.Partials:
    """The lake's rollup rows as Partials, a series id per (run_id, tag, level), sorted by it and bucket."""
    rows = con.execute(
        "SELECT dense_rank() OVER (ORDER BY run_id, tag, level) AS series_id, bucket, points, numbers, sum, "
        "first_step, first_value, last_step, last_value, coalesce(min_step, ?) AS min_step, "
        "coalesce(min_value, 'NaN'::DOUBLE) AS min_value, coalesce(max_step, ?) AS max_step, "
        "coalesce(max_value, 'NaN'::DOUBLE) AS max_value FROM lake.lake_rollups ORDER BY series_id, bucket, first_step",
        [rollups.NO_STEP, rollups.NO_STEP],
    ).fetchnumpy()
    ints = {"series_id", "bucket", "points", "numbers", "first_step", "last_step", "min_step", "max_step"}
    return rollups.Partials(
        **{name: np.asarray(rows[name], dtype=np.int64 if name in ints else np.float64) for name in rollups.FIELDS}
    )


def test_each_moves_partials_are_in_the_lake_and_a_deleted_runs_leave_it(
    servers: tuple[LakeServer, LakeServer, duckdb.DuckDBPyConnection], lake_config: LakeConfig
) -> None:
    a, _, _ = servers
    # several partials per coarse bucket (one per move that had points in it), the points counted once
    rows = lake_query(
        lake_config,
        "SELECT run_id, count(*), sum(points) FROM lake.lake_rollups WHERE level = 30 GROUP BY ALL ORDER BY ALL",
    )
    moved = lake_query(lake_config, "SELECT run_id, count(*) FROM lake.lake_scalars GROUP BY ALL ORDER BY ALL")
    assert [(run, points) for run, _, points in rows] == moved
    assert all(int(str(partials)) > 1 for _, partials, _ in rows)
    a.store.transact(Transaction(lambda con: lifecycle.delete_run(con, "r2", "tester"), forget_runs=("r2",)))
    a.mover.move_once()
    assert lake_query(lake_config, "SELECT DISTINCT run_id FROM lake.lake_rollups") == [("r1",)]


@pytest.mark.parametrize("value", [0.9179887596012393, 0.23994526705765962, 1764607345.1234567, 1e-05, math.inf])
def test_a_float_in_lake_sql_is_exactly_that_double(value: float) -> None:
    """The wall-time axes' range bounds (a bare 0.9179887596012393 is a DECIMAL that DuckDB rounds one unit off)."""
    assert duckdb.connect().execute(f"SELECT ?::DOUBLE = {sql_double(value)}", [value]).fetchall() == [(True,)]
