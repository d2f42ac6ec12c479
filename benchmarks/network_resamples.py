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
    .venv/bin/python benchmarks/network_resamples.py --run /tmp/scale1m/run-1000000 --only-new

With --run, the sets are a run's (the reference, the holdout and the synthetic sets after the
structure stage, and the real subsample), as the evaluation reads them; --only-new adds each
part's calls and seconds.
"""

from __future__ import annotations

import argparse
import contextlib
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
from mpsynth.stages.evaluate.structure import _subsample, read_posts
from mpsynth.testing.memory import MemoryTrace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from structure_scale import REPO, draw, real_posts

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


def drawn_sets(data: Path, n: int) -> dict:
    real = real_posts(data)
    sets = {}
    for name, seed, synthetic in (("real", 1, False), ("synthetic", 2, True)):
        table = draw(real, n, seed, synthetic)
        posts = Posts.of(table, np.zeros(table.num_rows, dtype=int))
        items = Items.of(table.column("text").to_pylist(), table.column("platform").to_pylist())
        sets[name] = (posts, items.with_texts(table.column("text").to_pylist()))
    return sets


def run_sets(run: Path) -> dict:
    """A run's reference, holdout and synthetic sets (after structure) and the real subsample."""
    sources = {"real": run / "holdout" / "reference.parquet"}
    if (run / "holdout" / "holdout.parquet").is_file():
        sources["real_holdout"] = run / "holdout" / "holdout.parquet"
    sources.update((p.stem, p) for p in sorted((run / "structure" / "synthetic").glob("*.parquet")))
    sets = {}
    for name, path in sources.items():
        posts = read_posts(path)
        items = Items.of(posts.text.tolist(), posts.platform.tolist())
        sets[name] = (posts, items.with_texts(posts.text.tolist()))
    sets["real_subsample"] = _subsample(sets, 13)
    return sets


@contextlib.contextmanager
def timed_parts():
    """part -> [calls, seconds], the networks step's parts wrapped while inside."""
    parts: dict[str, list] = {}
    wrapped = {
        "co-sharing pairs": (networks, "sharing_pairs"),
        "co-similar pairs": (networks, "similar_pairs"),
        "reading items (co-occurrence)": (networks.CoOccurrence, "__init__"),
        "co-occurrence graphs weighed": (networks.CoOccurrence, "graph"),
        "account edges weighed": (networks.PostPairs, "edges"),
        "graph measures": (networks, "graph_metrics"),
        "of which betweenness": (networks, "sampled_betweenness"),
    }
    originals = {part: getattr(owner, name) for part, (owner, name) in wrapped.items()}

    def timing(part, function):
        def call(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                tally = parts.setdefault(part, [0, 0.0])
                tally[0] += 1
                tally[1] += time.perf_counter() - started

        return call

    for part, (owner, name) in wrapped.items():
        setattr(owner, name, timing(part, originals[part]))
    try:
        yield parts
    finally:
        for part, (owner, name) in wrapped.items():
            setattr(owner, name, originals[part])


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
    parser.add_argument(
        "--run",
        type=Path,
        help="a run directory through structure: its sets, as evaluate reads them",
    )
    args = parser.parse_args()
    sets = run_sets(args.run) if args.run else drawn_sets(args.data, args.posts)
    print(
        ", ".join(f"{name} {len(posts.platform):,}" for name, (posts, _) in sets.items())
        + f" posts; {args.resamples} resamples per set and platform but the real reference's"
    )
    betweenness(nx.path_graph(3), None, 0)  # numba compiles once per process (cached on disk)
    if args.only_new:
        with timed_parts() as parts:
            rows, seconds, memory = measured(sets, args.resamples, "as it is")
        print(f"networks step: {seconds:.1f} s, peak memory {memory / 2**20:.0f} MiB above start")
        print(f"{len(rows)} metric rows; the parts (calls, seconds):")
        for part, (calls, spent) in parts.items():
            print(f"  {part}: {calls:,}, {spent:.1f}")
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
