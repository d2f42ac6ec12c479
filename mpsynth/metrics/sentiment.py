"""Sentiment: VADER compound scores (or a transformers model's labels) -> negative / neutral /
positive shares, and how far a synthetic set's shares diverge from the real ones (Jensen-Shannon,
base 2: 0 same, 1 disjoint).

Posts are routed by language: a post whose language (declared, or found by a language identifier)
has its own backend in `evaluate.sentiment_by_language` is measured by it, every other post by
`evaluate.sentiment`. Each post also records whether its backend covers its language (VADER:
English only), so a figure measured mostly outside a model's languages can be marked."""

from __future__ import annotations

from functools import cache

import numpy as np

CLASSES = ("negative", "neutral", "positive")
VADER_LANGUAGES = frozenset({"en"})
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


def covers(config, language: str | None) -> bool:
    """Whether a backend measures posts in `language` (an unknown language is not held against
    it)."""
    if language is None:
        return True
    if config.kind == "vader":
        return language in VADER_LANGUAGES
    return config.languages is None or language in config.languages


@cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_pickled_model(MODEL_FILE)


def detect_languages(texts: list[str]) -> list[str | None]:
    """Each text's most likely language (ISO 639-1) by py3langid's bundled model; None for a text
    without letters."""
    identifier = _identifier()
    return [
        str(identifier.classify(t[:MAX_CHARS])[0]) if any(c.isalpha() for c in t) else None
        for t in texts
    ]


def routed_sentiment(
    texts: list[str], languages: list[str | None], default, by_language: dict
) -> tuple[np.ndarray, np.ndarray]:
    """(sentiment class per post, whether its backend covers its language): each post measured
    by its language's backend in `by_language`, else by `default`."""
    backend_of = [by_language.get(language, default) for language in languages]
    classes = np.empty(len(texts), dtype=np.int64)
    groups: dict[str, list[int]] = {}
    configs = {}
    for row, config in enumerate(backend_of):
        key = config.model_dump_json()
        groups.setdefault(key, []).append(row)
        configs[key] = config
    for key, rows in groups.items():
        classes[rows] = sentiment_of([texts[r] for r in rows], configs[key])
    covered = np.array(
        [covers(c, language) for c, language in zip(backend_of, languages, strict=True)], dtype=bool
    )
    return classes, covered
