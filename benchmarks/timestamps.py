"""Ingest's timestamp parsing on every CSV in a folder: per file, the timestamps parsed, unparsed
(kept as null) and missing, the forms seen, and the accounts per platform.

    .venv/bin/python benchmarks/timestamps.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from mpsynth.config import IngestConfig
from mpsynth.stages.ingest.normalise import ingest

REPO = Path(__file__).resolve().parents[1]


def shape(value: str) -> str:
    """A timestamp's form: digits as 9, letters as a."""
    return re.sub(r"[A-Za-z]", "a", re.sub(r"\d", "9", value))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    print("| file | rows | parsed | unparsed | missing | forms | accounts per platform | s |")
    print("|---|---|---|---|---|---|---|---|")
    for path in sorted(args.data.glob("*.csv")):
        raw = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={"timestamp": pa.string()}),
        )
        values = [v for v in raw.column("timestamp").to_pylist() if v]
        forms = Counter(shape(v) for v in values).most_common(2)
        config = {"inputs": [{"path": str(path), "columns": {"label": None, "split": None}}]}
        started = time.perf_counter()
        result = ingest(IngestConfig.model_validate(config))
        seconds = time.perf_counter() - started
        counts = result.timestamps[str(path)]
        accounts = ", ".join(f"{p} {c['accounts']:,}" for p, c in result.summary.items())
        print(
            f"| {path.name} | {raw.num_rows:,} | {counts['parsed']:,} | {counts['unparsed']:,} | "
            f"{counts['missing']:,} | {'; '.join(f'`{f}`' for f, _ in forms) or '–'} | "
            f"{accounts} | {seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
