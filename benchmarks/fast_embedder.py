"""Embedders for large corpora on CPU, against all-MiniLM-L6-v2 in PyTorch (the reference): speed
in posts/s and how well each one's pairwise cosine similarities agree with MiniLM's (Spearman over
every pair of a sample of real posts), plus the mean cosine between each post's two vectors where
both live in MiniLM's space.

    .venv/bin/python benchmarks/fast_embedder.py                     # 800-post agreement, 5,000-post speed
    .venv/bin/python benchmarks/fast_embedder.py --speed-posts 100000 --only onnx-int8/128

Real data: ../shared/data's political files and the demo posts, or the bundled samples, resampled
to --speed-posts. The threads are the machine's cores (torch.get_num_threads()).
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from mpsynth.config import LsaEmbedderConfig, SentenceTransformersEmbedderConfig
from mpsynth.embedders import load_embedder

REPO = Path(__file__).resolve().parents[1]
FILES = ("politics_twitter_ira.csv", "politics_reddit_meiu22.csv", "demo_posts.csv")
CANDIDATES = {  # name -> (backend, max_seq_length)
    "torch/256": ("torch", None),
    "torch/128": ("torch", 128),
    "onnx/128": ("onnx", 128),
    "onnx-int8/256": ("onnx-int8", None),
    "onnx-int8/128": ("onnx-int8", 128),
    "onnx-int8/64": ("onnx-int8", 64),
}


def real_texts(data: Path) -> list[str]:
    paths = [data / name for name in FILES if (data / name).is_file()]
    if not paths:
        print(f"no real files in {data}: using the bundled samples")
        paths = [REPO / "data" / "demo" / "posts.csv", *sorted((REPO / "tests/data").glob("*.csv"))]
    texts = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            texts += [row["text"] for row in csv.DictReader(handle) if row["text"].strip()]
    return texts


def pair_similarities(vectors: np.ndarray) -> np.ndarray:
    return (vectors @ vectors.T)[np.triu_indices(len(vectors), 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--agreement-posts", type=int, default=800)
    parser.add_argument("--speed-posts", type=int, default=5000)
    parser.add_argument("--only", nargs="*", help="candidates to run (default: all, and LSA)")
    args = parser.parse_args()

    import torch

    texts = real_texts(args.data)
    rng = random.Random(0)
    sample = rng.sample(texts, min(args.agreement_posts, len(texts)))
    speed = [rng.choice(texts) for _ in range(args.speed_posts)]
    print(
        f"{len(texts):,} real posts (mean {np.mean([len(t) for t in texts]):.0f} chars); "
        f"agreement on {len(sample)}, speed on {len(speed):,}; {torch.get_num_threads()} threads"
    )
    reference = load_embedder(SentenceTransformersEmbedderConfig(device="cpu"), None)
    reference_vectors = reference.encode(sample)
    reference_pairs = pair_similarities(reference_vectors)

    names = args.only or [*CANDIDATES, "lsa"]
    print(
        f"{'embedder':16s} {'spearman':>9s} {'mean cos':>9s} {'posts/s':>9s} {'vs torch/256':>13s}"
    )
    baseline = None
    for name in names:
        if name == "lsa":
            from mpsynth.embedders.lsa import LsaEmbedder

            embedder = LsaEmbedder.fit(texts, LsaEmbedderConfig(), seed=0)
        else:
            backend, length = CANDIDATES[name]
            embedder = load_embedder(
                SentenceTransformersEmbedderConfig(
                    device="cpu", backend=backend, max_seq_length=length
                ),
                None,
            )
        vectors = embedder.encode(sample)
        rho = spearmanr(reference_pairs, pair_similarities(vectors)).statistic
        same_space = vectors.shape[1] == reference_vectors.shape[1] and name != "lsa"
        cosine = (
            f"{(vectors * reference_vectors).sum(axis=1).mean():9.4f}"
            if same_space
            else "        -"
        )
        start = time.perf_counter()
        for begin in range(0, len(speed), 10_000):
            embedder.encode(speed[begin : begin + 10_000])
        rate = len(speed) / (time.perf_counter() - start)
        baseline = baseline or (rate if name == "torch/256" else None)
        ratio = f"{rate / baseline:12.1f}x" if baseline else "            -"
        print(f"{name:16s} {rho:9.4f} {cosine} {rate:9.0f} {ratio}", flush=True)


if __name__ == "__main__":
    main()
