"""/metrics: Prometheus text, from the same health snapshot as /healthz, taken at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from runstream_dashboards.ports import Health


class HealthCollector(Collector):
    """Renders one `Health` snapshot per scrape, so every figure of a scrape is from the same moment."""

    def __init__(self, health: Callable[[], Health]) -> None:
        self._health = health

    def collect(self) -> Iterator[Metric]:
        health = self._health()
        yield CounterMetricFamily(
            "runstream_points_ingested", "Points committed to the store", value=health.points_committed
        )
        yield CounterMetricFamily(
            "runstream_batches_ingested", "Batches committed to the store", value=health.batches_committed
        )
        yield CounterMetricFamily(
            "runstream_batches_duplicate",
            "Replayed batches acknowledged without writing",
            value=health.batches_duplicate,
        )
        yield CounterMetricFamily(
            "runstream_batches_rejected", "Batches refused by validation", value=health.batches_rejected
        )
        yield GaugeMetricFamily(
            "runstream_queue_points", "Points waiting for the writer thread", value=health.queued_points
        )
        yield GaugeMetricFamily(
            "runstream_uncompacted_points",
            "Scalar points not yet sorted and rolled up",
            value=health.uncompacted_points,
        )
        yield CounterMetricFamily(
            "runstream_compactions", "Hot points moved into a generation", value=health.compactions
        )
        yield CounterMetricFamily("runstream_merges", "Generations merged", value=health.merges)
        yield CounterMetricFamily(
            "runstream_compaction_deferrals",
            "Times compaction waited for an ingest burst to end",
            value=health.compaction_deferred,
        )
        yield CounterMetricFamily(
            "runstream_compaction_seconds",
            "Time spent compacting and merging (waits for a burst to end included)",
            value=health.compaction_seconds,
        )
        yield GaugeMetricFamily(
            "runstream_generations", "Compacted generations of scalar points", value=health.generations
        )
        cumulative, buckets = 0, []
        for bound, count in health.commit_seconds_buckets:
            cumulative += count
            buckets.append((repr(bound), cumulative))
        buckets.append(("+Inf", health.commits))
        yield HistogramMetricFamily(
            "runstream_commit_seconds",
            "Time to write and commit one transaction",
            buckets=buckets,
            sum_value=health.commit_seconds_sum,
        )


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
