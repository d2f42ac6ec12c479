"""Real against synthetic, every metric family beyond the lexical one, per platform and over all
platforms: metric rows ready for the long metrics table."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mpsynth.config import EvaluateConfig
from mpsynth.core import schema
from mpsynth.metrics.detectability import detectability_folds
from mpsynth.metrics.entities import entity_metrics, load_pipeline, post_entities
from mpsynth.metrics.lexical import hashtag_overlap, hashtag_set, length_distance
from mpsynth.metrics.linguistic import linguistic_metrics
from mpsynth.metrics.sentiment import CLASSES, class_shares, sentiment_of
from mpsynth.metrics.similarity import mean_within_similarity, nearest_both_ways, shares_above
from mpsynth.metrics.stats import bootstrap_mean_ci, bootstrap_statistic_ci, js_divergence
from mpsynth.metrics.topic_overlap import topic_overlap

COVERED = "sentiment_covered"  # per post: its sentiment backend covers its language


def sentiment_key(config: Any) -> str:
    return f"sentiment:{config.model_dump_json()}"


def entities_key(pipeline: str) -> str:
    return f"entities:{pipeline}"


@dataclass
class EvalSet:
    """One dataset's evaluation sample: texts, platforms, unit embeddings and real-topic labels, and
    per-post values computed once for the whole set (sentiment, entities) that subsets slice."""

    name: str
    texts: list[str]
    platforms: np.ndarray
    embeddings: np.ndarray
    topics: np.ndarray
    per_post: dict[str, Any] = field(default_factory=dict, repr=False)
    # what is computed once for this very set and never sliced (a subset starts its own)
    whole: dict[str, Any] = field(default_factory=dict, repr=False)

    def _cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.per_post:
            self.per_post[key] = compute()
        return self.per_post[key]

    def sentiment(self, config: Any) -> np.ndarray:
        """Sentiment class per post (0 negative, 1 neutral, 2 positive) under the configured backend."""
        return self._cached(sentiment_key(config), lambda: sentiment_of(self.texts, config))

    def entities(self, pipeline: str) -> Counter:
        """Posts mentioning each entity under a spaCy pipeline."""
        posts = self._cached(
            entities_key(pipeline), lambda: post_entities(load_pipeline(pipeline), self.texts)
        )
        return Counter(entity for mentions in posts for entity in mentions)

    def subset(self, platform: str) -> EvalSet:
        if platform == schema.ALL_PLATFORMS:
            return self
        mask = self.platforms == platform
        rows = np.flatnonzero(mask)
        return EvalSet(
            self.name,
            [self.texts[i] for i in rows],
            self.platforms[mask],
            self.embeddings[mask],
            self.topics[mask],
            {
                key: value[mask] if isinstance(value, np.ndarray) else [value[i] for i in rows]
                for key, value in self.per_post.items()
            },
        )


def metric_row(
    family, metric, dataset, platform, value, n, ci=(float("nan"), float("nan"))
) -> dict:
    return {
        "family": family,
        "metric": metric,
        "dataset": dataset,
        "platform": platform,
        "topic": None,
        "value": float(value),
        "ci_low": float(ci[0]),
        "ci_high": float(ci[1]),
        "n": int(n),
    }


def _nonzero(vectors: np.ndarray) -> np.ndarray:
    """Rows that are not the zero vector: a post with no known terms embeds as zero under LSA and is
    similar to nothing, not even to itself, so similarity metrics leave it out (and count the rest)."""
    return vectors[np.linalg.norm(vectors, axis=1) > 0]


def describe(
    data: EvalSet,
    platform: str,
    config: EvaluateConfig,
    rng: np.random.Generator,
    linguistic_size: int,
) -> list[dict]:
    """Metrics of one set on its own (real or synthetic): sentiment shares, diversity, and the
    linguistic metrics on `linguistic_size` posts (vocabulary grows with the amount of text, so
    every set on a platform is measured on the same number of posts)."""
    rows = []
    classes = data.sentiment(config.sentiment)
    for index, label in enumerate(CLASSES):
        indicator = (classes == index).astype(float)
        ci = bootstrap_mean_ci(indicator, config.bootstrap_samples, config.confidence, rng)
        rows.append(
            metric_row(
                "sentiment",
                f"share_{label}",
                data.name,
                platform,
                indicator.mean(),
                len(indicator),
                ci,
            )
        )
    if COVERED in data.per_post:  # the share of posts measured in a language their backend covers
        covered = np.asarray(data.per_post[COVERED], dtype=float)
        rows.append(
            metric_row(
                "sentiment", "language_coverage", data.name, platform, covered.mean(), len(covered)
            )
        )
    rows.append(
        metric_row(
            "lexical",
            "unique_hashtags_per_100_posts",
            data.name,
            platform,
            100 * len(hashtag_set(data.texts)) / max(1, len(data.texts)),
            len(data.texts),
        )
    )
    vectors = _nonzero(data.embeddings)
    diversity = mean_within_similarity(vectors)
    rows.append(
        metric_row(
            "similarity", "mean_within_similarity", data.name, platform, diversity, len(vectors)
        )
    )
    # seeded on its own, so that identical sets are measured on identical posts
    picker = np.random.default_rng(config.linguistic_seed)
    chosen = picker.choice(len(data.texts), min(linguistic_size, len(data.texts)), replace=False)
    texts = [data.texts[i] for i in np.sort(chosen)]
    rows += [
        metric_row("linguistic", metric, data.name, platform, value, len(texts))
        for metric, value in linguistic_metrics(texts).items()
    ]
    return rows


def compare(
    real: EvalSet,
    synthetic: EvalSet,
    platform: str,
    n_topics: int,
    config: EvaluateConfig,
    seed: int,
) -> list[dict]:
    """How a synthetic set differs from the real one on one platform (or all), with intervals:
    bootstrap over posts for shares and divergences, the fold range for detectability."""
    name, n = synthetic.name, len(synthetic.texts)
    rng = np.random.default_rng(seed)
    boot = (config.bootstrap_samples, config.confidence, rng)

    def sentiment_divergence(a: np.ndarray, b: np.ndarray) -> float:
        return js_divergence(class_shares(a), class_shares(b))

    real_classes, synthetic_classes = (
        real.sentiment(config.sentiment),
        synthetic.sentiment(config.sentiment),
    )
    rows = [
        metric_row(
            "sentiment",
            "sentiment_js_divergence",
            name,
            platform,
            sentiment_divergence(real_classes, synthetic_classes),
            n,
            bootstrap_statistic_ci(real_classes, synthetic_classes, sentiment_divergence, *boot),
        ),
        metric_row(
            "lexical",
            "hashtag_set_overlap",
            name,
            platform,
            hashtag_overlap(hashtag_set(real.texts), hashtag_set(synthetic.texts)),
            n,
        ),
        metric_row(
            "lexical",
            "length_ks_distance",
            name,
            platform,
            length_distance(real.texts, synthetic.texts),
            n,
        ),
    ]
    real_vectors, synthetic_vectors = _nonzero(real.embeddings), _nonzero(synthetic.embeddings)
    to_real, to_synthetic = nearest_both_ways(synthetic_vectors, real_vectors)
    for direction, similarity in (
        ("synthetic_with_real_counterpart", to_real),
        ("real_with_synthetic_counterpart", to_synthetic),
    ):
        for threshold, share in shares_above(similarity, config.similarity_thresholds).items():
            indicator = (similarity >= threshold - 1e-5).astype(float)
            rows.append(
                metric_row(
                    "similarity",
                    f"{direction}@{threshold:g}",
                    name,
                    platform,
                    share,
                    len(similarity),
                    bootstrap_mean_ci(indicator, *boot),
                )
            )

    rows += _knn_rows(real, synthetic_vectors, name, platform, boot)
    if config.mauve:
        rows += _mauve_rows(real, synthetic_vectors, name, platform, seed)

    def topic_divergence(a: np.ndarray, b: np.ndarray) -> float:
        return topic_overlap(a, b, n_topics)["topic_js_divergence"]

    for metric, value in topic_overlap(real.topics, synthetic.topics, n_topics).items():
        ci = (
            bootstrap_statistic_ci(real.topics, synthetic.topics, topic_divergence, *boot)
            if metric == "topic_js_divergence"
            else (float("nan"), float("nan"))
        )
        rows.append(metric_row("topics", metric, name, platform, value, n, ci))
    if config.ner_model is not None:
        values = entity_metrics(
            real.entities(config.ner_model), synthetic.entities(config.ner_model)
        )
        rows += [
            metric_row("entities", metric, name, platform, value, n)
            for metric, value in values.items()
        ]
    folds = detectability_folds(
        real.texts, synthetic.texts, seed, max_per_class=config.detectability_sample
    )
    rows.append(
        metric_row(
            "detectability",
            "detectability_auc",
            name,
            platform,
            folds.mean(),
            n,
            (folds.min(), folds.max()),
        )
    )  # the interval is the range over CV folds
    return rows


def _real_sample(real: EvalSet, size: int, seed: int) -> np.ndarray:
    """At most `size` of the real set's (non-zero) vectors, drawn alike on every run."""
    vectors = _nonzero(real.embeddings)
    drawn = np.random.default_rng(seed).permutation(len(vectors))[:size]
    return vectors[np.sort(drawn)]


def _knn_rows(real: EvalSet, synthetic: np.ndarray, name: str, platform: str, boot) -> list:
    """k-NN precision and recall in the measure space, on at most KNN_SAMPLE posts of each; the
    real sample and its radii drawn once per real set, shared by every set compared with it."""
    from mpsynth.metrics.similarity import KNN, KNN_SAMPLE, knn_precision_recall, knn_radii

    rng = boot[2]

    def real_sample() -> tuple[np.ndarray, np.ndarray | None]:
        vectors = _real_sample(real, KNN_SAMPLE, seed=0)
        return vectors, knn_radii(vectors) if len(vectors) > KNN + 1 else None

    if "knn" not in real.whole:
        real.whole["knn"] = real_sample()
    sample, radii = real.whole["knn"]
    if radii is None or len(synthetic) <= KNN + 1:  # a radius needs k neighbours besides itself
        return []
    synthetic = synthetic[
        np.sort(rng.choice(len(synthetic), min(len(synthetic), KNN_SAMPLE), replace=False))
    ]
    precision, recall = knn_precision_recall(sample, synthetic, real_radii=radii)
    return [
        metric_row(
            "similarity", metric, name, platform, flags.mean(), len(flags),
            bootstrap_mean_ci(flags.astype(float), *boot),
        )
        for metric, flags in (("knn_precision", precision), ("knn_recall", recall))
    ]  # fmt: skip


MAUVE_SAMPLE = 2_000  # posts of each side
# posts each side needs: MAUVE quantises into a bucket per ten posts, and below 50 buckets its
# value is mostly the quantisation's noise (its authors use 5,000 a side); so on a small corpus
# it is measured over all platforms, not per platform
MAUVE_FEWEST = 500


def _mauve_rows(real: EvalSet, synthetic: np.ndarray, name: str, platform: str, seed: int) -> list:
    """MAUVE (Pillutla et al. 2021; the mauve-text package, GPL-3.0, an optional extra) between
    the real posts and the set in the measure space, on at most MAUVE_SAMPLE posts of each; no
    row when the package is not installed or a side has fewer than MAUVE_FEWEST posts."""
    compute = mauve_function()
    if compute is None:
        return []
    if "mauve" not in real.whole:
        real.whole["mauve"] = _real_sample(real, MAUVE_SAMPLE, seed=1)
    sample = real.whole["mauve"]
    if min(len(sample), len(synthetic)) < MAUVE_FEWEST:
        return []
    drawn = np.random.default_rng(seed).permutation(len(synthetic))[:MAUVE_SAMPLE]
    result = compute(
        p_features=sample, q_features=synthetic[np.sort(drawn)], seed=seed % 2**31, verbose=False
    )
    return [metric_row("similarity", "mauve", name, platform, result.mauve, len(drawn))]


_MISSING_SAID = False


def mauve_function():
    """mauve.compute_mauve, or None (said once) when the optional mauve-text is not installed."""
    global _MISSING_SAID
    try:
        import faiss  # noqa: F401  (mauve's clustering; its absence fails only at the call)
        from mauve import compute_mauve
    except ImportError:
        if not _MISSING_SAID:
            logging.getLogger(__name__).info(
                "evaluate: MAUVE skipped: install the optional mauve-text and faiss-cpu "
                "(pip install 'mpsynth[mauve]'; mauve-text is GPL-3.0)"
            )
            _MISSING_SAID = True
        return None
    return compute_mauve
