"""Topic overlap: synthetic posts placed in the real topic model; which real topics the synthetic
set covers, how its topic mix diverges from the real one, and whether it collapses to few topics."""

from __future__ import annotations

import numpy as np

from mpsynth.metrics.stats import js_divergence


def topic_distribution(labels: np.ndarray, n_topics: int) -> np.ndarray:
    """Counts per topic 0..n_topics-1 (outliers, -1, left out)."""
    labels = labels[labels >= 0]
    return np.bincount(labels, minlength=n_topics).astype(np.float64)


def topic_overlap(real: np.ndarray, synthetic: np.ndarray, n_topics: int) -> dict[str, float]:
    real_counts = topic_distribution(real, n_topics)
    synthetic_counts = topic_distribution(synthetic, n_topics)
    real_topics = real_counts > 0
    return {
        "real_topics_covered": float((synthetic_counts[real_topics] > 0).mean())
        if real_topics.any()
        else float("nan"),
        "topic_js_divergence": js_divergence(real_counts, synthetic_counts),
        "distinct_topics": float((synthetic_counts > 0).sum()),
        "outlier_share": float(np.mean(synthetic < 0)) if len(synthetic) else float("nan"),
    }
