"""Statistics shared by the metric families and the stages: bootstrap confidence intervals, the
Jensen-Shannon divergence and the two-sample Kolmogorov-Smirnov statistic. The last two are
computed here rather than through scipy's functions, whose argument checks cost more than the
arithmetic on the small samples a bootstrap draws thousands of times."""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr

_CHUNK_CELLS = 4_000_000  # resampled indices held in memory at once
NORMAL_ABOVE = 10_000  # above this many values the bootstrap of a mean is the normal interval


def bootstrap_mean_ci(
    values: np.ndarray, samples: int, confidence: float, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; (nan, nan) with no samples or no values. Above
    NORMAL_ABOVE values the central limit theorem gives the same interval without resampling."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if samples == 0 or n == 0:
        return float("nan"), float("nan")
    if n > NORMAL_ABOVE:
        from scipy.stats import norm

        half = norm.ppf(0.5 + confidence / 2) * values.std(ddof=1) / np.sqrt(n)
        return float(values.mean() - half), float(values.mean() + half)
    means = np.empty(samples)
    per_chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, samples, per_chunk):
        stop = min(samples, start + per_chunk)
        means[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_statistic_ci(
    first: np.ndarray,
    second: np.ndarray,
    statistic,
    samples: int,
    confidence: float,
    rng: np.random.Generator,
    most: int | None = None,
) -> tuple[float, float]:
    """Percentile interval of statistic(first, second) with both samples resampled (for
    statistics that are not a mean, such as a divergence between two sets). With `most`, each
    resample holds at most that many values: on a large sample the interval is then wider than
    the full-size one (conservative), and costs the same at a million values as at `most`."""
    if samples == 0 or len(first) == 0 or len(second) == 0:
        return float("nan"), float("nan")
    draw_first, draw_second = (
        min(len(first), most or len(first)),
        min(len(second), most or len(second)),
    )
    values = np.array(
        [
            statistic(
                first[rng.integers(0, len(first), draw_first)],
                second[rng.integers(0, len(second), draw_second)],
            )
            for _ in range(samples)
        ]
    )
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(low), float(high)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (the squared JS distance of scipy's `jensenshannon` with
    base 2); 0 for identical distributions."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    p_total, q_total = p.sum(), q.sum()
    if p_total == 0 or q_total == 0:
        return float("nan")
    p, q = p / p_total, q / q_total
    m = (p + q) / 2.0
    return float((rel_entr(p, m).sum() + rel_entr(q, m).sum()) / np.log(2) / 2.0)


def ks_statistic(first: np.ndarray, second: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic, as scipy's `ks_2samp` computes it: the largest
    gap between the two empirical distribution functions (0: same; nan when a sample is empty)."""
    if len(first) == 0 or len(second) == 0:
        return float("nan")
    first, second = np.sort(first), np.sort(second)
    both = np.concatenate([first, second])
    gaps = np.searchsorted(first, both, side="right") / len(first) - np.searchsorted(
        second, both, side="right"
    ) / len(second)
    return float(max(np.clip(-gaps.min(), 0, 1), gaps.max()))
