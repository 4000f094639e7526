"""The compactor waits during an ingest burst, unless too many points wait."""

from __future__ import annotations

import duckdb

from runstream_service.settings import CompactionPolicy
from runstream_service.store.compactor import Compactor
from runstream_service.store.schema import create_schema


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _compactor(clock: Clock) -> Compactor:
    con = duckdb.connect(":memory:")
    create_schema(con)
    return Compactor(con, CompactionPolicy(burst_points_per_s=1_000, burst_hot_points=10_000), clock=clock)


def test_a_burst_defers_compaction_until_too_many_points_wait() -> None:
    compactor = _compactor(Clock())
    assert not compactor.in_burst()
    compactor.notify(600)
    assert not compactor.in_burst()  # 600 points in the last second: not a burst
    compactor.notify(600)
    assert compactor.in_burst()  # 1,200 in the last second
    compactor.notify(9_000)
    assert not compactor.in_burst()  # 10,200 points wait: compaction goes on during the burst


def test_a_burst_ends_a_second_after_its_last_commits() -> None:
    clock = Clock()
    compactor = _compactor(clock)
    compactor.notify(800)
    clock.now += 0.6
    compactor.notify(800)
    assert compactor.in_burst()  # 1,600 points within the last second
    clock.now += 0.5
    assert not compactor.in_burst()  # the first 800 are older than a second
    clock.now += 1.0
    assert not compactor.in_burst()
