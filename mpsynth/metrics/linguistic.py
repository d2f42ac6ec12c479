"""Linguistic richness: vocabulary, moving-average type-token ratio, distinct-1/2/3 and the
compression ratio (diversity measures, as the `diversity` package defines them), and the rates of
personal pronouns and temporal expressions (English word lists). Compared on equal-sized samples,
since vocabulary grows with the amount of text."""

from __future__ import annotations

import gzip
import io
import re

import numpy as np

TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
PERSONAL_PRONOUNS = frozenset(
    [
        "i",
        "me",
        "my",
        "mine",
        "myself",
        "we",
        "us",
        "our",
        "ours",
        "ourselves",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "he",
        "him",
        "his",
        "himself",
        "she",
        "her",
        "hers",
        "herself",
        "they",
        "them",
        "their",
        "theirs",
        "themselves",
        "i'm",
        "i've",
        "i'll",
        "i'd",
        "we're",
        "we've",
        "you're",
        "you've",
        "they're",
    ]
)
TEMPORAL = re.compile(
    r"\b(?:today|tonight|tomorrow|yesterday|now|soon|recently|later|ago|currently|"
    r"morning|afternoon|evening|weekends?|days?|weeks?|months?|years?|decades?|century|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"january|february|march|april|may|june|july|august|september|october|november|december|"
    r"(?:19|20)\d{2}|\d{1,2}(?::\d{2})?\s?(?:am|pm))\b",
    re.IGNORECASE,
)
MATTR_WINDOW = 50


URL = re.compile(r"(?i)(?:https?://|www\.)\S+")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens, URLs left out (their pieces are not vocabulary)."""
    return [t.lower() for t in TOKEN.findall(URL.sub(" ", text))]


def mattr(tokens: list[str], window: int = MATTR_WINDOW) -> float:
    """Moving-average type-token ratio over one token stream."""
    if len(tokens) < window:
        return len(set(tokens)) / len(tokens) if tokens else float("nan")
    counts: dict[str, int] = {}
    for token in tokens[:window]:
        counts[token] = counts.get(token, 0) + 1
    total = len(counts)
    for i in range(window, len(tokens)):
        counts[tokens[i]] = counts.get(tokens[i], 0) + 1
        old = tokens[i - window]
        counts[old] -= 1
        if counts[old] == 0:
            del counts[old]
        total += len(counts)
    return total / ((len(tokens) - window + 1) * window)


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct n-grams over all n-grams of the texts joined by a space, words split at single
    spaces: one term of the `diversity` package's ngram_diversity_score (Shaib et al. 2024)."""
    words = " ".join(texts).split(" ")
    grams = list(zip(*(words[i:] for i in range(n)), strict=False))
    return len(set(grams)) / len(grams) if grams else float("nan")


def compression_ratio(texts: list[str]) -> float:
    """The texts joined by a space, in bytes, over their gzip size: the `diversity` package's
    compression_ratio (0.3.1) byte for byte, whose file holds the text gzipped twice (a gzip
    stream written through a GzipFile named compressed.gz), rounded as it rounds. Higher: more
    repetitive text."""
    joined = " ".join(texts).encode("utf-8")
    if not joined:
        return float("nan")
    buffer = io.BytesIO()
    with gzip.GzipFile("compressed.gz", "wb", fileobj=buffer, mtime=0) as file:
        file.write(gzip.compress(joined))
    return round(len(joined) / len(buffer.getvalue()), 3)


def linguistic_metrics(texts: list[str]) -> dict[str, float]:
    streams = [tokenize(t) for t in texts]
    flat = [t for s in streams for t in s]
    n_tokens = max(1, len(flat))
    return {
        "vocabulary": float(len(set(flat))),
        "mattr": mattr(flat),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "distinct_3": distinct_n(texts, 3),
        "compression_ratio": compression_ratio(texts),
        "pronouns_per_token": sum(t in PERSONAL_PRONOUNS for t in flat) / n_tokens,
        "share_with_temporal": float(np.mean([bool(TEMPORAL.search(t)) for t in texts]))
        if texts
        else float("nan"),
    }
