"""Embedding similarity: for each synthetic post its nearest real post (and the reverse) by cosine,
exact, over unit vectors; shares above thresholds, and mean within-set similarity (diversity)."""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLDS = (0.6, 0.7, 0.8)
KNN = 5  # neighbours that set a post's radius (prdc's recommended k)
KNN_SAMPLE = 1_000  # posts per set at most: the distance matrices grow with its square


def nearest_both_ways(
    synthetic: np.ndarray, real: np.ndarray, block_elements: int = 1 << 25
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of each synthetic post to its nearest real post, and of each real post to
    its nearest synthetic one (inputs are unit vectors), from one pass over the similarity matrix:
    each block of rows is one matrix product whose row maxima answer the first question and whose
    column maxima update the second. Two nearest-neighbour searches would compute every product
    twice; blocks of at most `block_elements` products (128 MiB) bound the memory."""
    synthetic = np.ascontiguousarray(synthetic, dtype=np.float32)
    real = np.ascontiguousarray(real, dtype=np.float32)
    to_real = np.full(len(synthetic), -np.inf, dtype=np.float32)
    to_synthetic = np.full(len(real), -np.inf, dtype=np.float32)
    if len(synthetic) and len(real):
        rows = max(1, block_elements // len(real))
        for start in range(0, len(synthetic), rows):
            products = synthetic[start : start + rows] @ real.T
            to_real[start : start + len(products)] = products.max(axis=1)
            np.maximum(to_synthetic, products.max(axis=0), out=to_synthetic)
    # no counterpart at all (an empty set) reads as the least similar
    return np.clip(to_real, -1.0, 1.0), np.clip(to_synthetic, -1.0, 1.0)


def shares_above(similarity: np.ndarray, thresholds: tuple[float, ...]) -> dict[float, float]:
    """Share of posts whose nearest counterpart is at least each threshold (a small tolerance keeps
    a post compared with itself, cosine 1 in float32, above 1.0)."""
    return {
        t: float(np.mean(similarity >= t - 1e-5)) if len(similarity) else float("nan")
        for t in thresholds
    }


def mean_within_similarity(vectors: np.ndarray) -> float:
    """Mean cosine over every pair of distinct posts (lower: a more diverse set), exact at any size:
    the sum over pairs i != j of v_i . v_j is |sum v|^2 - sum |v_i|^2, one pass over the vectors
    instead of n^2 products or a sample of pairs."""
    n = len(vectors)
    if n < 2:
        return float("nan")
    vectors = np.asarray(vectors, dtype=np.float64)
    total = vectors.sum(axis=0)
    squares = np.einsum("ij,ij->", vectors, vectors)
    return float((total @ total - squares) / (n * (n - 1)))


def knn_radii(vectors: np.ndarray, k: int = KNN) -> np.ndarray:
    """Each post's distance to its k-th nearest neighbour in its own set (itself not counted)."""
    distances = _euclidean(vectors, vectors)
    return np.partition(distances, k, axis=1)[:, k]  # column 0 is the post itself


def knn_precision_recall(
    real: np.ndarray, synthetic: np.ndarray, k: int = KNN, real_radii: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Improved precision and recall (Kynkäänniemi et al., 2019) per post: for each synthetic post,
    whether it lies inside the real manifold (nearer some real post than that post's k-th real
    neighbour): their mean is precision, the share of synthetic posts that look real; for each
    real post, whether it lies inside the synthetic manifold: their mean is recall, the share of
    the real variety the set covers. As the `prdc` package computes them (the tests compare with
    its `compute_prdc`), with scikit-learn's distances on one thread: prdc's own call asks joblib
    for 8 workers, which on a small evaluation cost more than the arithmetic. Per post, so that
    they can be bootstrapped; `real_radii` when the real set's are known already."""
    if real_radii is None:
        real_radii = knn_radii(real, k)
    synthetic_radii = knn_radii(synthetic, k)
    distances = _euclidean(real, synthetic)
    inside_real = (distances < real_radii[:, None]).any(axis=0)
    inside_synthetic = (distances < synthetic_radii[None, :]).any(axis=1)
    return inside_real, inside_synthetic


def _euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from sklearn.metrics.pairwise import euclidean_distances

    return euclidean_distances(np.asarray(a, np.float32), np.asarray(b, np.float32))
