"""--lake-max-backlog: past that many acknowledged points waiting to move, a lake server refuses batches
(RESOURCE_EXHAUSTED with a retry-after) and the writer sends them again later; nothing is lost or doubled."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from conftest import lake_query

import runstream
from runstream_service.launcher import LocalServer
from runstream_service.store.lake import LakeConfig

STEPS = 20_000


@pytest.mark.slow
def test_a_full_outbox_holds_the_writer_back_and_loses_nothing(
    tmp_path: Path, lake_config: LakeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="runstream")
    args = ["--lake", lake_config.catalog, "--data-path", lake_config.data_path, "--lake-max-backlog", "1"]
    with LocalServer(tmp_path / "a", args) as server:
        run = runstream.init(project="p", name="held", run_id="held", server=server.address)
        for step in range(STEPS):
            run.log({"loss": float(step)}, step=step)
            if step % 5_000 == 4_999:
                assert run.flush(timeout=60)
        report = run.finish(timeout=60)
        assert report.unsent_points == 0 and report.rejected_batches == 0, report
        held = [r.getMessage() for r in caplog.records if "--lake-max-backlog" in r.getMessage()]
        assert held and "RESOURCE_EXHAUSTED" in held[0], "no batch was held back"
        sql = "SELECT count(*), count(DISTINCT step) FROM lake.scalars WHERE run_id = 'held'"
        deadline = time.monotonic() + 60
        while (counted := lake_query(lake_config, sql)) != [(STEPS, STEPS)] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert counted == [(STEPS, STEPS)]
