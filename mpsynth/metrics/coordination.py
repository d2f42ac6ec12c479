"""Who acted alike: the weighted account pairs the coordination networks are built from, as the
coordination-network-toolkit (Graham et al., QUT Digital Media Research Centre) defines them.
Two accounts are joined when they shared the same item (a URL, a reshared post, a reply target, a
normalised text) within a window of seconds, or posted near-identical texts (token sets of
Jaccard similarity at least a threshold) within it; a pair's weight is the larger of the two
accounts' counts of posts that have such a partner. Pure numpy over integer account codes, in
chunks of pairs, so a million posts fit (benchmarks/structure_scale.py). The pairs of posts are
found once per set (PostPairs); a platform's edges and a resample's are weighed from them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

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


@dataclass(frozen=True)
class PostPairs:
    """Every pair of posts that joins two accounts in one coordination network, found once for a
    set's posts. The edges of any subset of those posts (a platform's) or of any resample of them
    (each post counted as often as it was drawn) are weighed from these pairs, and are the edges
    the network built again from those posts has: a resample's copies of two joined posts are
    joined, and the copies of one post share its account, which joins nothing."""

    pair: np.ndarray  # the accounts' pair code, low << 32 | high; sorted by (pair, low)
    low: np.ndarray  # the lower-coded account's post
    high: np.ndarray  # the higher-coded account's post
    by_high: np.ndarray  # the order that sorts the pairs by (pair, high)

    @classmethod
    def none(cls) -> PostPairs:
        empty = np.array([], np.int64)
        return cls(empty, empty, empty, empty)

    @classmethod
    def of(
        cls, who: np.ndarray, post: np.ndarray, pairs: Iterator[tuple[np.ndarray, np.ndarray]]
    ) -> PostPairs:
        """From index pairs of shares (`who` their accounts, `post` their posts); same-account
        pairs left out."""
        pair_parts, low_parts, high_parts = [], [], []
        for first, second in pairs:
            a, b = who[first], who[second]
            keep = a != b
            first, second, a, b = first[keep], second[keep], a[keep], b[keep]
            swap = a > b
            pair_parts.append(np.where(swap, b, a).astype(np.int64) << 32 | np.where(swap, a, b))
            low_parts.append(np.where(swap, post[second], post[first]))
            high_parts.append(np.where(swap, post[first], post[second]))
        pair, low, high = (
            np.concatenate(parts) if parts else np.array([], np.int64)
            for parts in (pair_parts, low_parts, high_parts)
        )
        order = np.lexsort((low, pair))
        pair, low, high = pair[order], low[order], high[order]
        return cls(pair, low, high, np.lexsort((high, pair)))

    def edges(self, keep: np.ndarray | None = None, counts: np.ndarray | None = None) -> Counter:
        """(account, account) -> weight over the posts `keep` marks (None: all), each counted
        `counts` times (None: once): the larger of the two accounts' counts of posts with a
        partner among them."""
        chosen = np.ones(len(self.pair), bool)
        if keep is not None:
            chosen &= keep[self.low] & keep[self.high]
        if counts is not None:
            chosen &= (counts[self.low] > 0) & (counts[self.high] > 0)
        if not chosen.any():
            return Counter()
        codes, low = _side_weights(self.pair[chosen], self.low[chosen], counts)
        by_high = self.by_high[chosen[self.by_high]]  # the chosen pairs, in (pair, high) order
        _, high = _side_weights(self.pair[by_high], self.high[by_high], counts)
        weights = np.maximum(low, high)
        return Counter(
            {
                (code >> 32, code & 0xFFFFFFFF): int(w)
                for code, w in zip(codes.tolist(), weights.tolist(), strict=True)
            }
        )


def _side_weights(
    pair: np.ndarray, post: np.ndarray, counts: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each account pair (sorted by pair, then post) and its one side's weight: its distinct
    posts, each counted `counts` times (None: once)."""
    new = np.ones(len(pair), bool)  # each (pair, post) once: a new one is where either changes
    new[1:] = (pair[1:] != pair[:-1]) | (post[1:] != post[:-1])
    pair, post = pair[new], post[new]
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    counted = np.ones(len(post), np.int64) if counts is None else counts[post]
    return pair[starts], np.add.reduceat(counted, starts)


def sharing_pairs(
    accounts: np.ndarray, seconds: np.ndarray, items: list[list[str]], window: float
) -> PostPairs:
    """The pairs of posts, by different accounts, that posted the same item within `window`
    seconds of each other. `accounts` are integer codes (-1: no account); posts without an
    account or a time are left out."""
    item_codes: dict[str, int] = {}
    item, time, who, post = [], [], [], []
    usable = ((accounts >= 0) & ~np.isnan(seconds)).tolist()  # once, not a numpy test per row
    for row, values in enumerate(items):
        if not usable[row]:
            continue
        for value in set(values):
            item.append(item_codes.setdefault(value, len(item_codes)))
            time.append(seconds[row])
            who.append(accounts[row])
            post.append(row)
    if not item:
        return PostPairs.none()
    item, time, who, post = np.array(item), np.array(time), np.array(who), np.array(post)
    order = np.lexsort((time, item))
    item, time, who, post = item[order], time[order], who[order], post[order]
    # each share's partners: the later shares of the same item within the window; the key orders
    # by item, then second (exact in int64: 2**34 seconds is five centuries)
    second = np.round(time).astype(np.int64)  # whole seconds, as the toolkit's timestamps
    key = (item.astype(np.int64) << 34) + second - second.min()
    ends = np.searchsorted(key, key + int(window), side="right")
    partners = ends - np.arange(len(key)) - 1
    return PostPairs.of(who, post, _pairs(partners))


def similar_pairs(
    accounts: np.ndarray,
    seconds: np.ndarray,
    tokens: list[frozenset[str] | None],
    window: float,
    similarity: float = SIMILARITY,
) -> PostPairs:
    """The pairs of posts, by different accounts, within `window` seconds of each other whose
    token sets have a Jaccard similarity of at least `similarity`. A post without tokens (None or
    empty), an account or a time is left out. Exact: every pair within the window whose sizes
    allow the threshold is compared (a Jaccard of j needs the smaller set at least j times the
    larger)."""
    rows = np.array(
        [
            r
            for r, found in enumerate(tokens)
            if found and accounts[r] >= 0 and not np.isnan(seconds[r])
        ],
        dtype=np.int64,
    )
    if len(rows) < 2:
        return PostPairs.none()
    rows = rows[np.argsort(seconds[rows], kind="stable")]
    time = np.round(seconds[rows]).astype(np.int64)  # whole seconds, as the toolkit's timestamps
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

    return PostPairs.of(who, rows, similar())


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
