"""Sentiment: VADER compound scores -> negative / neutral / positive shares, and how far a synthetic
set's shares diverge from the real ones (Jensen-Shannon, base 2: 0 same, 1 disjoint)."""

from __future__ import annotations

from functools import cache

import numpy as np

CLASSES = ("negative", "neutral", "positive")
THRESHOLD = 0.05  # VADER's own convention for the compound score
MAX_CHARS = 5_000  # VADER's cost grows with length: a pathological post is cut, bounding its time


@cache
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_compound(texts: list[str]) -> np.ndarray:
    analyzer = _analyzer()
    return np.array(
        [analyzer.polarity_scores(t[:MAX_CHARS])["compound"] for t in texts], dtype=np.float64
    )


def sentiment_classes(compound: np.ndarray) -> np.ndarray:
    """0 negative, 1 neutral, 2 positive."""
    return np.where(compound <= -THRESHOLD, 0, np.where(compound >= THRESHOLD, 2, 1))


def class_shares(classes: np.ndarray) -> np.ndarray:
    counts = np.bincount(classes, minlength=len(CLASSES)).astype(np.float64)
    return counts / max(1.0, counts.sum())


def _label_index(label: str) -> int:
    name = label.casefold()
    for index, prefix in enumerate(("neg", "neu", "pos")):
        if name.startswith(prefix):
            return index
    raise ValueError(f"sentiment model label {label!r} is not negative / neutral / positive")


@cache
def _classifier(model: str, device: str):
    from transformers import pipeline

    from mpsynth.embedders.sentence_transformers import resolve_device

    try:
        return pipeline("text-classification", model=model, device=resolve_device(device))
    except OSError as error:
        from mpsynth.core.errors import InputError

        raise InputError(f"evaluate.sentiment.model={model!r}: cannot load: {error}") from None


def sentiment_of(texts: list[str], config) -> np.ndarray:
    """Class per post (0 negative, 1 neutral, 2 positive) from the configured backend."""
    match config.kind:
        case "vader":
            return sentiment_classes(vader_compound(texts))
        case "transformers":
            classifier = _classifier(config.model, config.device)
            outputs = classifier(
                [t[:MAX_CHARS] for t in texts],
                batch_size=config.batch_size,
                truncation=True,
                max_length=config.max_length,
            )
            return np.array([_label_index(o["label"]) for o in outputs], dtype=np.int64)
