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


def mean_within_similarity(vectors: np.ndarray, pairs: int, rng: np.random.Generator) -> float:
    """Mean cosine of random distinct pairs: lower means a more diverse set."""
    n = len(vectors)
    if n < 2:
        return float("nan")
    first = rng.integers(0, n, pairs)
    second = (first + rng.integers(1, n, pairs)) % n  # never the same post
    return float(np.mean(np.einsum("ij,ij->i", vectors[first], vectors[second])))
