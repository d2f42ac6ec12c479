"""Postprocess for a labelled run: the topic run's postprocess, then the optional label-consistency
filter (the seed classifier must agree with a post's label)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.core import schema
from mpsynth.labelled.cues import seed_classifier
from mpsynth.labelled.labels import class_counts_text
from mpsynth.rundir.context import StageContext, write_table
from mpsynth.stages.postprocess.runner import run_postprocess

log = logging.getLogger(__name__)


def run_labelled_postprocess(ctx: StageContext, out: Path) -> dict[str, Any]:
    """Postprocess as for any run; then, when labelled.filter_threshold is set, keep a post only
    when the seed classifier gives its class at least that probability."""
    rows = run_postprocess(ctx, out)
    threshold = ctx.config.labelled.filter_threshold
    if threshold is None:
        return rows
    model = seed_classifier(ctx)
    summary = json.loads((out / "summary.json").read_text())
    rejected = [pq.read_table(out / "rejected.parquet")]
    filtered: dict[str, dict[str, int]] = {}
    for path in sorted((out / "synthetic").glob("*.parquet")):
        table = pq.read_table(path)
        labels = table.column("label").to_pylist()
        proba = model.predict_proba(table.column("text").to_pylist())
        wanted = np.array([proba[i, model.classes.index(lab)] for i, lab in enumerate(labels)])
        keep = wanted >= threshold
        dropped = np.flatnonzero(~keep)
        counts: dict[str, int] = {}
        for i in dropped:
            counts[labels[i]] = counts.get(labels[i], 0) + 1
        filtered[path.stem] = dict(sorted(counts.items()))
        rejected.append(
            pa.table(
                {
                    "request_id": table.column("request_id").take(dropped),
                    "reason": [
                        f"label filter: p({labels[i]}) = {wanted[i]:.2f} < {threshold}"
                        for i in dropped
                    ],
                    "raw": table.column("text").take(dropped),
                },
                schema=schema.REJECTED_OUTPUTS,
            )
        )
        rows[path.stem] = write_table(table.filter(pa.array(keep)), path)
        log.info(
            "postprocess %s: label filter dropped %d of %d (%s)",
            path.stem,
            len(dropped),
            len(keep),
            class_counts_text(filtered[path.stem]) or "none",
        )
    summary["label_filter"] = {"threshold": threshold, "dropped": filtered}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    rows["rejected"] = write_table(pa.concat_tables(rejected), out / "rejected.parquet")
    return rows
