"""The runners a labelled run adds or replaces: labels (classes and splits), cues (classifier and
SHAP), class pools, postprocess with the label-consistency filter, and the utility grid."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth import console, schema
from mpsynth.classifier import TextClassifier
from mpsynth.postprocess_runners import run_postprocess
from mpsynth.stage_context import StageContext, write_table

log = logging.getLogger(__name__)


def run_labels(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.labels import assign_labels

    posts = pq.read_table(ctx.path("ingest", "posts.parquet"), columns=["id", "label", "split"])
    result = assign_labels(posts, ctx.config.labelled, ctx.config.seed)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
    for role, counts in result.summary["classes"].items():
        log.info("labels %-10s %6d  %s", role, sum(counts.values()), _counts_text(counts))
    if result.dropped.num_rows:
        log.info(
            "labels: %d posts left out (%s)", result.dropped.num_rows, result.summary["dropped"]
        )
    counts = {role: sum(c.values()) for role, c in result.summary["classes"].items()}
    write_table(result.dropped, out / "dropped.parquet")
    return {"labelled": write_table(result.labels, out / "labels.parquet"), **counts}


def _counts_text(counts: dict[str, int]) -> str:
    return " ".join(f"{label} {n}" for label, n in counts.items())


def labelled_texts(ctx: StageContext, roles: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(texts, labels) of the posts with one of `roles`, read through a filter on the split, so a
    role left out (the test split) is never loaded."""
    labels = pq.read_table(
        ctx.path("labels", "labels.parquet"), filters=[("split", "in", list(roles))]
    )
    ids = labels.column("id").to_pylist()
    posts = pq.read_table(
        ctx.path("ingest", "posts.parquet"), columns=["id", "text"], filters=[("id", "in", ids)]
    )
    text_of = dict(
        zip(posts.column("id").to_pylist(), posts.column("text").to_pylist(), strict=True)
    )
    return [text_of[i] for i in ids], labels.column("label").to_pylist()


def run_cues(ctx: StageContext, out: Path) -> dict[str, Any]:
    from mpsynth.stages.cues import build_cues

    config = ctx.config.labelled.cues
    seed_texts, seed_labels = labelled_texts(ctx, ("seed",))
    val_texts, val_labels = labelled_texts(ctx, ("validation",))
    description = f"cues: fitting {', '.join(config.classifiers)} on {len(seed_texts)} seed posts"
    with console.progress(description, None, unit="models"):
        result = build_cues(seed_texts, seed_labels, val_texts, val_labels, config, ctx.config.seed)
    log.info(
        "cues: chose %s (validation macro-F1 %s)",
        result.chosen,
        ", ".join(f"{k} {v:.3f}" for k, v in result.validation_macro_f1.items()),
    )
    for label in sorted(set(result.cues.column("label").to_pylist())):
        words = result.cues.filter(pc.equal(result.cues.column("label"), label))
        log.info("cues %-10s %s", label, ", ".join(words.column("word").to_pylist()[:8]))
    classifier = {
        "chosen": result.chosen,
        "validation_macro_f1": result.validation_macro_f1,
        "classes": sorted(set(seed_labels) | set(val_labels)),
        "faithfulness": result.faithfulness,
    }
    (out / "classifier.json").write_text(json.dumps(classifier, indent=2) + "\n")
    return {"cues": write_table(result.cues, out / "cues.parquet"), "classifier": result.chosen}


def seed_classifier(ctx: StageContext) -> TextClassifier:
    """The cues stage's chosen classifier, fitted again on the seed (seeded, so the same model)."""
    chosen = json.loads(ctx.path("cues", "classifier.json").read_text())
    cues = ctx.config.labelled.cues
    texts, labels = labelled_texts(ctx, ("seed",))
    model = TextClassifier(
        chosen["chosen"], chosen["classes"], ctx.config.seed, cues.max_features, cues.min_df
    )
    return model.fit(texts, labels)


def run_class_pools(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.labels import class_targets
    from mpsynth.stages.pools import build_class_pools

    labelled = ctx.config.labelled
    labels = pq.read_table(ctx.path("labels", "labels.parquet"), filters=[("split", "=", "seed")])
    posts = pq.read_table(
        ctx.path("ingest", "posts.parquet"),
        columns=["id", "platform"],
        filters=[("id", "in", labels.column("id").to_pylist())],
    )
    seed_counts = {
        v["values"]: v["counts"] for v in labels.column("label").value_counts().to_pylist()
    }
    targets = class_targets(seed_counts, labelled.targets, ctx.config.generate.n_posts)
    log.info("pools: posts to generate per strategy  %s", _counts_text(targets))
    (out / "targets.json").write_text(json.dumps(targets, indent=2) + "\n")
    pools = build_class_pools(
        labels,
        dict(
            zip(posts.column("id").to_pylist(), posts.column("platform").to_pylist(), strict=True)
        ),
        pq.read_table(ctx.path("cues", "cues.parquet")),
        labelled.strategies,
        targets,
        ctx.config.pools.examples_per_prompt,
        ctx.config.prompts.posts_per_platform,
        labelled.cues.prompt_cues,
        ctx.config.seed,
    )
    return {"pools": write_table(pools, out / "pools.parquet")}


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
            _counts_text(filtered[path.stem]) or "none",
        )
    summary["label_filter"] = {"threshold": threshold, "dropped": filtered}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    rows["rejected"] = write_table(pa.concat_tables(rejected), out / "rejected.parquet")
    return rows


def grid_data(ctx: StageContext):
    """What every cell of the utility grid reads: seed, reserve, test and synthetic posts."""
    from mpsynth.stages.utility import GridData, Labelled

    labelled = ctx.config.labelled
    chosen = json.loads(ctx.path("cues", "classifier.json").read_text())
    classes = chosen["classes"]

    def part(texts: list[str], labels: list[str]) -> Labelled:
        return Labelled(texts, np.array([classes.index(label) for label in labels], dtype=np.int64))

    synthetic = {}
    for path in sorted(ctx.path("postprocess", "synthetic").glob("*.parquet")):
        table = pq.read_table(path, columns=["text", "label"])
        synthetic[path.stem] = part(
            table.column("text").to_pylist(), table.column("label").to_pylist()
        )
    targets = json.loads(ctx.path("pools", "targets.json").read_text())
    return GridData(
        classes=classes,
        kind=chosen["chosen"],
        seed=part(*labelled_texts(ctx, ("seed",))),
        reserve=part(*labelled_texts(ctx, ("reserve",))),
        test=part(*labelled_texts(ctx, ("test",))),
        synthetic=synthetic,
        real_mix={classes.index(c): n for c, n in targets.items()},
        max_features=labelled.cues.max_features,
        min_df=labelled.cues.min_df,
    )


def run_utility(ctx: StageContext, out: Path) -> dict[str, Any]:
    from mpsynth.distributed.tasks import map_tasks
    from mpsynth.stages.utility import (
        CELLS_SCHEMA,
        linguistic_by_class,
        plan_cells,
        run_cell,
        summarise,
    )

    labelled = ctx.config.labelled
    data = grid_data(ctx)
    seed, reserve, test, synthetic, classes = (
        data.seed,
        data.reserve,
        data.test,
        data.synthetic,
        data.classes,
    )
    cells, skipped = plan_cells(
        data, labelled.utility.added, labelled.utility.repeats, ctx.config.seed
    )
    for note in skipped:
        log.warning("utility: skipped %s", note)
    log.info(
        "utility: %d cells (%s classifier; seed %d, reserve %d, test %d posts)",
        len(cells),
        data.kind,
        len(seed.texts),
        len(reserve.texts),
        len(test.texts),
    )
    started = time.perf_counter()
    results = map_tasks(
        run_cell,
        cells,
        data,
        1.0,
        "utility: training classifiers",
        resources=ctx.config.ray.resources_for("utility"),
    )
    seconds = time.perf_counter() - started
    table = pa.Table.from_pylist(results, schema=CELLS_SCHEMA)
    summary = summarise(
        table,
        test.labels,
        classes,
        labelled.utility.bootstrap_samples,
        labelled.utility.confidence,
        ctx.config.seed,
    )
    write_table(table, out / "cells.parquet")
    write_table(summary, out / "summary.parquet")
    training_counts = np.bincount(
        np.concatenate([seed.labels, reserve.labels]), minlength=len(classes)
    )
    minority = classes[int(np.argmin(training_counts))]
    linguistic = linguistic_by_class(
        {"real": seed, **synthetic}, classes, per_class=500, seed=ctx.config.seed
    )
    write_table(linguistic, out / "linguistic.parquet")
    info = {
        "classes": classes,
        "minority": minority,
        "classifier": data.kind,
        "posts": {"seed": len(seed.texts), "reserve": len(reserve.texts), "test": len(test.texts)},
        "confidence": labelled.utility.confidence,
        "cells": len(cells),
        "skipped": skipped,
        "grid_seconds": round(seconds, 2),
        "cell_seconds_total": round(float(sum(r["seconds"] for r in results)), 2),
    }
    (out / "utility.json").write_text(json.dumps(info, indent=2) + "\n")
    baseline = summary.filter(pc.equal(summary.column("added"), 0)).to_pylist()
    macro = [r for r in baseline if r["class"] is None]
    if macro:
        log.info(
            "utility: seed alone macro-F1 %.3f; %d cells in %.1fs",
            macro[0]["f1"],
            len(cells),
            seconds,
        )
    return {"cells": len(cells), "seconds": round(seconds, 1)}
