"""Lexical features (twitter-text's rules, UTS #51 emojis) on real posts resampled to N: the
vectorised batch path in one process and over every core, against the same rules called post by
post, and against the raw cost of one compiled regex pass over the same text. Then the agreement
check: on every post of the real files, the counts equal the number of values the set path finds,
and a batch gives each post what the post alone gives.

    .venv/bin/python benchmarks/lexical_features.py --posts 200000
    .venv/bin/python benchmarks/lexical_features.py --data DIR   # CSV files with a text column

Real data: ../shared/data's political files and the demo posts, or the bundled samples.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa

from mpsynth.metrics.extraction import KINDS, entities, extract
from mpsynth.metrics.lexical import emojis_in, lexical_features

REPO = Path(__file__).resolve().parents[1]
FILES = ("politics_twitter_ira.csv", "politics_reddit_meiu22.csv", "demo_posts.csv")
BATCH = 65_536
TEXTS: list[str] = []  # the workers' copy (inherited on fork)


def real_posts(data: Path) -> dict[str, tuple[list[str], list[str]]]:
    """file name -> (texts, platforms)."""
    paths = [data / name for name in FILES if (data / name).is_file()]
    if not paths:
        print(f"no real files in {data}: using the bundled samples")
        paths = [
            REPO / "data" / "demo" / "posts.csv",
            *sorted((REPO / "tests" / "data").glob("*.csv")),
        ]
    out = {}
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        out[path.name] = ([r["text"] for r in rows], [r.get("platform") or "" for r in rows])
    return out


def batched(texts: list[str]) -> None:
    for start in range(0, len(texts), BATCH):
        lexical_features(pa.array(texts[start : start + BATCH]))


def _worker(bounds: tuple[int, int]) -> int:
    batched(TEXTS[bounds[0] : bounds[1]])
    return bounds[1] - bounds[0]


def per_post(texts: list[str]) -> None:
    for text in texts:
        entities(text)
        emojis_in(text)
        len(text.split())


def raw_pass(texts: list[str]) -> int:
    """One compiled pattern over the joined text: the floor for any regex-based counting."""
    return len(re.findall(r"[#@$]\w+|https?://\S+", "\n".join(texts)))


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def main() -> None:
    global TEXTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--loop-posts", type=int, default=20_000, help="posts timed post by post")
    args = parser.parse_args()
    files = real_posts(args.data)
    pool = [t for texts, _ in files.values() for t in texts]
    rng = np.random.default_rng(0)
    TEXTS = [pool[i] for i in rng.integers(0, len(pool), args.posts)]
    cores = os.cpu_count() or 1
    print(f"posts: {args.posts:,} resampled from {len(pool):,} real posts ({', '.join(files)})")

    batched(TEXTS[:2_000])  # compile the rules first, as the workers below are warmed
    one = timed(batched, TEXTS)
    chunk = -(-len(TEXTS) // cores)
    bounds = [(i, min(len(TEXTS), i + chunk)) for i in range(0, len(TEXTS), chunk)]
    with ProcessPoolExecutor(cores) as executor:
        list(executor.map(_worker, bounds[:cores]))  # warm the workers (imports, compiled rules)
        started = time.perf_counter()
        list(executor.map(_worker, bounds))
        many = time.perf_counter() - started
    loop_n = min(args.loop_posts, len(TEXTS))
    loop = timed(per_post, TEXTS[:loop_n]) * len(TEXTS) / loop_n
    raw = timed(raw_pass, TEXTS)
    rate = len(TEXTS)
    print(f"{'method':<34}{'seconds':>9}{'posts/s':>12}{'vs batch, 1 core':>18}")
    for name, seconds in [
        ("batch, 1 process", one),
        (f"batch, {cores} processes", many),
        (f"post by post (timed on {loop_n:,})", loop),
        ("raw: one compiled regex pass", raw),
    ]:
        print(f"{name:<34}{seconds:>9.2f}{rate / seconds:>12,.0f}{one / seconds:>17.2f}x")

    print("\nagreement on every post of the real files:")
    for name, (texts, platforms) in files.items():
        started = time.perf_counter()
        batch = extract(texts, platforms, values=True)
        counts_match = all(
            (batch.counts[k] == np.array([len(v) for v in batch.values[k]])).all() for k in KINDS
        )
        alone = sum(
            entities(text, platform) != {k: batch.values[k][i] for k in KINDS}
            for i, (text, platform) in enumerate(zip(texts, platforms, strict=True))
        )
        totals = ", ".join(f"{k} {int(batch.counts[k].sum()):,}" for k in KINDS)
        print(
            f"  {name}: {len(texts):,} posts; counts = values: {counts_match}; posts where the "
            f"batch differs from the post alone: {alone}; {totals} "
            f"({time.perf_counter() - started:.1f}s)"
        )


if __name__ == "__main__":
    main()
