"""Embedding similarity: for each synthetic post its nearest real post (and the reverse) by cosine,
with faiss over unit vectors; shares above thresholds, and mean within-set similarity (diversity)."""

from __future__ import annotations

import logging

import numpy as np

DEFAULT_THRESHOLDS = (0.6, 0.7, 0.8)


def nearest_similarity(queries: np.ndarray, corpus: np.ndarray, batch: int = 16_384) -> np.ndarray:
    """Cosine similarity of each query to its nearest corpus vector (inputs are unit vectors)."""
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # it logs each build it probes
    import faiss

    corpus = np.ascontiguousarray(corpus, dtype=np.float32)
    index = faiss.IndexFlatIP(corpus.shape[1])
    index.add(corpus)
    out = np.empty(len(queries), dtype=np.float32)
    for start in range(0, len(queries), batch):
        chunk = np.ascontiguousarray(queries[start : start + batch], dtype=np.float32)
        out[start : start + len(chunk)] = index.search(chunk, 1)[0][:, 0]
    return np.clip(out, -1.0, 1.0)


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
