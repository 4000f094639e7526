"""Retention on the lake: `raw_after_days` thins the lake's old series as one server's file thins its own
(each bucket of 16 steps keeps the points its rollup row names; charts of 16 steps a column and coarser draw
the same), and `delete_after_days` judges a run by every server's points, not only the deciding server's.

Played without gRPC, as tests/lake/test_lake_rollups.py: servers' stores and movers on one lake.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest

from runstream._encode import encode_batch
from runstream_service.retention_job import runs_due
from runstream_service.store import lake
from runstream_service.store.base import FinishRun, OpenRun
from runstream_service.store.file import FileStore
from runstream_service.store.lake import LakeConfig
from runstream_service.store.lake_mover import Mover
from runstream_service.store.lake_queries import LakeReads
from runstream_service.store.lake_store import LakeStore
from runstream_service.validate import DecodedBatch, decode_batch

BATCHES, STEPS_PER_BATCH = 40, 100  # 4,000 steps; wall time 1,000 + step (long ago)
DAY = 86_400.0


def value(step: int) -> float:
    return math.nan if step % 97 == 0 else math.sin(step / 7.0) + (5.0 if step % 251 == 0 else 0.0)


def batch(seq: int) -> DecodedBatch:
    steps = range((seq - 1) * STEPS_PER_BATCH, seq * STEPS_PER_BATCH)
    packed = [(step, 1000.0 + step, ("loss",), np.array([value(step)], "<f8").tobytes()) for step in steps]
    return decode_batch(encode_batch("old", 0, "writer", seq, packed).message)


class Server:
    def __init__(self, data: Path, config: LakeConfig, name: str) -> None:
        self.con = duckdb.connect(str(data), config={"enable_external_access": True})
        lake.attach(self.con, config)
        lake.create_schema(self.con)
        self.store = LakeStore(FileStore(self.con, scalar_points=False), self.con)
        self.mover = Mover(
            self.con, config, server=name, retention=lambda projects, now: {p: (None, now - DAY) for p in projects}
        )

    def close(self) -> None:
        self.mover._pg.close()
        self.con.close()


@pytest.fixture
def servers(tmp_path: Path, lake_config: LakeConfig) -> Iterator[tuple[Server, Server]]:
    """A took run `old` (4,000 points long ago, finished at 1,500) and moved it; B never saw it."""
    a, b = Server(tmp_path / "a.duckdb", lake_config, "a"), Server(tmp_path / "b.duckdb", lake_config, "b")
    a.store.open_run(OpenRun("old", "p", "old", "{}", 0, 1, "host", 0.0))
    for seq in range(1, BATCHES + 1):
        a.store.append([batch(seq)], {"writer": seq})
        if seq % 10 == 0:
            a.mover.move_once()  # several moves: several rollup rows per bucket at the seams
    a.store.finish_run(FinishRun("old", 0, "finished", 1500.0))
    a.mover.move_once()
    yield a, b
    a.close()
    b.close()


def lake_steps(cur: duckdb.DuckDBPyConnection) -> np.ndarray:
    rows = cur.execute(f"SELECT step FROM {lake.LAKE}.lake_scalars WHERE run_id = 'old' ORDER BY step").fetchnumpy()
    return np.asarray(rows["step"])


def test_thinning_keeps_each_buckets_named_points_and_the_charts(servers: tuple[Server, Server]) -> None:
    _, b = servers
    reads = LakeReads()
    coarse = reads.scalar_series(b.con.cursor(), ["old"], "loss", "step", None, None, 64)  # 64 steps a column
    series, removed = b.mover.thin()  # B thins what A moved: the lake's, whichever server took it
    assert series == 1 and removed > 0
    kept = lake_steps(b.con.cursor())
    assert len(kept) == BATCHES * STEPS_PER_BATCH - removed
    values = np.array([value(step) for step in range(BATCHES * STEPS_PER_BATCH)])
    for first in range(0, BATCHES * STEPS_PER_BATCH, 16):
        part = values[first : first + 16]
        named = {first, first + 15, first + int(np.nanargmin(part)), first + int(np.nanargmax(part))}
        mine = set(kept[(kept >= first) & (kept < first + 16)].tolist())
        assert named <= mine, first  # (a bucket split between two moves may keep a few more)
    assert len(kept) <= BATCHES * STEPS_PER_BATCH // 4 + 2 * BATCHES
    again = reads.scalar_series(b.con.cursor(), ["old"], "loss", "step", None, None, 64)
    for (_, before), (_, after) in zip(coarse, again, strict=True):
        for field in ("x", "y", "band_min", "band_max"):
            np.testing.assert_array_equal(getattr(before, field), getattr(after, field))
    assert b.mover.thin() == (0, 0)  # thinned already, no point since


def test_a_run_is_due_for_deletion_by_every_servers_points(servers: tuple[Server, Server]) -> None:
    _, b = servers  # B knows run `old` from the lake alone
    now = time.time()
    cur = b.con.cursor()
    assert runs_due(cur, {"p": (1200.0, None)}) == []  # finished at 1,500
    assert runs_due(cur, {"p": (3000.0, None)}) == []  # its last point (A's, in the lake) at 4,999
    assert runs_due(cur, {"p": (6000.0, None)}) == ["old"]
    assert runs_due(cur, {"other": (now, None)}) == []
