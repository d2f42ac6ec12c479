"""Pools: the few-shot example sets, one per generation request.

MPTM pools take every example from one topic, spread over the platforms that topic holds.
Per-platform pools (the baseline) take random examples of one platform, whatever their topic.

Composition (`pools.composition`, on by default): every cell, platform x topic for MPTM and platform
for per-platform sets, gets a target number of posts, the real posts' distribution scaled to
n_posts (or with the platforms' shares the config gives), and requests are drawn to meet the
targets: a topic's requests name as target platforms only those whose cell still wants posts, so a
platform holding 2% of a topic gets 2% of its posts, not an equal share. The same drawing serves
the deficit rounds after postprocessing (what the short cells lack). Without composition, requests
per topic follow its size and each names every platform the topic holds.

Entity enrichment (`pools.entity_enrichment`, `mpsynth.stages.enrichment`): after the usual draw,
examples are swapped within their topic and platform for posts naming an entity of one band.
Pure logic: tables in, a table out, every draw seeded.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.config import CompositionConfig, PoolsConfig
from mpsynth.core import schema
from mpsynth.core.errors import ConfigError, InputError
from mpsynth.rundir.context import StageContext, write_table
from mpsynth.stages.enrichment import Enrichment, enriched_share, find_enrichment
from mpsynth.stages.topics import OUTLIER

log = logging.getLogger(__name__)


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Split `total` into integers proportional to `weights` (Hamilton's method; sums to total)."""
    weights = np.asarray(weights, dtype=np.float64)
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    quotas = weights / weights.sum() * total
    counts = np.floor(quotas).astype(np.int64)
    remainder = total - counts.sum()
    order = np.lexsort((np.arange(len(weights)), -(quotas - counts)))
    counts[order[:remainder]] += 1
    return counts


def spread_examples(available: dict[str, int], k: int) -> dict[str, int]:
    """How many of k examples each platform gives: as even as possible, capped by what it holds,
    so every platform with a post gets at least one when k allows."""
    share = dict.fromkeys(available, 0)
    remaining = min(k, sum(available.values()))
    while remaining > 0:
        open_platforms = [p for p in sorted(available) if share[p] < available[p]]
        # the platforms with the fewest examples so far go first; ties by platform size
        open_platforms.sort(key=lambda p: (share[p], -available[p], p))
        for platform in open_platforms[:remaining]:
            share[platform] += 1
            remaining -= 1
    return {p: n for p, n in share.items() if n}


Cell = tuple[int | None, str]  # (topic, platform); topic None in per-platform sets
TARGETS = pa.schema(
    [
        pa.field("strategy", pa.string(), nullable=False),
        pa.field("topic", pa.int64()),
        pa.field("platform", pa.string(), nullable=False),
        pa.field("target", pa.int64(), nullable=False),
        pa.field("real", pa.int64(), nullable=False),  # real posts in the cell
    ]
)


@dataclass
class RealCells:
    """The real posts' ids by topic and platform (outliers left out unless asked for)."""

    members: dict[int, dict[str, list[str]]]
    by_platform: dict[str, list[str]]

    @classmethod
    def build(cls, posts: pa.Table, assignments: pa.Table, include_outliers: bool) -> RealCells:
        ids = posts.column("id").to_pylist()
        platforms = posts.column("platform").to_pylist()
        topic_of = dict(
            zip(
                assignments.column("id").to_pylist(),
                assignments.column("topic").to_pylist(),
                strict=True,
            )
        )
        topics = [topic_of.get(post_id) for post_id in ids]
        if any(topic is None for topic in topics):
            raise InputError("topic assignments do not cover every post: re-run the topics stage")
        members: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        by_platform: dict[str, list[str]] = defaultdict(list)
        for post_id, platform, topic in zip(ids, platforms, topics, strict=True):
            by_platform[platform].append(post_id)
            if topic != OUTLIER or include_outliers:
                members[topic][platform].append(post_id)
        return cls(members, by_platform)

    def counts(self, strategy: str) -> dict[Cell, int]:
        if strategy == "mptm":
            return {
                (topic, platform): len(ids)
                for topic, platforms in sorted(self.members.items())
                for platform, ids in sorted(platforms.items())
            }
        return {(None, p): len(ids) for p, ids in sorted(self.by_platform.items())}


def cell_targets(real: dict[Cell, int], n_posts: int, config: CompositionConfig) -> dict[Cell, int]:
    """Posts wanted per cell: n_posts split over the cells in proportion to the real posts, with
    each platform's total share set by `config.platforms` (real, equal, or given weights)."""
    totals: Counter[str] = Counter()
    for (_, platform), n in real.items():
        totals[platform] += n
    match config.platforms:
        case "real":
            shares = {p: float(n) for p, n in totals.items()}
        case "equal":
            shares = dict.fromkeys(totals, 1.0)
        case dict() as given:
            unknown = sorted(set(given) - set(totals))
            if unknown:
                raise ConfigError(
                    f"pools.composition.platforms names {', '.join(unknown)}, which the real "
                    f"posts lack (they hold {', '.join(sorted(totals))})"
                )
            shares = {p: float(given.get(p, 0.0)) for p in totals}
    if sum(shares.values()) <= 0:
        raise ConfigError("pools.composition.platforms: every platform's weight is 0")
    cells = list(real)
    weights = np.array([shares[p] * real[(t, p)] / totals[p] for t, p in cells])
    return dict(zip(cells, largest_remainder(weights, n_posts).tolist(), strict=True))


def targets_table(strategy: str, real: dict[Cell, int], targets: dict[Cell, int]) -> pa.Table:
    cells = list(targets)
    return pa.table(
        {
            "strategy": [strategy] * len(cells),
            "topic": [t for t, _ in cells],
            "platform": [p for _, p in cells],
            "target": [targets[c] for c in cells],
            "real": [real.get(c, 0) for c in cells],
        },
        schema=TARGETS,
    )


def draws_for_cells(
    cells: RealCells,
    strategy: str,
    wanted: dict[Cell, int],
    examples_per_prompt: int,
    posts_per_platform: int,
    rng: np.random.Generator,
    enrich: Enrichment | None = None,
) -> list[tuple[int | None, list[str], list[str]]]:
    """(topic, target platforms, example ids) per request, so that the requests ask for at least
    `wanted` posts in every cell (at most posts_per_platform - 1 more)."""
    draws = []
    if strategy == "mptm":
        for topic in sorted({t for t, _ in wanted if t is not None}):
            remaining = {p: n for (t, p), n in wanted.items() if t == topic and n > 0}
            by_platform = cells.members[topic]
            while remaining:
                targets = sorted(remaining)
                draws.append(
                    (topic, targets, _topic_examples(by_platform, examples_per_prompt, rng, enrich))
                )
                remaining = {p: n - posts_per_platform for p, n in remaining.items()}
                remaining = {p: n for p, n in remaining.items() if n > 0}
        return draws
    for (_, platform), n in sorted(wanted.items(), key=lambda item: item[0][1]):
        pool = cells.by_platform[platform]
        k = min(examples_per_prompt, len(pool))
        for _ in range(-(-n // posts_per_platform)):
            draws.append((None, [platform], _platform_examples(pool, k, rng, enrich)))
    return draws


def _platform_examples(
    pool: list[str], k: int, rng: np.random.Generator, enrich: Enrichment | None
) -> list[str]:
    chosen = rng.choice(len(pool), k, replace=False)
    examples = [pool[i] for i in sorted(chosen)]
    return enrich.apply(examples, pool, rng) if enrich is not None else examples


def _topic_examples(
    by_platform: dict[str, list[str]],
    k: int,
    rng: np.random.Generator,
    enrich: Enrichment | None = None,
) -> list[str]:
    spread = spread_examples({p: len(ids) for p, ids in by_platform.items()}, k)
    examples = []
    for platform in sorted(by_platform):
        chosen = rng.choice(len(by_platform[platform]), spread.get(platform, 0), replace=False)
        mine = [by_platform[platform][i] for i in sorted(chosen)]
        if enrich is not None and mine:  # swapped within the platform: the spread stays
            mine = enrich.apply(mine, by_platform[platform], rng)
        examples.extend(mine)
    return examples


def pools_table(
    draws_by_strategy: dict[str, list], rngs: dict[str, np.random.Generator], prefix: str = ""
) -> pa.Table:
    """The pools of each strategy's draws, every request's seed from the strategy's generator."""
    rows: dict[str, list] = {name: [] for name in schema.SAMPLE_POOLS.names}
    for strategy, draws in draws_by_strategy.items():
        rng = rngs[strategy]
        for number, (topic, targets, examples) in enumerate(draws):
            rows["pool_id"].append(f"{strategy}-{prefix}{number:06d}")
            rows["strategy"].append(strategy)
            rows["topic"].append(topic)
            rows["target_platforms"].append(targets)
            rows["example_ids"].append(examples)
            rows["seed"].append(int(rng.integers(0, 2**31 - 1)))
            rows["label"].append(None)
            rows["cues"].append([])
    return pa.Table.from_pydict(rows, schema=schema.SAMPLE_POOLS)


def build_pools(
    posts: pa.Table,
    assignments: pa.Table,
    config: PoolsConfig,
    n_posts: int,
    posts_per_platform: int,
    seed: int,
    enrich: Enrichment | None = None,
) -> tuple[pa.Table, pa.Table]:
    """(pools: one row per generation request, for every configured strategy; targets: posts
    wanted per cell, empty without composition). `enrich`: the entity enrichment, if any."""
    cells = RealCells.build(posts, assignments, config.include_outliers)
    if "mptm" in config.strategies and not cells.members:
        raise InputError("no topics to draw MPTM pools from (every post is an outlier)")
    draws, rngs, targets = {}, {}, []
    for index, strategy in enumerate(config.strategies):
        rng = rngs[strategy] = np.random.default_rng([seed, index])
        if config.composition.enabled:
            real = cells.counts(strategy)
            wanted = cell_targets(real, n_posts, config.composition)
            targets.append(targets_table(strategy, real, wanted))
            draws[strategy] = draws_for_cells(
                cells, strategy, wanted, config.examples_per_prompt, posts_per_platform, rng, enrich
            )
        elif strategy == "mptm":
            draws[strategy] = _mptm_pools(cells, config, n_posts, posts_per_platform, rng, enrich)
        else:
            draws[strategy] = _per_platform_pools(
                cells, config, n_posts, posts_per_platform, rng, enrich
            )
    return (
        pools_table(draws, rngs),
        pa.concat_tables(targets) if targets else TARGETS.empty_table(),
    )


def _mptm_pools(cells: RealCells, config, n_posts, posts_per_platform, rng, enrich=None):
    members = cells.members
    topic_ids = sorted(members)
    sizes = np.array([sum(len(v) for v in members[t].values()) for t in topic_ids], dtype=float)
    # a request yields posts_per_platform posts for each platform the topic holds
    per_request = np.array([posts_per_platform * len(members[t]) for t in topic_ids], dtype=float)
    wanted = sizes / sizes.sum() * n_posts / per_request
    requests = largest_remainder(wanted, max(1, round(wanted.sum())))
    return [
        (
            topic,
            sorted(members[topic]),
            _topic_examples(members[topic], config.examples_per_prompt, rng, enrich),
        )
        for topic, count in zip(topic_ids, requests, strict=True)
        for _ in range(count)
    ]


def _per_platform_pools(cells: RealCells, config, n_posts, posts_per_platform, rng, enrich=None):
    by_platform = cells.by_platform
    names = sorted(by_platform)
    total_requests = max(1, round(n_posts / posts_per_platform))
    requests = largest_remainder(np.array([len(by_platform[p]) for p in names]), total_requests)
    draws = []
    for platform, count in zip(names, requests, strict=True):
        pool = by_platform[platform]
        k = min(config.examples_per_prompt, len(pool))
        for _ in range(count):
            draws.append((None, [platform], _platform_examples(pool, k, rng, enrich)))
    return draws


def run_pools(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.pools import build_pools

    enrich = find_enrichment(ctx, out) if ctx.config.pools.entity_enrichment else None
    pools, targets = build_pools(
        pq.read_table(ctx.reference(), columns=["id", "platform"]),
        pq.read_table(ctx.path("topics", "assignments")),
        ctx.config.pools,
        ctx.config.generate.n_posts,
        ctx.config.prompts.posts_per_platform,
        ctx.config.draw_seed,
        enrich,
    )
    rows = {
        "pools": write_table(pools, out / "pools.parquet"),
        "cells": write_table(targets, out / "targets.parquet"),
    }
    if enrich is not None:
        share = enriched_share(pools, enrich)
        log.info("pools: %.0f%% of pools hold the enrichment share of band posts", 100 * share)
        rows["enriched_pools_percent"] = round(100 * share)
    return rows
