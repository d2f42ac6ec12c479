"""The evaluation's networks step with its resampled intervals, as it is against as it was, on the
same posts in one run: the seconds of each, their ratios, and that all give the same metric rows.

- as it was: every platform's posts and every resample's (copies included) taken and their
  graphs built again, pairs found and items read each time; networkx's betweenness.
- weighed: each set's pairs of posts found and its items read once (`SetGraphs`); every
  platform's graphs and every resample's weighed from them; networkx's betweenness.
- as it is: weighed, and the betweenness compiled (`mpsynth.metrics.paths`).

The posts: N real plus N synthetic posts resampled from the real IRA tweets and MEIU22 Reddit
posts, the synthetic authors renamed and times moved by up to 30 minutes
(`benchmarks/structure_scale.py` draws them), with their texts, so co_tweet and co_similar_tweet
are measured as the evaluation measures them. Peak memory (with --only-new): this process's PSS
above its level before the networks step, sampled twice a second.

    .venv/bin/python benchmarks/network_resamples.py --posts 100000 --data ../shared/data
    .venv/bin/python benchmarks/network_resamples.py --posts 1000000 --only-new --data ../shared/data
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np

import mpsynth.metrics.networks as networks
from mpsynth.config import NetworksConfig
from mpsynth.metrics.networks import Items, SetGraphs, network_metrics
from mpsynth.metrics.paths import betweenness
from mpsynth.metrics.structure import Posts
from mpsynth.testing.memory import MemoryTrace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from structure_scale import FILES, REPO, draw, real_posts

MODES = ("as it was", "weighed", "as it is")


class Rebuilt(SetGraphs):
    """As it was: a platform's or a resample's graphs built again from its posts."""

    def __init__(self, posts: Posts, items: Items, rules: networks.Rules):
        if posts.text is not None and items.tweets is None:  # once per set, as it was too
            items = items.with_texts(posts.text.tolist())
        self.posts, self.items, self.rules = posts, items, rules

    def of(self, keep, counts, platform):
        rows = np.repeat(np.arange(len(keep)), keep * (1 if counts is None else counts))
        again = SetGraphs(self.posts.subset(rows), self.items.take(rows.tolist()), self.rules)
        return again.of(np.ones(len(rows), bool), None, platform)


def networkx_betweenness(graph, pivots: int, seed: int) -> np.ndarray:
    k = pivots if graph.number_of_nodes() > pivots else None
    return np.array(list(nx.betweenness_centrality(graph, k=k, seed=seed).values()))


def measured(sets: dict, resamples: int, mode: str) -> tuple[list[dict], float, int]:
    """The network rows, the seconds and the peak memory above the start."""
    config = NetworksConfig()
    gc.collect()
    with MemoryTrace() as memory:
        base = MemoryTrace.sample()
        started = time.perf_counter()
        networks.SetGraphs = Rebuilt if mode == "as it was" else SetGraphs
        if mode != "as it is":
            networks.sampled_betweenness = networkx_betweenness
        try:
            rows = network_metrics(
                sets,
                config.window_seconds,
                config.betweenness_pivots,
                0,
                resamples=resamples,
                similarity=config.similarity,
            ).rows
        finally:
            networks.SetGraphs, networks.sampled_betweenness = SetGraphs, betweenness
        seconds = time.perf_counter() - started
    return rows, seconds, memory.peak() - base


def same(a: list[dict], b: list[dict]) -> bool:
    def key(row: dict) -> tuple:
        return tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in row.values())

    return sorted(map(key, a)) == sorted(map(key, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument(
        "--resamples", type=int, default=NetworksConfig().bootstrap_samples, help="per set"
    )
    parser.add_argument("--only-new", action="store_true", help="as it is only (large sizes)")
    args = parser.parse_args()
    real = real_posts(args.data)
    sets = {}
    for name, seed, synthetic in (("real", 1, False), ("synthetic", 2, True)):
        table = draw(real, args.posts, seed, synthetic)
        posts = Posts.of(table, np.zeros(table.num_rows, dtype=int))
        items = Items.of(table.column("text").to_pylist(), table.column("platform").to_pylist())
        sets[name] = (posts, items.with_texts(table.column("text").to_pylist()))
    print(
        f"{args.posts:,} real + {args.posts:,} synthetic posts ({', '.join(FILES)} resampled), "
        f"{args.resamples} resamples of the synthetic set per platform"
    )
    betweenness(nx.path_graph(3), None, 0)  # numba compiles once per process (cached on disk)
    if args.only_new:
        rows, seconds, memory = measured(sets, args.resamples, "as it is")
        print(f"networks step: {seconds:.1f} s, peak memory {memory / 2**20:.0f} MiB above start")
        print(f"{len(rows)} metric rows")
        return
    found = {mode: measured(sets, args.resamples, mode) for mode in MODES}
    before = found["as it was"][1]
    print("| networks step | seconds | as it was / this |")
    print("|---|---|---|")
    for mode, (_, seconds, _) in found.items():
        print(f"| {mode} | {seconds:.1f} | {before / seconds:.2f}x |")
    rows = [rows for rows, _, _ in found.values()]
    print(
        f"the same {len(rows[0])} metric rows in all three, intervals included: "
        f"{all(same(rows[0], other) for other in rows[1:])}"
    )


if __name__ == "__main__":
    main()
