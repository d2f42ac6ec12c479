"""Composition after generation: how many accepted posts each cell (platform x topic for MPTM,
platform for per-platform sets) holds against its target, what the short cells lack, the surplus
to trim, and how far the synthetic cell distribution is from the real one."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from mpsynth.metrics.stats import js_divergence
from mpsynth.stages.pools import Cell


def cells_of(table: pa.Table, strategy: str) -> list[Cell]:
    platforms = table.column("platform").to_pylist()
    if strategy != "mptm":
        return [(None, p) for p in platforms]
    return list(zip(table.column("topic").to_pylist(), platforms, strict=True))


def shortfall(targets: dict[Cell, int], counts: Counter) -> dict[Cell, int]:
    """Posts each short cell still lacks."""
    return {cell: n - counts[cell] for cell, n in targets.items() if counts[cell] < n}


def within_targets(cells: list[Cell], targets: dict[Cell, int]) -> np.ndarray:
    """Keep mask: the first `target` posts of every cell (a cell without a target keeps none)."""
    seen: Counter = Counter()
    keep = np.zeros(len(cells), dtype=bool)
    for row, cell in enumerate(cells):
        seen[cell] += 1
        keep[row] = seen[cell] <= targets.get(cell, 0)
    return keep


def cell_js_divergence(real: dict[Cell, int], synthetic: Counter) -> float:
    """Jensen-Shannon divergence (base 2: 0 same, 1 disjoint) between two cell distributions."""
    cells = sorted(set(real) | set(synthetic), key=lambda c: (c[0] is None, c[0] or 0, c[1]))
    return js_divergence(
        np.array([real.get(c, 0) for c in cells], dtype=float),
        np.array([synthetic.get(c, 0) for c in cells], dtype=float),
    )
