"""The interaction family: what kinds of post each set holds and how much engagement its posts
draw, real against synthetic, per platform and over all.

- **Kind shares** (`share_<kind>`): the share of posts that are originals, reposts, quotes, replies
  and comments, among the posts with a kind, on platforms whose real posts carry kinds.
- **Engagement** (likes, shares, comments, views, votes per post; followers per account): the
  two-sample Kolmogorov-Smirnov statistic against the real values (`<count>_ks`), the Gini
  coefficient (`<count>_gini`: how unequal, 0 to 1) and the share of the total held by the top 1%
  (`<count>_top1_share`: the heavy tail). Net votes can be negative: their Gini and top share are of
  the positive part.
- **Engagement against followers** (`<count>_followers_rho`): Spearman's rank correlation between a
  post's count and its author's followers, where both are known.

Intervals are percentile bootstraps over posts (over accounts for followers). A set without a
column has no rows for it: absent, not zero.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from mpsynth.core import schema
from mpsynth.core.schema import ENGAGEMENT, FOLLOWERS, POST_KINDS
from mpsynth.metrics.compare import metric_row
from mpsynth.metrics.stats import bootstrap_mean_ci, bootstrap_statistic_ci, ks_statistic
from mpsynth.metrics.structure import BOOTSTRAP_MOST, Posts, bootstrap_one, gini, per_platform

FAMILY = "interaction"
MIN_VALUES = 10  # values a distribution comparison needs
# what the structure stage draws from the real posts: a synthetic set matches these by construction
BY_CONSTRUCTION = frozenset(
    {"share_original", "share_repost", "share_reply", "share_comment"}
    | {
        f"{count}_{measure}"
        for count in ENGAGEMENT
        for measure in ("ks", "gini", "top1_share", "followers_rho")
    }
)


def top_share(values: np.ndarray, top: float = 0.01) -> float:
    """The share of the total held by the largest `top` of the values (at least one value)."""
    values = np.sort(np.asarray(values, dtype=float))
    total = values.sum()
    if not len(values) or total <= 0:
        return float("nan")
    return float(values[-max(1, int(np.ceil(top * len(values)))) :].sum() / total)


def rank_correlation(first: np.ndarray, second: np.ndarray) -> float:
    if len(first) < 3 or np.ptp(first) == 0 or np.ptp(second) == 0:
        return float("nan")
    return float(spearmanr(first, second).statistic)


def interaction_metrics(
    sets: dict[str, Posts], samples: int, confidence: float, seed: int
) -> list[dict]:
    """Every interaction metric of every set (real included) per platform and over all."""
    rng = np.random.default_rng([seed, 23])
    rows: list[dict] = []
    for name, platform, mine, theirs in per_platform(sets):
        rows += _set_rows(name, platform, mine, theirs, samples, confidence, rng)
    return rows


def _set_rows(name, platform, mine: Posts, theirs: Posts, samples, confidence, rng) -> list[dict]:
    rows: list[dict] = []

    def add(metric, value, n, ci):
        rows.append(metric_row(FAMILY, metric, name, platform, value, n, ci))

    if mine.kind is not None and theirs.kind is not None:
        kinds = mine.kind[mine.kind != None]  # noqa: E711
        if len(kinds):
            for kind in POST_KINDS:
                if (theirs.kind == kind).any() or (kinds == kind).any():
                    hits = (kinds == kind).astype(float)
                    add(
                        f"share_{kind}",
                        hits.mean(),
                        len(kinds),
                        bootstrap_mean_ci(hits, samples, confidence, rng),
                    )
    for count in ENGAGEMENT:
        values = _values(mine, count)
        real_values = _values(theirs, count)
        if values is None or len(values) < MIN_VALUES:
            continue
        positive = np.maximum(values, 0)
        add(
            f"{count}_gini",
            gini(positive),
            len(values),
            bootstrap_one(positive, gini, samples, confidence, rng),
        )
        add(
            f"{count}_top1_share",
            top_share(positive),
            len(values),
            bootstrap_one(positive, top_share, samples, confidence, rng),
        )
        if name != schema.REAL and real_values is not None and len(real_values) >= MIN_VALUES:
            add(
                f"{count}_ks",
                ks_statistic(values, real_values),
                len(values),
                bootstrap_statistic_ci(
                    values, real_values, ks_statistic, samples, confidence, rng, BOOTSTRAP_MOST
                ),
            )
        if count != FOLLOWERS:
            pairs = _with_followers(mine, count)
            if pairs is not None and len(pairs) >= MIN_VALUES:
                add(
                    f"{count}_followers_rho",
                    rank_correlation(pairs[:, 0], pairs[:, 1]),
                    len(pairs),
                    bootstrap_one(
                        pairs,
                        lambda p: rank_correlation(p[:, 0], p[:, 1]),
                        samples,
                        confidence,
                        rng,
                    ),
                )
    return rows


def _values(posts: Posts, count: str) -> np.ndarray | None:
    """The known values of a count: per post, but followers per account (each account's median,
    since every post of an account repeats it)."""
    column = None if posts.counts is None else posts.counts.get(count)
    if column is None:
        return None
    known = ~np.isnan(column)
    if count != FOLLOWERS:
        return column[known]
    keep = known & (posts.author != None)  # noqa: E711
    if not keep.any():
        return column[known]
    accounts = np.char.add(posts.platform[keep].astype(str), posts.author[keep].astype(str))
    _, index = np.unique(accounts, return_inverse=True)
    order = np.argsort(index, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(index[order]) != 0])
    return np.array([np.median(v) for v in np.split(column[keep][order], starts[1:])])


def _with_followers(posts: Posts, count: str) -> np.ndarray | None:
    """(count, followers) of each post that has both."""
    if posts.counts is None or count not in posts.counts or FOLLOWERS not in posts.counts:
        return None
    first, second = posts.counts[count], posts.counts[FOLLOWERS]
    keep = ~np.isnan(first) & ~np.isnan(second)
    return np.column_stack([first[keep], second[keep]])
