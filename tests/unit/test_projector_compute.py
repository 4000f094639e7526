"""The Projector's pure parts: PCA and nearest neighbours against plain reference computations,
and the request checks."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from runstream_service.errors import BadRequest
from runstream_service.projector import compute
from runstream_service.projector.requests import neighbours_request, projection_request


def clustered(n: int = 2000, d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, (8, d))
    return (centers[rng.integers(0, 8, n)] + rng.normal(0, 1, (n, d))).astype(np.float32)


def test_pca_matches_svd_of_the_centred_data() -> None:
    x = clustered()
    result = compute.pca(x, 3)
    centred = x.astype(np.float64) - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    reference = centred @ vt[:3].T
    signs = np.sign((result.coords * reference).sum(axis=0))  # each component is defined up to its sign
    np.testing.assert_allclose(result.coords * signs, reference, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(result.variance_explained, (s**2 / (s**2).sum())[:3], rtol=1e-6)
    assert result.coords.dtype == np.float32


def test_pca_chunks_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    x = clustered(1000)
    whole = compute.pca(x, 2)
    monkeypatch.setattr(compute, "CHUNK_ROWS", 97)
    np.testing.assert_allclose(compute.pca(x, 2).coords, whole.coords, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_neighbours_match_a_full_sort(metric: str) -> None:
    x = clustered(3000, 32)
    index = 17
    if metric == "cosine":
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        distances = 1 - unit @ unit[index]
    else:
        distances = np.linalg.norm(x - x[index], axis=1)
    distances[index] = np.inf
    expected = np.argsort(distances, kind="stable")[:10]
    found, found_distances = compute.Neighbours(x).query(index, 10, metric)
    assert found.tolist() == expected.tolist()
    np.testing.assert_allclose(found_distances, distances[expected], rtol=1e-3, atol=1e-3)


def test_neighbours_of_a_tiny_embedding() -> None:
    x = np.eye(3, dtype=np.float32)
    assert compute.Neighbours(x).query(0, 10, "euclidean")[0].tolist() == [1, 2]
    assert compute.Neighbours(x[:1]).query(0, 5, "cosine")[0].tolist() == []


def test_requests_are_checked_and_named() -> None:
    assert projection_request({"method": "pca"}).dims == 3
    tsne = projection_request({"method": "tsne", "perplexity": 50, "seed": 3})
    assert tsne.param("perplexity") == 50.0 and tsne.param("seed") == 3
    same = projection_request({"method": "tsne", "seed": 3, "perplexity": 50.0})
    other_seed = projection_request({"method": "tsne", "seed": 4, "perplexity": 50})
    assert tsne.cache_key("abc") == same.cache_key("abc") != other_seed.cache_key("abc")
    with pytest.raises(BadRequest, match="'method' must be one of pca, tsne, umap"):
        projection_request({"method": "lda"})
    with pytest.raises(BadRequest, match="'perplexity' must be between 2 and 100"):
        projection_request({"method": "tsne", "perplexity": 1000})
    with pytest.raises(BadRequest, match="umap takes no parameter 'perplexity'"):
        projection_request({"method": "umap", "perplexity": 30})
    with pytest.raises(BadRequest, match="'seed' must be an integer"):
        projection_request({"method": "umap", "seed": 1.5})
    with pytest.raises(BadRequest, match="'metric' must be one of cosine, euclidean"):
        neighbours_request(10, "manhattan")


def test_estimates_grow_with_the_points() -> None:
    tsne = projection_request({"method": "tsne"})
    assert tsne.estimate_seconds(100_000) > tsne.estimate_seconds(10_000) > 0


@pytest.mark.skipif(importlib.util.find_spec("hnswlib") is None, reason="needs the projector extra (hnswlib)")
def test_tsne_neighbours_are_the_true_ones_with_true_distances_and_never_the_point_itself() -> None:
    x = clustered(n=1500, d=8)
    x[:200] = x[0]  # 200 copies of one point: more than k + 1 at distance 0
    found = compute._neighbours(x, perplexity=30.0, seed=0)
    indices, distances = found.build()
    k = 90
    assert indices.shape == distances.shape == (1500, k) and indices.dtype == np.int64
    assert not (indices == np.arange(1500)[:, None]).any()  # a point is not its own neighbour
    true = np.sqrt(((x[:, None, :].astype(np.float64) - x[indices].astype(np.float64)) ** 2).sum(axis=2))
    np.testing.assert_allclose(distances, true, rtol=1e-4, atol=1e-4)  # distances, not their squares
    assert (np.diff(distances, axis=1) >= -1e-6).all()  # nearest first
    squared = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(squared, np.inf)
    exact = np.argsort(squared, axis=1, kind="stable")[:, :k]
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(indices[200:], exact[200:], strict=True)])
    assert recall > 0.95, recall


def test_tsne_neighbours_of_few_points_are_openTSNEs_exact_search() -> None:
    assert compute._neighbours(clustered(n=999, d=4), perplexity=30.0, seed=0) == "exact"
