"""The evaluate stage on 1M real plus 1M synthetic posts (both resampled from the real shared files).

Lexical features run on every post (Ray Data); sentiment, embedding similarity, topics, linguistic,
detectability and privacy run on `evaluate.sample_per_platform` posts per platform and dataset (the
default, 20,000), as the stage does. The set-up (embedding the real posts, a 50-centroid topic model
by k-means) is not timed.

    .venv/bin/python benchmarks/evaluate_scale.py --posts 1000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.config import RayConfig, build_config
from mpsynth.core import console
from mpsynth.distributed.session import ray_session
from mpsynth.embedders.lsa import LsaEmbedder
from mpsynth.rundir.context import StageContext
from mpsynth.rundir.directory import RunDirectory
from mpsynth.stages.embed import embeddings_column
from mpsynth.stages.evaluate.runner import run_evaluate
from mpsynth.stages.topics import assign_topics, topics_table

try:  # run as a script from the repository root
    from benchmarks.embed_topics_scale import PeakMemory, real_corpus
except ImportError:
    from embed_topics_scale import PeakMemory, real_corpus


@contextmanager
def native_lines_to_log(folder: Path) -> Iterator[None]:
    """A Ray session whose C++ lines go to `folder`/mpsynth.log, as the CLI's do, not to the
    console among the stage's progress lines."""
    console.open_run_log(folder)
    try:
        with console.native_output_to_run_log(), ray_session(RayConfig()):
            yield
    finally:
        console.close_run_log()


def resampled(texts, platforms, n, seed, prefix):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(texts), n)
    return pa.table(
        {
            "id": [f"{prefix}{i}" for i in range(n)],
            "platform": [platforms[i] for i in rows],
            "text": [texts[i] for i in rows],
            "author": pa.nulls(n, pa.string()),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument(
        "--data", type=Path, help="folder of the full files (default ../shared/data)"
    )
    parser.add_argument(
        "--measure-space",
        choices=("default", "onnx-int8"),
        default="default",
        help="the similarity space: the default (all-MiniLM-L6-v2 in PyTorch), or the same model "
        "int8 through ONNX Runtime at 128 tokens (the demo's; ~3x on a CPU)",
    )
    args = parser.parse_args()
    console.setup()  # the stage's own progress lines
    texts, platforms = real_corpus(args.data)
    with tempfile.TemporaryDirectory() as tmp, native_lines_to_log(Path(tmp)):
        root = Path(tmp) / "run"
        raw = {"run_dir": str(root), "ingest": {"inputs": [{"path": tmp}]}}
        if args.measure_space == "onnx-int8":
            raw["evaluate"] = {
                "embedder": {
                    "kind": "sentence-transformers",
                    "backend": "onnx-int8",
                    "max_seq_length": 128,
                }
            }
        config = build_config(raw)
        run = RunDirectory(root)
        started = time.perf_counter()
        real = resampled(texts, platforms, args.posts, 1, "r")
        synthetic = resampled(texts, platforms, args.posts, 2, "s")
        for stage in ("ingest", "embed", "topics", "postprocess"):
            (root / stage).mkdir(parents=True)
        pq.write_table(real, root / "ingest" / "posts.parquet", row_group_size=100_000)
        (root / "ingest" / "summary.json").write_text("{}")
        embedder = LsaEmbedder.fit(real["text"].to_pylist()[:200_000], config.embed.embedder, 0)
        embedder.save(root / "embed" / "lsa.joblib")
        writer = None
        for batch in real.select(["id", "text"]).to_batches(max_chunksize=100_000):
            vectors = embedder.encode(batch.column("text").to_pylist())
            part = pa.table({"id": batch.column("id"), "embedding": embeddings_column(vectors)})
            writer = writer or pq.ParquetWriter(root / "embed" / "embeddings.parquet", part.schema)
            writer.write_table(part)
        writer.close()
        (root / "embed" / "embeddings").mkdir()
        (root / "embed" / "embeddings.parquet").rename(
            root / "embed" / "embeddings" / "part.parquet"
        )
        from sklearn.cluster import MiniBatchKMeans

        sample = embedder.encode(real["text"].to_pylist()[:50_000])
        centroids = (
            MiniBatchKMeans(50, random_state=0, n_init=3)
            .fit(sample)
            .cluster_centers_.astype(np.float32)
        )
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        np.save(root / "topics" / "centroids.npy", centroids)
        (root / "topics" / "assignments").mkdir()
        labels = []
        for batch in pq.ParquetFile(root / "embed" / "embeddings" / "part.parquet").iter_batches(
            100_000
        ):
            from mpsynth.stages.embed import embeddings_matrix

            labels.append(
                assign_topics(embeddings_matrix(batch.column("embedding")), centroids, 0.25)[0]
            )
        assignments = pa.table(
            {
                "id": real["id"],
                "topic": pa.array(np.concatenate(labels)),
                "topic_similarity": pa.nulls(args.posts, pa.float32()),
            }
        )
        pq.write_table(assignments, root / "topics" / "assignments" / "part.parquet")
        # the topics stage's table (the evaluation names topics by it), keywords by number
        keywords = {n: [f"cluster {n}"] for n in range(len(centroids))}
        platform_of = dict(zip(real["id"].to_pylist(), real["platform"].to_pylist(), strict=True))
        pq.write_table(
            topics_table(keywords, assignments, platform_of, representative_posts=3),
            root / "topics" / "topics.parquet",
        )
        (root / "postprocess" / "synthetic").mkdir()
        synthetic = synthetic.drop(["author"]).append_column(
            "example_ids", pa.array([[] for _ in range(args.posts)], pa.list_(pa.string()))
        )
        pq.write_table(
            synthetic,
            root / "postprocess" / "synthetic" / "bench-resampled.parquet",
            row_group_size=100_000,
        )
        setup_s = time.perf_counter() - started

        out = root / "evaluate"
        out.mkdir()
        with PeakMemory() as memory:
            started = time.perf_counter()
            rows = run_evaluate(StageContext(config, run), out)
            elapsed = time.perf_counter() - started
        metrics = pq.read_table(out / "metrics.parquet")
        families = sorted(set(metrics.column("family").to_pylist()))
        total = 2 * args.posts
        print(f"set-up (not timed): {setup_s:.0f} s")
        print(
            f"evaluate: {args.posts:,} real + {args.posts:,} synthetic posts in {elapsed:.1f} s "
            f"= {total / elapsed:,.0f} posts/s; {rows['metrics']} metric rows ({', '.join(families)}); "
            f"peak memory {memory.peak() / 2**30:.2f} GiB"
        )
        print(
            "lexical features on every post; the other families on 20,000 posts per platform and dataset"
        )
        encoded = {
            k: v for k, v in rows.items() if k.endswith(("_encoded", "_cached", "_repeated"))
        }
        print(f"texts embedded in the evaluation ({args.measure_space} space): {encoded}")


if __name__ == "__main__":
    main()
