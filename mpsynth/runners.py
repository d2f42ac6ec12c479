"""The stage runners: what each pipeline stage reads from the run directory, computes, and writes
into its (scratch) output folder. mpsynth.pipeline decides which of them run."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth import console, schema
from mpsynth.evaluation_runners import run_evaluate, run_report
from mpsynth.postprocess_runners import run_postprocess
from mpsynth.rundir import RunDirectory
from mpsynth.stage_context import StageContext, rows_by_id, write_table

log = logging.getLogger(__name__)


def run_ingest(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.ingest import ingest

    result = ingest(ctx.config.ingest)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
    for platform, counts in result.summary.items():
        log.info("ingest %-10s read %7d  kept %7d  quarantined %6d", platform, *counts.values())
    return {
        "posts": write_table(result.posts, out / "posts.parquet"),
        "quarantined": write_table(result.quarantine, out / "quarantine.parquet"),
    }


def run_embed(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.distributed.data import map_parquet
    from mpsynth.distributed.session import actor_layout
    from mpsynth.embedders import prepare_embedder, uses_gpu
    from mpsynth.stages.embed import EmbedBatch

    embed = ctx.config.embed
    posts_path = ctx.path("ingest", "posts.parquet")
    state = prepare_embedder(
        embed.embedder,
        lambda: pq.read_table(posts_path, columns=["text"]).column("text").to_pylist(),
        ctx.config.seed,
        out,
    )
    actors, gpus = actor_layout(
        embed.actors, embed.gpus_per_actor, wants_gpu=uses_gpu(embed.embedder)
    )
    log.info("embed: %d actor(s), %g GPU each", actors, gpus)
    map_parquet(
        posts_path,
        out / "embeddings",
        EmbedBatch,
        columns=["id", "text"],
        constructor_kwargs={"config": embed.embedder, "state": state},
        actors=actors,
        num_cpus=ctx.config.ray.actor_num_cpus,
        num_gpus=gpus,
        resources=ctx.config.ray.resources_for("embed"),
        batch_size=embed.batch_size,
        description="embed",
    )
    return {"embeddings": pq.read_table(out / "embeddings", columns=["id"]).num_rows}


def run_topics(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.distributed.data import map_parquet
    from mpsynth.stages.embed import embeddings_matrix
    from mpsynth.stages.topics import AssignTopics, fit_topics, stratified_sample, topics_table

    topics = ctx.config.topics
    posts_path = ctx.path("ingest", "posts.parquet")
    embeddings_dir = ctx.path("embed", "embeddings")
    posts = pq.read_table(posts_path, columns=["id", "platform"])
    platforms = np.asarray(posts.column("platform").to_pylist(), dtype=object)
    sample = stratified_sample(platforms, topics.fit_sample_per_platform, ctx.config.seed)
    sample_ids = posts.column("id").take(pa.array(sample)).to_pylist()
    texts = rows_by_id(posts_path, sample_ids, "text").column("text").to_pylist()
    embedded = rows_by_id(embeddings_dir, sample_ids, "embedding")
    log.info(
        "topics: fitting on %d of %d posts (%s backend)",
        len(sample),
        len(platforms),
        topics.backend,
    )
    matrix = embeddings_matrix(embedded.column("embedding"))
    with console.progress("topics: fitting UMAP + HDBSCAN", None, unit="posts"):
        if topics.backend == "gpu":  # cuML on a GPU worker: the driver's node may have none
            from mpsynth.distributed.tasks import run_remote

            fitted = run_remote(
                fit_topics,
                texts,
                matrix,
                topics,
                ctx.config.seed,
                num_cpus=ctx.config.ray.actor_num_cpus,
                num_gpus=1,
                resources=ctx.config.ray.resources_for("topics"),
            )
        else:
            fitted = fit_topics(texts, matrix, topics, ctx.config.seed)
    console.tame_library_loggers()  # BERTopic adds a console handler of its own when built
    np.save(out / "centroids.npy", fitted.centroids)
    fitted.model.save(
        str(out / "bertopic"),
        serialization="safetensors",
        save_ctfidf=True,
        save_embedding_model=False,
    )
    map_parquet(
        embeddings_dir,
        out / "assignments",
        AssignTopics,
        constructor_kwargs={
            "centroids_path": out / "centroids.npy",
            "threshold": topics.outlier_threshold,
        },
        actors=1,
        num_cpus=ctx.config.ray.actor_num_cpus,
        resources=ctx.config.ray.resources_for("topics"),
        batch_size=topics.assign_batch_size,
        description="topics: assigning posts",
    )
    assignments = pq.read_table(out / "assignments")
    platform_of = dict(zip(posts.column("id").to_pylist(), platforms.tolist(), strict=True))
    table = topics_table(fitted.keywords, assignments, platform_of, topics.representative_posts)
    write_table(table, out / "topics.parquet")
    mixed = sum(1 for r in table.to_pylist() if r["topic"] >= 0 and len(r["platform_counts"]) > 1)
    outliers = int(pc.sum(pc.equal(assignments.column("topic"), -1)).as_py() or 0)
    log.info(
        "topics: %d topics (%d span several platforms), %d outliers",
        len(fitted.centroids),
        mixed,
        outliers,
    )
    return {
        "assignments": assignments.num_rows,
        "topics": len(fitted.centroids),
        "mixed_platform_topics": mixed,
        "outliers": outliers,
        "fit_sample": len(sample),
    }


def run_pools(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.pools import build_pools

    pools, targets = build_pools(
        pq.read_table(ctx.path("ingest", "posts.parquet"), columns=["id", "platform"]),
        pq.read_table(ctx.path("topics", "assignments")),
        ctx.config.pools,
        ctx.config.generate.n_posts,
        ctx.config.prompts.posts_per_platform,
        ctx.config.seed,
    )
    return {
        "pools": write_table(pools, out / "pools.parquet"),
        "cells": write_table(targets, out / "targets.parquet"),
    }


def run_prompts(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.prompts import build_requests
    from mpsynth.stages.pseudonymise import KINDS, Pseudonymiser, guard_applies

    guard = Pseudonymiser(ctx.config.seed, ctx.config.prompts.phone_region)
    requests = build_requests(
        pq.read_table(ctx.path("pools", "pools.parquet")),
        pq.read_table(ctx.path("ingest", "posts.parquet"), columns=["id", "platform", "text"]),
        ctx.config.prompts,
        ctx.config.generate.generators,
        ctx.config.labelled.descriptions if ctx.has("labels") else None,
        guard,
    )
    guarded = [
        g.name
        for g in ctx.config.generate.generators
        if guard_applies(ctx.config.prompts.privacy_guard, g.provider.kind)
    ]
    masked = guard.summary() if guarded else {}
    if guarded:
        log.info(
            "prompts: privacy guard (%s) masked %s",
            ", ".join(guarded),
            ", ".join(f"{guard.masked[kind]:,} {kind}" for kind in KINDS),
        )
    return {"requests": write_table(requests, out / "requests.parquet"), **masked}


def ledger_dir(run: RunDirectory, generator: str) -> Path:
    """Outside the stage folders on purpose: paid-for answers survive crashes and --force."""
    return run.root / "ledger" / generator


def generate_requests(
    ctx: StageContext, number: int, requests: pa.Table
) -> tuple[list[dict], dict[str, float]]:
    """Complete one generator's requests through its ledger: (the settled ledger row of each
    request that has one, this run's counts). The generator is the config's `number`th."""
    from mpsynth.distributed.generation import run_generator
    from mpsynth.generation.ledger import read_ledger, settled
    from mpsynth.generation.pricing import run_price
    from mpsynth.providers import RealCorpus
    from mpsynth.storage import LedgerMirror

    generate = ctx.config.generate
    generator = generate.generators[number]
    corpus = RealCorpus(  # what the offline baseline trains on
        posts=ctx.path("ingest", "posts.parquet").resolve(),
        assignments=ctx.path("topics", "assignments").resolve(),
        labels=ctx.path("labels", "labels.parquet").resolve() if ctx.has("labels") else None,
    )
    directory = ledger_dir(ctx.run, generator.name)
    price = run_price(generator, generate.prices)
    mirror = LedgerMirror(ctx.run.remote.uri) if ctx.run.remote else None
    if generator.mode == "batch":
        from mpsynth.generation.batch import run_batches

        counts = run_batches(
            generator,
            requests,
            directory,
            corpus,
            price,
            generate.budget_usd,
            generate.progress_interval_s,
            mirror,
        )
    else:
        counts = run_generator(
            generator,
            requests,
            directory,
            corpus,
            price,
            generate.budget_usd,
            ctx.config.ray,
            generate.flush_every,
            generate.flush_interval_s,
            generate.progress_interval_s,
            seed=ctx.config.seed + 1000 * number,
            mirror=mirror,
        )
    latest = settled(read_ledger(directory))
    wanted = requests.column("request_id").to_pylist()
    return [latest[rid] for rid in wanted if rid in latest], counts


def run_generate(ctx: StageContext, out: Path) -> dict[str, Any]:
    from mpsynth.generation.ledger import read_ledger

    generate = ctx.config.generate
    requests = pq.read_table(ctx.path("prompts", "requests.parquet"))
    summary, rows, spend = {}, [], 0.0
    for number, generator in enumerate(generate.generators):
        mine = requests.filter(pc.equal(requests.column("generator"), generator.name))
        mine_rows, counts = generate_requests(ctx, number, mine)
        ledger = read_ledger(ledger_dir(ctx.run, generator.name))
        wanted = mine.column("request_id").to_pylist()
        generator_spend = float(pc.sum(ledger.column("cost_usd")).as_py() or 0.0)
        spend += generator_spend
        rows.extend(mine_rows)
        summary[generator.name] = {
            "requests": len(wanted),
            "ok": sum(r["status"] == "ok" for r in mine_rows),
            "failed": sum(r["status"] == "failed" for r in mine_rows),
            "missing": len(wanted) - len(mine_rows),
            "repaired": sum(r["repaired"] for r in mine_rows),
            "this_run": counts,
            "spend_usd": round(generator_spend, 6),
        }
        if summary[generator.name]["missing"]:
            log.warning(
                "generate %s: %d requests have no answer (budget reached?)",
                generator.name,
                summary[generator.name]["missing"],
            )
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    completions = pa.Table.from_pylist(rows, schema=schema.COMPLETIONS)
    write_table(completions, out / "completions.parquet")
    return {
        "completions": completions.num_rows,
        "failed": sum(s["failed"] for s in summary.values()),
        "missing": sum(s["missing"] for s in summary.values()),
        "spend_usd": round(spend, 6),
    }


RUNNERS: dict[str, Callable[[StageContext, Path], dict[str, Any]]] = {
    "ingest": run_ingest,
    "embed": run_embed,
    "topics": run_topics,
    "pools": run_pools,
    "prompts": run_prompts,
    "generate": run_generate,
    "postprocess": run_postprocess,
    "evaluate": run_evaluate,
    "report": run_report,
}
