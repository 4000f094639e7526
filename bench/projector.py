"""The Projector on 100k points x 128 dimensions of synthetic clustered data, logged through the SDK.

Prints, as its last line, `value`: PCA to 3-D on the server in seconds (POST of the job to the
coordinates read back; goal <= 1); `tsne_s`: t-SNE of all 100k points (goal <= 120; --skip-tsne leaves
it null); `first_draw_ms`: from choosing the embedding in the Projector tab to its 100k points drawn in
headless Chromium (SwiftShader: a pessimistic bound; median of 3 page loads after a warm-up; goal <=
1,500); `knn_ms`: the 10 nearest neighbours of one point over 1M x 128, the first query after the
embedding is opened (goal <= 200), and `knn_repeat_ms`, the same query again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
import urllib.request
from typing import Any

import numpy as np
from _harness import Server, emit

import runstream

CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]


def clustered(n: int, d: int, clusters: int = 20, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, (clusters, d)).astype(np.float32)
    which = rng.integers(0, clusters, n)
    points = centers[which] + rng.normal(0, 1, (n, d)).astype(np.float32)
    return points.astype(np.float32), [f"c{c}" for c in which]


def http(server: Server, path: str, body: Any = None, method: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.http_url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=3600) as reply:
        raw = reply.read()
        return json.loads(raw) if reply.headers.get_content_type() == "application/json" else raw


def project(server: Server, which: dict[str, Any], method: str, **params: Any) -> tuple[float, dict[str, Any]]:
    """Seconds from the job's POST to its coordinates read back, and the finished job."""
    started = time.perf_counter()
    job = http(server, "/api/projector/projections", {**which, "method": method, **params})
    last = -1.0
    while job["state"] not in ("done", "failed", "cancelled"):
        time.sleep(0.05 if method == "pca" else 0.25)  # coarser polling would add its interval to the figure
        job = http(server, f"/api/projector/projections/{job['job']}")
        if method != "pca" and job["progress"] - last >= 0.1:
            last = job["progress"]
            print(f"  {method}: {job['message']} ({job['elapsed_seconds']:.0f} s)", flush=True)
    if job["state"] != "done":
        raise RuntimeError(f"{method} ended {job['state']}: {job.get('error')}")
    http(server, f"/api/projector/projections/{job['job']}/coords")
    return time.perf_counter() - started, job


def wait_complete(server: Server, tag: str, rows: int, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in http(server, "/api/projector/embeddings")["embeddings"] if e["tag"] == tag]
        if found and found[0]["complete"] and found[0]["rows"] == rows:
            return
        time.sleep(0.5)
    raise RuntimeError(f"embedding {tag} did not arrive whole within {timeout} s")


def first_draw_ms(server: Server) -> float | None:
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for _ in range(4):  # the first load warms the caches (the PCA result, the embedding opened)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(f"{server.http_url}/?tab=projector")
            page.wait_for_function("window.__runstream?.projector?.firstDrawMs != null", timeout=120_000)
            times.append(page.evaluate("window.__runstream.projector.firstDrawMs"))
            context.close()
        browser.close()
    return float(statistics.median(times[1:]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--knn-points", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--skip-tsne", action="store_true")
    args = parser.parse_args()

    with Server() as server:
        run = runstream.init(project="bench", name="projector", server=server.address)
        small, labels = clustered(args.points, args.dims)
        run.log_embedding("emb", small, metadata=labels, step=0)
        run.finish()
        wait_complete(server, "emb", args.points)
        run_id = run.id
        which = {"run": run_id, "tag": "emb", "step": 0}
        http(server, f"/api/projector/embedding?run={run_id}&tag=emb&step=0")  # chosen in the tab

        pca_s, pca_job = project(server, which, "pca", dims=3)
        print(f"PCA to 3-D: {pca_s:.3f} s; variance explained {pca_job['variance_explained']}", flush=True)

        tsne_s = None
        if not args.skip_tsne:
            tsne_s, _ = project(server, which, "tsne", dims=2)
            print(f"t-SNE of {args.points} points: {tsne_s:.1f} s", flush=True)

        draw_ms = first_draw_ms(server)
        print(f"first draw in Chromium: {draw_ms} ms", flush=True)

        # Logged only now, so that the tab above chose the 100k embedding (the only one then).
        big_run = runstream.init(project="bench", name="projector-1m", server=server.address)
        big, _ = clustered(args.knn_points, args.dims, seed=1)
        big_run.log_embedding("big", big, step=0)
        del big
        big_run.finish()
        wait_complete(server, "big", args.knn_points)
        run_id = big_run.id
        started = time.perf_counter()
        http(server, f"/api/projector/embedding?run={run_id}&tag=big&step=0")
        open_s = time.perf_counter() - started
        query = f"/api/projector/neighbours?run={run_id}&tag=big&step=0&index=123&k=10&metric=cosine"
        started = time.perf_counter()
        http(server, query)
        knn_ms = (time.perf_counter() - started) * 1000
        repeats = []
        for _ in range(5):
            started = time.perf_counter()
            http(server, query)
            repeats.append((time.perf_counter() - started) * 1000)
        print(f"1M x {args.dims}: opened in {open_s:.1f} s; kNN first {knn_ms:.1f} ms, then {repeats}", flush=True)

    emit(
        "projector_pca_3d",
        pca_s,
        "s",
        tsne_s=tsne_s,
        first_draw_ms=draw_ms,
        knn_ms=knn_ms,
        knn_repeat_ms=statistics.median(repeats),
        knn_open_s=open_s,
        points=args.points,
        dims=args.dims,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
