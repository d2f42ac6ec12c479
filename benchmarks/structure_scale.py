"""The structure stage's interactions and the structure, interaction and network metrics at scale:
N real plus N synthetic posts with accounts and times, resampled from the real IRA tweets and
MEIU22 Reddit posts (both carry authors and timestamps; kinds, followers and votes as
configs/politics.yaml maps them). Timed per part, with peak memory (PSS of this process, sampled
twice a second).

The synthetic set is a second draw whose authors are renamed (a synthetic population of the same
shape), whose times are moved by up to 30 minutes, as the structure stage moves them, and whose
kinds and counts are dropped: the structure stage gives it kinds, adds reposts at the real share
and draws engagement (`mpsynth.stages.interactions`), so the synthetic set grows by its reposts.
Topic and persona labels are random (the cost does not depend on them).

    .venv/bin/python benchmarks/structure_scale.py --posts 1000000 --data ../shared/data
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mpsynth.config import IngestConfig, NetworksConfig
from mpsynth.core.schema import ENGAGEMENT
from mpsynth.metrics.interactions import interaction_metrics
from mpsynth.metrics.networks import Items, network_metrics
from mpsynth.metrics.structure import Posts, account_linkage, structure_metrics
from mpsynth.stages.ingest.normalise import ingest
from mpsynth.stages.interactions import add_reposts, draw_engagement, real_interactions, with_kinds
from mpsynth.testing.memory import MemoryTrace

REPO = Path(__file__).resolve().parents[1]
FILES = ("politics_twitter_ira.csv", "politics_reddit_meiu22.csv")
COLUMNS = {  # as configs/politics.yaml maps them
    FILES[0]: {"label": None, "post_kind": "post_type", "followers": "followers"},
    FILES[1]: {"label": None, "votes": "score", "thread_id": "url"},
}


def draw(real: pa.Table, n: int, seed: int, synthetic: bool) -> pa.Table:
    rng = np.random.default_rng(seed)
    table = real.take(pa.array(rng.integers(0, real.num_rows, n)))
    table = table.set_column(0, "id", pa.array([f"{seed}-{i}" for i in range(n)]))
    if synthetic:
        authors = pc.binary_join_element_wise("synthetic_", table.column("author"), "")
        seconds = table.column("timestamp").cast(pa.int64()).to_numpy(zero_copy_only=False)
        moved = seconds + rng.integers(-1800, 1801, n)
        table = table.set_column(table.schema.get_field_index("author"), "author", authors)
        table = table.set_column(
            table.schema.get_field_index("timestamp"),
            "timestamp",
            pa.array(moved, pa.int64()).cast(pa.timestamp("s", tz="UTC")),
        )
    return table


def real_posts(data: Path) -> pa.Table:
    """The IRA tweets and MEIU22 Reddit posts as ingest keeps them (configs/politics.yaml's
    mapping)."""
    paths = [data / name for name in FILES]
    if not all(p.is_file() for p in paths):
        raise SystemExit(f"needs {', '.join(FILES)} in {data} (--data DIR)")
    inputs = [{"path": str(p), "columns": COLUMNS[p.name]} for p in paths]
    return ingest(IngestConfig.model_validate({"inputs": inputs})).posts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    real = real_posts(args.data)
    config = NetworksConfig()
    timings: dict[str, float] = {}
    with MemoryTrace() as memory:
        started = time.perf_counter()
        tables = {
            "real": draw(real, args.posts, 1, False),
            "synthetic": draw(real, args.posts, 2, True),
        }
        rng = np.random.default_rng(0)
        timings["read"] = time.perf_counter() - started
        started = time.perf_counter()
        synthetic = tables["synthetic"].drop_columns(["post_kind", "quote_of", *ENGAGEMENT])
        n = synthetic.num_rows
        for name, values in (
            ("topic", pa.array(rng.integers(0, 60, n))),
            ("persona", pa.array(rng.integers(0, 20, n))),
            ("actor", synthetic.column("author")),
        ):
            synthetic = synthetic.append_column(name, values)
        found = real_interactions(
            tables["real"], rng.integers(0, 60, args.posts), rng.integers(0, 20, args.posts)
        )
        synthetic, added = add_reposts(with_kinds(synthetic, found), found, 1800.0, rng)
        tables["synthetic"], _ = draw_engagement(synthetic, found, rng)
        timings["interactions (structure stage: kinds, reposts, engagement)"] = (
            time.perf_counter() - started
        )
        started = time.perf_counter()
        sets = {}
        for name, table in tables.items():
            posts = Posts.of(table, rng.integers(0, 60, table.num_rows))
            sets[name] = posts
        timings["read"] += time.perf_counter() - started
        started = time.perf_counter()
        items = {
            name: Items.of(t.column("text"), t.column("platform")) for name, t in tables.items()
        }
        timings["extract items"] = time.perf_counter() - started
        started = time.perf_counter()
        rows = structure_metrics(sets, args.bootstrap, 0.95, 0)
        timings["structure metrics"] = time.perf_counter() - started
        started = time.perf_counter()
        rows += interaction_metrics(sets, args.bootstrap, 0.95, 0)
        timings["interaction metrics"] = time.perf_counter() - started
        started = time.perf_counter()
        share, tested = account_linkage(sets["synthetic"], sets["real"], config.linkage_ratio)
        timings["account linkage"] = time.perf_counter() - started
        started = time.perf_counter()
        networks = network_metrics(
            {n: (sets[n], items[n]) for n in sets},
            config.window_seconds,
            config.betweenness_pivots,
            0,
        )
        timings["networks"] = time.perf_counter() - started
    total = sum(timings.values())
    print(
        f"{args.posts:,} real + {args.posts:,} synthetic posts ({', '.join(FILES)} resampled); "
        f"reposts added: {added}"
    )
    print("| part | seconds | share |")
    print("|---|---|---|")
    for part, seconds in timings.items():
        print(f"| {part} | {seconds:.1f} | {seconds / total:.0%} |")
    print(f"| **all** | **{total:.1f}** | |")
    print(f"peak memory (PSS): {memory.peak() / 2**30:.2f} GiB")
    print(
        f"metric rows: {len(rows)} structure and interaction, {len(networks.rows)} network; "
        f"account linkage "
        f"{share:.3f} of {tested:,} accounts"
    )
    graph_rows = {(r["dataset"], r["platform"], r["metric"]): r["value"] for r in networks.rows}
    for key in sorted(graph_rows):
        if key[2].endswith(("_nodes", "_edges")) and key[1] == "all":
            print(f"  {key[0]:10s} {key[2]:28s} {graph_rows[key]:,.0f}")


if __name__ == "__main__":
    main()
