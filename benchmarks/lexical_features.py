"""Vectorised lexical features (RE2 over whole Arrow arrays, emoji prefilter) against a plain
per-post Python loop doing the same counting, on real posts resampled to N.

    .venv/bin/python benchmarks/lexical_features.py --posts 200000
"""

from __future__ import annotations

import argparse
import csv
import re
import time
from pathlib import Path

import emoji
import numpy as np
import pyarrow as pa

from mpsynth.metrics.lexical import lexical_features

REPO = Path(__file__).resolve().parents[1]

# The per-post baseline: Python's re with the same definitions (\w is Unicode-aware in Python).
HASHTAG = re.compile(r"(?:^|[^\w&/#])#[\d_]*[^\W\d_][\w]*")
MENTION = re.compile(r"(?:^|[^\w.@/])@[A-Za-z0-9_]{1,30}")
URL = re.compile(r"(?i)(?:https?://|www\.)[^\s<>\"']+")


def loop_features(texts: list[str]) -> dict[str, np.ndarray]:
    out = {
        k: np.zeros(len(texts), np.int64)
        for k in ("hashtags", "mentions", "urls", "emojis", "chars", "words")
    }
    for i, text in enumerate(texts):
        out["hashtags"][i] = len(HASHTAG.findall(text))
        out["mentions"][i] = len(MENTION.findall(text))
        out["urls"][i] = len(URL.findall(text))
        out["emojis"][i] = emoji.emoji_count(text)
        out["chars"][i] = len(text)
        out["words"][i] = len(text.split())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--data", type=Path, default=REPO / "data" / "demo" / "posts.csv")
    args = parser.parse_args()
    with args.data.open(encoding="utf-8", newline="") as handle:
        real = [row["text"] for row in csv.DictReader(handle)]
    rng = np.random.default_rng(0)
    texts = [real[i] for i in rng.integers(0, len(real), args.posts)]
    array = pa.array(texts)

    started = time.perf_counter()
    vectorised = lexical_features(array)
    vector_s = time.perf_counter() - started
    started = time.perf_counter()
    looped = loop_features(texts)
    loop_s = time.perf_counter() - started

    agree = {k: float((vectorised[k] == looped[k]).mean()) for k in vectorised}
    print(f"posts: {args.posts:,} (resampled from {len(real):,} real posts in {args.data.name})")
    print(f"{'method':<12}{'seconds':>10}{'posts/s':>14}")
    print(f"{'vectorised':<12}{vector_s:>10.2f}{args.posts / vector_s:>14,.0f}")
    print(f"{'python loop':<12}{loop_s:>10.2f}{args.posts / loop_s:>14,.0f}")
    print(f"speed-up (loop / vectorised): {loop_s / vector_s:.1f}x")
    print("agreement per feature: " + ", ".join(f"{k} {v:.4f}" for k, v in agree.items()))


if __name__ == "__main__":
    main()
