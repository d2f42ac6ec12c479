"""The report stage's runner: report.html and dataset_card.md from the evaluation's tables and the
summaries of the stages before it."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from mpsynth.core import schema
from mpsynth.rundir.context import StageContext


def run_report(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.report.card import render_dataset_card
    from mpsynth.report.html import render_report

    examples = {}
    for path in sorted(ctx.path("postprocess", "synthetic").glob("*.parquet")):
        table = pq.read_table(path, columns=["platform", "text"]).to_pylist()
        by_platform: dict[str, list] = {}
        for row in table:
            if len(by_platform.setdefault(row["platform"], [])) < 3:
                by_platform[row["platform"]].append(row)
        examples[path.stem] = [row for rows in by_platform.values() for row in rows]
    # null (cannot be computed) is NaN to the plotting and table code
    metrics = schema.null_as_nan(
        pq.read_table(ctx.path("evaluate", "metrics.parquet")), schema.METRIC_VALUES
    )
    from mpsynth.report.steps import steps_section

    summary = ctx.run.stage_dir("postprocess") / "summary.json"  # none for external sets
    postprocessed = json.loads(summary.read_text()) if summary.is_file() else None
    copies = None if postprocessed is None else postprocessed.get("copies", {})
    composition = (postprocessed or {}).get("composition", {})
    masked = ctx.run.manifest()["stages"].get("prompts", {}).get("rows", {})
    masked = {k: v for k, v in masked.items() if k.startswith("masked")}
    steps = steps_section(copies or {}, masked, composition)
    sections = _utility_section(ctx) if ctx.has("utility") else ""
    page = render_report(
        ctx.config.report.title,
        metrics,
        pq.read_table(ctx.path("evaluate", "features"), columns=["dataset", "platform", "chars"]),
        pq.read_table(ctx.path("evaluate", "map.parquet")),
        json.loads(ctx.path("ingest", "summary.json").read_text()),
        examples,
        ctx.run.manifest(),
        sections,
        steps,
    )
    (out / "report.html").write_text(page, encoding="utf-8")
    counts = {}
    for path in sorted(ctx.path("postprocess", "synthetic").glob("*.parquet")):
        platforms = pq.read_table(path, columns=["platform"]).column("platform").value_counts()
        counts[path.stem] = {v["values"]: v["counts"] for v in platforms.to_pylist()}
    card = render_dataset_card(
        ctx.config,
        metrics.to_pylist(),
        counts,
        json.loads(ctx.path("ingest", "summary.json").read_text()),
        ctx.run.manifest(),
        pq.read_table(ctx.path("utility", "summary.parquet")).to_pylist()
        if ctx.has("utility")
        else None,
        copies,
        masked,
        composition,
    )
    (out / "dataset_card.md").write_text(card, encoding="utf-8")
    return {"bytes": len(page.encode())}


def _utility_section(ctx: StageContext) -> str:
    from mpsynth.report.html import png
    from mpsynth.report.utility import render_utility

    return render_utility(
        pq.read_table(ctx.path("utility", "summary.parquet")),
        pq.read_table(ctx.path("cues", "cues.parquet")),
        pq.read_table(ctx.path("utility", "linguistic.parquet")),
        json.loads(ctx.path("utility", "utility.json").read_text()),
        json.loads(ctx.path("cues", "classifier.json").read_text()),
        json.loads(ctx.path("labels", "summary.json").read_text()),
        png,
    )
