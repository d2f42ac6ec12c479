"""Evaluate: aggregate per-post features into metric rows (long format), real and every synthetic
set, per platform and over all platforms, with bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mpsynth import schema
from mpsynth.config import EvaluateConfig
from mpsynth.metrics.lexical import FEATURES, lexical_metric_values
from mpsynth.metrics.stats import bootstrap_mean_ci


def sample_per_platform(table: pa.Table, limit: int | None, seed: int) -> pa.Table:
    """At most `limit` rows of each platform (seeded), or the whole table when limit is None."""
    if limit is None:
        return table
    rng = np.random.default_rng(seed)
    platforms = np.asarray(table.column("platform").to_pylist(), dtype=object)
    keep = []
    for platform in np.unique(platforms):
        rows = np.flatnonzero(platforms == platform)
        keep.append(rows if len(rows) <= limit else np.sort(rng.choice(rows, limit, replace=False)))
    return table.take(np.sort(np.concatenate(keep)))


def lexical_metrics(features: pa.Table, config: EvaluateConfig, seed: int) -> pa.Table:
    """Metric rows from a features table with columns dataset, platform and FEATURES."""
    rows: dict[str, list] = {name: [] for name in schema.METRICS.names}
    datasets = np.asarray(features.column("dataset").to_pylist(), dtype=object)
    platforms = np.asarray(features.column("platform").to_pylist(), dtype=object)
    columns = {name: features.column(name).to_numpy() for name in FEATURES}
    rng = np.random.default_rng(seed)
    for dataset in dict.fromkeys(datasets.tolist()):
        in_dataset = datasets == dataset
        groups = [(p, in_dataset & (platforms == p)) for p in sorted(set(platforms[in_dataset]))]
        for platform, mask in [*groups, (schema.ALL_PLATFORMS, in_dataset)]:
            values = lexical_metric_values({name: col[mask] for name, col in columns.items()})
            for metric, per_post in values.items():
                low, high = bootstrap_mean_ci(
                    per_post, config.bootstrap_samples, config.confidence, rng
                )
                rows["family"].append("lexical")
                rows["metric"].append(metric)
                rows["dataset"].append(dataset)
                rows["platform"].append(platform)
                rows["topic"].append(None)
                rows["value"].append(float(per_post.mean()) if len(per_post) else float("nan"))
                rows["ci_low"].append(low)
                rows["ci_high"].append(high)
                rows["n"].append(int(mask.sum()))
    return pa.Table.from_pydict(rows, schema=schema.METRICS)
