"""The utility grid's measures, on class indicators (posts x classes), so one code path scores a
single-label task (one class per post) and a multi-label one (SemEval-2018 E-c's own measures):
- per-class F1, and macro-F1 their mean;
- micro-F1: F1 of every (post, class) decision pooled;
- Jaccard accuracy: per post |true & predicted| / |true | predicted|, averaged over posts.
Beside them, the linguistic richness of each set per class. Their bootstrap over test posts weighs each post by how often a resample draws it, so every measure
of every resample is a matrix product, not a loop.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mpsynth.metrics.linguistic import linguistic_metrics

MEASURES = ("macro_f1", "micro_f1", "jaccard")


def indicators(predictions: np.ndarray, n_classes: int, multi_label: bool) -> np.ndarray:
    """(posts, classes) booleans from stored predictions: class indices, or multi-label bitmasks."""
    predictions = np.asarray(predictions, dtype=np.int64)
    if multi_label:
        return (predictions[:, None] >> np.arange(n_classes)) & 1 == 1
    out = np.zeros((len(predictions), n_classes), dtype=bool)
    out[np.arange(len(predictions)), predictions] = True
    return out


def bitmasks(chosen: np.ndarray) -> np.ndarray:
    """Each post's classes as one integer (bit c: class c), for storage."""
    return (chosen.astype(np.int64) << np.arange(chosen.shape[1])).sum(axis=1)


def weighted_scores(truth: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> dict:
    """Every measure under each row of `weights` (resamples x posts: how often each post counts).
    Returns f1 (rows x classes), macro_f1, micro_f1 and jaccard (rows)."""
    weights = np.atleast_2d(weights).astype(float)
    tp = weights @ (truth & predicted)
    fp = weights @ (~truth & predicted)
    fn = weights @ (truth & ~predicted)
    denominator = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    pooled = denominator.sum(axis=1)
    micro = np.divide(2 * tp.sum(axis=1), pooled, out=np.zeros_like(pooled), where=pooled > 0)
    union = (truth | predicted).sum(axis=1)
    overlap = np.divide(
        (truth & predicted).sum(axis=1), union, out=np.ones(len(union)), where=union > 0
    )
    jaccard = (weights @ overlap) / weights.sum(axis=1)
    return {"f1": f1, "macro_f1": f1.mean(axis=1), "micro_f1": micro, "jaccard": jaccard}


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Every measure on the test posts as they are."""
    found = weighted_scores(truth, predicted, np.ones((1, len(truth))))
    return {name: value[0] for name, value in found.items()}


def resample_weights(n: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """(samples, n) counts: how often each post is drawn in each bootstrap resample."""
    drawn = rng.integers(0, n, size=(samples, n))
    offsets = (np.arange(samples) * n)[:, None]
    return np.bincount((drawn + offsets).ravel(), minlength=samples * n).reshape(samples, n)


SUMMARY_SCHEMA = pa.schema(
    [
        pa.field("judge", pa.string(), nullable=False),
        pa.field("strategy", pa.string(), nullable=False),
        pa.field("added", pa.int64(), nullable=False),
        pa.field("measure", pa.string(), nullable=False),  # macro_f1, micro_f1, jaccard, f1
        pa.field("class", pa.string()),  # the class of an f1 row; null for the others
        pa.field("value", pa.float64(), nullable=False),
        pa.field("ci_low", pa.float64()),
        pa.field("ci_high", pa.float64()),
        pa.field("repeat_sd", pa.float64()),
        pa.field("repeat_min", pa.float64()),
        pa.field("repeat_max", pa.float64()),
        pa.field("repeats", pa.int64(), nullable=False),
    ]
)


def summarise(
    cells: pa.Table,
    truth: np.ndarray,
    classes: list[str],
    bootstrap_samples: int,
    confidence: float,
    seed: int,
    multi_label: bool = False,
) -> pa.Table:
    """Mean scores over repeats per judge, strategy and added count (macro-F1 and per-class F1;
    multi-label also micro-F1 and Jaccard accuracy), with a bootstrap interval over test posts (one
    set of resamples shared by every cell) and the repeats' spread. `truth`: (posts, classes)."""
    n = len(classes)
    rng = np.random.default_rng(seed)
    weights = resample_weights(len(truth), bootstrap_samples, rng) if bootstrap_samples else None
    measures = MEASURES if multi_label else MEASURES[:1]
    rows: dict[str, list] = {name: [] for name in SUMMARY_SCHEMA.names}
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for row in cells.to_pylist():
        groups.setdefault((row["judge"], row["strategy"], row["added"]), []).append(row)
    alpha = (1 - confidence) / 2
    for (judge, strategy, added), members in groups.items():
        f1 = np.array([m["f1"] for m in members])  # repeats x classes
        point = {
            "macro_f1": f1.mean(axis=1),
            **{m: np.array([c[m] for c in members]) for m in measures[1:]},
        }
        boot = None
        if weights is not None:
            drawn = [
                weighted_scores(truth, indicators(m["predictions"], n, multi_label), weights)
                for m in members
            ]
            per_class = np.mean([d["f1"] for d in drawn], axis=0)  # resamples x classes
            boot = {
                "macro_f1": per_class.mean(axis=1),
                **{m: np.mean([d[m] for d in drawn], axis=0) for m in measures[1:]},
                **{("f1", c): per_class[:, c] for c in range(n)},
            }
        lines = [(m, None, point[m], m) for m in measures]
        lines += [("f1", classes[c], f1[:, c], ("f1", c)) for c in range(n)]
        for measure, name, values, key in lines:
            low, high = (
                np.quantile(boot[key], [alpha, 1 - alpha]) if boot is not None else (None,) * 2
            )
            rows["judge"].append(judge)
            rows["strategy"].append(strategy)
            rows["added"].append(added)
            rows["measure"].append(measure)
            rows["class"].append(name)
            rows["value"].append(float(values.mean()))
            rows["ci_low"].append(None if low is None else float(low))
            rows["ci_high"].append(None if high is None else float(high))
            rows["repeat_sd"].append(float(values.std(ddof=1)) if len(values) > 1 else None)
            rows["repeat_min"].append(float(values.min()))
            rows["repeat_max"].append(float(values.max()))
            rows["repeats"].append(len(values))
    return pa.Table.from_pydict(rows, schema=SUMMARY_SCHEMA)


LINGUISTIC_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("class", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("n", pa.int64(), nullable=False),
    ]
)


def linguistic_by_class(sets: dict, data, per_class: int, seed: int) -> pa.Table:
    """The evaluation suite's linguistic measures per dataset and class (multi-label: the posts
    holding the class), each on the same number of posts (the smallest set's, up to
    `per_class`), since vocabulary grows with text. `sets`: name -> utility.Labelled; `data`: the
    utility.GridData, which says the classes each post holds."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {name: [] for name in LINGUISTIC_SCHEMA.names}
    held = {name: data.member(s) for name, s in sets.items()}
    for c, label in enumerate(data.classes):
        members = {name: np.flatnonzero(held[name][:, c]) for name in sets}
        size = min([per_class, *(len(m) for m in members.values() if len(m))])
        for name, positions in members.items():
            if not len(positions):
                continue
            picked = rng.choice(positions, min(size, len(positions)), replace=False)
            values = linguistic_metrics([sets[name].texts[i] for i in sorted(picked)])
            for metric, value in values.items():
                rows["dataset"].append(name)
                rows["class"].append(label)
                rows["metric"].append(metric)
                rows["value"].append(None if value != value else float(value))
                rows["n"].append(len(picked))
    return pa.Table.from_pydict(rows, schema=LINGUISTIC_SCHEMA)
