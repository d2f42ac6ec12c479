"""Calibration on the political Twitter + Reddit files: the offline generator's MPTM set, and a copy
of it with every URL and mention stripped (the fault the published results find in LLM output),
each before and after calibration. Prints, per platform, the real share of posts with at least
one hashtag, mention, URL and emoji beside each set's share before and after, and what
calibration does to the embedding-similarity shares and topic coverage.

    .venv/bin/python benchmarks/calibration.py                 # ../shared/data
    .venv/bin/python benchmarks/calibration.py --data DIR --run-dir runs/bench-calibration

Embedding similarity in all-MiniLM-L6-v2 on --sample posts per platform; topics in an LSA space.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.config import RunConfig
from mpsynth.orchestration.pipeline import run_pipeline
from mpsynth.stages.postprocess.calibrate import KINDS, calibrate, profile, spans

REPO = Path(__file__).resolve().parents[1]
FILES = ("politics_twitter_ira.csv", "politics_reddit_meiu22.csv")
SIMILARITY = (
    "synthetic_with_real_counterpart@0.6",
    "synthetic_with_real_counterpart@0.7",
    "synthetic_with_real_counterpart@0.8",
    "real_with_synthetic_counterpart@0.7",
    "real_topics_covered",
)


def strip(table: pa.Table) -> pa.Table:
    """Every URL and mention removed."""
    texts = []
    for text, platform in zip(
        table.column("text").to_pylist(), table.column("platform").to_pylist(), strict=True
    ):
        located = spans(text, platform, "urls") + spans(text, platform, "mentions")
        for start, end in sorted(located, reverse=True):
            text = text[:start] + text[end:]
        texts.append(" ".join(text.split()))
    return table.set_column(table.column_names.index("text"), "text", pa.array(texts, pa.string()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--run-dir", type=Path, default=REPO / "runs" / "bench-calibration")
    parser.add_argument("--n-posts", type=int, default=2000)
    parser.add_argument("--sample", type=int, default=1000)
    args = parser.parse_args()
    inputs = [args.data / name for name in FILES if (args.data / name).is_file()]
    if len(inputs) < len(FILES):
        raise SystemExit(f"the political files are not in {args.data} ({', '.join(FILES)})")
    config = RunConfig.model_validate(
        {
            "run_dir": str(args.run_dir),
            "seed": 5,
            "ingest": {"inputs": [{"path": str(p)} for p in inputs]},
            "embed": {"embedder": {"kind": "lsa", "dimensions": 128}},
            "topics": {"min_cluster_size": 40, "fit_sample_per_platform": 8000},
            "pools": {"strategies": ["mptm"]},
            "generate": {"n_posts": args.n_posts},
            "evaluate": {"sample_per_platform": args.sample, "bootstrap_samples": 100},
        }
    )
    run_pipeline(config, until="postprocess")
    synthetic = args.run_dir / "postprocess" / "synthetic"
    posts = pq.read_table(args.run_dir / "ingest" / "posts.parquet")
    assignments = pq.read_table(args.run_dir / "topics" / "assignments")
    topic_of = dict(
        zip(assignments["id"].to_pylist(), assignments["topic"].to_pylist(), strict=True)
    )
    profiles = profile(
        posts["text"].to_pylist(),
        posts["platform"].to_pylist(),
        [topic_of.get(i) for i in posts["id"].to_pylist()],
    )
    stripped = strip(pq.read_table(synthetic / "markov-mptm.parquet"))
    pq.write_table(stripped, synthetic / "markov-mptm_stripped.parquet")
    fixed = calibrate(stripped, profiles, seed=5)
    pq.write_table(fixed.table, synthetic / "markov-mptm_stripped-calibrated.parquet")
    run_pipeline(config)

    metrics = json.loads((args.run_dir / "evaluate" / "metrics.json").read_text())
    value = {(m["dataset"], m["platform"], m["metric"]): m["value"] for m in metrics}
    sets = ["markov-mptm", "markov-mptm_stripped"]
    print(f"\nshare of posts with at least one ({args.run_dir}); before -> after calibration")
    print(f"{'platform':9s} {'kind':9s} {'real':>6s}  " + "  ".join(f"{s:>24s}" for s in sets))
    worst = 0.0
    for platform in sorted(profiles):
        for kind in KINDS:
            real = value[("real", platform, f"share_with_{kind}")]
            cells = []
            for name in sets:
                before = value[(name, platform, f"share_with_{kind}")]
                after = value[(f"{name}-calibrated", platform, f"share_with_{kind}")]
                worst = max(worst, abs(after - real))
                cells.append(f"{before:8.3f} -> {after:6.3f} ({100 * (after - real):+4.1f}pp)")
            print(f"{platform:9s} {kind:9s} {real:6.3f}  " + "  ".join(cells))
    print(f"largest gap from real after calibration: {100 * worst:.2f} percentage points")
    print("\nsimilarity and topic coverage, all platforms: before -> after calibration")
    for metric in SIMILARITY:
        cells = []
        for name in sets:
            before, after = (
                value.get((name, "all", metric)),
                value.get((f"{name}-calibrated", "all", metric)),
            )
            cells.append(f"{before:.3f} -> {after:.3f} ({100 * (after - before):+.1f} pts)")
        print(f"{metric:38s} " + "  ".join(cells))


if __name__ == "__main__":
    main()
