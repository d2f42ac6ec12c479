"""Detectability: can a classifier tell synthetic from real? TF-IDF + logistic regression, cross-
validated ROC AUC on balanced samples: 0.5 means indistinguishable, 1.0 trivially separable."""

from __future__ import annotations

import math

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold


def detectability_auc(
    real: list[str], synthetic: list[str], seed: int, folds: int = 5, max_per_class: int = 5_000
) -> float:
    return detectability_folds(real, synthetic, seed, folds, max_per_class).mean()


def detectability_folds(
    real: list[str], synthetic: list[str], seed: int, folds: int = 5, max_per_class: int = 5_000
) -> np.ndarray:
    """The cross-validated ROC AUC of each fold (their mean is the detectability)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(seed)
    n = min(len(real), len(synthetic), max_per_class)
    if n < folds:
        return np.array([float("nan")])
    texts = [real[i] for i in rng.choice(len(real), n, replace=False)]
    texts += [synthetic[i] for i in rng.choice(len(synthetic), n, replace=False)]
    labels = np.array([0] * n + [1] * n)
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=False),
        LogisticRegression(max_iter=1000),
    )
    # identical texts share a fold: a copy in training with one label and its twin under test with
    # the other would teach the classifier the labels backwards (AUC near 0 for a set vs itself)
    groups = np.unique(texts, return_inverse=True)[1]
    splits = GreedyStratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_score(model, texts, labels, groups=groups, cv=splits, scoring="roc_auc")


class GreedyStratifiedGroupKFold(StratifiedGroupKFold):
    """scikit-learn's StratifiedGroupKFold, the same folds, with its greedy step (which fold a group
    joins) in Python floats instead of NumPy calls on arrays of a few values: the same operations
    in the same order, at a twentieth of the cost (it was 40% of the detectability's time)."""

    def _find_best_fold(self, y_counts_per_fold, y_cnt, group_y_counts):
        folds, totals, group = y_counts_per_fold.tolist(), y_cnt.tolist(), group_y_counts.tolist()
        best_fold, min_eval, min_samples_in_fold = None, math.inf, math.inf
        for i in range(self.n_splits):
            # the standard deviation over folds of each class's share, with the group in fold i
            spread = 0.0
            for c, total in enumerate(totals):
                shares = [
                    (fold[c] + group[c] if j == i else fold[c]) / total
                    for j, fold in enumerate(folds)
                ]
                mean = sum(shares) / len(shares)
                spread += math.sqrt(sum((v - mean) * (v - mean) for v in shares) / len(shares))
            fold_eval = spread / len(totals)
            samples_in_fold = sum(folds[i])
            close = math.isfinite(min_eval) and abs(fold_eval - min_eval) <= 1e-8 + 1e-5 * abs(
                min_eval
            )
            if fold_eval < min_eval or (close and samples_in_fold < min_samples_in_fold):
                best_fold, min_eval, min_samples_in_fold = i, fold_eval, samples_in_fold
        return best_fold
