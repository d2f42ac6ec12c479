"""Lexical features per post (hashtags, mentions, URLs, emojis, length), vectorised over whole Arrow
batches, and their per-platform aggregates."""

from __future__ import annotations

import re
from functools import cache

import emoji
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mpsynth.metrics.extraction import extract
from mpsynth.metrics.stats import ks_statistic

COUNTED = ("hashtags", "mentions", "urls", "emojis")
FEATURES = (*COUNTED, "cashtags", "chars", "words")


@cache
def _emoji_ranges() -> list[tuple[int, int]]:
    """Every non-ASCII code point found in any emoji the emoji library knows, as ranges."""
    points = sorted({ord(ch) for key in emoji.EMOJI_DATA for ch in key if ord(ch) > 127})
    ranges, start, prev = [], points[0], points[0]
    for point in points[1:]:
        if point != prev + 1:
            ranges.append((start, prev))
            start = point
        prev = point
    ranges.append((start, prev))
    return ranges


@cache
def _emoji_candidate_class() -> str:
    """An RE2 character class of those code points: a post that matches nothing in it holds no
    emoji, so only the rest need exact counting."""
    return (
        "["
        + "".join(
            f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in _emoji_ranges()
        )
        + "]"
    )


@cache
def _emoji_runs() -> re.Pattern:
    """Runs of characters that can make up an emoji (a keycap's ASCII base first): every emoji
    lies inside one, so only the runs need the library's (per-character) tokenizer."""
    characters = "".join(
        f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in _emoji_ranges()
    )
    return re.compile(rf"[0-9#*]?[{characters}]+")


UNQUALIFIED = emoji.STATUS["unqualified"]


def emojis_in(text: str) -> list[str]:
    """The emojis of a post by Unicode's rules (UTS #51, through the emoji library's data): a ZWJ
    sequence, a flag or a keycap is one emoji; a symbol whose default presentation is text (©, ®,
    ™, ↔, ❤) counts only with the emoji variation selector (U+FE0F) after it."""
    return [value for _, _, value in emoji_spans(text)]


def emoji_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, emoji) of every emoji of a post, by the rules of `emojis_in`. Only the runs of
    characters that can make up an emoji go through the library's per-character tokenizer."""
    found = []
    for run in _emoji_runs().finditer(text):
        offset = run.start()
        for token in emoji.analyze(run.group(), join_emoji=True):
            match = token.value
            status = (match.data or {}).get("status")
            if len(match.emoji) == 1 and status == UNQUALIFIED:
                continue  # a text-default symbol written as text
            found.append((offset + match.start, offset + match.end, match.emoji))
    return found


def count_emojis(texts: pa.Array) -> np.ndarray:
    counts = np.zeros(len(texts), dtype=np.int64)
    candidates = pc.match_substring_regex(texts, _emoji_candidate_class()).fill_null(False)
    for index in np.flatnonzero(candidates.to_numpy(zero_copy_only=False)):
        counts[index] = len(emoji_spans(texts[int(index)].as_py()))
    return counts


ITEM_KINDS = ("hashtags", "mentions", "urls")  # kept as values, for the network graphs
ITEMS = pa.list_(pa.string())


def lexical_features(
    texts: pa.Array | pa.ChunkedArray,
    platforms: pa.Array | pa.ChunkedArray | None = None,
    counts: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Per-post counts, one int64 array per feature in FEATURES (hashtags, mentions, URLs and
    cashtags by mpsynth.metrics.extraction, mentions by each post's platform rule); `counts`: the
    extraction's counts when the caller has extracted already."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    features = dict(counts if counts is not None else extract(texts, platforms).counts)
    features["emojis"] = count_emojis(texts)
    features["chars"] = pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
    # trimmed first: Arrow yields an empty token for leading or trailing whitespace
    trimmed = pc.utf8_trim_whitespace(texts)
    words = pc.list_value_length(pc.utf8_split_whitespace(trimmed))
    features["words"] = (
        pc.if_else(pc.equal(pc.utf8_length(trimmed), 0), 0, words)
        .to_numpy(zero_copy_only=False)
        .astype(np.int64)
    )
    return {name: features[name] for name in FEATURES}


def add_lexical_features(batch: pa.Table) -> pa.Table:
    """Batch function (Ray Data's map_batches protocol): the batch plus one column per feature."""
    platforms = batch.column("platform") if "platform" in batch.column_names else None
    for name, values in lexical_features(batch.column("text"), platforms).items():
        batch = batch.append_column(name, pa.array(values, pa.int64()))
    return batch


class LexicalFeatures:
    """Batch callable for Ray Data: each post's features, its dataset named from the file it was
    read from (the `path` column Ray Data adds, an absolute path), its text dropped."""

    def __init__(self, datasets: dict[str, str]) -> None:
        self.datasets = datasets  # absolute file path -> dataset name

    def __call__(self, batch: pa.Table) -> pa.Table:
        paths = batch.column("path").dictionary_encode().combine_chunks()
        names = pa.DictionaryArray.from_arrays(
            paths.indices, pa.array([self.datasets[p] for p in paths.dictionary.to_pylist()])
        ).cast(pa.string())
        texts, platforms = batch.column("text").combine_chunks(), batch.column("platform")
        # one extraction: the counts for the lexical metrics, the values for the network graphs
        found = extract(texts, platforms, values=True)
        out = batch.select(["id", "platform"])
        for name, values in lexical_features(texts, platforms, found.counts).items():
            out = out.append_column(name, pa.array(values, pa.int64()))
        assert found.values is not None
        for kind in ITEM_KINDS:
            out = out.append_column(f"{kind}_found", pa.array(found.values[kind], ITEMS))
        return out.append_column("dataset", names)


def lexical_metric_values(features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-post values whose means are the lexical metrics (shares are means of 0/1 indicators)."""
    values = {}
    for name in COUNTED:
        values[f"share_with_{name}"] = (features[name] > 0).astype(np.float64)
        values[f"mean_{name}"] = features[name].astype(np.float64)
    values["mean_chars"] = features["chars"].astype(np.float64)
    values["mean_words"] = features["words"].astype(np.float64)
    return values


def hashtag_set(texts: list[str]) -> set[str]:
    """The distinct hashtags (case-folded) used in a set of posts: the same extraction that
    counts them."""
    if not texts:
        return set()
    tags = extract(texts, values=True).values
    assert tags is not None
    return {tag.casefold() for post in tags["hashtags"] for tag in post}


def hashtag_overlap(real: set[str], synthetic: set[str]) -> float:
    """Jaccard overlap of two hashtag sets (1.0 when neither uses any)."""
    return len(real & synthetic) / len(real | synthetic) if real or synthetic else 1.0


def length_distance(real: list[str], synthetic: list[str]) -> float:
    """Kolmogorov-Smirnov statistic between the length distributions in characters (0: same)."""
    return ks_statistic(np.array([len(t) for t in real]), np.array([len(t) for t in synthetic]))
