"""The utility grid's cost: seconds per cell for each classifier, serial in one process and as Ray
tasks over the machine's cores, and how the grid's time grows with its number of cells.

Data: TweetEval emotion from ../shared/data (or --data DIR), split as published, a 1,000-post seed;
without it, the bundled TRAC-1 sample (a 400-post seed). The added posts are drawn from the reserve
of real training posts for every strategy: the cost of a cell depends on the size of its training
set and the classifier, not on where the added posts come from.

    .venv/bin/python benchmarks/utility_grid.py --cells 8 16 32 64
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from mpsynth.config import RayConfig
from mpsynth.distributed.session import ray_session
from mpsynth.distributed.tasks import map_tasks
from mpsynth.labelled.utility import REAL, Cell, GridData, Labelled, run_cell

REPO = Path(__file__).resolve().parents[1]


def load(data: Path) -> tuple[GridData, str]:
    path, seed_size = data / "emotion_tweeteval.csv", 1000
    if not path.is_file():
        print(f"{path} not found: using the bundled TRAC-1 sample (tests/data)")
        path, seed_size = REPO / "tests" / "data" / "trac1_aggression.csv", 400
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    classes = sorted({r["label"] for r in rows})

    def part(subset):
        return Labelled(
            [r["text"] for r in subset], np.array([classes.index(r["label"]) for r in subset])
        )

    train = [r for r in rows if r["split"] == "train"]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(train))
    seed = [train[i] for i in order[:seed_size]]
    reserve = [train[i] for i in order[seed_size:]]
    grid = GridData(
        classes=classes,
        kind="logistic",
        seed=part(seed),
        reserve=part(reserve),
        test=part([r for r in rows if r["split"].startswith("test")]),
        synthetic={},
        real_mix=dict.fromkeys(range(len(classes)), 1),
        max_features=20_000,
        min_df=2,
    )
    return grid, path.name


def cells(count: int, added: list[int]) -> list[Cell]:
    """`count` cells cycling through the added counts, as a grid of repeats would."""
    return [Cell(REAL, added[i % len(added)], i, 1000 + i) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cells", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--kinds", nargs="+", default=["logistic", "xgboost"])
    parser.add_argument("--serial-cells", type=int, default=8, help="cells timed in one process")
    args = parser.parse_args()
    base, name = load(args.data)
    added = [a for a in (250, 500, 1000, 1500, 2000) if a <= len(base.reserve.texts)]
    print(
        f"{name}: seed {len(base.seed.texts)}, reserve {len(base.reserve.texts)}, "
        f"test {len(base.test.texts)}; added posts cycle through {added}"
    )
    results = []
    with ray_session(RayConfig()):
        for kind in args.kinds:
            grid = GridData(**{**base.__dict__, "kind": kind})
            started = time.perf_counter()
            for cell in cells(args.serial_cells, added):
                run_cell(cell, grid)
            serial = (time.perf_counter() - started) / args.serial_cells
            for count in args.cells:
                started = time.perf_counter()
                map_tasks(run_cell, cells(count, added), grid, 1.0, f"{kind}: {count} cells")
                seconds = time.perf_counter() - started
                results.append((kind, count, seconds, serial))
    print()
    print(
        f"{'classifier':<10} {'cells':>6} {'grid s':>8} {'s/cell':>7} {'serial s/cell':>14} "
        f"{'speed-up':>9} {'s/cell vs smallest':>19}"
    )
    for kind in args.kinds:
        mine = [r for r in results if r[0] == kind]
        smallest = mine[0][2] / mine[0][1]
        for _, count, seconds, serial in mine:
            per_cell = seconds / count
            print(
                f"{kind:<10} {count:>6} {seconds:>8.1f} {per_cell:>7.2f} {serial:>14.2f} "
                f"{serial / per_cell:>8.2f}x {per_cell / smallest:>18.2f}x"
            )


if __name__ == "__main__":
    main()
