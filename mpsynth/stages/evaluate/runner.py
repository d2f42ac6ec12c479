"""The evaluate stage's runner: lexical features on every post through Ray Data, the other metric
families on a stratified sample, written as one long metrics table."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.core import schema
from mpsynth.rundir.context import StageContext, rows_by_id, write_table
from mpsynth.stages.topics import topic_names, topic_of

log = logging.getLogger(__name__)


def synthetic_sets(ctx: StageContext) -> list[Path]:
    """The synthetic sets' files: with their accounts and times where the structure stage made
    them, else as postprocess wrote them (labelled runs, sets made elsewhere)."""
    folder = ctx.run.stage_dir("structure") / "synthetic"
    if not (ctx.has("structure") and folder.is_dir()):
        folder = ctx.path("postprocess", "synthetic")
    return sorted(folder.glob("*.parquet"))


def run_evaluate(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.distributed.data import map_parquet
    from mpsynth.distributed.session import actor_layout
    from mpsynth.metrics.lexical import LexicalFeatures
    from mpsynth.stages.embed import (
        embeddings_column,
        encode_texts,
        similarity_space,
        topic_space,
    )
    from mpsynth.stages.entities import cached_entities
    from mpsynth.stages.evaluate.aggregate import (
        PostFeatures,
        dcr_rows,
        entity_column,
        family_metrics,
        lexical_metrics,
        privacy_rows,
        sample_per_platform,
    )

    sources = evaluated_sets(ctx)
    evaluate = ctx.config.evaluate
    # lexical features on every post (cheap, vectorised, Ray Data); the other families on a
    # stratified sample per platform (evaluate.sample_per_platform)
    samples = {
        name: sample_per_platform(
            _read_set(name, path), evaluate.sample_per_platform, ctx.config.seed + number
        )
        for number, (name, path) in enumerate(sources.items())
    }
    map_parquet(
        [
            p.resolve() for p in sources.values()
        ],  # absolute: Ray reports each row's file path as given
        out / "features",
        LexicalFeatures,
        columns=["id", "platform", "text"],
        constructor_kwargs={"datasets": {str(p.resolve()): n for n, p in sources.items()}},
        actors=None,  # one per CPU
        num_cpus=ctx.config.ray.actor_num_cpus,
        resources=ctx.config.ray.resources_for("evaluate"),
        batch_size=8192,
        include_paths=True,
        description="evaluate: lexical features",
        local_rows=ctx.config.ray.local_rows,
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
                "lang": table.column("lang")
                if "lang" in table.column_names
                else pa.nulls(table.num_rows, pa.string()),
            }
        )
        pq.write_table(rows, staged / f"{number:03d}.parquet")
    # the sampled posts' vectors: the real ones (and any text seen before) come from the cache
    texts = [t for table in samples.values() for t in table.column("text").to_pylist()]
    own = topic_space(ctx)
    topic_vectors = encode_texts(ctx, *own, texts, out / ".topic_space", "evaluate: embed")
    counts = topic_vectors.counts("texts")
    similarity = similarity_space(ctx)
    _say_measure_space(ctx, own, similarity, len(texts))
    if similarity == own:
        spaces = {"embedding": topic_vectors}
    else:
        measured = encode_texts(
            ctx, *similarity, texts, out / ".similarity", "evaluate: similarity space"
        )
        spaces = {"embedding": measured, "topic_embedding": topic_vectors}
        counts.update(measured.counts("similarity_texts"))
    # the sampled posts' entities, likewise each distinct text once, through the entity cache
    mentions = (
        cached_entities(ctx, evaluate.ner_model, texts, out / ".entities", "evaluate")
        if evaluate.ner_model is not None
        else None
    )
    # sentiment of every sampled post, through Ray Data actors
    actors, gpus = actor_layout(None, None, wants_gpu=evaluate.sentiment.kind == "transformers")
    map_parquet(
        sorted(staged.glob("*.parquet")),
        out / "post_features",
        PostFeatures,
        constructor_kwargs={
            "sentiment": evaluate.sentiment,
            "by_language": evaluate.sentiment_by_language,
            "detect_language": evaluate.detect_language,
        },
        actors=actors,
        num_cpus=ctx.config.ray.actor_num_cpus,
        num_gpus=gpus,
        resources=ctx.config.ray.resources_for("evaluate"),
        batch_size=1024,
        progress_rows=256,
        description="evaluate: sentiment",
        preserve_order=True,  # the same batches every run: identical results
        local_rows=ctx.config.ray.local_rows,
    )
    post_features = pq.read_table(out / "post_features")
    shutil.rmtree(staged)
    shutil.rmtree(out / "post_features")
    offset = 0
    for name, table in samples.items():
        mine = post_features.filter(pc.equal(post_features.column("dataset"), name)).sort_by("row")
        for column in mine.column_names:
            if column not in ("dataset", "row"):
                if column in table.column_names:  # lang: declared, now with the identified ones
                    table = table.drop_columns([column])
                table = table.append_column(column, mine.column(column))
        for column, encoded in spaces.items():
            vectors = encoded.vectors[offset : offset + table.num_rows]
            table = table.append_column(column, embeddings_column(vectors))
        if mentions is not None:
            table = table.append_column(
                "entities", entity_column(mentions[offset : offset + table.num_rows])
            )
        offset += table.num_rows
        samples[name] = table
    real_ids = samples[schema.REAL].column("id").to_pylist()
    real_topics = rows_by_id(ctx.path("topics", "assignments"), real_ids, "topic").column("topic")
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
    examples = rows_by_id(ctx.path("ingest", "posts.parquet"), shown, "text") if shown else None
    tables = [
        lexical_metrics(features, evaluate, ctx.config.seed),
        families,
        privacy_rows(samples, examples),
        dcr_rows(samples, evaluate, ctx.config.seed),
    ]
    if evaluate.networks.enabled:
        from mpsynth.stages.evaluate.structure import structure_tables

        topics = topic_of(ctx.path("topics", "assignments"))
        structure, curves, drawings = structure_tables(ctx.config, sources, topics, features)
        tables.append(structure.cast(tables[0].schema))
        write_table(curves, out / "structure_curves.parquet")
        write_table(drawings, out / "network_top.parquet")
    metrics = schema.nan_as_null(pa.concat_tables(tables), schema.METRIC_VALUES)
    metrics = _named_topics(metrics, topic_names(ctx.path("topics", "topics.parquet")))
    metrics = _by_construction(metrics)
    write_table(embedding_map, out / "map.parquet")
    write_table(metrics, out / "metrics.parquet")
    (out / "metrics.json").write_text(
        json.dumps(metrics.to_pylist(), indent=1, allow_nan=False) + "\n"
    )
    return {"metrics": metrics.num_rows, "posts": features.num_rows, **counts}


def evaluated_sets(ctx: StageContext) -> dict[str, Path]:
    """Every set the evaluation measures, by name: the reference (the real posts generation could
    see) that every other is measured against, the held-out real posts (each metric's ceiling),
    then the synthetic sets."""
    sources = {schema.REAL: ctx.reference()}
    if (held_out := ctx.holdout()) is not None:
        sources[schema.REAL_HOLDOUT] = held_out
    sources.update((p.stem, p) for p in synthetic_sets(ctx))
    return sources


def _read_set(name: str, path: Path) -> pa.Table:
    """A set's id, platform and text, with its authors (real posts) or the example ids its
    prompts showed (synthetic ones; none for the holdout), and declared languages if any."""
    real = name in (schema.REAL, schema.REAL_HOLDOUT)
    extra = ["author"] if real else ["example_ids"]
    if "lang" in pq.read_schema(path).names:  # the real posts' declared languages
        extra.append("lang")
    table = pq.read_table(path, columns=["id", "platform", "text", *extra])
    if name == schema.REAL_HOLDOUT:  # a set whose prompts showed nothing
        table = table.append_column(
            "example_ids", pa.array([[]] * table.num_rows, pa.list_(pa.string()))
        )
    return table


def _say_measure_space(ctx: StageContext, own: tuple, similarity: tuple, texts: int) -> None:
    """Before encoding: whether the similarity reuses the embed stage's vectors, or how many
    texts another space may have to encode."""
    from mpsynth.stages.embed import same_model_by_default

    if same_model_by_default(ctx) and similarity == own:
        log.info(
            "evaluate: similarity measured in the embed stage's vectors (%s, %s backend), the "
            "default evaluate.embedder's model; set evaluate.embedder to encode again under another",
            own[0].model,
            own[0].backend,
        )
    elif similarity != own:
        log.info(
            "evaluate: similarity space %s: %d sampled texts to look up or encode (evaluate.embedder "
            "differs from embed.embedder)",
            getattr(similarity[0], "model", similarity[0].kind),
            texts,
        )


def _by_construction(metrics: pa.Table) -> pa.Table:
    """The `by_construction` column: true where a synthetic set matches the real posts by
    construction (the structure stage copies it from the real accounts), so its value is no
    evidence of fidelity."""
    from mpsynth.metrics.verdict import BY_CONSTRUCTION

    real = pc.is_in(metrics.column("dataset"), pa.array([schema.REAL, schema.REAL_HOLDOUT]))
    copied = pc.is_in(metrics.column("metric"), pa.array(sorted(BY_CONSTRUCTION)))
    return metrics.append_column("by_construction", pc.and_(copied, pc.invert(real)))


def _named_topics(metrics: pa.Table, names: dict[int, str]) -> pa.Table:
    """Each per-topic row with its topic's name, so that a table read anywhere says what it is."""
    topics = metrics.column("topic").to_pylist()
    named = pa.array([None if t is None else names.get(t, str(t)) for t in topics], pa.string())
    return metrics.set_column(metrics.schema.get_field_index("topic_name"), "topic_name", named)
