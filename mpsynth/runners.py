"""The stage runners: what each pipeline stage reads from the run directory, computes, and writes
into its (scratch) output folder. mpsynth.pipeline decides which of them run."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth import console, schema
from mpsynth.config import RunConfig
from mpsynth.errors import StageError
from mpsynth.rundir import RunDirectory

log = logging.getLogger(__name__)


@dataclass
class StageContext:
    config: RunConfig
    run: RunDirectory

    def path(self, stage: str, name: str) -> Path:
        """An upstream stage's output, with a clear error when that stage has not run."""
        path = self.run.stage_dir(stage) / name
        if not path.exists():
            raise StageError(f"{path} is missing: run the '{stage}' stage first (mpsynth {stage})")
        return path


def _write(table: pa.Table, path: Path) -> int:
    pq.write_table(schema.described(table), path)
    return table.num_rows


def run_ingest(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.ingest import ingest

    result = ingest(ctx.config.ingest)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
    for platform, counts in result.summary.items():
        log.info("ingest %-10s read %7d  kept %7d  quarantined %6d", platform, *counts.values())
    return {
        "posts": _write(result.posts, out / "posts.parquet"),
        "quarantined": _write(result.quarantine, out / "quarantine.parquet"),
    }


def run_embed(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.distributed.data import map_parquet
    from mpsynth.distributed.session import actor_layout
    from mpsynth.embedders import prepare_embedder
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
        embed.actors, embed.gpus_per_actor, wants_gpu=embed.embedder.kind == "sentence-transformers"
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
    texts = _rows_by_id(posts_path, sample_ids, "text").column("text").to_pylist()
    embedded = _rows_by_id(embeddings_dir, sample_ids, "embedding")
    log.info(
        "topics: fitting on %d of %d posts (%s backend)",
        len(sample),
        len(platforms),
        topics.backend,
    )
    with console.progress("topics: fitting UMAP + HDBSCAN", None, unit="posts"):
        fitted = fit_topics(
            texts, embeddings_matrix(embedded.column("embedding")), topics, ctx.config.seed
        )
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
        batch_size=topics.assign_batch_size,
        description="topics: assigning posts",
    )
    assignments = pq.read_table(out / "assignments")
    platform_of = dict(zip(posts.column("id").to_pylist(), platforms.tolist(), strict=True))
    table = topics_table(fitted.keywords, assignments, platform_of, topics.representative_posts)
    _write(table, out / "topics.parquet")
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


def _rows_by_id(path: Path, ids: list[str], column: str) -> pa.Table:
    """The rows of `ids` from a Parquet file or folder, in the order of `ids`."""
    table = pq.read_table(path, columns=["id", column], filters=[("id", "in", ids)])
    position = {post_id: i for i, post_id in enumerate(table.column("id").to_pylist())}
    return table.take(pa.array([position[i] for i in ids]))


def run_pools(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.pools import build_pools

    pools = build_pools(
        pq.read_table(ctx.path("ingest", "posts.parquet"), columns=["id", "platform"]),
        pq.read_table(ctx.path("topics", "assignments")),
        ctx.config.pools,
        ctx.config.generate.n_posts,
        ctx.config.prompts.posts_per_platform,
        ctx.config.seed,
    )
    return {"pools": _write(pools, out / "pools.parquet")}


def run_prompts(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.prompts import build_requests

    requests = build_requests(
        pq.read_table(ctx.path("pools", "pools.parquet")),
        pq.read_table(ctx.path("ingest", "posts.parquet"), columns=["id", "platform", "text"]),
        ctx.config.prompts,
        ctx.config.generate.generators,
    )
    return {"requests": _write(requests, out / "requests.parquet")}


def ledger_dir(run: RunDirectory, generator: str) -> Path:
    """Outside the stage folders on purpose: paid-for answers survive crashes and --force."""
    return run.root / "ledger" / generator


def run_generate(ctx: StageContext, out: Path) -> dict[str, Any]:
    from mpsynth.distributed.generation import run_generator
    from mpsynth.ledger import read_ledger, settled
    from mpsynth.pricing import price_for
    from mpsynth.providers import RealCorpus

    generate = ctx.config.generate
    corpus = RealCorpus(  # what the offline baseline trains on
        posts=ctx.path("ingest", "posts.parquet").resolve(),
        assignments=ctx.path("topics", "assignments").resolve(),
    )
    requests = pq.read_table(ctx.path("prompts", "requests.parquet"))
    summary, rows, spend = {}, [], 0.0
    for number, generator in enumerate(generate.generators):
        mine = requests.filter(pc.equal(requests.column("generator"), generator.name))
        directory = ledger_dir(ctx.run, generator.name)
        counts = run_generator(
            generator,
            mine,
            directory,
            corpus,
            price_for(generator, generate.prices),
            generate.budget_usd,
            ctx.config.ray,
            generate.flush_every,
            generate.flush_interval_s,
            generate.progress_interval_s,
            seed=ctx.config.seed + 1000 * number,
        )
        ledger = read_ledger(directory)
        latest = settled(ledger)
        wanted = mine.column("request_id").to_pylist()
        mine_rows = [latest[rid] for rid in wanted if rid in latest]
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
    _write(completions, out / "completions.parquet")
    return {
        "completions": completions.num_rows,
        "failed": sum(s["failed"] for s in summary.values()),
        "missing": sum(s["missing"] for s in summary.values()),
        "spend_usd": round(spend, 6),
    }


def run_postprocess(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.postprocess import postprocess

    result = postprocess(
        pq.read_table(ctx.path("prompts", "requests.parquet")),
        pq.read_table(ctx.path("generate", "completions.parquet")),
    )
    (out / "synthetic").mkdir()
    rows = {
        name: _write(t, out / "synthetic" / f"{name}.parquet")
        for name, t in result.datasets.items()
    }
    rows["rejected"] = _write(result.rejected, out / "rejected.parquet")
    (out / "summary.json").write_text(json.dumps(result.counts, indent=2) + "\n")
    return rows


def run_evaluate(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.distributed.data import map_parquet
    from mpsynth.distributed.session import actor_layout
    from mpsynth.embedders import state_path
    from mpsynth.metrics.lexical import LexicalFeatures
    from mpsynth.stages.evaluate import (
        PostFeatures,
        family_metrics,
        lexical_metrics,
        privacy_rows,
        sample_per_platform,
    )

    sources = {schema.REAL: ctx.path("ingest", "posts.parquet")}
    sources.update(
        (p.stem, p) for p in sorted(ctx.path("postprocess", "synthetic").glob("*.parquet"))
    )
    evaluate = ctx.config.evaluate
    # lexical features on every post (cheap, vectorised, Ray Data); the other families on a
    # stratified sample per platform (evaluate.sample_per_platform)
    samples = {}
    for number, (name, path) in enumerate(sources.items()):
        extra = ["author"] if name == schema.REAL else ["example_ids"]
        table = pq.read_table(path, columns=["id", "platform", "text", *extra])
        samples[name] = sample_per_platform(
            table, evaluate.sample_per_platform, ctx.config.seed + number
        )
    map_parquet(
        [
            p.resolve() for p in sources.values()
        ],  # absolute: Ray reports each row's file path as given
        out / "features",
        LexicalFeatures,
        columns=["id", "platform", "text"],
        constructor_kwargs={"datasets": {str(p.resolve()): n for n, p in sources.items()}},
        actors=1,
        num_cpus=ctx.config.ray.actor_num_cpus,
        batch_size=8192,
        include_paths=True,
        description="evaluate: lexical features",
    )
    # Ray Data writes rows in whatever order its tasks finish: sorted, the bootstrap draws the same
    # posts on every run, so the same config and seed give the same intervals
    features = pq.read_table(out / "features").sort_by(
        [("dataset", "ascending"), ("id", "ascending")]
    )

    # per-post embedding, sentiment and entities of every sampled post, through Ray Data actors
    staged = out / "sampled"
    staged.mkdir()
    for number, (name, table) in enumerate(samples.items()):
        rows = pa.table(
            {
                "dataset": pa.array([name] * table.num_rows, pa.string()),
                "row": pa.array(range(table.num_rows), pa.int64()),
                "text": table.column("text"),
            }
        )
        pq.write_table(rows, staged / f"{number:03d}.parquet")
    embedder = ctx.config.embed.embedder
    wants_gpu = (
        embedder.kind == "sentence-transformers" or evaluate.sentiment.kind == "transformers"
    )
    actors, gpus = actor_layout(None, None, wants_gpu=wants_gpu)
    map_parquet(
        sorted(staged.glob("*.parquet")),
        out / "post_features",
        PostFeatures,
        constructor_kwargs={
            "embedder": embedder,
            "state": state_path(embedder, ctx.run.stage_dir("embed")),
            "sentiment": evaluate.sentiment,
            "ner_model": evaluate.ner_model,
        },
        actors=actors,
        num_cpus=ctx.config.ray.actor_num_cpus,
        num_gpus=gpus,
        batch_size=1024,
        description="evaluate: embeddings, sentiment, entities",
    )
    post_features = pq.read_table(out / "post_features")
    shutil.rmtree(staged)
    shutil.rmtree(out / "post_features")  # large (one vector per post) and derivable
    for name in samples:
        mine = post_features.filter(pc.equal(post_features.column("dataset"), name)).sort_by("row")
        for column in mine.column_names:
            if column not in ("dataset", "row"):
                samples[name] = samples[name].append_column(column, mine.column(column))
    real_ids = samples[schema.REAL].column("id").to_pylist()
    real_topics = _rows_by_id(ctx.path("topics", "assignments"), real_ids, "topic").column("topic")
    families, embedding_map = family_metrics(
        samples,
        real_topics.to_numpy(),
        np.load(ctx.path("topics", "centroids.npy")),
        ctx.config.topics.outlier_threshold,
        evaluate,
        ctx.config.seed,
    )
    shown = sorted(
        {
            i
            for n, t in samples.items()
            if n != schema.REAL
            for ids in t["example_ids"].to_pylist()
            for i in ids
        }
    )
    examples = _rows_by_id(ctx.path("ingest", "posts.parquet"), shown, "text") if shown else None
    metrics = pa.concat_tables(
        [
            lexical_metrics(features, evaluate, ctx.config.seed),
            families,
            privacy_rows(samples, examples),
        ]
    )
    metrics = schema.nan_as_null(metrics, schema.METRIC_VALUES)
    _write(embedding_map, out / "map.parquet")
    _write(metrics, out / "metrics.parquet")
    (out / "metrics.json").write_text(
        json.dumps(metrics.to_pylist(), indent=1, allow_nan=False) + "\n"
    )
    return {"metrics": metrics.num_rows, "posts": features.num_rows}


def run_report(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.card import render_dataset_card
    from mpsynth.stages.report import render_report

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
    page = render_report(
        ctx.config.report.title,
        metrics,
        pq.read_table(ctx.path("evaluate", "features"), columns=["dataset", "platform", "chars"]),
        pq.read_table(ctx.path("evaluate", "map.parquet")),
        json.loads(ctx.path("ingest", "summary.json").read_text()),
        examples,
        ctx.run.manifest(),
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
    )
    (out / "dataset_card.md").write_text(card, encoding="utf-8")
    return {"bytes": len(page.encode())}


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
