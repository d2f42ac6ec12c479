"""What a coordination study reads from a finished run's sets beside the real posts: the shares of
each kind of post per platform, the engagement distributions (KS against the real values, Gini,
with intervals) and the five coordination networks (size, density, coordinated pairs), real
subsample first; then what the structure stage asked for: the quotes' and replies' requests
(through the ledger) and the reposts' (none).

    .venv/bin/mpsynth run configs/politics.yaml --set run_dir=runs/politics
    .venv/bin/python benchmarks/interactions_check.py runs/politics
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.core import schema
from mpsynth.generation.ledger import read_ledger

NETWORKS = ("co_url", "co_retweet", "co_tweet", "co_similar_tweet", "co_reply")


def _value(row: dict | None, digits: int = 3) -> str:
    if row is None or row["value"] is None or math.isnan(row["value"]):
        return "-"
    text = f"{row['value']:.{digits}f}"
    low, high = row.get("ci_low"), row.get("ci_high")
    if low is not None and high is not None and not math.isnan(low) and not math.isnan(high):
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    metrics = pq.read_table(args.run_dir / "evaluate" / "metrics.parquet")
    metrics = metrics.filter(pc.is_null(metrics["topic"])).to_pylist()
    by_key = {(r["dataset"], r["platform"], r["metric"]): r for r in metrics}
    sets = sorted({r["dataset"] for r in metrics} - {schema.REAL, schema.REAL_SUBSAMPLE,
                                                      schema.REAL_HOLDOUT})  # fmt: skip
    sets = [s for s in sets if "calibrated" not in s]
    shown = [schema.REAL, schema.REAL_HOLDOUT, schema.REAL_SUBSAMPLE, *sets]
    platforms = sorted({r["platform"] for r in metrics} - {schema.ALL_PLATFORMS})
    print(f"run: {args.run_dir}; sets {', '.join(sets)} (calibrated copies share their reposts)")
    for platform in platforms:
        print(f"\n== {platform}")
        found = sorted(
            {
                r["metric"]
                for r in metrics
                if r["family"] == "interaction" and r["platform"] == platform
            },
            key=lambda m: (not m.startswith("share_"), m),
        )
        print(f"{'metric':<26}" + "".join(f"{d:>34}" for d in shown))
        for metric in found:
            print(
                f"{metric:<26}"
                + "".join(f"{_value(by_key.get((d, platform, metric))):>34}" for d in shown)
            )
        for network in NETWORKS:
            cells = []
            for d in shown:
                edges = by_key.get((d, platform, f"{network}_edges"))
                if edges is None:
                    cells.append("-")
                    continue
                nodes = by_key.get((d, platform, f"{network}_nodes"))
                density = by_key.get((d, platform, f"{network}_density"))
                pairs = by_key.get((d, platform, f"{network}_coordinated_pairs"))
                cells.append(
                    f"{int(nodes['value'])}n {int(edges['value'])}e "
                    f"d{_value(density, 4) if density else '-'} "
                    f"c{int(pairs['value']) if pairs else 0}"
                )
            print(f"{network:<26}" + "".join(f"{c:>34}" for c in cells))
    summary = json.loads((args.run_dir / "structure" / "summary.json").read_text())
    requests = args.run_dir / "structure" / "reply_requests.parquet"
    made = pq.read_table(requests).to_pylist() if requests.exists() else []
    print("\n== what the structure stage asked for")
    for name in sets:
        mine = summary["sets"][name]
        table = pq.read_table(args.run_dir / "structure" / "synthetic" / f"{name}.parquet")
        kinds = table["post_kind"].to_pylist() if "post_kind" in table.column_names else []
        rows = table.to_pylist()
        by_id = {r["id"]: r for r in rows}
        reposts = [r for r in rows if r.get("post_kind") == "repost"]
        own_request = sum(r["request_id"] != by_id[r["quote_of"]]["request_id"] for r in reposts)
        generator = name.split("-")[0]
        ledger = set(read_ledger(args.run_dir / "ledger" / generator)["request_id"].to_pylist())
        strategy = name.split("-", 1)[1]
        asked = [r for r in made if r["generator"] == generator and r["strategy"] == strategy]
        print(
            f"{name}: {len(rows):,} posts; quotes {kinds.count('quote'):,}, replies "
            f"{kinds.count('reply'):,}, comments {kinds.count('comment'):,}, reposts "
            f"{len(reposts):,} ({own_request} with a request of their own); the generator's "
            f"structure requests {len(asked):,}, all in its ledger: "
            f"{all(r['request_id'] in ledger for r in asked)}"
        )
        for kind in ("replies", "quotes"):
            for platform, counts in mine.get(kind, {}).get("platforms", {}).items():
                print(
                    f"  {kind} {platform}: {counts['written']:,} of {counts['planned']:,} "
                    f"(real share {counts['real_share']:.1%})"
                )


if __name__ == "__main__":
    main()
