"""The replicates stage: the generation drawn `generate.replicates` times, each evaluated, so that
every metric carries its spread over independent generations beside its bootstrap over posts.

The run directory's own sets are the first generation. Each further one is a run directory of its
own, `RUN_DIR/generations/<k>/` (k = 2 .. N), whose config differs only in `generate.replicate`
(k - 1): its stages up to the holdout have this run's fingerprints and are hard-linked from here
(nothing before pools is computed again, and the embedding cache is this run's), while pools,
prompts, generation, postprocess, structure and evaluate draw with seeds of their own
(`RunConfig.draw_seed`). A generation that is done is skipped when the stage runs again; one that
crashed resumes where it stopped, as any run does.

Writes `replicates/metrics.parquet` (every generation's metric rows, `replicate` 1..N) and
`replicates/spread.parquet` (per metric, set and platform: the mean over generations, its 95%
t-interval, the standard deviation, min and max).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.config import RunConfig
from mpsynth.core import console
from mpsynth.core.errors import StageError
from mpsynth.rundir.context import StageContext, write_table
from mpsynth.rundir.directory import RunDirectory

log = logging.getLogger(__name__)

FOLDER = "generations"

SPREAD = pa.schema(
    [
        ("family", pa.string()),
        ("metric", pa.string()),
        ("dataset", pa.string()),
        ("platform", pa.string()),
        ("replicates", pa.int64()),
        ("mean", pa.float64()),
        ("mean_low", pa.float64()),
        ("mean_high", pa.float64()),
        ("sd", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
    ]
)


def replicate_location(config: RunConfig, k: int) -> str:
    """Where generation k (2..N) of a run lives: a folder of the run directory."""
    return f"{str(config.run_dir).rstrip('/')}/{FOLDER}/{k}"


def replicate_config(config: RunConfig, k: int) -> RunConfig:
    """Generation k's config: this run's, with its own replicate number and run directory."""
    from mpsynth.config.sections import _location

    generate = config.generate.model_copy(update={"replicate": k - 1, "replicates": 1})
    # a copy, not a re-validation: settings left to their defaults stay unset (an input's column
    # mapping tells what was asked from what was defaulted)
    return config.model_copy(
        update={"run_dir": _location(replicate_location(config, k)), "generate": generate}
    )


def run_replicates(ctx: StageContext, out: Path) -> dict[str, Any]:
    from mpsynth.stages.embed import cache_folder

    run_pipeline = ctx.pipeline
    if run_pipeline is None:
        raise StageError("the replicates stage runs within a pipeline (mpsynth run)")

    total = ctx.config.generate.replicates
    tables = [_tagged(ctx.path("evaluate", "metrics.parquet"), 1)]

    def donor(stage: str, stage_fingerprint: str) -> Path | None:
        current = ctx.run.is_current(stage, stage_fingerprint)
        return ctx.run.stage_dir(stage) if current else None

    for k in range(2, total + 1):
        log.info("replicates: generation %d of %d", k, total)
        config = replicate_config(ctx.config, k)
        try:
            run_pipeline(
                config,
                until="evaluate",
                donors=donor,
                cache_dir=cache_folder(ctx),
                ledger_root=ctx.ledger_root,
            )
        finally:
            console.open_run_log(ctx.run.root)  # back to this run's own log
        done = RunDirectory.open(config.run_dir, pull=False)
        tables.append(_tagged(done.stage_dir("evaluate") / "metrics.parquet", k))
    metrics = pa.concat_tables(tables)
    spread = spread_table(metrics)
    write_table(metrics, out / "metrics.parquet")
    write_table(spread, out / "spread.parquet")
    (out / "summary.json").write_text(
        json.dumps({"replicates": total, "folder": FOLDER}, indent=2) + "\n"
    )
    return {"replicates": total, "metrics": metrics.num_rows}


def _tagged(path: Path, k: int) -> pa.Table:
    table = pq.read_table(path)
    return table.append_column("replicate", pa.array([k] * table.num_rows, pa.int64()))


def t_quantile(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def spread_table(metrics: pa.Table) -> pa.Table:
    """Per (family, metric, dataset, platform), all topics together: each metric's spread over the
    generations that have a value of it."""
    found: dict[tuple, list[float]] = {}
    for row in metrics.select(
        ["family", "metric", "dataset", "platform", "topic", "value"]
    ).to_pylist():
        if row["topic"] is not None or row["value"] is None or math.isnan(row["value"]):
            continue
        key = (row["family"], row["metric"], row["dataset"], row["platform"])
        found.setdefault(key, []).append(row["value"])
    rows = []
    for (family, metric, dataset, platform), values in found.items():
        values_array = np.asarray(values, dtype=float)
        n = len(values_array)
        # values alike to the last bit have no spread (mean and std's rounding would invent one)
        same = bool(np.ptp(values_array) == 0)
        mean = float(values_array[0]) if same else float(values_array.mean())
        sd = (0.0 if same else float(values_array.std(ddof=1))) if n > 1 else None
        half = t_quantile(n - 1) * sd / math.sqrt(n) if sd is not None else None
        rows.append(
            {
                "family": family,
                "metric": metric,
                "dataset": dataset,
                "platform": platform,
                "replicates": n,
                "mean": mean,
                "mean_low": None if half is None else mean - half,
                "mean_high": None if half is None else mean + half,
                "sd": sd,
                "min": float(values_array.min()),
                "max": float(values_array.max()),
            }
        )
    return pa.Table.from_pylist(rows, schema=SPREAD)


def replicate_spread(run: RunDirectory) -> dict[tuple, dict[str, Any]] | None:
    """(family, metric, dataset, platform) -> its spread row, when the run drew more than one
    generation; None otherwise."""
    path = run.stage_dir("replicates") / "spread.parquet"
    if not path.is_file():
        return None
    rows = pq.read_table(path).to_pylist()
    if not rows or max(r["replicates"] for r in rows) < 2:
        return None
    return {(r["family"], r["metric"], r["dataset"], r["platform"]): r for r in rows}
