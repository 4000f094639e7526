"""/metrics: Prometheus text, read from the server's counters at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from runstream_service.store.writer import COMMIT_SECONDS_BUCKETS

if TYPE_CHECKING:
    from runstream_service.server import Server


class ServerCollector(Collector):
    def __init__(self, server: Server) -> None:
        self._server = server

    def collect(self) -> Iterator[Metric]:
        stats = self._server.writer.stats
        yield CounterMetricFamily("runstream_points_ingested", "Points committed to the store", value=stats.points)
        yield CounterMetricFamily("runstream_batches_ingested", "Batches committed to the store", value=stats.batches)
        yield CounterMetricFamily(
            "runstream_batches_duplicate", "Replayed batches acknowledged without writing", value=stats.duplicates
        )
        yield CounterMetricFamily(
            "runstream_batches_rejected",
            "Batches refused by validation",
            value=self._server.ingest.counters.rejected_batches,
        )
        yield GaugeMetricFamily(
            "runstream_queue_points", "Points waiting for the writer thread", value=self._server.writer.queued_points
        )
        compactor = self._server.compactor.stats
        yield GaugeMetricFamily(
            "runstream_uncompacted_points",
            "Scalar points not yet sorted and rolled up",
            value=compactor.uncompacted_points,
        )
        yield CounterMetricFamily(
            "runstream_compactions", "Hot points moved into a generation", value=compactor.compactions
        )
        yield CounterMetricFamily("runstream_merges", "Generations merged", value=compactor.merges)
        yield CounterMetricFamily(
            "runstream_compaction_deferrals",
            "Times compaction waited for an ingest burst to end",
            value=compactor.deferred,
        )
        yield CounterMetricFamily(
            "runstream_compaction_seconds",
            "Time spent compacting and merging (waits for a burst to end included)",
            value=compactor.seconds,
        )
        yield GaugeMetricFamily(
            "runstream_generations", "Compacted generations of scalar points", value=compactor.generations
        )
        cumulative, buckets = 0, []
        for bound, count in zip(COMMIT_SECONDS_BUCKETS, stats.commit_seconds_buckets, strict=True):
            cumulative += count
            buckets.append((repr(bound), cumulative))
        buckets.append(("+Inf", stats.commits))
        yield HistogramMetricFamily(
            "runstream_commit_seconds",
            "Time to write and commit one transaction",
            buckets=buckets,
            sum_value=stats.commit_seconds_sum,
        )


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
