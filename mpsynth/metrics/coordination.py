"""Who acted alike: the weighted account pairs the coordination networks are built from, as the
coordination-network-toolkit (Graham et al., QUT Digital Media Research Centre) defines them.
Two accounts are joined when they shared the same item (a URL, a reshared post, a reply target, a
normalised text) within a window of seconds, or posted near-identical texts (token sets of
Jaccard similarity at least a threshold) within it; a pair's weight is the larger of the two
accounts' counts of posts that have such a partner. Pure numpy over integer account codes, in
chunks of pairs, so a million posts fit (benchmarks/structure_scale.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import numpy as np
import regex

SIMILARITY = 0.8  # the toolkit's default Jaccard threshold of co_similar_tweet (its command's)
PAIRS_PER_CHUNK = 5_000_000


# The coordination-network-toolkit's text rules (similarity.py, MIT, Graham et al.), so that its
# co_tweet and co_similar_tweet networks and mpsynth's join the same pairs
_MENTION = regex.compile(r"@.*?(?=(?:\s|$))")
_WORD_BREAK = regex.compile(
    r"\b\p{Word_Break=WSegSpace}*'?", flags=regex.WORD | regex.UNICODE | regex.V1
)


def normalised_text(text: str) -> str:
    """The text as co_tweet compares it: lower case, @mentions out, whitespace collapsed."""
    return " ".join(_MENTION.sub("", text.lower()).split())


def token_set(text: str) -> frozenset[str]:
    """The text's tokens as co_similar_tweet compares them (the toolkit's word-break split of the
    lower-cased text without @mentions, whitespace-separated pieces)."""
    pieces = _WORD_BREAK.split(_MENTION.sub("", text.lower()))
    return frozenset(" ".join(p for p in pieces if p).split())


def co_sharing_edges(
    accounts: np.ndarray, seconds: np.ndarray, items: list[list[str]], window: float
) -> Counter:
    """(account, account) -> the edge's weight: two accounts are joined when they posted the same
    item within `window` seconds of each other, and the weight is the larger of the two accounts'
    counts of posts that have such a partner post (the coordination-network-toolkit's co-link
    weight, read in either direction). `accounts` are integer codes (-1: no account); posts
    without an account or a time are left out."""
    item_codes: dict[str, int] = {}
    item, time, who, post = [], [], [], []
    for row, values in enumerate(items):
        if accounts[row] < 0 or np.isnan(seconds[row]):
            continue
        for value in set(values):
            item.append(item_codes.setdefault(value, len(item_codes)))
            time.append(seconds[row])
            who.append(accounts[row])
            post.append(row)
    if not item:
        return Counter()
    item, time, who, post = np.array(item), np.array(time), np.array(who), np.array(post)
    order = np.lexsort((time, item))
    item, time, who, post = item[order], time[order], who[order], post[order]
    # each share's partners: the later shares of the same item within the window; the key orders
    # by item, then second (exact in int64: 2**34 seconds is five centuries)
    key = (item.astype(np.int64) << 34) + np.round(time - time.min()).astype(np.int64)
    ends = np.searchsorted(key, key + int(window), side="right")
    partners = ends - np.arange(len(key)) - 1
    return _edge_weights(who, post, _pairs(partners))


def _edge_weights(
    who: np.ndarray, post: np.ndarray, pairs: Iterator[tuple[np.ndarray, np.ndarray]]
) -> Counter:
    """(account, account) -> weight from index pairs of shares (`who` their accounts, `post` their
    posts): the larger of the two accounts' counts of posts with a partner; same-account pairs
    left out."""
    pair_parts, low_posts, high_posts = [], [], []
    for first, second in pairs:
        a, b = who[first], who[second]
        keep = a != b
        first, second, a, b = first[keep], second[keep], a[keep], b[keep]
        swap = a > b
        pair_parts.append(np.where(swap, b, a).astype(np.int64) << 32 | np.where(swap, a, b))
        low_posts.append(np.where(swap, post[second], post[first]))
        high_posts.append(np.where(swap, post[first], post[second]))
    if not pair_parts:
        return Counter()
    pair = np.concatenate(pair_parts)
    weights = None
    for posts in (np.concatenate(low_posts), np.concatenate(high_posts)):
        order = np.lexsort((posts, pair))
        sorted_pair, sorted_post = pair[order], posts[order]
        new = np.ones(len(order), bool)
        new[1:] = (sorted_pair[1:] != sorted_pair[:-1]) | (sorted_post[1:] != sorted_post[:-1])
        codes, counts = np.unique(sorted_pair[new], return_counts=True)
        weights = counts if weights is None else np.maximum(weights, counts)
    return Counter(
        {
            (code >> 32, code & 0xFFFFFFFF): int(w)
            for code, w in zip(codes.tolist(), weights.tolist(), strict=True)
        }
    )


def co_similar_edges(
    accounts: np.ndarray,
    seconds: np.ndarray,
    tokens: list[frozenset[str] | None],
    window: float,
    similarity: float = SIMILARITY,
) -> Counter:
    """(account, account) -> weight, as co_sharing_edges, for posts within `window` seconds of
    each other whose token sets have a Jaccard similarity of at least `similarity`. A post
    without tokens (None or empty), an account or a time is left out. Exact: every pair within
    the window whose sizes allow the threshold is compared (a Jaccard of j needs the smaller set
    at least j times the larger)."""
    rows = np.array(
        [
            r
            for r, found in enumerate(tokens)
            if found and accounts[r] >= 0 and not np.isnan(seconds[r])
        ],
        dtype=np.int64,
    )
    if len(rows) < 2:
        return Counter()
    rows = rows[np.argsort(seconds[rows], kind="stable")]
    time = np.round(seconds[rows] - seconds[rows].min()).astype(np.int64)
    sizes = np.array([len(tokens[r]) for r in rows.tolist()])
    who = accounts[rows]
    ends = np.searchsorted(time, time + int(window), side="right")

    def similar() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for first, second in _pairs(ends - np.arange(len(time)) - 1):
            small = np.minimum(sizes[first], sizes[second])
            large = np.maximum(sizes[first], sizes[second])
            keep = (who[first] != who[second]) & (small >= similarity * large)
            first, second = first[keep], second[keep]
            close = np.fromiter(
                (
                    _jaccard(tokens[rows[i]], tokens[rows[j]]) >= similarity
                    for i, j in zip(first.tolist(), second.tolist(), strict=True)
                ),
                dtype=bool,
                count=len(first),
            )
            yield first[close], second[close]

    return _edge_weights(who, rows, similar())


def _jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b)


def _pairs(partners: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(i, j) index arrays of every i and each of its partners j = i+1 .. i+partners[i], in chunks
    of about PAIRS_PER_CHUNK pairs."""
    start = 0
    cumulative = np.cumsum(partners)
    while start < len(partners):
        done = cumulative[start - 1] if start else 0
        stop = int(np.searchsorted(cumulative, done + PAIRS_PER_CHUNK, side="right"))
        stop = max(stop, start + 1)
        counts = partners[start:stop]
        total = int(counts.sum())
        if total:
            first = np.repeat(np.arange(start, stop), counts)
            offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            yield first, first + 1 + offsets
        start = stop
