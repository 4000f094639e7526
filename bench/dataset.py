"""Benchmark datasets, written into a running server through the real ingest path.

    from dataset import log_scalars, log_series, log_histograms
    data = log_scalars(server.address, runs=100, tags=["train/loss"], steps=1_000_000, project="ts")
    data.run_ids, data.tags, data.extremes(0)      # what a benchmark asks for and checks against

Scalars go over gRPC exactly as SDK clients send them (OpenRun, a Write stream of columnar
batches with writer_id/seq, FinishRun), but the batches are built with NumPy a block of steps at a
time instead of one `Run.log` call per point: 100 runs x 1M steps (100M points) take seconds to
make, and the time goes to the server. Arrival is interleaved as parallel training jobs produce it:
per block of steps, one batch per run in turn (a batch belongs to one run), each batch step-major
across its tags (step s: every tag, then step s+1). `writers` spawned processes share the runs.

Values are deterministic and known without reading them back: a noisy decaying loss per
(run, tag), noise bounded by +-0.05 from a counter-based hash (the same whatever the block size),
three spikes and one dip at known steps. So a check can compare a chart's min and max with
`extremes()` exactly, and an exact read with `values()`. Runs get a config ({"lr": one of three,
"seed": i}) whose lr also shifts the curve, so grouping by lr has something to show.

Histograms go through the SDK's public API (`Run.log_histogram` with pre-binned counts).
Every function returns only after the server has acknowledged (committed) everything.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

import runstream
from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc

LRS = (1e-3, 3e-4, 1e-4)
MAX_BATCH_POINTS = 200_000  # the SDK's own batch size: a few MB on the wire
WINDOW = 32  # batches in flight per stream, waiting for their ack
SECONDS_PER_STEP = 0.01  # wall time advances by this per step; runs start a second apart
MAX_MESSAGE_BYTES = 64 << 20

# Spikes (by quarter of the steps: quarters 0-2) and the dip (quarter 3), heights above any noisy value.
SPIKES = (5.0, 5.5, 6.0)
DIP = -1.0


def default_config(run: int) -> dict[str, Any]:
    return {"lr": LRS[run % len(LRS)], "seed": run}


def tag_names(count: int) -> list[str]:
    """`count` tags in groups of five, as a dashboard groups them by prefix."""
    return [f"group{t // 5}/metric{t}" for t in range(count)]


# -- the values: pure functions of (seed, run, tag, step) ----------------------------------------------------


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, in place on a uint64 array (wrapping arithmetic)."""
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def _key(seed: int, run: int, tag: int) -> int:
    z = np.array([seed * 1_000_003 + run * 7919 + tag + 1], dtype=np.uint64)
    return int(_mix(_mix(z * np.uint64(0x9E3779B97F4A7C15)))[0])


def _uniform(key: int, steps: np.ndarray) -> np.ndarray:
    """A uniform [0, 1) number per step for one series."""
    z = steps.astype(np.uint64)
    z *= np.uint64(0x9E3779B97F4A7C15)
    z += np.uint64(key)
    return (_mix(z) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def special_steps(seed: int, run: int, tag: int, steps: int) -> list[tuple[int, float]]:
    """The (step, value) of the series' three spikes and its dip, one in each quarter of the steps.

    Later entries win where steps coincide (only with fewer than four steps).
    """
    quarter = max(steps // 4, 1)
    key = _key(seed, run, tag)
    offsets = _uniform(key ^ 0x5EED, np.arange(4, dtype=np.int64))
    heights = [h + 0.25 * (run % 7) + 0.01 * (tag % 10) for h in SPIKES]
    heights.append(DIP - 0.25 * (run % 5) - 0.01 * (tag % 10))
    return [(min(k * steps // 4 + int(o * quarter), steps - 1), v) for k, (o, v) in enumerate(zip(offsets, heights))]


def scalar_values(seed: int, run: int, tags: Sequence[int], steps: np.ndarray, total_steps: int) -> np.ndarray:
    """Values at `steps` (int64) of the given tags of one run: shape (len(steps), len(tags)), step-major."""
    group = run % len(LRS)
    tau = total_steps / (4.0 + group)
    out = np.empty((len(steps), len(tags)), dtype=np.float64)
    decay = np.exp(steps / -tau)
    for j, tag in enumerate(tags):
        level = 0.1 + 0.15 * group + 0.02 * (tag % 10)
        column = out[:, j]
        np.multiply(decay, 2.0 - 0.3 * group, out=column)
        column += level
        column += (_uniform(_key(seed, run, tag), steps) - 0.5) * 0.1
        if len(steps):
            first, last = int(steps[0]), int(steps[-1])
            for step, value in special_steps(seed, run, tag, total_steps):
                if first <= step <= last:
                    at = np.searchsorted(steps, step)
                    if at < len(steps) and steps[at] == step:
                        column[at] = value
    return out


# -- scalars ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalarDataset:
    """What was logged: run i has id run_ids[i] and name run_names[i]; every run has every tag at steps 0..steps-1."""

    project: str
    run_ids: list[str]
    run_names: list[str]
    tags: list[str]
    steps: int
    seed: int
    configs: list[dict[str, Any]]
    seconds: float  # from the first OpenRun to the last ack and FinishRun
    first_run: int = 0  # run_ids[i] is run index first_run + i for the values
    batches: int = 0  # sent and acknowledged

    @property
    def points(self) -> int:
        return len(self.run_ids) * len(self.tags) * self.steps

    def values(self, run: int, tag: int = 0, steps: np.ndarray | None = None) -> np.ndarray:
        """The values logged for run_ids[run] and tags[tag] at `steps` (ascending; default: every step)."""
        at = np.arange(self.steps, dtype=np.int64) if steps is None else np.asarray(steps, dtype=np.int64)
        return scalar_values(self.seed, self.first_run + run, [tag], at, self.steps)[:, 0]

    def extremes(self, run: int, tag: int = 0) -> tuple[float, float]:
        """(min, max) of the series, exactly as logged."""
        if self.steps < 4:
            values = self.values(run, tag)
            return float(values.min()), float(values.max())
        special = [v for _, v in special_steps(self.seed, self.first_run + run, tag, self.steps)]
        return min(special), max(special)

    def spikes(self, run: int, tag: int = 0) -> list[tuple[int, float]]:
        return special_steps(self.seed, self.first_run + run, tag, self.steps)


@dataclass(frozen=True)
class _Share:
    """One writer process's part: these runs (indexes into the dataset), every step."""

    address: str
    token: str | None
    run_ids: list[str]
    runs: list[int]  # value run indexes, one per run id
    tags: list[str]
    steps: int
    seed: int
    block_steps: int
    interleave: bool
    start_time: float


def log_scalars(
    address: str,
    runs: int,
    tags: int | Sequence[str],
    steps: int,
    *,
    project: str,
    writers: int = 4,
    interleave: bool = True,
    seed: int = 0,
    config: Callable[[int], Mapping[str, Any]] = default_config,
    run_prefix: str = "run-",
    run_names: Sequence[str] | None = None,
    first_run: int = 0,
    block_steps: int = 8192,
    token: str | None = None,
) -> ScalarDataset:
    """Log runs x tags x steps scalar points into the server at `address`; return once all are committed.

    Run i (i = first_run .. first_run + runs - 1) is named f"{run_prefix}{i:02d}" (wider when needed),
    or run_names[i - first_run], with run id f"{project}-{name}": calling twice with the same project
    and names joins the same runs. Its values depend on i, the tag's position and `seed` only.
    `interleave=False` sends each writer's runs one after another instead (sorted arrival).
    """
    if runs < 1 or steps < 1:
        raise ValueError(f"need at least one run and one step, got runs={runs}, steps={steps}")
    names = tag_names(tags) if isinstance(tags, int) else list(tags)
    if not names:
        raise ValueError("need at least one tag")
    width = max(2, len(str(first_run + runs - 1)))
    indexes = list(range(first_run, first_run + runs))
    names_of_runs = [f"{run_prefix}{i:0{width}d}" for i in indexes] if run_names is None else list(run_names)
    if len(names_of_runs) != runs:
        raise ValueError(f"{len(names_of_runs)} run names for {runs} runs")
    run_ids = [f"{project}-{name}" for name in names_of_runs]
    configs = [dict(config(i)) for i in indexes]
    block = max(1, min(block_steps, MAX_BATCH_POINTS // len(names)))
    metadata = (("authorization", f"Bearer {token}"),) if token else ()

    started = time.monotonic()
    start_time = time.time()
    with _channel(address) as channel:
        stub = pb_grpc.IngestStub(channel)
        for run_id, name, cfg in zip(run_ids, names_of_runs, configs, strict=True):
            stub.OpenRun(
                pb.OpenRunRequest(
                    project=project,
                    name=name,
                    config_json=_json(cfg),
                    run_id=run_id,
                    world_size=1,
                    host="bench",
                    start_time=start_time,
                ),
                timeout=60,
                wait_for_ready=True,
                metadata=metadata,
            )
        writers = max(1, min(writers, runs))
        cuts = [runs * w // writers for w in range(writers + 1)]
        shares = [
            _Share(
                address,
                token,
                run_ids[a:b],
                indexes[a:b],
                names,
                steps,
                seed,
                block,
                interleave,
                start_time,
            )
            for a, b in itertools.pairwise(cuts)
        ]
        if writers == 1:
            batches = [_write_share(shares[0])]
        else:
            with multiprocessing.get_context("spawn").Pool(writers) as pool:
                batches = pool.map(_write_share, shares)
        for run_id in run_ids:
            stub.FinishRun(
                pb.FinishRunRequest(run_id=run_id, status="finished", end_time=time.time()),
                timeout=60,
                metadata=metadata,
            )
    return ScalarDataset(
        project=project,
        run_ids=run_ids,
        run_names=names_of_runs,
        tags=names,
        steps=steps,
        seed=seed,
        configs=configs,
        seconds=time.monotonic() - started,
        first_run=first_run,
        batches=sum(batches),
    )


def log_series(
    address: str,
    steps: int,
    *,
    project: str,
    name: str = "long",
    tag: str = "train/loss",
    run: int = 0,
    seed: int = 0,
    token: str | None = None,
) -> ScalarDataset:
    """One run named `name` with one long series (e.g. 10M steps), from one writer, in step order.

    Its values are those of run index `run` of log_scalars with the same seed and steps. With one
    run there is nothing to interleave, so batches are as big as the SDK's.
    """
    return log_scalars(
        address,
        1,
        [tag],
        steps,
        project=project,
        writers=1,
        seed=seed,
        run_names=[name],
        first_run=run,
        block_steps=MAX_BATCH_POINTS,
        token=token,
    )


def _channel(address: str) -> grpc.Channel:
    options = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
    return grpc.insecure_channel(address, options=options)


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), default=str)


def _write_share(share: _Share) -> int:
    """A writer process: stream this share's batches over one Write call; return the batches acknowledged."""
    writer_id = uuid.uuid4().hex
    window = threading.Semaphore(WINDOW)
    failed = threading.Event()
    sent = [0]
    tag_count = len(share.tags)
    tag_ids = list(range(tag_count))

    def blocks() -> Iterator[tuple[int, int]]:
        """(run position, first step) in arrival order."""
        starts = range(0, share.steps, share.block_steps)
        if share.interleave:
            return ((r, s) for s in starts for r in range(len(share.runs)))
        return ((r, s) for r in range(len(share.runs)) for s in starts)

    def requests() -> Iterator[pb.Batch]:
        tag_index = b""
        cached: tuple[int, int] | None = None
        steps: np.ndarray = np.empty(0, dtype=np.int64)
        step_col: np.ndarray = steps
        wall_col: np.ndarray = np.empty(0, dtype=np.float64)
        for position, first in blocks():
            last = min(first + share.block_steps, share.steps)
            if cached != (first, last):  # shared by every run of the block
                steps = np.arange(first, last, dtype=np.int64)
                step_col = np.repeat(steps, tag_count) if tag_count > 1 else steps
                wall_col = share.start_time + step_col * SECONDS_PER_STEP
                tag_index = np.tile(np.arange(tag_count, dtype="<u4"), last - first).tobytes()
                cached = (first, last)
            run = share.runs[position]
            values = scalar_values(share.seed, run, tag_ids, steps, share.steps)
            while not window.acquire(timeout=0.5):
                if failed.is_set():
                    return
            sent[0] += 1
            yield pb.Batch(
                run_id=share.run_ids[position],
                rank=0,
                writer_id=writer_id,
                seq=sent[0],
                tags=share.tags,
                scalars=pb.Scalars(
                    tag_index=tag_index,
                    step=step_col.tobytes(),
                    wall_time=(wall_col + float(run)).tobytes(),
                    value=values.tobytes(),
                ),
            )

    metadata = (("authorization", f"Bearer {share.token}"),) if share.token else ()
    acked = 0
    with _channel(share.address) as channel:
        try:
            for ack in pb_grpc.IngestStub(channel).Write(requests(), metadata=metadata, wait_for_ready=True):
                if ack.seq != acked + 1:
                    raise RuntimeError(f"ack {ack.seq} after {acked}: acks must come in order")
                acked = ack.seq
                window.release()
        except grpc.RpcError as exc:
            failed.set()
            # grpc's errors do not pickle: the pool hands the parent a plain one.
            raise RuntimeError(f"Write stream failed after {acked} acks: {exc.code()}: {exc.details()}") from None
    if acked != sent[0]:
        raise RuntimeError(f"{sent[0]} batches sent but {acked} acknowledged")
    return acked


# -- histograms ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistogramDataset:
    """Histogram i (at step i) is a normal distribution of mean means[i] and std stds[i], 1,000 values."""

    project: str
    run_id: str
    tag: str
    count: int
    buckets: int
    means: np.ndarray
    stds: np.ndarray
    seconds: float


def histogram_bins(count: int, buckets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(means, stds, edges (count, buckets + 1), counts (buckets,)): bucket edges at mean +- 4 std.

    The counts are the same for every histogram (the expected counts of 1,000 normal values,
    rounded), symmetric around the mean, so each histogram's median is its mean.
    """
    i = np.arange(count, dtype=np.float64)
    means = 2.0 * i / count - 1.0
    stds = 1.0 - 0.5 * i / count
    z = np.linspace(-4.0, 4.0, buckets + 1)
    cdf = np.array([0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in z])
    counts = np.round(np.diff(cdf) * 1000.0)
    edges = means[:, None] + stds[:, None] * z[None, :]
    return means, stds, edges, counts


def log_histograms(
    address: str,
    count: int = 10_000,
    buckets: int = 64,
    *,
    project: str,
    name: str = "histograms",
    tag: str = "weights/fc1",
    token: str | None = None,
) -> HistogramDataset:
    """One run, one tag, `count` histograms (steps 0..count-1) of `buckets` buckets, through the SDK."""
    means, stds, edges, counts = histogram_bins(count, buckets)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="runstream-bench-spool-") as spool:  # never someone else's spool
        run = runstream.init(
            project=project,
            name=name,
            run_id=f"{project}-{name}",
            server=address,
            token=token,
            dir=spool,
            require_server=True,
        )
        for step in range(count):
            run.log_histogram(tag, (counts, edges[step]), step=step)
        report = run.finish(timeout=600)
    if not report.complete:
        raise RuntimeError(f"histograms not all acknowledged: {report}")
    return HistogramDataset(project, run.id, tag, count, buckets, means, stds, time.monotonic() - started)
