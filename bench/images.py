"""Images: the caller's cost of `log_image` (224x224x3 uint8) vs tensorboardX `add_image`, then exactness.

With a live server, --calls timed `log_image` calls (8 distinct images, noise and gradients) are
measured one by one; the headline is their median. Then the clock runs on until the server has
committed them (images/s until committed, an extra field). A few other forms are logged untimed:
HW grayscale, CHW, HWC RGBA. After the server stops, every stored image is decoded with PIL and
must equal the logged pixels exactly (CHW compared after transposing to HWC); else exit 1.
Baseline: tensorboardX `add_image(tag, img, step, dataformats='HWC')`, median of --tbx-calls.

    python bench/images.py [--calls 200] [--tbx-calls 50]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time

import numpy as np
from _harness import Server, emit
from PIL import Image

SIDE = 224
POOL = 8


def make_pool() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    pool = []
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    for i in range(POOL):
        if i % 2:
            pool.append(rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8))  # noise: compresses badly
        else:
            grad = np.stack([(x + i * 7) % 256, (y * 2) % 256, (x + y) % 256], axis=-1)
            pool.append(grad.astype(np.uint8))
    return pool


def other_forms() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """tag -> (what is logged, the HWC/HW pixels expected back)."""
    rng = np.random.default_rng(4)
    gray = rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8)
    chw = rng.integers(0, 256, (3, 64, 96), dtype=np.uint8)
    rgba = rng.integers(0, 256, (50, 70, 4), dtype=np.uint8)
    return {
        "forms/gray_hw": (gray, gray),
        "forms/chw": (chw, chw.transpose(1, 2, 0)),
        "forms/rgba_hwc": (rgba, rgba),
    }


def bench_runstream(calls: int) -> tuple[list[float], float, list[str]]:
    """Per-call seconds, images/s until committed, and a list of mismatches (empty when exact)."""
    import runstream

    pool = make_pool()
    expected: dict[tuple[str, int], np.ndarray] = {}
    with Server() as server:
        run = runstream.init(project="bench", name="images", server=server.address)
        for step in range(5):  # warm-up
            run.log_image("warmup", pool[step % POOL], step=step)
            expected[("warmup", step)] = pool[step % POOL]
        run.flush(120)
        before = server.points_committed()
        times = []
        t0 = time.monotonic()
        for step in range(calls):
            tag = f"samples/{step % 4}"
            image = pool[step % POOL]
            started = time.perf_counter()
            run.log_image(tag, image, step=step)
            times.append(time.perf_counter() - started)
            expected[(tag, step)] = image
        t_end = server.wait_committed(before + calls, timeout=600)
        rate = calls / (t_end - t0)
        for tag, (logged, pixels) in other_forms().items():
            run.log_image(tag, logged, step=0)
            expected[(tag, 0)] = pixels
        report = run.finish()
        if not report.complete:
            raise SystemExit(f"runstream could not send everything: {report}")
        server.stop()
        rows = server.sql("SELECT tag, step, width, height, mime, data FROM images")
    return times, rate, check_pixels(rows, expected)


def check_pixels(rows: list[tuple[object, ...]], expected: dict[tuple[str, int], np.ndarray]) -> list[str]:
    problems = []
    seen = set()
    for tag, step, width, height, mime, data in rows:
        key = (str(tag), int(str(step)))
        seen.add(key)
        want = expected.get(key)
        if want is None:
            problems.append(f"unexpected image {key}")
            continue
        assert isinstance(data, bytes | bytearray)
        with Image.open(io.BytesIO(data)) as decoded:
            got = np.array(decoded)
        if (width, height) != (want.shape[1], want.shape[0]):
            problems.append(f"{key}: stored size {width}x{height}, logged {want.shape}")
        if got.shape != want.shape or not np.array_equal(got, want):
            problems.append(f"{key}: {mime} decodes to {got.shape} {got.dtype}, not the logged {want.shape} pixels")
    problems += [f"missing image {key}" for key in expected.keys() - seen]
    return problems


def bench_tensorboardx(calls: int) -> list[float]:
    from tensorboardX import SummaryWriter

    pool = make_pool()
    times = []
    with tempfile.TemporaryDirectory(prefix="tbx-bench-") as logdir:
        writer = SummaryWriter(logdir)
        for step in range(3):
            writer.add_image("warmup", pool[step % POOL], step, dataformats="HWC")
        for step in range(calls):
            started = time.perf_counter()
            writer.add_image(f"samples/{step % 4}", pool[step % POOL], step, dataformats="HWC")
            times.append(time.perf_counter() - started)
        writer.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--tbx-calls", type=int, default=50)
    args = parser.parse_args()

    times, rate, problems = bench_runstream(args.calls)
    tbx = bench_tensorboardx(args.tbx_calls)
    rs_ms = statistics.median(times) * 1e3
    tbx_ms = statistics.median(tbx) * 1e3
    for problem in problems[:20]:
        print(f"MISMATCH {problem}")
    print(
        f"log_image: median {rs_ms:.4f} ms, p90 {sorted(times)[int(len(times) * 0.9)] * 1e3:.4f} ms, "
        f"max {max(times) * 1e3:.3f} ms; tensorboardX add_image median {tbx_ms:.3f} ms"
    )
    pixels_ok = not problems
    emit(
        "images",
        rs_ms,
        "ms/call",
        ratio=tbx_ms / rs_ms,
        image="224x224x3 uint8",
        runstream_ms_p90=sorted(times)[int(len(times) * 0.9)] * 1e3,
        runstream_ms_max=max(times) * 1e3,
        tensorboardx_ms=tbx_ms,
        images_per_s_until_committed=rate,
        calls=args.calls,
        tbx_calls=args.tbx_calls,
        pixels_ok=pixels_ok,
        mismatches=len(problems),
        goal_ms=0.5,
        goal_met=rs_ms <= 0.5,
    )
    return 0 if pixels_ok else 1


if __name__ == "__main__":
    sys.exit(main())
