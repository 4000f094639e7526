"""A projection request, checked: which method, which parameters, which seed; its cache key; how long.

Pure. The HTTP layer passes the caller's JSON to `projection_request`, which refuses anything out of
range with a message naming the field (BadRequest, HTTP 400). The same data, method, parameters and
seed give the same cache key, so the same request gives the same picture.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from runstream_service.errors import BadRequest

METHODS = ("pca", "tsne", "umap")
METRICS = ("cosine", "euclidean")
MAX_NEIGHBOURS = 1000
# t-SNE's default: on 100k x 128 clustered points, 400 iterations ended at a KL divergence of 4.350 against
# 4.334 after 500 (0.4% higher; every point's 10 nearest in 2-D in its own cluster either way), 20% sooner.
TSNE_ITERATIONS = 400

# (name, type, default, minimum, maximum) of each method's parameters
PARAMETERS: dict[str, tuple[tuple[str, type, float, float, float], ...]] = {
    "pca": (("dims", int, 3, 2, 3),),
    "tsne": (
        ("dims", int, 2, 2, 3),
        ("perplexity", float, 30.0, 2.0, 100.0),
        ("iterations", int, TSNE_ITERATIONS, 50, 5000),  # after iterations // 3 of early exaggeration
        ("seed", int, 0, 0, 2**31 - 1),
    ),
    "umap": (
        ("dims", int, 2, 2, 3),
        ("neighbours", int, 15, 2, 200),
        ("min_dist", float, 0.1, 0.0, 1.0),
        ("seed", int, 0, 0, 2**31 - 1),
    ),
}

# Seconds per point measured on this project's 2-core machine on 100k x 128 clustered points (see
# README "Benchmarks", bench/projector.py; t-SNE at its default 400 iterations); the estimate the tab
# shows before and during a job.
SECONDS_PER_POINT = {"pca": 2e-6, "tsne": 1.0e-3, "umap": 1.0e-3}


@dataclass(frozen=True)
class ProjectionRequest:
    method: str
    params: tuple[tuple[str, float | int], ...]  # sorted by name

    @property
    def dims(self) -> int:
        return int(dict(self.params)["dims"])

    def param(self, name: str) -> float | int:
        return dict(self.params)[name]

    def cache_key(self, data_hash: str) -> str:
        """Data, method, parameters and seed, hashed: the name of the cached result."""
        text = json.dumps([data_hash, self.method, list(self.params)], separators=(",", ":"))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def estimate_seconds(self, rows: int) -> float:
        if self.method != "tsne":
            return SECONDS_PER_POINT[self.method] * rows
        return SECONDS_PER_POINT["tsne"] * rows * float(self.param("iterations")) / TSNE_ITERATIONS


def projection_request(body: Any) -> ProjectionRequest:
    """`{"method": "tsne", "perplexity": 30, ...}` -> a ProjectionRequest, or BadRequest naming the field."""
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object such as {"method": "pca"}')
    method = body.get("method")
    if method not in METHODS:
        raise BadRequest(f"'method' must be one of {', '.join(METHODS)} (got {method!r})")
    known = {name for name, *_ in PARAMETERS[method]}
    unknown = sorted(set(body) - known - {"method", "run", "tag", "step"})
    if unknown:
        raise BadRequest(f"{method} takes no parameter {unknown[0]!r}; its parameters are {', '.join(sorted(known))}")
    values: list[tuple[str, float | int]] = []
    for name, kind, default, low, high in PARAMETERS[method]:
        value = body.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
            raise BadRequest(f"'{name}' must be {'an integer' if kind is int else 'a number'} (got {value!r})")
        if not low <= value <= high:
            raise BadRequest(f"'{name}' must be between {low:g} and {high:g} (got {value!r})")
        values.append((name, int(value) if kind is int else float(value)))
    return ProjectionRequest(method, tuple(sorted(values)))


def neighbours_request(k: int, metric: str) -> tuple[int, str]:
    if not 1 <= k <= MAX_NEIGHBOURS:
        raise BadRequest(f"'k' must be between 1 and {MAX_NEIGHBOURS} (got {k})")
    if metric not in METRICS:
        raise BadRequest(f"'metric' must be one of {', '.join(METRICS)} (got {metric!r})")
    return k, metric
