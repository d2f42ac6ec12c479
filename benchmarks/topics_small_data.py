"""The topic fit below 4,096 posts: umap-learn's own exact path (every pairwise cosine through
scikit-learn, one Python call per pair) against mpsynth's (the same float64 cosine in one parallel
numba pass, handed to UMAP as precomputed neighbours), on the demo's posts in MiniLM's space.

Both fits are timed in fresh processes (numba's compilation included, as a run pays it). Their
agreement is set beside the agreement of umap-learn's path with itself when the embeddings move by
1e-7 (what another batch composition does to MiniLM's vectors on a CPU): the fit is chaotic, so
that is the bar for "equivalent".

    .venv/bin/python benchmarks/topics_small_data.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

FIT = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
from mpsynth.config import load_config
from mpsynth.stages import topics
config = load_config("configs/demo.yaml")
embeddings = np.load(sys.argv[1])
texts = json.loads(open(sys.argv[2]).read())
if sys.argv[3] == "umap-learn":
    topics.UMAP_EXACT_BELOW = 0
if sys.argv[3] == "umap-learn, moved 1e-7":
    topics.UMAP_EXACT_BELOW = 0
    noise = np.random.default_rng(1).normal(0, 1e-7, embeddings.shape).astype(np.float32)
    embeddings = embeddings + noise
started = time.perf_counter()
fitted = topics.fit_topics(texts, embeddings, config.topics, config.seed)
seconds = time.perf_counter() - started
np.save(sys.argv[4], fitted.labels)
print(json.dumps({"seconds": seconds, "topics": len(fitted.centroids)}))
"""


def main() -> None:
    import pyarrow.csv as pcsv

    from mpsynth.config import SentenceTransformersEmbedderConfig
    from mpsynth.embedders import load_embedder

    texts = pcsv.read_csv(REPO / "data" / "demo" / "posts.csv").column("text").to_pylist()
    texts = [t for t in texts if t and t.strip()]
    print(f"{len(texts)} demo posts; encoding with MiniLM (not timed)")
    embeddings = load_embedder(SentenceTransformersEmbedderConfig(), None).encode(texts)
    from sklearn.metrics import adjusted_rand_score

    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/embeddings.npy", embeddings)
        Path(f"{tmp}/texts.json").write_text(json.dumps(texts))
        labels, rows = {}, {}
        for way in ("umap-learn", "mpsynth", "umap-learn, moved 1e-7"):
            out = f"{tmp}/{len(labels)}.npy"
            done = subprocess.run(
                [sys.executable, "-c", FIT, f"{tmp}/embeddings.npy", f"{tmp}/texts.json", way, out],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            rows[way] = json.loads(done.stdout.strip().splitlines()[-1])
            labels[way] = np.load(out)
    reference = labels["umap-learn"]
    print(f"{'fit':<24} {'seconds':>8} {'topics':>7} {'ARI vs umap-learn':>18}")
    for way, row in rows.items():
        agreement = adjusted_rand_score(reference, labels[way])
        print(f"{way:<24} {row['seconds']:8.1f} {row['topics']:7d} {agreement:18.3f}")
    speedup = rows["umap-learn"]["seconds"] / rows["mpsynth"]["seconds"]
    print(f"speed-up {speedup:.1f}x")


if __name__ == "__main__":
    main()
