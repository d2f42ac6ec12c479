"""Embedding and topic modelling at scale on a corpus resampled from the real shared data files.

For each size: LSA embedding through Ray Data actors against plain in-process encoding of the same
texts with the same fitted embedder (throughput ratio), the topic fit on a stratified sample, the
assignment of every post to a topic in a Ray Data pass, and peak memory (PSS summed over this process
and every Ray process, sampled twice a second, so shared object-store pages are not counted twice).

    .venv/bin/python benchmarks/embed_topics_scale.py --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.config import LsaEmbedderConfig, RayConfig, TopicsConfig
from mpsynth.distributed.data import map_parquet
from mpsynth.distributed.session import actor_layout, ray_session
from mpsynth.embedders import load_embedder, prepare_embedder
from mpsynth.stages.embed import EmbedBatch, embeddings_matrix
from mpsynth.stages.topics import AssignTopics, fit_topics, stratified_sample
from mpsynth.testing.memory import MemoryTrace

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"  # the full public files, beside a development checkout
BUNDLED = [REPO / "data" / "demo" / "posts.csv", *sorted((REPO / "tests" / "data").glob("*.csv"))]
FILES = (
    "politics_twitter_ira.csv",
    "politics_reddit_meiu22.csv",
    "aggression_facebook_twitter_trac1.csv",
    "youtube_spam.csv",
    "emotion_goemotions.csv",
)


PeakMemory = MemoryTrace  # evaluate_scale.py imports it under this name


def real_corpus(data_dir: Path | None = None) -> tuple[list[str], list[str]]:
    """Posts from the full public files in `data_dir` (default ../shared/data); when that folder
    is absent, from the samples bundled with the repository, and the benchmark says so."""
    data_dir = data_dir or SHARED
    paths = [data_dir / name for name in FILES]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(
            f"{missing[0]} not found: resampling the bundled samples (data/demo, tests/data) "
            f"instead; give --data DIR for the full files"
        )
        paths = BUNDLED
    texts, platforms = [], []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["text"].strip():
                    texts.append(row["text"])
                    platforms.append(row["platform"])
    return texts, platforms


def write_resampled(path: Path, n: int, texts: list[str], platforms: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, n, 100_000):
        rows = rng.integers(0, len(texts), min(100_000, n - start))
        table = pa.table(
            {
                "id": [f"p{start + i}" for i in range(len(rows))],
                "platform": [platforms[i] for i in rows],
                "text": [texts[i] for i in rows],
            }
        )
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=50_000)
    writer.close()


def gib(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.2f} GiB"


def run_size(n: int, corpus, args, work: Path) -> dict:
    posts = work / f"posts_{n}.parquet"
    write_resampled(posts, n, *corpus, seed=n)
    embedder_config = LsaEmbedderConfig(dimensions=args.dimensions, fit_sample=args.lsa_fit_sample)
    state = prepare_embedder(
        embedder_config, lambda: pq.read_table(posts, columns=["text"])["text"].to_pylist(), 0, work
    )
    result = {"posts": n}

    embedder = load_embedder(embedder_config, state)
    with PeakMemory() as memory:
        started = time.perf_counter()
        for batch in pq.ParquetFile(posts).iter_batches(
            batch_size=args.batch_size, columns=["text"]
        ):
            embedder.encode(batch.column("text").to_pylist())
        result["in_process_s"] = time.perf_counter() - started
    result["in_process_peak"] = memory.peak()

    embeddings = work / f"embeddings_{n}"
    actors, _ = actor_layout(None, 0.0, wants_gpu=False)
    with PeakMemory() as memory:
        started = time.perf_counter()
        map_parquet(
            posts,
            embeddings,
            EmbedBatch,
            columns=["id", "text"],
            constructor_kwargs={"config": embedder_config, "state": state},
            actors=actors,
            num_cpus=0.5,
            batch_size=args.batch_size,
        )
        result["ray_s"] = time.perf_counter() - started
    result["ray_peak"] = memory.peak()
    result["actors"] = actors

    topics = TopicsConfig(fit_sample_per_platform=args.fit_sample_per_platform)
    with PeakMemory() as memory:
        started = time.perf_counter()
        table = pq.read_table(posts, columns=["platform", "text"])
        platforms = np.asarray(table["platform"].to_pylist(), dtype=object)
        sample = stratified_sample(platforms, topics.fit_sample_per_platform, seed=0)
        texts = table["text"].take(pa.array(sample)).to_pylist()
        del table, platforms
        # the embeddings of the sampled rows, re-encoded here: the same vectors the Ray pass wrote
        vectors = embedder.encode(texts)
        fitted = fit_topics(texts, vectors, topics, seed=0)
        np.save(work / "centroids.npy", fitted.centroids)
        result["fit_s"] = time.perf_counter() - started
        result["fit_rows"] = len(sample)
        result["topics"] = len(fitted.centroids)
        del texts, vectors
    result["fit_peak"] = memory.peak()

    with PeakMemory() as memory:
        started = time.perf_counter()
        map_parquet(
            embeddings,
            work / f"assignments_{n}",
            AssignTopics,
            constructor_kwargs={
                "centroids_path": work / "centroids.npy",
                "threshold": topics.outlier_threshold,
            },
            actors=1,
            num_cpus=0.5,
            batch_size=8192,
        )
        assigned = pq.read_table(work / f"assignments_{n}", columns=["topic"])
        result["assign_s"] = time.perf_counter() - started
        result["outlier_share"] = float(np.mean(assigned["topic"].to_numpy() < 0))
    result["assign_peak"] = memory.peak()
    # a spot check that the Ray pass wrote the vectors the in-process encoder gives
    first = pq.read_table(embeddings).slice(0, 1)
    text = pq.read_table(
        posts, columns=["id", "text"], filters=[("id", "=", first["id"][0].as_py())]
    )
    np.testing.assert_allclose(
        embeddings_matrix(first["embedding"]), embedder.encode(text["text"].to_pylist()), atol=1e-5
    )
    shutil.rmtree(embeddings)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dimensions", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--lsa-fit-sample", type=int, default=200_000)
    parser.add_argument("--fit-sample-per-platform", type=int, default=10_000)
    parser.add_argument("--data", type=Path, help=f"folder of the full files (default {SHARED})")
    args = parser.parse_args()
    corpus = real_corpus(args.data)
    print(f"real posts to resample from: {len(corpus[0]):,} ({', '.join(FILES)})")
    print(f"machine: {psutil.cpu_count()} CPUs, {gib(psutil.virtual_memory().total)} RAM")
    results = []
    with tempfile.TemporaryDirectory() as tmp, ray_session(RayConfig()):
        for n in args.sizes:
            results.append(run_size(n, corpus, args, Path(tmp)))
            r = results[-1]
            print(
                f"  done {n:,}: in-process {r['in_process_s']:.1f}s, ray {r['ray_s']:.1f}s",
                flush=True,
            )
    header = f"{'posts':>10} {'in-proc/s':>10} {'ray/s':>10} {'ratio':>6} {'actors':>6} {'fit rows':>9} {'fit s':>7} {'topics':>6} {'assign s':>8} {'outl.':>6} {'peak':>10}"
    print(header)
    for r in results:
        peak = max(r["in_process_peak"], r["ray_peak"], r["fit_peak"], r["assign_peak"])
        print(
            f"{r['posts']:>10,} {r['posts'] / r['in_process_s']:>10,.0f} {r['posts'] / r['ray_s']:>10,.0f} "
            f"{r['in_process_s'] / r['ray_s']:>6.2f} {r['actors']:>6} {r['fit_rows']:>9,} {r['fit_s']:>7.1f} "
            f"{r['topics']:>6} {r['assign_s']:>8.1f} {r['outlier_share']:>6.1%} {gib(peak):>10}"
        )
        print(
            f"{'':>10} peak by phase: in-process {gib(r['in_process_peak'])}, ray embed {gib(r['ray_peak'])}, "
            f"fit {gib(r['fit_peak'])}, assign {gib(r['assign_peak'])}"
        )
    print("ratio = Ray Data throughput / in-process throughput (goal >= 0.8)")


if __name__ == "__main__":
    main()
