"""umap-learn's cosine between every two rows, in one parallel numba pass, compiled once and kept
in numba's cache beside this module. (umap-learn's parallel_special_metric takes the metric as an
argument, which numba keys by the function's identity in each process: its cache gains an entry
per run until saving it fails. Here the metric is fixed.) Imported only when a small corpus's
exact neighbours are wanted: it imports numba and umap-learn."""

from __future__ import annotations

import numba
import numpy as np
from umap.distances import cosine


@numba.njit(parallel=True, cache=True)
def pairwise_cosine(points: np.ndarray) -> np.ndarray:
    n = points.shape[0]
    out = np.empty((n, n), dtype=np.float64)
    for i in numba.prange(n):
        for j in range(n):
            out[i, j] = cosine(points[i], points[j])
    return out
