"""The evaluation's structure and network families, on every post of every set (not the sample:
accounts, times and co-sharing are properties of the whole set), with the curves and the graph
drawings the report shows."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.config import RunConfig
from mpsynth.core import console, schema
from mpsynth.core.schema import ENGAGEMENT, LINK_FIELDS
from mpsynth.metrics.compare import metric_row
from mpsynth.metrics.interactions import interaction_metrics
from mpsynth.metrics.lexical import ITEM_KINDS
from mpsynth.metrics.networks import Items, network_metrics
from mpsynth.metrics.structure import (
    STYLE,
    Posts,
    account_linkage,
    hours,
    posts_per_account,
    structure_metrics,
)

log = logging.getLogger(__name__)

CURVE_POINTS = 40  # points of a posts-per-account curve


def read_posts(path: Path, topics: dict[str, int] | None = None) -> Posts:
    """A set's posts with whatever structure its file carries; `topics` (id -> topic) for the
    real posts, whose topics live in the topic stage."""
    names = pq.read_schema(path).names
    wanted = ["id", "platform", "topic", "author", "timestamp", *LINK_FIELDS, "post_kind", "text",
              *ENGAGEMENT]  # fmt: skip
    table = pq.read_table(path, columns=[c for c in wanted if c in names])
    if topics is None:
        return Posts.of(table)
    return Posts.of(table, np.array([topics.get(i, -1) for i in table.column("id").to_pylist()]))


def features_of(
    features: pa.Table, dataset: str, ids: np.ndarray
) -> tuple[Items, dict[str, np.ndarray]]:
    """A set's extracted items and its posts' style features (length, counts) from the features
    table, in the order of `ids`."""
    mine = features.filter(pc.equal(features.column("dataset"), dataset))
    position = {post_id: i for i, post_id in enumerate(mine.column("id").to_pylist())}
    order = pa.array([position[i] for i in ids.tolist()], pa.int64())
    found = {kind: mine.column(f"{kind}_found").take(order).to_pylist() for kind in ITEM_KINDS}
    style = {name: mine.column(name).take(order).to_numpy() for name in STYLE}
    return Items.found(found["hashtags"], found["mentions"], found["urls"]), style


def structure_tables(
    config: RunConfig, sources: dict[str, Path], topics: dict[str, int], features: pa.Table
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The structure and network metric rows, the curves (posts per account, hour of day) and the
    top of each set's cross-platform graph; `features` is the lexical pass's table, whose
    extracted hashtags, mentions and URLs the graphs use (nothing is extracted twice)."""
    evaluate = config.evaluate
    sets: dict[str, tuple[Posts, Items]] = {}
    # steps: reading each set, the structure metrics, the networks (a minute at a million posts):
    # the display says the work is alive through each
    with console.progress("evaluate: structure and networks", len(sources) + 2, "steps") as shown:
        for number, (name, path) in enumerate(sources.items()):
            posts = read_posts(path, topics if name == schema.REAL else None)
            found, posts.style = features_of(features, name, posts.ids)
            if posts.text is not None:  # once per set: the subsample and resamples take them
                found = found.with_texts(posts.text.tolist())
            sets[name] = (posts, found)
            shown.update(number + 1)
        posts_only = {name: posts for name, (posts, _) in sets.items()}
        rows = structure_metrics(
            posts_only, evaluate.bootstrap_samples, evaluate.confidence, config.seed
        )
        rows += _linkage_rows(posts_only, evaluate.networks.linkage_ratio)
        rows += interaction_metrics(
            posts_only, evaluate.bootstrap_samples, evaluate.confidence, config.seed
        )
        shown.update(advance=1)
        networks = network_metrics(
            {**sets, schema.REAL_SUBSAMPLE: _subsample(sets, config.seed)},
            evaluate.networks.window_seconds,
            evaluate.networks.betweenness_pivots,
            config.seed,
            resamples=evaluate.networks.bootstrap_samples,
            similarity=evaluate.networks.similarity,
        )
        shown.update(advance=1)
    metrics = pa.Table.from_pylist(rows + networks.rows, schema=schema.METRICS)
    drawings = pa.Table.from_pylist(networks.drawings, schema=DRAWING)
    return schema.nan_as_null(metrics, schema.METRIC_VALUES), curves(posts_only), drawings


def _linkage_rows(posts_of: dict[str, Posts], ratio: float) -> list[dict]:
    """An account_linkage row for each synthetic set that has accounts (metrics/structure.py says
    what it measures)."""
    real, rows = posts_of[schema.REAL], []
    for name, posts in posts_of.items():
        if name == schema.REAL or (posts.author == None).all():  # noqa: E711
            continue
        share, tested = account_linkage(posts, real, ratio)
        if tested:
            rows.append(
                metric_row("privacy", "account_linkage", name, schema.ALL_PLATFORMS, share, tested)
            )
    return rows


def _subsample(sets: dict[str, tuple[Posts, Items]], seed: int) -> tuple[Posts, Items]:
    """The real posts, per platform as many as the largest synthetic set has (seeded)."""
    real, items = sets[schema.REAL]
    rng = np.random.default_rng(seed)
    rows = []
    for platform in sorted(set(real.platform.tolist())):
        mine = np.flatnonzero(real.platform == platform)
        size = max(
            (
                int((posts.platform == platform).sum())
                for n, (posts, _) in sets.items()
                if n != schema.REAL
            ),
            default=len(mine),
        )
        rows.append(np.sort(rng.choice(mine, min(size, len(mine)), replace=False)))
    picked = np.concatenate(rows) if rows else np.array([], dtype=int)
    return real.subset(picked), items.take(picked.tolist())


DRAWING = pa.schema(
    [
        ("dataset", pa.string()),
        ("platform_a", pa.string()),
        ("item_a", pa.string()),
        ("platform_b", pa.string()),
        ("item_b", pa.string()),
        ("weight", pa.float64()),
        ("link", pa.bool_()),
    ]
)

CURVES = pa.schema(
    [
        ("dataset", pa.string()),
        ("platform", pa.string()),
        ("curve", pa.string()),
        ("point", pa.float64()),
        ("share", pa.float64()),
    ]
)


def curves(sets: dict[str, Posts]) -> pa.Table:
    """Per set and platform: the share of accounts writing at least x posts (log-spaced x), and
    the share of posts in each hour of the day."""
    rows = []
    for name, posts in sets.items():
        for platform in sorted(set(posts.platform.tolist())):
            mine = posts.subset(posts.platform == platform)
            counts = posts_per_account(mine)
            if len(counts):
                points = np.unique(np.geomspace(1, counts.max(), CURVE_POINTS).round())
                for x in points.tolist():
                    rows.append(
                        (name, platform, "posts_per_account", x, float((counts >= x).mean()))
                    )
            hour = hours(mine.seconds)
            if len(hour):
                shares = np.bincount(hour, minlength=24) / len(hour)
                rows += [(name, platform, "hour_of_day", h, float(s)) for h, s in enumerate(shares)]
    return pa.Table.from_pylist([dict(zip(CURVES.names, r, strict=True)) for r in rows], CURVES)
