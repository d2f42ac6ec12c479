"""The evaluation's embedding similarity (each synthetic post's nearest real post, and each real
post's nearest synthetic one, by cosine) on real posts resampled to N per side: one pass over the
similarity matrix both ways (mpsynth's) against two one-way passes of the same blocked product and
against two exact faiss searches (IndexFlatIP, mpsynth's method before; faiss-cpu is no longer a
dependency: `pip install faiss-cpu` to include it). Vectors: an LSA space of 384 dimensions (MiniLM's
width) fitted on the real posts; the synthetic side is other real posts, drawn with replacement.

    .venv/bin/python benchmarks/nearest_similarity.py --sizes 5000 20000 50000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mpsynth.config import build_config
from mpsynth.embedders.lsa import LsaEmbedder
from mpsynth.metrics.similarity import nearest_both_ways

try:  # run as a script from the repository root
    from benchmarks.embed_topics_scale import real_corpus
except ImportError:
    from embed_topics_scale import real_corpus


def faiss_twice(synthetic: np.ndarray, real: np.ndarray):
    import faiss

    def search(queries, corpus):
        index = faiss.IndexFlatIP(corpus.shape[1])
        index.add(corpus)
        return index.search(queries, 1)[0][:, 0]

    return search(synthetic, real), search(real, synthetic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000, 50_000])
    parser.add_argument(
        "--data", type=Path, help="folder of the full files (default ../shared/data)"
    )
    args = parser.parse_args()
    texts, _ = real_corpus(args.data)
    config = build_config(
        {
            "run_dir": "unused",
            "ingest": {"inputs": [{"path": "unused"}]},
            "embed": {"embedder": {"dimensions": 384}},
        }
    )
    embedder = LsaEmbedder.fit(texts[:50_000], config.embed.embedder, 0)
    vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
    vectors = vectors[np.linalg.norm(vectors, axis=1) > 0]
    print(f"{len(vectors):,} real posts in a {vectors.shape[1]}-dimension LSA space")
    try:
        import faiss  # noqa: F401

        with_faiss = True
    except ImportError:
        with_faiss = False
    rng = np.random.default_rng(0)
    for n in args.sizes:
        real = np.ascontiguousarray(vectors[rng.integers(0, len(vectors), n)])
        synthetic = np.ascontiguousarray(vectors[rng.integers(0, len(vectors), n)])
        started = time.perf_counter()
        to_real, to_synthetic = nearest_both_ways(synthetic, real)
        both = time.perf_counter() - started
        started = time.perf_counter()
        nearest_both_ways(synthetic, real)
        nearest_both_ways(real, synthetic)
        twice = time.perf_counter() - started
        line = (
            f"{n:,} x {n:,}: both ways in one pass {both:.2f} s; two one-way passes {twice:.2f} s "
            f"({twice / both:.2f}x)"
        )
        if with_faiss:
            started = time.perf_counter()
            a, b = faiss_twice(synthetic, real)
            searched = time.perf_counter() - started
            diff = max(np.abs(a - to_real).max(), np.abs(b - to_synthetic).max())
            line += f"; two faiss searches {searched:.2f} s ({searched / both:.2f}x, max diff {diff:.1e})"
        print(line)


if __name__ == "__main__":
    main()
