"""Embedding similarity: for each synthetic post its nearest real post (and the reverse) by cosine,
exact, over unit vectors; shares above thresholds, and mean within-set similarity (diversity)."""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLDS = (0.6, 0.7, 0.8)


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
