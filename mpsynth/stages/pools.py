"""Pools: the few-shot example sets, one per generation request.

MPTM pools take every example from one topic, spread over the platforms that topic holds, and the
number of pools per topic follows the topic's real size, so the synthetic topic mix mirrors the real
one. Per-platform pools (the baseline) take random examples of one platform, whatever their topic.
Pure logic: tables in, a table out, every draw seeded.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa

from mpsynth import schema
from mpsynth.config import PoolsConfig
from mpsynth.errors import InputError
from mpsynth.stages.topics import OUTLIER


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


def build_pools(
    posts: pa.Table,
    assignments: pa.Table,
    config: PoolsConfig,
    n_posts: int,
    posts_per_platform: int,
    seed: int,
) -> pa.Table:
    """One row per generation request, for every configured strategy."""
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
    rows: dict[str, list] = {name: [] for name in schema.SAMPLE_POOLS.names}
    for index, strategy in enumerate(config.strategies):
        rng = np.random.default_rng([seed, index])
        match strategy:
            case "mptm":
                draws = _mptm_pools(
                    ids, platforms, topics, config, n_posts, posts_per_platform, rng
                )
            case "per_platform":
                draws = _per_platform_pools(
                    ids, platforms, config, n_posts, posts_per_platform, rng
                )
        for number, (topic, targets, examples) in enumerate(draws):
            rows["pool_id"].append(f"{strategy}-{number:06d}")
            rows["strategy"].append(strategy)
            rows["topic"].append(topic)
            rows["target_platforms"].append(targets)
            rows["example_ids"].append(examples)
            rows["seed"].append(int(rng.integers(0, 2**31 - 1)))
            rows["label"].append(None)
            rows["cues"].append([])
    return pa.Table.from_pydict(rows, schema=schema.SAMPLE_POOLS)


def _mptm_pools(ids, platforms, topics, config, n_posts, posts_per_platform, rng):
    members: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for post_id, platform, topic in zip(ids, platforms, topics, strict=True):
        if topic != OUTLIER or config.include_outliers:
            members[topic][platform].append(post_id)
    if not members:
        raise InputError("no topics to draw MPTM pools from (every post is an outlier)")
    topic_ids = sorted(members)
    sizes = np.array([sum(len(v) for v in members[t].values()) for t in topic_ids], dtype=float)
    # a request yields posts_per_platform posts for each platform the topic holds
    per_request = np.array([posts_per_platform * len(members[t]) for t in topic_ids], dtype=float)
    wanted = sizes / sizes.sum() * n_posts / per_request
    requests = largest_remainder(wanted, max(1, round(wanted.sum())))
    draws = []
    for topic, count in zip(topic_ids, requests, strict=True):
        by_platform = members[topic]
        targets = sorted(by_platform)
        for _ in range(count):
            spread = spread_examples(
                {p: len(by_platform[p]) for p in targets}, config.examples_per_prompt
            )
            examples = []
            for platform in targets:
                chosen = rng.choice(
                    len(by_platform[platform]), spread.get(platform, 0), replace=False
                )
                examples.extend(by_platform[platform][i] for i in sorted(chosen))
            draws.append((topic, targets, examples))
    return draws


def _per_platform_pools(ids, platforms, config, n_posts, posts_per_platform, rng):
    by_platform: dict[str, list[str]] = defaultdict(list)
    for post_id, platform in zip(ids, platforms, strict=True):
        by_platform[platform].append(post_id)
    names = sorted(by_platform)
    total_requests = max(1, round(n_posts / posts_per_platform))
    requests = largest_remainder(np.array([len(by_platform[p]) for p in names]), total_requests)
    draws = []
    for platform, count in zip(names, requests, strict=True):
        pool = by_platform[platform]
        k = min(config.examples_per_prompt, len(pool))
        for _ in range(count):
            chosen = rng.choice(len(pool), k, replace=False)
            draws.append((None, [platform], [pool[i] for i in sorted(chosen)]))
    return draws


def build_class_pools(
    labels: pa.Table,
    platforms: dict[str, str],
    cues: pa.Table,
    strategies: list[str],
    targets: dict[str, int],
    examples_per_prompt: int,
    posts_per_request: int,
    prompt_cues: int,
    seed: int,
) -> pa.Table:
    """Pools of a labelled run, one row per request, from the seed posts only.

    Per class, `targets[class]` posts (rounded up to whole requests) for every strategy, spread
    over the platforms in proportion to the class's seed posts. shap_guided pools show examples of
    the class (of the request's platform first) and its top cue words; naive pools show nothing but
    the class name.
    """
    seed_rows = [r for r in labels.to_pylist() if r["split"] == "seed"]
    members: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in seed_rows:
        members[row["label"]][platforms[row["id"]]].append(row["id"])
    cue_words: dict[str, list[str]] = defaultdict(list)
    for row in sorted(cues.to_pylist(), key=lambda r: (r["label"], r["rank"])):
        if len(cue_words[row["label"]]) < prompt_cues:
            cue_words[row["label"]].append(row["word"])
    rows: dict[str, list] = {name: [] for name in schema.SAMPLE_POOLS.names}
    for index, strategy in enumerate(strategies):
        rng = np.random.default_rng([seed, 100 + index])
        number = 0
        for label in sorted(targets):
            by_platform = members.get(label)
            if not by_platform:
                raise InputError(f"class {label!r} has no seed posts to build pools from")
            names = sorted(by_platform)
            requests = -(-targets[label] // posts_per_request)
            per_platform = largest_remainder(
                np.array([len(by_platform[p]) for p in names]), requests
            )
            for platform, count in zip(names, per_platform, strict=True):
                for _ in range(count):
                    examples, shown_cues = [], []
                    if strategy == "shap_guided":
                        examples = _class_examples(by_platform, platform, examples_per_prompt, rng)
                        shown_cues = cue_words.get(label, [])
                    rows["pool_id"].append(f"{strategy}-{number:06d}")
                    rows["strategy"].append(strategy)
                    rows["topic"].append(None)
                    rows["target_platforms"].append([platform])
                    rows["example_ids"].append(examples)
                    rows["seed"].append(int(rng.integers(0, 2**31 - 1)))
                    rows["label"].append(label)
                    rows["cues"].append(shown_cues)
                    number += 1
    return pa.Table.from_pydict(rows, schema=schema.SAMPLE_POOLS)


def _class_examples(
    by_platform: dict[str, list[str]], platform: str, k: int, rng: np.random.Generator
) -> list[str]:
    """k seed posts of the class: the request's platform first, other platforms to fill up."""
    own = by_platform[platform]
    chosen = [own[i] for i in sorted(rng.choice(len(own), min(k, len(own)), replace=False))]
    if len(chosen) < k:
        others = [i for p in sorted(by_platform) if p != platform for i in by_platform[p]]
        extra = rng.choice(len(others), min(k - len(chosen), len(others)), replace=False)
        chosen.extend(others[i] for i in sorted(extra))
    return chosen
