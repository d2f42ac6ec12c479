"""The rare-entity stress test: configs/politics.yaml (IRA + MEIU22 from ../shared/data) with no
entity enrichment, then bottom- and middle-band enrichment; the enriched runs start from the first
run's ingest, embed and topics (copied with their manifest entries), so the topic model is fitted
once, and stop after postprocess.

    .venv/bin/python benchmarks/entity_enrichment.py [--root DIR] [bands ...]

Then every run's synthetic sets are read against the same entities: the bands of all the real
posts (pools/enrichment.json of an enriched run), each set's posts through the same NER pipeline.
Printed: each run's seconds, and per run, set and band the share of the band's entities the set
mentions. A run already finished in DIR is not run again."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOT = Path("/tmp/bench/enrich")
COMMON = [
    "evaluate.embedder=null",
    "evaluate.sample_per_platform=5000",
    "evaluate.bootstrap_samples=100",
]
KEPT = ("ingest", "embed", "topics")


def run(name: str, extra: list[str], until: str = "run") -> None:
    args = [sys.executable, "-m", "mpsynth.cli", until, "configs/politics.yaml"]
    for item in [f"run_dir={ROOT / name}", *COMMON, *extra]:
        args += ["--set", item]
    start = time.time()
    with open(ROOT / f"{name}.log", "w") as log:
        code = subprocess.call(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    print(name, "exit", code, "seconds", round(time.time() - start), flush=True)


def seed_from(source: str, target: str) -> None:
    (ROOT / target).mkdir(parents=True)
    for stage in KEPT:
        shutil.copytree(ROOT / source / stage, ROOT / target / stage)
    manifest = json.loads((ROOT / source / "manifest.json").read_text())
    manifest["stages"] = {k: v for k, v in manifest["stages"].items() if k in KEPT}
    (ROOT / target / "manifest.json").write_text(json.dumps(manifest))
    shutil.copyfile(ROOT / source / "config.yaml", ROOT / target / "config.yaml")
    if (ROOT / source / "cache").exists():
        shutil.copytree(ROOT / source / "cache", ROOT / target / "cache")


def found_shares(bands: dict[str, list], runs: list[str]) -> list[dict]:
    """Per run, plain synthetic set and band: the share of the band's entities the set mentions."""
    import pyarrow.parquet as pq

    from mpsynth.metrics.entities import entity_counts, load_pipeline

    nlp = load_pipeline("en_core_web_sm")
    rows = []
    for run_name in runs:
        for path in sorted((ROOT / run_name / "postprocess" / "synthetic").glob("*.parquet")):
            if path.stem.endswith("-calibrated"):
                continue  # the plain set's posts with a few tokens changed
            texts = pq.read_table(path, columns=["text"]).column("text").to_pylist()
            mentioned = entity_counts(nlp, texts)
            row = {"run": run_name, "set": path.stem, "posts": len(texts)}
            for band, members in bands.items():
                entities = [(text, label) for text, label, _ in members]
                row[band] = sum(e in mentioned for e in entities) / max(1, len(entities))
            rows.append(row)
    return rows


def main() -> None:
    global ROOT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument(
        "--example-weight",
        type=float,
        default=0.0,
        help="the Markov stand-in's example_weight: >0 makes it read the prompt's examples (at 0 "
        "what a pool shows changes nothing it writes); runs are named <run>-w<weight>",
    )
    parser.add_argument(
        "--seed-from",
        default="none",
        help="the run whose topics and caches the first run starts from",
    )
    parser.add_argument("bands", nargs="*", default=["bottom", "middle"])
    args = parser.parse_args()
    ROOT = args.root
    ROOT.mkdir(parents=True, exist_ok=True)
    tag = f"-w{args.example_weight:g}" if args.example_weight else ""
    weight = [f"generate.generators.0.provider.example_weight={args.example_weight}"] if tag else []
    names = {band: f"{band}{tag}" for band in ["none", *args.bands]}
    source = None
    for band, name in names.items():
        if (ROOT / name / "postprocess").is_dir():
            source = name
            continue
        shutil.rmtree(ROOT / name, ignore_errors=True)
        enrich = (
            [f"pools.entity_enrichment.band={band}", "pools.entity_enrichment.share=0.3"]
            if band != "none"
            else []
        )
        if source is None and band == "none" and not tag:
            run(name, [])  # the first run of all: every stage
        else:
            # the last run's topics and caches (embeddings, entities): one topic fit in all
            seed_from(source or args.seed_from, name)
            run(name, [*enrich, *weight], until="postprocess")
        source = name
    enrichment = json.loads((ROOT / names[args.bands[0]] / "pools" / "enrichment.json").read_text())
    bands = enrichment["bands"]
    for band, members in bands.items():
        counts = [n for *_, n in members]
        print(
            f"{band:7} {len(members)} entities, mentioned by {min(counts)}-{max(counts)} posts:",
            ", ".join(text for text, *_ in members[:6]),
        )
    for band in args.bands:
        found = json.loads((ROOT / names[band] / "pools" / "enrichment.json").read_text())
        manifest = json.loads((ROOT / names[band] / "manifest.json").read_text())
        rows = manifest["stages"]["pools"]["rows"]
        print(
            f"{band}: {len(found['holders'])} real posts hold one;",
            f"{rows.get('enriched_pools_percent')}% of pools hold the share",
        )
    print(f"{'run':12}{'set':24}{'posts':>7}" + "".join(f"{b:>8}" for b in bands))
    for row in found_shares(bands, list(names.values())):
        print(
            f"{row['run']:12}{row['set']:24}{row['posts']:>7}"
            + "".join(f"{row[b]:>8.2f}" for b in bands)
        )


if __name__ == "__main__":
    main()
