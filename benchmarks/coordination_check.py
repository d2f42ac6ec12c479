"""mpsynth's five coordination networks against the coordination-network-toolkit's, on the real IRA
tweets: the same posts (kinds from `post_type`), through mpsynth's export (`mpsynth
export-coordination`'s CSV writer), the same time window; per network the account pairs each
finds, those only one finds, and whether the weights agree.

The IRA release names no retweeted or replied-to tweet: a retweet is keyed by its text (its
repost_id in the export), and co-reply has nothing to find unless `--handle-replies` makes replies
from what the tweets show (one opening with @handle answers one post of that handle; a
construction, said so in the output).

The toolkit (Graham et al., QUT Digital Media Research Centre; MIT) is in mpsynth's dev extra:

    .venv/bin/python benchmarks/coordination_check.py --data ../shared/data --window 60
    .venv/bin/python benchmarks/coordination_check.py --data ../shared/data --window 3600 \\
        --handle-replies
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from mpsynth.config import IngestConfig
from mpsynth.metrics.coordination import SIMILARITY
from mpsynth.metrics.networks import Items, Rules, coordination_graphs
from mpsynth.metrics.structure import Posts
from mpsynth.publish.coordination import TOOLKIT_NETWORKS, write_toolkit_csv
from mpsynth.stages.ingest.normalise import ingest

REPO = Path(__file__).resolve().parents[1]


def _toolkit(database: Path, *args: str) -> None:
    command = [sys.executable, "-m", "coordination_network_toolkit", str(database), *args]
    subprocess.run(command, check=True, capture_output=True)


def _pairs(rows) -> dict[frozenset, int]:
    found: dict[frozenset, int] = {}
    for user_1, user_2, weight in rows:
        if user_1 != user_2:  # the toolkit lists both directions and each account with itself
            key = frozenset((user_1, user_2))
            found[key] = max(found.get(key, 0), int(weight))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--window", type=int, default=60)
    parser.add_argument("--similarity", type=float, default=SIMILARITY)
    parser.add_argument("--handle-replies", action="store_true")
    args = parser.parse_args()
    columns = {"label": None, "post_kind": "post_type", "followers": "followers"}
    path = args.data / "politics_twitter_ira.csv"
    posts = ingest(
        IngestConfig.model_validate({"inputs": [{"path": str(path), "columns": columns}]})
    ).posts
    if args.handle_replies:
        opening = [re.match(r"'?@(\w+)", t) for t in posts["text"].to_pylist()]
        made = [f"post-of-{m.group(1).lower()}" if m else None for m in opening]
        posts = posts.set_column(
            posts.column_names.index("reply_to"), "reply_to", pa.array(made, pa.string())
        )
    started = time.perf_counter()
    graphs = coordination_graphs(
        Posts.of(posts),
        Items.of(posts["text"].to_pylist(), posts["platform"].to_pylist()),
        Rules(args.window, args.similarity),
    )
    ours_s = time.perf_counter() - started
    kinds = posts["post_kind"].value_counts().to_pylist()
    print(
        f"IRA tweets: {posts.num_rows:,} posts ("
        + ", ".join(f"{k['values']} {k['counts']:,}" for k in kinds)
        + f"); window {args.window} s; co_similar_tweet Jaccard >= {args.similarity}"
        + ("; replies made from opening @handles" if args.handle_replies else "")
    )
    print(f"mpsynth's five graphs in {ours_s:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        write_toolkit_csv(posts, Path(folder) / "ira.csv")
        print(
            f"{'network':<18}{'mpsynth':>9}{'toolkit':>9}{'both':>7}{'only one':>10}"
            f"{'same weights':>14}{'coordinated':>13}{'toolkit s':>11}"
        )
        for network, (ours_name, suffix) in TOOLKIT_NETWORKS.items():
            database = Path(folder) / f"toolkit{suffix}.db"
            if not database.exists():
                _toolkit(database, "preprocess", "--format", "csv", f"{folder}/ira{suffix}.csv")
            started = time.perf_counter()
            _toolkit(database, "compute", network, "--time_window", str(args.window),
                     "--min_edge_weight", "1", "--similarity_threshold", str(args.similarity))  # fmt: skip
            took = time.perf_counter() - started
            with sqlite3.connect(database) as db:
                theirs = _pairs(db.execute(f"select user_1, user_2, weight from {network}_network"))
            graph = graphs.get(ours_name)  # co_reply: only where posts answer others
            ours = {
                frozenset(n.replace("\x1f", ":") for n in (a, b)): w
                for a, b, w in ([] if graph is None else graph.edges(data="weight"))
            }
            both = set(ours) & set(theirs)
            same = sum(ours[k] == theirs[k] for k in both)
            coordinated = sum(w >= 2 for w in ours.values())
            print(
                f"{network:<18}{len(ours):>9,}{len(theirs):>9,}{len(both):>7,}"
                f"{len(set(ours) ^ set(theirs)):>10,}{same:>9,}/{len(both):<4,}"
                f"{coordinated:>13,}{took:>11.1f}"
            )


if __name__ == "__main__":
    main()
