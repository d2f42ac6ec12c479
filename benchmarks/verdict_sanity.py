"""Sanity checks of the verdict's text measures on a finished topic run, printed side by side.

    .venv/bin/python benchmarks/verdict_sanity.py runs/demo

- MAUVE of the held-out real posts against the reference (should be near 1), of the same held-out
  posts with the words of each post shuffled (a measure that reads text as text should fall far),
  and of each synthetic set, all in the run's measure space (evaluate.embedder), as the
  evaluation computes it (mpsynth.metrics.compare._mauve_rows);
- beside it, the detectability AUC (the evaluation's TF-IDF classifier on word 1-2 grams, which
  reads word order) of each against the same reference sample;
- k-NN precision and recall of the holdout, from the run's metrics (should be near 1);
- distinct-1/2/3 and the compression ratio of the holdout and each set, mpsynth's against the
  `diversity` package's own code (loaded by path: its __init__ imports models).

Reads nothing but the run directory; encodes the texts it measures with the run's measure-space
model (the embedding cache is not consulted: this is a check, not a run).
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mpsynth.config import load_config
from mpsynth.core import schema
from mpsynth.embedders import load_embedder
from mpsynth.metrics.compare import EvalSet, _mauve_rows
from mpsynth.metrics.detectability import detectability_folds
from mpsynth.metrics.linguistic import compression_ratio, distinct_n
from mpsynth.rundir.context import StageContext
from mpsynth.rundir.directory import RunDirectory
from mpsynth.stages.embed import similarity_space
from mpsynth.stages.evaluate.runner import synthetic_sets


def diversity_module(name: str):
    found = importlib.util.find_spec("diversity")
    if found is None:
        raise SystemExit("the diversity package is missing: pip install --no-deps diversity==0.3.1")
    path = Path(found.submodule_search_locations[0]) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"diversity_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def texts_of(path: Path) -> list[str]:
    return pq.read_table(path, columns=["text"]).column("text").to_pylist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    run = args.run_dir
    config = load_config(run / "config.yaml")
    ctx = StageContext(config, RunDirectory(run))
    embedder = load_embedder(*similarity_space(ctx))

    def vectors(texts: list[str]) -> np.ndarray:
        found = np.asarray(embedder.encode(texts), dtype=np.float32)
        return found / np.maximum(np.linalg.norm(found, axis=1, keepdims=True), 1e-12)

    held = texts_of(ctx.holdout())
    rng = random.Random(0)

    def shuffled(text: str) -> str:
        words = text.split()
        rng.shuffle(words)
        return " ".join(words)

    sets = {"real-holdout": held, "real-holdout, words shuffled": [shuffled(t) for t in held]}
    sets |= {p.stem: texts_of(p) for p in synthetic_sets(ctx)}
    reference = texts_of(ctx.reference())
    drawn = np.random.default_rng(1).permutation(len(reference))[:2000]
    reference = [reference[i] for i in np.sort(drawn)]
    real = EvalSet(
        schema.REAL,
        reference,
        np.array([schema.ALL_PLATFORMS] * len(reference), dtype=object),
        vectors(reference),
        np.zeros(len(reference)),
    )
    space = similarity_space(ctx)[0]
    print(f"measure space: {getattr(space, 'model', space.kind)} ({getattr(space, 'backend', '')})")
    print(f"reference sample: {len(reference)} posts\n")
    print(f"{'set':<36} {'posts':>6} {'MAUVE':>6} {'detectability AUC':>18}")
    for name, texts in sets.items():
        (row,) = _mauve_rows(real, vectors(texts), name, schema.ALL_PLATFORMS, config.seed)
        # the evaluation's TF-IDF (word 1-2 grams) classifier: it reads word order
        auc = detectability_folds(reference, texts, config.seed).mean()
        print(f"{name:<36} {len(texts):>6} {row['value']:>6.3f} {auc:>18.3f}")

    metrics = pq.read_table(run / "evaluate" / "metrics.parquet").to_pylist()
    print("\nk-NN precision and recall of the holdout (evaluate/metrics.parquet, all platforms):")
    for r in metrics:
        if (
            r["dataset"] == schema.REAL_HOLDOUT
            and r["platform"] == schema.ALL_PLATFORMS
            and r["metric"] in ("knn_precision", "knn_recall")
        ):
            print(f"  {r['metric']}: {r['value']:.3f} ({r['ci_low']:.3f}-{r['ci_high']:.3f})")

    compression, ngrams = diversity_module("compression"), diversity_module("ngram_diversity")
    print("\ndistinct-n and compression ratio, mpsynth | diversity 0.3.1 (whole sets):")
    print(f"{'set':<36} {'distinct-1':>14} {'distinct-1..3 sum':>20} {'compression':>16}")
    for name, texts in sets.items():
        ours = (
            round(distinct_n(texts, 1), 3),
            round(sum(distinct_n(texts, n) for n in (1, 2, 3)), 3),
            compression_ratio(texts),
        )
        theirs = (
            ngrams.ngram_diversity_score(texts, 1),
            ngrams.ngram_diversity_score(texts, 3),
            compression.compression_ratio(texts),
        )
        cells = [f"{a:.3f} | {b:.3f}" for a, b in zip(ours, theirs, strict=True)]
        same = "equal" if ours == theirs else "DIFFERENT"
        print(f"{name:<36} {cells[0]:>14} {cells[1]:>20} {cells[2]:>16}  {same}")


if __name__ == "__main__":
    main()
