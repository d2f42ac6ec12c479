"""The rare-entity stress test: configs/politics.yaml (IRA + MEIU22 from ../shared/data) with no
entity enrichment, then bottom- and middle-band enrichment; the enriched runs start from the first
run's ingest, embed and topics (copied with their manifest entries), so the topic model is fitted
once.

    .venv/bin/python benchmarks/entity_enrichment.py [--root DIR] [bands ...]

Each run's seconds are printed; the entity metrics are in each run's evaluate/metrics.parquet and
the band's entities in pools/enrichment.json."""

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


def run(name: str, extra: list[str]) -> None:
    args = [sys.executable, "-m", "mpsynth.cli", "run", "configs/politics.yaml"]
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


def main() -> None:
    global ROOT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("bands", nargs="*", default=["bottom", "middle"])
    args = parser.parse_args()
    ROOT = args.root
    ROOT.mkdir(parents=True, exist_ok=True)
    run("none", [])
    for band in args.bands:
        seed_from("none", band)
        run(band, [f"pools.entity_enrichment.band={band}", "pools.entity_enrichment.share=0.3"])


if __name__ == "__main__":
    main()
