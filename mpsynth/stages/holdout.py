"""The held-out ceiling: before pools, the real posts are split into a reference and a holdout.

Every stage that shapes a synthetic set reads only the reference (`StageContext.reference`):
pools and so prompts, entity enrichment, calibration profiles, accounts, times and reply examples;
the copy filter alone still checks every real post. The holdout is a seeded sample stratified by
platform and topic, as large on each platform as a synthetic set is there (`generate.n_posts`
split over the platforms as the pools split it) up to `holdout.share` of the platform's posts. The
evaluation measures it against the reference exactly as it measures a synthetic set
(`real-holdout`): each metric's value for a second sample of real posts of the same size, which is
what a perfect generator would reach on this corpus, and the yardstick every synthetic value is
read against.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.config import CompositionConfig
from mpsynth.rundir.context import StageContext, write_table
from mpsynth.stages.pools import cell_targets, largest_remainder
from mpsynth.stages.topics import topic_of

log = logging.getLogger(__name__)


def holdout_sizes(
    platforms: list[str], n_posts: int, share: float, composition: CompositionConfig
) -> dict[str, int]:
    """Posts held out per platform: a synthetic set's posts there, at most `share` of its posts."""
    counts = Counter(platforms)
    wanted = cell_targets({(None, p): n for p, n in counts.items()}, n_posts, composition)
    return {p: min(wanted[(None, p)], int(share * n)) for p, n in sorted(counts.items())}


def draw_holdout(
    platforms: list[str], topics: list[int], sizes: dict[str, int], seed: int
) -> np.ndarray:
    """Which posts are held out: per platform, its size spread over the platform's topics in
    proportion to their posts (largest remainder), drawn at random within each topic."""
    rng = np.random.default_rng([seed, 5150])
    held = np.zeros(len(platforms), dtype=bool)
    platform, topic = np.array(platforms, dtype=object), np.array(topics)
    for name, size in sizes.items():
        rows = np.flatnonzero(platform == name)
        if size <= 0 or not len(rows):
            continue
        cells, members = np.unique(topic[rows], return_inverse=True)
        quotas = largest_remainder(np.bincount(members, minlength=len(cells)), size)
        for cell, quota in enumerate(quotas.tolist()):
            mine = rows[members == cell]
            held[rng.choice(mine, min(quota, len(mine)), replace=False)] = True
    return held


def run_holdout(ctx: StageContext, out: Path) -> dict[str, int]:
    posts = pq.read_table(ctx.path("ingest", "posts.parquet"))
    topics = topic_of(ctx.path("topics", "assignments"))
    platforms = posts.column("platform").to_pylist()
    config = ctx.config
    sizes = holdout_sizes(
        platforms, config.generate.n_posts, config.holdout.share, config.pools.composition
    )
    held = draw_holdout(
        platforms, [topics[i] for i in posts.column("id").to_pylist()], sizes, config.seed
    )
    summary = {"share": config.holdout.share, "held_out": sizes, "posts": len(platforms)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    rows = {"held_out": int(held.sum())}
    if held.any():
        mask = pa.array(held)
        rows["reference"] = write_table(posts.filter(pc.invert(mask)), out / "reference.parquet")
        write_table(posts.filter(mask), out / "holdout.parquet")
        log.info(
            "holdout: %s held out of the pools and measured as a set of their own (real-holdout)",
            ", ".join(f"{p} {n:,}" for p, n in sizes.items()),
        )
    else:
        log.info("holdout: none held out (holdout.share is 0, or the corpus is too small)")
    return rows
