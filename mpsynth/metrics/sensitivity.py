"""Which settings move which metrics: main effects over a sweep's variations, with bootstrap
intervals.

For one metric measured in every variation, a setting's effect is the mean of the metric over the
variations at the setting's last level minus the mean at its first (levels in the grid's order; a
drawn range is split at its median into a low and a high half). Averaging over the variations at a
level averages over every other setting, as a factorial design's main effect does.

The interval comes from a bootstrap that resamples the variations within each level (the spread the
other settings cause) and moves each value by its own measurement noise (the evaluation's interval,
read as a normal one): an effect whose interval excludes zero moved the metric beyond both. Where
each variation was generated several times (`generate.replicates`), the bootstrap resamples the
variations and then the generations within each (a two-stage, clustered bootstrap): the spread
between generations of one setting replaces the per-post measurement noise, which it contains. The
standardised effect divides by the metric's standard deviation over all variations, so that
metrics of different scales can be ranked and averaged into a family's effect.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

Z95 = 1.959964


@dataclass(frozen=True)
class Effect:
    effect: float  # mean at the last level minus mean at the first
    low: float
    high: float
    standardised: float  # effect / the metric's sd over all variations (0 when it never changed)
    standardised_low: float
    standardised_high: float
    level_means: tuple[float, ...]  # in level order

    @property
    def moved(self) -> bool:
        """Whether the interval leaves out zero."""
        return self.low > 0 or self.high < 0


def level_codes(values: list, levels: list | None = None) -> tuple[np.ndarray, list[str]]:
    """Each variation's level index and the level names: the grid's listed order, or for a drawn
    numeric range two halves split at the median."""
    if levels is not None:
        order = {repr(level): i for i, level in enumerate(levels)}
        return np.array([order[repr(v)] for v in values]), [str(level) for level in levels]
    numbers = np.asarray(values, dtype=float)
    median = float(np.median(numbers))
    codes = (numbers > median).astype(int)
    if codes.min() == codes.max():  # every draw on one side: nothing to compare
        return codes, [f"<= {median:g}"]
    return codes, [f"<= {median:g}", f"> {median:g}"]


def main_effect(
    values: np.ndarray,
    noise: np.ndarray,
    codes: np.ndarray,
    n_levels: int,
    rng: np.random.Generator,
    resamples: int = 1000,
    clusters: np.ndarray | None = None,
) -> Effect | None:
    """The effect of one setting on one metric (None when a level has no variation with a value).
    `clusters`: each value's variation, where a variation has several generations (replicates)."""
    values = np.asarray(values, dtype=float)
    noise = np.nan_to_num(np.asarray(noise, dtype=float), nan=0.0)
    groups = [np.flatnonzero((codes == level) & np.isfinite(values)) for level in range(n_levels)]
    if n_levels < 2 or any(len(g) == 0 for g in groups):
        return None
    means = tuple(float(values[g].mean()) for g in groups)
    effect = means[-1] - means[0]
    means_drawn = []
    for group in (groups[0], groups[-1]):  # every resample at once: (resamples, group size)
        if clusters is not None and len(np.unique(clusters[group])) < len(group):
            means_drawn.append(_clustered_means(values, group, clusters, rng, resamples))
            continue
        chosen = group[rng.integers(0, len(group), (resamples, len(group)))]
        moved = values[chosen] + noise[chosen] * rng.standard_normal(chosen.shape)
        means_drawn.append(moved.mean(axis=1))
    low, high = np.percentile(means_drawn[1] - means_drawn[0], [2.5, 97.5])
    finite = values[np.isfinite(values)]
    spread = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
    scale = 1.0 / spread if spread > 0 else 0.0
    return Effect(
        effect=effect,
        low=float(low),
        high=float(high),
        standardised=effect * scale,
        standardised_low=float(low) * scale,
        standardised_high=float(high) * scale,
        level_means=means,
    )


def _clustered_means(
    values: np.ndarray,
    group: np.ndarray,
    clusters: np.ndarray,
    rng: np.random.Generator,
    resamples: int,
) -> np.ndarray:
    """Bootstrap means of a level's values: its variations drawn with replacement, then each drawn
    variation's generations drawn with replacement (every resample at once)."""
    members = [group[clusters[group] == c] for c in np.unique(clusters[group])]
    size = max(len(m) for m in members)
    # a variation with fewer generations (one failed) repeats its own, never borrows another's
    table = np.array([np.resize(m, size) for m in members])
    own = np.array([len(m) for m in members])
    picked = rng.integers(0, len(members), (resamples, len(members)))
    slots = (rng.random((resamples, len(members), size)) * own[picked][..., None]).astype(int)
    return values[table[picked[..., None], slots]].mean(axis=(1, 2))


def noise_of(ci_low: np.ndarray, ci_high: np.ndarray) -> np.ndarray:
    """A value's standard error read from its 95% interval (0 where it has none)."""
    width = np.asarray(ci_high, dtype=float) - np.asarray(ci_low, dtype=float)
    return np.nan_to_num(width / (2 * Z95), nan=0.0)


def family_effect(
    effects: list[Effect], rng: np.random.Generator, resamples: int = 1000
) -> tuple[float, float, float]:
    """A family's effect: the mean absolute standardised effect of its metrics, with an interval
    from resampling its metrics (how consistently the setting moves the family)."""
    sizes = np.array([abs(e.standardised) for e in effects])
    if len(sizes) == 0:
        return float("nan"), float("nan"), float("nan")
    means = sizes[rng.integers(0, len(sizes), (resamples, len(sizes)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(sizes.mean()), float(low), float(high)


def chance_effect(
    values: np.ndarray,
    codes: np.ndarray,
    n_levels: int,
    rng: np.random.Generator,
    rounds: int = 200,
    clusters: np.ndarray | None = None,
) -> float:
    """The family effect that chance alone gives: the mean absolute standardised effect of
    `values` (metrics x variations) with the setting's levels shuffled over the variations. With
    few variations it is far from zero (four against four: about 0.56), so a family's effect reads
    against it. `clusters`: each column's variation, whose generations move together when the
    setting's values are shuffled over the variations."""
    values = np.asarray(values, dtype=float)
    spread = np.nanstd(values, axis=1, ddof=1)
    keep = np.isfinite(spread) & (spread > 0)
    if not keep.any() or n_levels < 2:
        return float("nan")
    values, spread = values[keep], spread[keep]
    sizes = []
    for _ in range(rounds):
        if clusters is None:
            shuffled = rng.permutation(codes)
        else:  # each variation's level, shuffled over the variations, given to its generations
            names, first = np.unique(clusters, return_index=True)
            shuffled = rng.permutation(codes[first])[np.searchsorted(names, clusters)]
        first, last = shuffled == 0, shuffled == n_levels - 1
        if not first.any() or not last.any():
            continue
        with warnings.catch_warnings():  # a metric with no value at a shuffled level: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            effect = np.nanmean(values[:, last], axis=1) - np.nanmean(values[:, first], axis=1)
        sizes.append(np.nanmean(np.abs(effect / spread)))
    return float(np.mean(sizes)) if sizes else float("nan")
