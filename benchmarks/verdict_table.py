"""A finished run's verdict as Markdown: per family, the real value, the ceiling (the held-out real
posts), each set's value and its gap beyond the ceiling with the 95% interval, largest supported
gaps first (all platforms); then the cross-platform interconnection sentence. Where the run drew
several generations (generate.replicates), each set's value is its mean over them.

    .venv/bin/python benchmarks/verdict_table.py runs/demo [--top 15] [--sets markov-mptm ...] [--metrics mauve ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mpsynth.core import schema
from mpsynth.metrics.verdict import interconnection, verdicts
from mpsynth.rundir.directory import RunDirectory
from mpsynth.stages.replicates import replicate_spread


def signed(value: float) -> str:
    text = f"{value:+.3f}"
    return "+0.000" if text == "-0.000" else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--top", type=int, default=15, help="metrics shown (by the first set)")
    parser.add_argument("--sets", nargs="*", help="the sets shown (default: every synthetic set)")
    parser.add_argument("--metrics", nargs="*", help="these metrics only, in this order")
    args = parser.parse_args()
    rows = pq.read_table(args.run_dir / "evaluate" / "metrics.parquet").to_pylist()
    spread = replicate_spread(RunDirectory(args.run_dir))
    found = [v for v in verdicts(rows, spread) if v.platform == schema.ALL_PLATFORMS]
    names = args.sets or sorted({v.dataset for v in found})
    cells = {(v.family, v.metric, v.dataset): v for v in found}
    order = list(dict.fromkeys((v.family, v.metric) for v in found if v.dataset == names[0]))
    generations = max((v.replicates for v in found), default=1)
    print(f"{generations} generation(s); value: gap beyond the ceiling (95% interval)\n")
    print("| family | metric | real | ceiling | " + " | ".join(names) + " |")
    print("|---|---|---|---|" + "---|" * len(names))
    if args.metrics:
        order = [(f, m) for m in args.metrics for f, n in order if n == m]
    for family, metric in order[: args.top]:
        first = cells[(family, metric, names[0])]
        real = "–" if first.real is None else f"{first.real:.3f}"
        shown = []
        for name in names:
            v = cells.get((family, metric, name))
            if v is None:
                shown.append("–")
            elif v.by_construction:
                shown.append(f"{v.value:.3f} (by construction)")
            elif v.low is None:
                shown.append(f"{v.value:.3f}: {signed(v.gap)}")
            else:
                sd = f" ±{v.sd:.3f}" if v.sd is not None else ""
                shown.append(
                    f"{v.value:.3f}{sd}: {signed(v.gap)} ({signed(v.low)} to {signed(v.high)})"
                )
        print(f"| {family} | {metric} | {real} | {first.ceiling:.3f} | " + " | ".join(shown) + " |")
    print()
    for sentence in interconnection(rows, spread):
        print(sentence)


if __name__ == "__main__":
    main()
