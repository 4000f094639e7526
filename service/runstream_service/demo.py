"""`runstream demo`: streams synthetic training runs through the SDK, so a newcomer sees data."""

from __future__ import annotations

import math
import time

import numpy as np

import runstream

OPTIMIZERS = ("adam", "sgd", "adamw", "lion")


def stream_demo(server: str, runs: int = 4, steps: int = 2000, rate: float = 200.0, project: str = "demo") -> list[str]:
    """Log `runs` runs of `steps` steps each, at about `rate` steps per second; return their ids."""
    rng = np.random.default_rng(0)
    opened = []
    for i in range(runs):
        lr = float(3e-4 * (2 ** (i % 3)))
        opened.append(
            runstream.init(
                project=project,
                name=f"{OPTIMIZERS[i % len(OPTIMIZERS)]}-lr{lr:.0e}-{i}",
                config={
                    "optimizer": OPTIMIZERS[i % len(OPTIMIZERS)],
                    "lr": lr,
                    "batch_size": 64 * (1 + i % 2),
                    "seed": i,
                },
                server=server,
                run_id=None,
                rank=0,
                world_size=1,
            )
        )
    started = time.monotonic()
    for step in range(steps):
        for i, run in enumerate(opened):
            decay = math.exp(-step / (400 + 150 * i))
            loss = 2.3 * decay + 0.05 + 0.04 * rng.standard_normal()
            if rng.random() < 0.002:
                loss += 3.0  # a spike, as real training has; downsampling must not hide it
            run.log(
                {
                    "train/loss": loss,
                    "train/accuracy": 1.0 - 0.9 * decay + 0.01 * rng.standard_normal(),
                    "val/loss": 2.3 * decay + 0.12,
                    "lr": 3e-4 * (1 + i) * 0.5 * (1 + math.cos(math.pi * step / steps)),
                },
                step=step,
            )
            if step % 50 == 0:
                run.log_histogram("weights/fc1", rng.standard_normal(4096) * (1.0 + step / steps), step=step)
            if step % 250 == 0:
                run.log_image("samples/input", _sample_image(rng, step, i), step=step)
        if rate > 0:
            ahead = (step + 1) / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    for run in opened:
        run.finish()
    return [run.id for run in opened]


def _sample_image(rng: np.random.Generator, step: int, run_index: int) -> np.ndarray:
    y, x = np.mgrid[0:64, 0:64] / 64.0
    phase = step / 500.0 + run_index
    image = np.stack(
        [0.5 + 0.5 * np.sin(6 * x + phase), 0.5 + 0.5 * np.cos(5 * y - phase), 0.5 + 0.5 * np.sin(4 * (x + y))], axis=-1
    )
    return np.clip(image + 0.05 * rng.standard_normal(image.shape), 0.0, 1.0)
