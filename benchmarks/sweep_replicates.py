"""A sweep run with `--set generate.replicates=N`, read twice side by side: the sensitivity
analysis from each variation's first generation alone (what a sweep without replicates reports)
and from all N generations (the clustered bootstrap), per setting, family and set; then what the
added generations cost, from the variations' manifests.

    mpsynth sweep configs/demo.yaml --grid configs/sweep-demo.yaml --out runs/sweep \\
        --set generate.replicates=3
    .venv/bin/python benchmarks/sweep_replicates.py runs/sweep [--metrics 12]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mpsynth.report.sensitivity import sensitivity_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--metrics", type=int, default=12, help="single metrics listed")
    args = parser.parse_args()
    metrics = pq.read_table(args.sweep / "metrics.parquet")
    variations = pq.read_table(args.sweep / "variations.parquet").to_pylist()
    settings = {v["variation"]: json.loads(v["settings"]) for v in variations}
    grid = json.loads((args.sweep / "sweep.json").read_text())["grid"]
    levels = {k: v if isinstance(v, list) else None for k, v in grid.items()}
    generations = len(set(metrics.column("replicate").to_pylist()))
    first = metrics.filter(pc.equal(metrics.column("replicate"), 1)).drop_columns(["replicate"])
    one_metric, one_family = sensitivity_tables(first, settings, levels)
    all_metric, all_family = sensitivity_tables(metrics, settings, levels)

    def keyed(table, *names):
        return {tuple(r[n] for n in names): r for r in table.to_pylist()}

    one, every = (
        keyed(one_family, "setting", "family", "dataset"),
        keyed(all_family, "setting", "family", "dataset"),
    )
    print(f"{len(settings)} variations x {generations} generations\n")
    print("| setting | family | set | 1 generation: effect [95%], moved | "
          f"{generations} generations: effect [95%], moved | by chance |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for key in sorted(every, key=lambda k: -every[k]["effect"]):
        a, b = one.get(key), every[key]
        if b["dataset"].endswith("calibrated"):
            continue
        left = (
            f"{a['effect']:.2f} [{a['effect_low']:.2f}, {a['effect_high']:.2f}], "
            f"{a['metrics_moved']}/{a['metrics']}"
            if a
            else "–"
        )
        right = (
            f"{b['effect']:.2f} [{b['effect_low']:.2f}, {b['effect_high']:.2f}], "
            f"{b['metrics_moved']}/{b['metrics']}"
        )
        print(f"| {key[0]} | {key[1]} | {key[2]} | {left} | {right} | {b['by_chance']:.2f} |")

    one_m = keyed(one_metric, "setting", "metric", "dataset")
    every_m = keyed(all_metric, "setting", "metric", "dataset")
    lost = [k for k, r in one_m.items() if r["moved"] and k in every_m and not every_m[k]["moved"]]
    kept = [k for k, r in one_m.items() if r["moved"] and k in every_m and every_m[k]["moved"]]
    print(f"\nmetrics moved with 1 generation: {len(lost) + len(kept)}; still moved with "
          f"{generations}: {len(kept)}; no longer: {len(lost)}")  # fmt: skip
    for k in sorted(lost, key=lambda k: -abs(one_m[k]["standardised"]))[: args.metrics]:
        a, b = one_m[k], every_m[k]
        print(f"  {k[0]} on {k[2]} {k[1]}: {a['effect']:+.4f} [{a['effect_low']:+.4f}, "
              f"{a['effect_high']:+.4f}] -> {b['effect']:+.4f} [{b['effect_low']:+.4f}, "
              f"{b['effect_high']:+.4f}]")  # fmt: skip

    added = first_run = 0.0
    for v in variations:
        manifest = json.loads((Path(v["run_dir"]) / "manifest.json").read_text())["stages"]
        added += manifest.get("replicates", {}).get("seconds", 0.0)
        first_run += sum(
            e.get("seconds", 0.0) for s, e in manifest.items() if s != "replicates"
            and not e.get("reused_from")
        )  # fmt: skip
    print(f"\nthe added generations (replicates stages): {added:.0f} s; the variations' own "
          f"stages: {first_run:.0f} s; ratio {added / max(first_run, 1e-9):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
