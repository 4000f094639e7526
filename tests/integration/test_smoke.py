from __future__ import annotations

import math

import numpy as np

import runstream
from support import ServerProcess


def test_scalars_histograms_images_round_trip(server: ServerProcess) -> None:
    image = (np.arange(32 * 48 * 3) % 251).astype(np.uint8).reshape(32, 48, 3)
    with runstream.init(project="p", name="smoke", config={"lr": 0.1}, server=server.address) as run:
        for step in range(100):
            run.log({"loss": 1.0 / (step + 1), "odd": [math.nan, math.inf, -math.inf, 0.5][step % 4]}, step=step)
        run.log_histogram("w", np.arange(1000, dtype=np.float32), step=7, bins=10)
        run.log_image("img", image, step=3)
    server.stop()
    assert server.sql("SELECT count(*) FROM scalars")[0][0] == 200
    odd = [v for (v,) in server.sql("SELECT value FROM scalars WHERE tag = 'odd' ORDER BY step LIMIT 4")]
    assert math.isnan(odd[0]) and odd[1:] == [math.inf, -math.inf, 0.5]
    ((count, limits, counts),) = server.sql("SELECT count, bucket_limits, bucket_counts FROM histograms")
    assert count == 1000 and len(limits) == 11 and counts == [100.0] * 10
    ((name, status, config),) = server.sql("SELECT name, status, config FROM runs")
    assert (name, status) == ("smoke", "finished") and '"lr": 0.1' in config
