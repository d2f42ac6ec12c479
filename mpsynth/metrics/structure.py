"""The structure family: accounts and time, real against synthetic, per platform and over all.

- posts per account: the Gini coefficient of each set (how much a few accounts write) and the
  two-sample Kolmogorov-Smirnov statistic against the real distribution;
- when posts are written: Jensen-Shannon divergence of the hour-of-day and day-of-week shares, and
  the KS statistic of the time between an account's consecutive posts (log seconds);
- links: the share of posts that answer another post, and the mean depth of threads;
- account linkage (privacy): the share of synthetic accounts whose topic and hour profile sits much
  closer to one real account than to any other;
- accounts as individuals: the heterogeneity of their style (how far accounts' mean length,
  hashtags, mentions, URLs and emojis per post differ, against how far posts differ: language
  models tend to compress real heterogeneity into a few types) and the burstiness of their posting
  (Goh and Barabasi 2008: (sd - mean) / (sd + mean) of an account's gaps; -1 regular, 0 random,
  towards 1 bursty).

A set whose posts carry no authors (or no timestamps) has no rows for those metrics: absent, not
zero. Intervals are percentile bootstraps over accounts or posts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mpsynth.core import schema
from mpsynth.metrics.compare import metric_row
from mpsynth.metrics.stats import (
    bootstrap_mean_ci,
    bootstrap_statistic_ci,
    js_divergence,
    ks_statistic,
)

FAMILY = "structure"
MIN_ACCOUNTS = 2  # accounts a posts-per-account comparison needs
MIN_TIMES = 10  # timestamps an hour or weekday comparison needs
BOOTSTRAP_MOST = 20_000  # values per resample (stats.bootstrap_statistic_ci: conservative above)


@dataclass
class Posts:
    """One set's posts as the structure metrics read them (row-aligned arrays)."""

    platform: np.ndarray  # str
    author: np.ndarray  # str, None where missing
    seconds: np.ndarray  # epoch seconds, NaN where missing
    topic: np.ndarray  # int, -2 where unknown
    reply_to: np.ndarray | None = None  # str, None where missing; None: the set has no links
    ids: np.ndarray | None = None
    style: dict[str, np.ndarray] | None = None  # STYLE feature -> per post; None: not read
    kind: np.ndarray | None = None  # post_kind (original, repost, ...); None: the set has none
    quote_of: np.ndarray | None = None  # the post a repost or quote points at, None where missing
    text: np.ndarray | None = None  # str; None: not read (the text networks need it)
    counts: dict[str, np.ndarray] | None = None  # engagement count -> per post (NaN: unknown)
    thread_id: np.ndarray | None = None  # str, None where missing; None: the set has none

    @classmethod
    def of(cls, table: pa.Table, topics: np.ndarray | None = None) -> Posts:
        names = table.column_names
        n = table.num_rows
        author = (
            np.array(table.column("author").to_pylist(), dtype=object)
            if "author" in names
            else np.full(n, None, dtype=object)
        )
        seconds = (
            epoch_seconds(table.column("timestamp")) if "timestamp" in names else np.full(n, np.nan)
        )
        if topics is None:
            topics = (
                np.array([-2 if t is None else t for t in table.column("topic").to_pylist()])
                if "topic" in names
                else np.full(n, -2)
            )
        has_links = "reply_to" in names and table.column("reply_to").null_count < n

        def given(name: str) -> np.ndarray | None:
            if name not in names or table.column(name).null_count == n:
                return None
            return np.array(table.column(name).to_pylist(), dtype=object)

        return cls(
            platform=np.array(table.column("platform").to_pylist(), dtype=object),
            author=author,
            seconds=seconds,
            topic=np.asarray(topics),
            reply_to=np.array(table.column("reply_to").to_pylist(), dtype=object)
            if has_links
            else None,
            ids=np.array(table.column("id").to_pylist(), dtype=object),
            kind=given("post_kind"),
            quote_of=given("quote_of"),
            text=given("text"),
            counts={
                name: np.array(table.column(name).to_pylist(), dtype=float)
                for name in schema.ENGAGEMENT
                if name in names and table.column(name).null_count < n
            }
            or None,
            thread_id=given("thread_id"),
        )

    def subset(self, rows: np.ndarray) -> Posts:
        return Posts(
            self.platform[rows],
            self.author[rows],
            self.seconds[rows],
            self.topic[rows],
            None if self.reply_to is None else self.reply_to[rows],
            None if self.ids is None else self.ids[rows],
            None if self.style is None else {k: v[rows] for k, v in self.style.items()},
            *(None if v is None else v[rows] for v in (self.kind, self.quote_of, self.text)),
            None if self.counts is None else {k: v[rows] for k, v in self.counts.items()},
            None if self.thread_id is None else self.thread_id[rows],
        )


def epoch_seconds(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Timestamps as float epoch seconds, NaN where missing."""
    values = pc.cast(column, schema.TIMESTAMP).cast(pa.int64()).cast(pa.float64())
    return pc.fill_null(values, float("nan")).to_numpy(zero_copy_only=False)


def timestamps_of(seconds: np.ndarray) -> pa.Array:
    """Epoch seconds (NaN: missing) as a timestamp column, the inverse of epoch_seconds."""
    whole = pa.array(np.round(seconds), pa.float64(), mask=np.isnan(seconds))
    return whole.cast(pa.int64()).cast(schema.TIMESTAMP)


def posts_per_account(posts: Posts) -> np.ndarray:
    known = posts.author[posts.author != None]  # noqa: E711 (elementwise)
    return np.unique(known.astype(str), return_counts=True)[1] if len(known) else np.array([])


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0: every account writes as much; near 1: one does)."""
    counts = np.sort(np.asarray(counts, dtype=float))
    n = len(counts)
    if n == 0 or counts.sum() == 0:
        return float("nan")
    return float((2 * np.arange(1, n + 1) - n - 1) @ counts / (n * counts.sum()))


def _shares(values: np.ndarray, bins: int) -> np.ndarray:
    return np.bincount(values.astype(np.int64), minlength=bins).astype(float)


def hours(seconds: np.ndarray) -> np.ndarray:
    return (seconds[~np.isnan(seconds)] // 3600 % 24).astype(np.int64)


def weekdays(seconds: np.ndarray) -> np.ndarray:
    # 1970-01-01 was a Thursday: Monday = 0
    return ((seconds[~np.isnan(seconds)] // 86400 + 3) % 7).astype(np.int64)


def inter_post_gaps(posts: Posts) -> np.ndarray:
    """log10(1 + seconds) between consecutive posts of each account."""
    keep = (posts.author != None) & ~np.isnan(posts.seconds)  # noqa: E711
    if keep.sum() < 2:
        return np.array([])
    author = posts.author[keep].astype(str)
    seconds = posts.seconds[keep]
    order = np.lexsort((seconds, author))
    author, seconds = author[order], seconds[order]
    same = author[1:] == author[:-1]
    return np.log10(1 + np.diff(seconds)[same])


def post_depths(
    ids: list[str], reply_to: list[str | None], longest: int = 10_000
) -> tuple[dict[str, int], dict[str, str]]:
    """Each post's depth in its thread (1: it answers nothing in the set) and its thread's root,
    keyed by id; a parent outside the set is a root at depth 1 and appears in both maps."""
    parent = {i: p for i, p in zip(ids, reply_to, strict=True) if p}
    depth: dict[str, int] = {}
    root: dict[str, str] = {}
    for post in ids:
        chain, node, on_chain = [], post, set()
        while node not in depth and node in parent and len(chain) < longest:
            if node in on_chain:  # a loop (ingest breaks them; a set made elsewhere may not)
                break
            chain.append(node)
            on_chain.add(node)
            node = parent[node]
        if node in on_chain:  # the loop's closing post is its first post
            chain = chain[: chain.index(node)]
        depth.setdefault(node, 1)
        root.setdefault(node, node)
        for step, link in enumerate(reversed(chain), start=1):
            depth[link], root[link] = depth[node] + step, root[node]
    return depth, root


def thread_depths(posts: Posts, longest: int = 10_000) -> np.ndarray:
    """The depth of every thread (a post and every post answering it, down the chain; 1: a post
    nobody answered). A parent outside the set is the thread's root."""
    if posts.reply_to is None or posts.ids is None:
        return np.array([])
    depth, root = post_depths(posts.ids.tolist(), posts.reply_to.tolist(), longest)
    threads: dict[str, int] = {}
    for post, top in root.items():
        threads[top] = max(threads.get(top, 0), depth[post])
    return np.array(list(threads.values()), dtype=float)


def structure_metrics(
    sets: dict[str, Posts], samples: int, confidence: float, seed: int
) -> list[dict]:
    """Every structure metric of every set (real included) per platform and over all platforms."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, platform, mine, theirs in per_platform(sets):
        rows += _set_rows(name, platform, mine, theirs, samples, confidence, rng)
    return rows


def per_platform(sets: dict[str, Posts]) -> Iterator[tuple[str, str, Posts, Posts]]:
    """(set, platform, the set's posts there, the real posts there) for every set (real
    included) on every real platform where it has posts, then over all platforms."""
    real = sets[schema.REAL]
    platforms = sorted(set(real.platform.tolist()))
    for name, posts in sets.items():
        for platform in [*platforms, schema.ALL_PLATFORMS]:
            if platform == schema.ALL_PLATFORMS:
                mine, theirs = posts, real
            else:
                mine = posts.subset(posts.platform == platform)
                theirs = real.subset(real.platform == platform)
            if len(mine.platform):
                yield name, platform, mine, theirs


def _set_rows(name, platform, mine: Posts, theirs: Posts, samples, confidence, rng) -> list[dict]:
    rows = []

    def add(metric, value, n, ci=(float("nan"), float("nan"))):
        rows.append(metric_row(FAMILY, metric, name, platform, value, n, ci))

    counts, real_counts = posts_per_account(mine), posts_per_account(theirs)
    if len(counts) >= MIN_ACCOUNTS:
        authors = np.unique(mine.author[mine.author != None], return_inverse=True)[1]  # noqa: E711
        add(
            "accounts",
            len(counts),
            int(counts.sum()),
            # a resample holds fewer distinct accounts than the set (posts are drawn twice):
            # the spread of the count, centred on it, not the resampled counts' percentiles
            _centred(len(counts), authors, lambda a: len(np.unique(a)), samples, rng),
        )
        add(
            "posts_per_account",
            counts.mean(),
            int(counts.sum()),
            bootstrap_mean_ci(counts.astype(float), samples, confidence, rng),
        )
        add(
            "posts_per_account_gini",
            gini(counts),
            int(counts.sum()),
            bootstrap_one(counts, gini, samples, confidence, rng),
        )
        if name != schema.REAL and len(real_counts) >= MIN_ACCOUNTS:
            add(
                "posts_per_account_ks",
                ks_statistic(counts, real_counts),
                int(counts.sum()),
                bootstrap_statistic_ci(
                    counts, real_counts, ks_statistic, samples, confidence, rng, BOOTSTRAP_MOST
                ),
            )
    timed = mine.seconds[~np.isnan(mine.seconds)]
    real_timed = theirs.seconds[~np.isnan(theirs.seconds)]
    if name != schema.REAL and len(timed) >= MIN_TIMES and len(real_timed) >= MIN_TIMES:
        for metric, of, bins in (("hour_of_day_js", hours, 24), ("day_of_week_js", weekdays, 7)):
            mine_bins, real_bins = of(timed), of(real_timed)

            def divergence(a, b, bins=bins):
                return js_divergence(_shares(a, bins), _shares(b, bins))

            add(
                metric,
                divergence(mine_bins, real_bins),
                len(timed),
                bootstrap_statistic_ci(
                    mine_bins, real_bins, divergence, samples, confidence, rng, BOOTSTRAP_MOST
                ),
            )
        gaps, real_gaps = inter_post_gaps(mine), inter_post_gaps(theirs)
        if len(gaps) and len(real_gaps):
            add(
                "inter_post_time_ks",
                ks_statistic(gaps, real_gaps),
                len(gaps),
                bootstrap_statistic_ci(
                    gaps, real_gaps, ks_statistic, samples, confidence, rng, BOOTSTRAP_MOST
                ),
            )
    _individual_rows(mine, add, samples, confidence, rng)
    if theirs.reply_to is not None:  # the real posts carry links: how many answer another
        replies = (
            np.zeros(len(mine.platform))
            if mine.reply_to is None
            else (mine.reply_to != None).astype(float)  # noqa: E711
        )
        add(
            "reply_share",
            replies.mean(),
            len(replies),
            bootstrap_mean_ci(replies, samples, confidence, rng),
        )
        depths = thread_depths(mine)
        if len(depths):
            add(
                "thread_depth",
                depths.mean(),
                len(depths),
                bootstrap_mean_ci(depths, samples, confidence, rng),
            )
    return rows


def _individual_rows(mine: Posts, add, samples, confidence, rng) -> None:
    """The set's accounts as individuals: their style heterogeneity and their burstiness."""
    if mine.style is not None:
        value, accounts, ci = account_style_heterogeneity(
            mine.author, mine.style, samples, confidence, rng
        )
        if not np.isnan(value):
            add("account_style_heterogeneity", value, accounts, ci)
    bursts = account_burstiness(mine)
    if len(bursts) >= MIN_ACCOUNTS:
        add(
            "burstiness",
            bursts.mean(),
            len(bursts),
            bootstrap_mean_ci(bursts, samples, confidence, rng),
        )


def _centred(value, values, statistic, samples, rng) -> tuple[float, float]:
    """value +- 1.96 standard deviations of `statistic` over bootstrap resamples of `values`."""
    if samples < 2 or len(values) < 2:
        return float("nan"), float("nan")
    drawn = [statistic(values[rng.integers(0, len(values), len(values))]) for _ in range(samples)]
    half = 1.959964 * float(np.std(drawn, ddof=1))
    return value - half, value + half


def bootstrap_one(values, statistic, samples, confidence, rng) -> tuple[float, float]:
    if samples == 0 or len(values) < 2:
        return float("nan"), float("nan")
    drawn = [statistic(values[rng.integers(0, len(values), len(values))]) for _ in range(samples)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(drawn, [tail, 100 - tail])
    return float(low), float(high)


def account_profiles(posts: Posts, topics: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each account (with its platform), its profile (topic shares beside hour-of-day shares) and
    its number of posts."""
    keep = posts.author != None  # noqa: E711
    key = np.char.add(
        posts.platform[keep].astype(str), np.char.add("\x1f", posts.author[keep].astype(str))
    )
    accounts, index, posted = np.unique(key, return_inverse=True, return_counts=True)
    topic_index = np.searchsorted(topics, posts.topic[keep])
    mix = np.zeros((len(accounts), len(topics)))
    np.add.at(mix, (index, topic_index), 1.0)
    hour = np.zeros((len(accounts), 24))
    seconds = posts.seconds[keep]
    timed = ~np.isnan(seconds)
    np.add.at(hour, (index[timed], (seconds[timed] // 3600 % 24).astype(int)), 1.0)
    for block in (mix, hour):
        totals = block.sum(axis=1, keepdims=True)
        np.divide(block, totals, out=block, where=totals > 0)
    return accounts, np.hstack([mix, hour]) / np.sqrt(2), posted


def account_linkage(
    synthetic: Posts, real: Posts, ratio: float, min_posts: int = 3
) -> tuple[float, int]:
    """The share of synthetic accounts (with at least `min_posts` posts) whose nearest real account
    on the same platform is closer than `ratio` times the second nearest (Euclidean distance of the
    profiles), and how many accounts were tested."""
    topics = np.union1d(np.unique(real.topic), np.unique(synthetic.topic))
    real_accounts, real_profiles, _ = account_profiles(real, topics)
    accounts, profiles, counts = account_profiles(synthetic, topics)
    real_platform = np.array([a.split("\x1f")[0] for a in real_accounts.tolist()], dtype=object)
    platform = np.array([a.split("\x1f")[0] for a in accounts.tolist()], dtype=object)
    linked = tested = 0
    for name in np.unique(platform).tolist():
        candidates = real_profiles[real_platform == name]
        mine = profiles[(platform == name) & (counts >= min_posts)]
        if len(candidates) < 2 or not len(mine):
            continue
        from sklearn.neighbors import NearestNeighbors

        distance, _ = NearestNeighbors(n_neighbors=2).fit(candidates).kneighbors(mine)
        tested += len(mine)
        linked += int((distance[:, 0] < ratio * distance[:, 1]).sum())
    return (linked / tested if tested else float("nan")), tested


STYLE = ("chars", "hashtags", "mentions", "urls", "emojis")  # the style an account is read by
MIN_ACCOUNT_POSTS = 3  # posts an account needs for its style to be read
MIN_GAPS = 3  # gaps between an account's posts its burstiness needs


def account_style_heterogeneity(
    author: np.ndarray, style: dict[str, np.ndarray], samples: int, confidence: float, rng
) -> tuple[float, int, tuple[float, float]]:
    """Per style feature, the standard deviation of the accounts' mean (accounts with at least
    MIN_ACCOUNT_POSTS posts) over the standard deviation of the posts; the mean over the features
    the posts vary in (0: every account writes alike; near 1: accounts differ as much as single
    posts). The value, the accounts read, and a bootstrap interval over accounts."""
    keep = author != None  # noqa: E711
    names, index, counts = np.unique(
        author[keep].astype(str), return_inverse=True, return_counts=True
    )
    read = np.flatnonzero(counts >= MIN_ACCOUNT_POSTS)
    if len(read) < MIN_ACCOUNTS:
        return float("nan"), len(read), (float("nan"), float("nan"))
    means, spreads = [], []
    for feature in STYLE:
        values = np.asarray(style[feature], dtype=float)[keep]
        spread = values.std()
        if spread > 0:
            means.append(np.bincount(index, values, len(names)) / counts)
            spreads.append(spread)
    if not means:
        return float("nan"), len(read), (float("nan"), float("nan"))
    table = np.array(means)[:, read]  # features x accounts read
    scale = np.array(spreads)[:, None]

    def statistic(accounts: np.ndarray) -> float:
        return float((table[:, accounts].std(axis=1, ddof=1)[:, None] / scale).mean())

    every = np.arange(len(read))
    return statistic(every), len(read), bootstrap_one(every, statistic, samples, confidence, rng)


def account_burstiness(posts: Posts) -> np.ndarray:
    """The burstiness of each account with at least MIN_GAPS gaps between timed posts."""
    keep = (posts.author != None) & ~np.isnan(posts.seconds)  # noqa: E711
    author = posts.author[keep].astype(str)
    seconds = posts.seconds[keep]
    order = np.lexsort((seconds, author))
    author, seconds = author[order], seconds[order]
    values = []
    starts = np.flatnonzero(np.r_[True, author[1:] != author[:-1]])
    for start, end in zip(starts, [*starts[1:], len(author)], strict=True):
        gaps = np.diff(seconds[start:end])
        if len(gaps) >= MIN_GAPS:
            mean, sd = gaps.mean(), gaps.std()
            if mean + sd > 0:
                values.append((sd - mean) / (sd + mean))
    return np.array(values)
