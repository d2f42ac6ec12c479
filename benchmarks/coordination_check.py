"""mpsynth's co-URL network against the coordination-network-toolkit's co-link network, on the
real IRA tweets: the same posts, the same URLs (mpsynth's extraction, handed to both), the same
time window; the account pairs each finds, and how their weights relate.

The toolkit (Graham et al., QUT Digital Media Research Centre; MIT) is in mpsynth's dev extra;
the posts reach it through mpsynth's export (`mpsynth export-coordination`'s CSV writer):

    .venv/bin/python benchmarks/coordination_check.py --toolkit .venv/bin/compute_networks \\
        --data ../shared/data --window 60
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from mpsynth.metrics.networks import Items, co_sharing_edges
from mpsynth.metrics.structure import epoch_seconds
from mpsynth.publish.coordination import write_toolkit_csv
from mpsynth.testing.corpus import real_posts

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toolkit", type=Path, required=True, help="its compute_networks command")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--window", type=int, default=60)
    args = parser.parse_args()
    posts = real_posts([args.data / "politics_twitter_ira.csv"])
    texts = posts.column("text").to_pylist()
    platforms = posts.column("platform").to_pylist()
    # accounts per platform, as the export names them (and mpsynth's graphs key them)
    authors = [
        f"{p}:{a}" for p, a in zip(platforms, posts.column("author").to_pylist(), strict=True)
    ]
    seconds = epoch_seconds(posts.column("timestamp"))
    urls = Items.of(texts, platforms).urls
    names = sorted(set(authors))
    code = {name: i for i, name in enumerate(names)}
    ours = co_sharing_edges(np.array([code[a] for a in authors]), seconds, urls, args.window)
    ours_pairs = {frozenset((names[a], names[b])): w for (a, b), w in ours.items()}

    with tempfile.TemporaryDirectory() as folder:
        # mpsynth's export (the posts that share a URL), as `mpsynth export-coordination` writes it
        write_toolkit_csv(posts, Path(folder) / "messages.csv")
        rows = Path(folder) / "messages-links.csv"
        database = Path(folder) / "toolkit.db"
        run = [str(args.toolkit), str(database)]
        subprocess.run(
            [*run, "preprocess", "--format", "csv", str(rows)], check=True, capture_output=True
        )
        subprocess.run(
            [
                *run,
                "compute",
                "co_link",
                "--time_window",
                str(args.window),
                "--min_edge_weight",
                "1",
            ],
            check=True,
            capture_output=True,
        )
        with sqlite3.connect(database) as db:  # its own table: user_1, user_2, weight
            body = db.execute("select user_1, user_2, weight from co_link_network").fetchall()
    theirs: dict[frozenset, int] = {}
    for user_1, user_2, weight in body:
        if user_1 != user_2:
            key = frozenset((user_1, user_2))
            theirs[key] = max(theirs.get(key, 0), int(weight))
    both = set(ours_pairs) & set(theirs)
    print(
        f"IRA tweets: {len(texts):,} posts, {sum(1 for u in urls if u):,} with a URL; window {args.window} s"
    )
    print(
        f"account pairs: mpsynth {len(ours_pairs):,}, toolkit {len(theirs):,}, both {len(both):,}"
    )
    print(f"only mpsynth: {sorted(map(sorted, set(ours_pairs) - set(theirs)))[:5]}")
    print(f"only toolkit: {sorted(map(sorted, set(theirs) - set(ours_pairs)))[:5]}")
    if both:
        a = np.array([ours_pairs[k] for k in both], float)
        b = np.array([theirs[k] for k in both], float)
        print(
            f"weights on shared pairs: mpsynth mean {a.mean():.2f}, toolkit mean {b.mean():.2f}, "
            f"Pearson r {np.corrcoef(a, b)[0, 1] if a.std() and b.std() else float('nan'):.3f}"
        )
        print(
            f"coordinated pairs (weight >= 2): mpsynth {int((a >= 2).sum())}, toolkit {int((b >= 2).sum())}"
        )


if __name__ == "__main__":
    main()
