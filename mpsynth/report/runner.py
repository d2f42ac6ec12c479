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
    from mpsynth.stages.evaluate.runner import synthetic_sets

    examples = {}
    for path in synthetic_sets(ctx):
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
    from mpsynth.stages.replicates import replicate_spread

    spread = replicate_spread(ctx.run) if ctx.has("replicates") else None

    summary = ctx.run.stage_dir("postprocess") / "summary.json"  # none for external sets
    postprocessed = json.loads(summary.read_text()) if summary.is_file() else None
    copies = None if postprocessed is None else postprocessed.get("copies", {})
    composition = (postprocessed or {}).get("composition", {})
    masked = ctx.run.manifest()["stages"].get("prompts", {}).get("rows", {})
    masked = {k: v for k, v in masked.items() if k.startswith("masked")}
    deficit = (postprocessed or {}).get("deficit")  # a labelled run's class targets
    steps = steps_section(copies or {}, masked, composition, deficit)
    sections = _utility_section(ctx) if ctx.has("utility") else ""
    structure = _structure_section(ctx, metrics.to_pylist())
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
        structure,
        sentiment_backend(ctx.config.evaluate),
        measure_space(ctx),
        spread,
    )
    (out / "report.html").write_text(page, encoding="utf-8")
    counts = {}
    for path in synthetic_sets(ctx):
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
        _structure_summary(ctx),
        json.loads(ctx.path("labels", "summary.json").read_text()).get("sources")
        if ctx.has("labels")
        else None,
        deficit,
        spread,
    )
    (out / "dataset_card.md").write_text(card, encoding="utf-8")
    from mpsynth.report.viewer import render_viewer, viewer_data

    viewer = render_viewer(viewer_data(ctx, synthetic_sets(ctx), ctx.config.report.viewer_posts))
    (out / "viewer.html").write_text(viewer, encoding="utf-8")
    return {"bytes": len(page.encode()), "viewer_bytes": len(viewer.encode())}


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


def _structure_summary(ctx: StageContext) -> dict | None:
    """The structure stage's summary, when this run's sets went through it."""
    summary = ctx.run.stage_dir("structure") / "summary.json"
    if not (ctx.has("structure") and summary.is_file()):
        return None
    return json.loads(summary.read_text())


def _structure_section(ctx: StageContext, metrics: list[dict]) -> str:
    from mpsynth.report.html import png
    from mpsynth.report.structure import render_structure

    evaluated = ctx.run.stage_dir("evaluate")
    curves, drawings = (evaluated / "structure_curves.parquet", evaluated / "network_top.parquet")
    sets = (_structure_summary(ctx) or {}).get("sets", {})
    ingest = json.loads(ctx.path("ingest", "summary.json").read_text())
    carried = {
        schema.REAL: {p: {"posts": c["kept"], **c} for p, c in ingest.items()},
        **{name: s["platforms"] for name, s in sets.items()},
    }
    return render_structure(
        metrics,
        pq.read_table(curves) if curves.is_file() else None,
        pq.read_table(drawings) if drawings.is_file() else None,
        carried,
        account_example(ctx, sets) if sets else None,
        png,
    )


def account_example(ctx: StageContext, sets: dict, shown: int = 6) -> dict | None:
    """The busiest account of the first MPTM set (else the first set) beside posts of the real
    accounts of its persona."""
    import pyarrow.compute as pc

    names = sorted(sets, key=lambda n: ("mptm" not in n, "calibrated" in n, n))
    table = pq.read_table(
        ctx.run.stage_dir("structure") / "synthetic" / f"{names[0]}.parquet",
        columns=["platform", "text", "author", "persona", "timestamp"],
    ).filter(pc.is_valid(pc.field("author")))
    if not table.num_rows:
        return None
    counts = table.column("author").value_counts().to_pylist()
    author = max(counts, key=lambda c: (c["counts"], c["values"]))["values"]
    mine = table.filter(pc.equal(table.column("author"), author))
    platform, persona = mine.column("platform")[0].as_py(), mine.column("persona")[0].as_py()
    personas = pq.read_table(ctx.run.stage_dir("structure") / "personas.parquet")
    members = personas.filter(
        pc.and_(
            pc.equal(personas.column("platform"), platform),
            pc.equal(personas.column("persona"), persona),
        )
    ).column("account")
    real = pq.read_table(ctx.reference(), columns=["platform", "text", "author", "timestamp"])
    real = real.filter(
        pc.and_(
            pc.equal(real.column("platform"), platform), pc.is_in(real.column("author"), members)
        )
    )
    step = max(1, real.num_rows // shown)
    return {
        "dataset": names[0],
        "author": author,
        "platform": platform,
        "persona": persona,
        "persona_accounts": len(members),
        "synthetic": mine.sort_by("timestamp").slice(0, shown).to_pylist(),
        "real": real.take(list(range(0, real.num_rows, step))[:shown])
        .sort_by("timestamp")
        .to_pylist(),
    }


def sentiment_backend(evaluate) -> str:
    """What measured sentiment, in words: the default backend, then any per-language ones."""

    def name(config) -> str:
        return "VADER" if config.kind == "vader" else config.model

    return "; ".join(
        [
            name(evaluate.sentiment),
            *(f"{lang}: {name(c)}" for lang, c in sorted(evaluate.sentiment_by_language.items())),
        ]
    )


def measure_space(ctx: StageContext) -> str:
    """The embedding the evaluation measured similarity in, in words (model and backend)."""
    from mpsynth.stages.embed import similarity_space

    embedder = similarity_space(ctx)[0]
    match embedder.kind:
        case "sentence-transformers":
            return f"{embedder.model} ({embedder.backend})"
        case "lsa":
            return f"the run's LSA space ({embedder.dimensions} dimensions)"
        case _:
            return getattr(embedder, "model", embedder.kind)
