"""Ingest speed on a large CSV resampled from real posts: mpsynth's line-aware reader (every row's
line, malformed rows quarantined, the lines after them re-read) against Arrow's CSV reader (no line
numbers, a malformed row fails the file) as the reference, and the whole ingest stage.

    .venv/bin/python benchmarks/ingest_csv.py --posts 500000
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from mpsynth.config import IngestConfig
from mpsynth.stages.ingest.normalise import ingest
from mpsynth.stages.ingest.readers import read_csv

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["platform", "id", "timestamp", "author", "text", "lang", "label"]


def write_corpus(path: Path, n: int, source: Path, seed: int = 0) -> None:
    with source.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    picks = np.random.default_rng(seed).integers(0, len(rows), n)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for number, index in enumerate(picks):
            writer.writerow({**rows[index], "id": f"p{number}"})


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=500_000)
    parser.add_argument("--source", type=Path, default=REPO / "data" / "demo" / "posts.csv")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "posts.csv"
        write_corpus(path, args.posts, args.source)
        size_mb = path.stat().st_size / 1e6
        arrow_s, table = timed(
            lambda: pacsv.read_csv(
                path,
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(COLUMNS, pa.string())
                ),
            )
        )
        arrow_py_s, _ = timed(lambda: table.select(["platform", "id", "text"]).to_pydict())
        reader_s, rows = timed(lambda: read_csv(path, ["platform", "id", "text"]))
        config = IngestConfig.model_validate({"inputs": [{"path": str(path)}]})
        ingest_s, result = timed(lambda: ingest(config))
    assert len(rows) == table.num_rows == result.posts.num_rows == args.posts
    print(f"{args.posts:,} posts, {size_mb:.0f} MB of CSV ({args.source.name} resampled)")
    print(f"{'':34}{'seconds':>9}{'posts/s':>12}{'vs Arrow':>10}")
    reference = arrow_s + arrow_py_s
    for name, seconds in (
        ("Arrow read_csv + to_pydict", reference),
        ("mpsynth read_csv (lines, recovery)", reader_s),
        ("mpsynth ingest (all rules)", ingest_s),
    ):
        print(f"{name:34}{seconds:9.2f}{args.posts / seconds:12,.0f}{seconds / reference:9.2f}x")


if __name__ == "__main__":
    main()
