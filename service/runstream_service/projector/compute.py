"""The Projector's numeric work, pure: NumPy arrays in, NumPy arrays out, no I/O and no processes.

- PCA: the D x D covariance accumulated in float64 over row chunks (so an N x D float32 matrix is never
  copied whole), its eigenvectors by `numpy.linalg.eigh`; the coordinates are the centred rows times the
  top eigenvectors, and the variance explained is each eigenvalue over their sum (the total variance).
- Nearest neighbours: brute force over every full vector (no index, so no approximation): one
  matrix-vector product per query. Cosine distance is 1 - x.q / (|x| |q|); euclidean distance comes from
  |x|^2 - 2 x.q + |q|^2 with the squared norms computed once per embedding (`Neighbours`).
- t-SNE (openTSNE) and UMAP (umap-learn) are optional libraries (`pip install 'runstream[projector]'`);
  `MissingLibrary` says so. t-SNE first reduces the rows to at most 50 dimensions by PCA, as openTSNE's
  documentation advises: same picture, faster neighbour search. Its 90 neighbours per point (perplexity 30)
  come from an HNSW index (hnswlib, in the same extra) when it imports, else from openTSNE's Annoy. On
  100k x 50 clustered points here, HNSW found them in 27-29 s with a recall of 0.987 against the exact
  ones, Annoy (openTSNE's 50 trees, queried through joblib) in 44-54 s with 0.939: a third of the t-SNE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
Progress = Callable[[float, str], None]  # (fraction done in 0..1, what is happening)

CHUNK_ROWS = 65_536
TSNE_PCA_DIMS = 50
INSTALL_HINT = "pip install 'runstream[projector]'"


class MissingLibrary(RuntimeError):
    """t-SNE or UMAP was asked for, and the library that computes it is not installed."""


@dataclass(frozen=True)
class Pca:
    coords: Matrix  # N x dims, float32
    variance_explained: list[float]  # per component, a fraction of the total variance
    components: npt.NDArray[np.float64]  # D x dims


def pca(x: Matrix, dims: int) -> Pca:
    """The first `dims` principal components of the rows of `x`, and the variance each one explains."""
    n, d = x.shape
    if n == 0:
        raise ValueError("PCA needs at least one point")
    dims = min(dims, d)
    mean = np.zeros(d, dtype=np.float64)
    gram = np.zeros((d, d), dtype=np.float64)
    for start in range(0, n, CHUNK_ROWS):
        chunk = np.asarray(x[start : start + CHUNK_ROWS], dtype=np.float64)
        mean += chunk.sum(axis=0)
        gram += chunk.T @ chunk
    mean /= n
    covariance = gram / n - np.outer(mean, mean)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # ascending
    order = np.argsort(eigenvalues)[::-1][:dims]
    values = np.clip(eigenvalues[order], 0.0, None)
    components = eigenvectors[:, order]
    total = float(np.clip(eigenvalues, 0.0, None).sum())
    explained = [float(v / total) if total > 0 else 0.0 for v in values]
    coords = np.empty((n, dims), dtype=np.float32)
    shift = (mean @ components).astype(np.float32)
    comp32 = components.astype(np.float32)
    for start in range(0, n, CHUNK_ROWS):
        coords[start : start + CHUNK_ROWS] = x[start : start + CHUNK_ROWS] @ comp32 - shift
    return Pca(coords, explained, components)


class Neighbours:
    """Exact k nearest neighbours over one embedding's full vectors; norms computed once, when opened."""

    def __init__(self, x: Matrix) -> None:
        self.x = x
        self.squared = np.einsum("ij,ij->i", x, x, dtype=np.float32)
        self.norms = np.sqrt(self.squared)

    def query(self, index: int, k: int, metric: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The `k` points nearest to point `index` (itself excluded), nearest first, with their distances."""
        n = self.x.shape[0]
        k = min(k, n - 1)
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        q = self.x[index]
        dots = self.x @ q
        if metric == "cosine":
            denominator = self.norms * self.norms[index]
            distances = 1.0 - np.divide(dots, denominator, out=np.zeros_like(dots), where=denominator > 0)
        elif metric == "euclidean":
            distances = np.sqrt(np.maximum(self.squared - 2.0 * dots + self.squared[index], 0.0))
        else:
            raise ValueError(f"unknown metric {metric!r}: use 'cosine' or 'euclidean'")
        distances[index] = np.inf
        nearest = np.argpartition(distances, k - 1)[:k]
        nearest = nearest[np.lexsort((nearest, distances[nearest]))]  # ties by index: same answer each time
        return nearest.astype(np.int64), distances[nearest].astype(np.float32)


def tsne(x: Matrix, dims: int, perplexity: float, iterations: int, seed: int, progress: Progress) -> Matrix:
    """openTSNE's t-SNE of every row (no subsampling), progress reported every few iterations."""
    try:
        import openTSNE  # type: ignore[import-untyped]
        from openTSNE import affinity
    except ImportError:
        raise MissingLibrary(f"t-SNE needs openTSNE: {INSTALL_HINT}") from None
    progress(0.0, "reducing to 50 dimensions (PCA)")
    reduced = pca(x, TSNE_PCA_DIMS).coords if x.shape[1] > TSNE_PCA_DIMS else np.asarray(x, dtype=np.float32)
    progress(0.02, "finding neighbours")
    neighbours = _neighbours(reduced, perplexity, seed)
    progress(0.08, "computing affinities")
    affinities = affinity.PerplexityBasedNN(
        reduced, perplexity=perplexity, method=neighbours, n_jobs=-1, random_state=seed
    )
    exaggeration = max(1, iterations // 3)
    total = exaggeration + iterations
    done = [0]
    every = 10

    def callback(iteration: int, error: float, embedding: Any) -> bool:
        done[0] += every
        progress(0.1 + 0.9 * min(1.0, done[0] / total), f"iteration {min(done[0], total)} of {total}")
        return False

    model = openTSNE.TSNE(
        n_components=dims,
        perplexity=perplexity,
        n_iter=iterations,
        early_exaggeration_iter=exaggeration,
        random_state=seed,
        n_jobs=-1,
        callbacks=callback,
        callbacks_every_iters=every,
        verbose=False,
    )
    result = model.fit(reduced, affinities=affinities)
    return np.asarray(result, dtype=np.float32)


def _neighbours(x: Matrix, perplexity: float, seed: int) -> Any:
    """openTSNE's neighbour search for t-SNE over the rows of `x`: exact for fewer than 1,000 rows (as
    openTSNE's own choice), else an HNSW index (hnswlib) when it imports, else openTSNE's Annoy.

    HNSW is queried here, not through openTSNE's wrapper, which hands on hnswlib's squared distances as
    distances (a sharper affinity than t-SNE's) and its unsigned labels."""
    if len(x) < 1_000:
        return "exact"
    try:
        import hnswlib  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return "annoy"
    from openTSNE.nearest_neighbors import PrecomputedNeighbors  # type: ignore[import-untyped]

    k = min(len(x) - 1, int(3 * perplexity))  # openTSNE's k for a perplexity
    index = hnswlib.Index(space="l2", dim=x.shape[1])
    index.init_index(max_elements=len(x), ef_construction=200, M=16, random_seed=seed)
    index.add_items(x, num_threads=-1)
    index.set_ef(2 * k)
    labels, squared = index.knn_query(x, k=k + 1, num_threads=-1)
    # each row's own index is among its k + 1 (unless k + 1 duplicates of it are: then the farthest goes)
    own = labels == np.arange(len(x), dtype=labels.dtype)[:, None]
    own[~own.any(axis=1), -1] = True
    others = ~own
    return PrecomputedNeighbors(
        labels[others].reshape(len(x), k).astype(np.int64),
        np.sqrt(squared[others].reshape(len(x), k).astype(np.float64)),
    )


def umap(x: Matrix, dims: int, neighbours: int, min_dist: float, seed: int, progress: Progress) -> Matrix:
    """umap-learn's UMAP of every row; umap-learn reports no progress, so only its start is reported."""
    try:
        import umap as umap_learn  # type: ignore[import-untyped]
    except ImportError:
        raise MissingLibrary(f"UMAP needs umap-learn: {INSTALL_HINT}") from None
    progress(0.0, "neighbours, then layout")
    model = umap_learn.UMAP(n_components=dims, n_neighbors=neighbours, min_dist=min_dist, random_state=seed)
    return np.asarray(model.fit_transform(x), dtype=np.float32)
