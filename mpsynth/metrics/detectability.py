"""Detectability: can a classifier tell synthetic from real? TF-IDF + logistic regression, cross-
validated ROC AUC on balanced samples: 0.5 means indistinguishable, 1.0 trivially separable."""

from __future__ import annotations

import numpy as np


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
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
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
    splits = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_score(model, texts, labels, groups=groups, cv=splits, scoring="roc_auc")
