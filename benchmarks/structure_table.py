"""The structure and network metrics of a finished run, real beside every synthetic set, as a
Markdown table (values with their bootstrap intervals where they have one).

    .venv/bin/python benchmarks/structure_table.py runs/politics [--platform all] [--sets a b]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow.parquet as pq

FAMILIES = ("structure", "network", "privacy")


def cell(row: dict | None) -> str:
    if row is None or row["value"] is None:
        return "–"
    value = row["value"]
    text = (
        f"{value:,.0f}"
        if row["metric"].endswith(("accounts", "_nodes", "_edges", "_pairs"))
        else f"{value:.3f}"
    )
    if row["ci_low"] is not None:
        text += f" [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--platform", default="all")
    parser.add_argument("--sets", nargs="*", help="synthetic sets to show (default: every one)")
    args = parser.parse_args()
    rows = [
        r
        for r in pq.read_table(args.run_dir / "evaluate" / "metrics.parquet").to_pylist()
        if r["family"] in FAMILIES
        and r["platform"] == args.platform
        and r["topic"] is None
        and (r["family"] != "privacy" or r["metric"] == "account_linkage")
    ]
    sets = args.sets or sorted({r["dataset"] for r in rows} - {"real"})
    names = ["real", *sets]
    by_key = {(r["dataset"], r["metric"]): r for r in rows}
    metrics = list(dict.fromkeys((r["family"], r["metric"]) for r in rows))
    print(f"platform: {args.platform}")
    print("| family | metric | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for family, metric in metrics:
        cells = [cell(by_key.get((name, metric))) for name in names]
        if all(c == "–" for c in cells):
            continue
        print(f"| {family} | {metric} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
