"""Embed: fit the embedder on the real posts, then encode every post (the encoding runs sharded
through Ray Data, with this module's callable class as the actor). `encode_texts` is the one way
any stage turns texts into vectors: through the embedding cache, so no text is encoded twice."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.config import EmbedderConfig
from mpsynth.core import schema
from mpsynth.core.locations import cache_root
from mpsynth.embedders import load_embedder, state_path
from mpsynth.rundir.context import StageContext, write_table

if TYPE_CHECKING:
    from mpsynth.embedders.cache import TextCache

MIN_ROWS_PER_PART = 100_000  # the embeddings table's part files


def embeddings_column(vectors: np.ndarray) -> pa.FixedSizeListArray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


def embeddings_matrix(column: pa.ChunkedArray | pa.FixedSizeListArray) -> np.ndarray:
    """The (rows, dimensions) float32 view of a fixed-size list column."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    width = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)


def read_vectors(ctx: StageContext, ids: list[str]) -> np.ndarray:
    """The embed stage's vectors of every real post, in the order of `ids` (ingest's order, in
    which the stage wrote them)."""
    table = pq.read_table(ctx.path("embed", "embeddings"))
    if table.column("id").to_pylist() != ids:
        position = {post_id: i for i, post_id in enumerate(table.column("id").to_pylist())}
        table = table.take(pa.array([position[i] for i in ids]))
    return embeddings_matrix(table.column("embedding"))


class EmbedBatch:
    """Load the embedder once; encode each batch of posts into the embeddings schema."""

    def __init__(self, config: EmbedderConfig, state: Path | None) -> None:
        self.embedder = load_embedder(config, state)

    def __call__(self, batch: pa.Table) -> pa.Table:
        vectors = self.embedder.encode(batch.column("text").to_pylist())
        return pa.Table.from_arrays(
            [batch.column("id"), embeddings_column(vectors)],
            schema=schema.embeddings_schema(vectors.shape[1]),
        )


log = logging.getLogger(__name__)

PROGRESS_ROWS = 64  # progress after every this many texts (64 long posts, MiniLM, 2 CPUs: ~8 s)


@dataclass
class Encoded:
    """What encode_texts did: vectors in the order of the texts given, and where they came from."""

    vectors: np.ndarray
    texts: int
    repeated: int  # texts equal to an earlier one in the same call
    cached: int  # distinct texts found in the cache
    encoded: int  # distinct texts the embedder encoded

    def counts(self, prefix: str) -> dict[str, int]:
        return {
            f"{prefix}_encoded": self.encoded,
            f"{prefix}_cached": self.cached,
            f"{prefix}_repeated": self.repeated,
        }


def embedding_cache(ctx: StageContext, config: EmbedderConfig, state: Path | None):
    """This embedder's cache (`text_cache`; None when embed.cache is off)."""
    from mpsynth.embedders.cache import embedder_identity

    return text_cache(ctx, "embeddings", lambda: embedder_identity(config, state))


def text_cache(ctx: StageContext, kind: str, identity: Callable[[], str | None]):
    """The store of one model's per-text outputs (`kind`: embeddings, entities), under the run's
    cache settings: in the context's `cache_dir` when given, else under $MPSYNTH_CACHE when set,
    else the run directory's cache/. None when embed.cache is off or the model has no identity;
    `identity` is asked only when the cache is on (it hashes the model's weights)."""
    from mpsynth.embedders.cache import TextCache

    settings = ctx.config.embed
    if not settings.cache:
        return None
    name = identity()
    if name is None:
        return None
    return TextCache(cache_folder(ctx), kind, name, int(settings.cache_max_gb * 1024**3))


def cache_folder(ctx: StageContext) -> Path:
    """Where the run's per-text caches live: the context's `cache_dir` when given, else
    $MPSYNTH_CACHE when set, else the run directory's cache/."""
    if ctx.cache_dir is not None:
        return ctx.cache_dir
    return cache_root() if os.environ.get("MPSYNTH_CACHE") else ctx.run.root / "cache"


def topic_space(ctx: StageContext) -> tuple[EmbedderConfig, Path | None]:
    """The run's own embedder and its fitted state (an LSA model; None for pretrained ones)."""
    embedder = ctx.config.embed.embedder
    return embedder, state_path(embedder, ctx.run.stage_dir("embed"))


def similarity_space(ctx: StageContext) -> tuple[EmbedderConfig, Path | None]:
    """The evaluation's measure space: evaluate.embedder, or the run's own space when that is
    None, the same embedder, or (left at its default) the same model the embed stage ran under
    another backend: the vectors are there already, and encoding every text again under PyTorch
    cost the held-out politics run 600 s for the same model."""
    measured = ctx.config.evaluate.embedder
    if measured is None or measured == ctx.config.embed.embedder or same_model_by_default(ctx):
        return topic_space(ctx)
    return measured, None


def same_model_by_default(ctx: StageContext) -> bool:
    """Whether evaluate.embedder is its default and names the model the embed stage ran (under
    another backend, length or batch size): the evaluation then measures in the embed stage's
    vectors. Set evaluate.embedder in the config to measure under the other backend anyway."""
    measured, own = ctx.config.evaluate.embedder, ctx.config.embed.embedder
    return (
        "embedder" not in ctx.config.evaluate.model_fields_set
        and measured is not None
        and measured.kind == own.kind == "sentence-transformers"
        and measured.model == own.model
    )


def through_model(
    ctx: StageContext,
    texts: list[str],
    keys: pa.Array,
    work: Path,
    store: TextCache | None,
    model: type,
    model_kwargs: dict,
    **placement,
) -> pa.Table:
    """The texts a cache lacks through a per-text model (a batch class taking (id, text) rows,
    `placement`: map_parquet's actors, GPUs, resources, batch and slice sizes, description): in the
    driver for a small input, else through Ray Data, in the same batches every run (a neural
    model's output varies in the last bits with its batch); the rows filed in `store`."""
    from mpsynth.distributed.data import map_parquet

    work.mkdir(parents=True, exist_ok=True)
    todo = work / "todo.parquet"
    pq.write_table(pa.table({"id": keys, "text": pa.array(texts, pa.string())}), todo)
    map_parquet(
        todo,
        work / "done",
        model,
        columns=["id", "text"],
        constructor_kwargs=model_kwargs,
        num_cpus=ctx.config.ray.actor_num_cpus,
        preserve_order=True,
        local_rows=ctx.config.ray.local_rows,
        **placement,
    )
    done = pq.read_table(work / "done")
    shutil.rmtree(work)
    if store is not None:
        store.add(done)
    return done


def encode_texts(
    ctx: StageContext,
    config: EmbedderConfig,
    state: Path | None,
    texts: list[str],
    work: Path,
    description: str,
) -> Encoded:
    """Vectors of `texts` in `config`'s space, each distinct text encoded at most once: repeats
    within the call and texts already in the embedding cache are looked up; the rest go through
    Ray Data (one actor per GPU, or per CPU) and are filed in the cache for the next caller."""
    from mpsynth.distributed.session import actor_layout
    from mpsynth.embedders import uses_gpu
    from mpsynth.embedders.cache import split_known, text_keys

    keys = text_keys(texts)
    cache = embedding_cache(ctx, config, state)
    first, stored, missing = split_known(cache, keys)
    # shortest first: each slice an actor encodes holds posts of about one length, so little of
    # the model's work goes on padding (the vectors are filed by key, whatever the order)
    lengths = np.fromiter((len(texts[i]) for i in missing), dtype=np.int64, count=len(missing))
    missing = missing[np.argsort(lengths, kind="stable")]
    parts = [] if stored is None else [stored]
    if len(missing):
        embed = ctx.config.embed
        actors, gpus = actor_layout(embed.actors, embed.gpus_per_actor, wants_gpu=uses_gpu(config))
        parts.append(
            through_model(
                ctx,
                [texts[i] for i in missing],
                keys.take(missing),
                work,
                cache,
                EmbedBatch,
                {"config": config, "state": state},
                actors=actors,
                num_gpus=gpus,
                resources=ctx.config.ray.resources_for("embed"),
                batch_size=embed.batch_size,
                progress_rows=PROGRESS_ROWS,
                description=description,
            )
        )
    table = pa.concat_tables(parts) if parts else None
    if table is None:
        vectors = np.zeros((0, 0), dtype=np.float32)
    else:
        rows = pc.index_in(keys, value_set=table.column("id"))
        vectors = embeddings_matrix(table.column("embedding").take(rows))
    return Encoded(
        vectors,
        texts=len(texts),
        repeated=len(texts) - len(first),
        cached=len(first) - len(missing),
        encoded=len(missing),
    )


def run_embed(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.embedders import prepare_embedder

    embed = ctx.config.embed
    posts = pq.read_table(ctx.path("ingest", "posts.parquet"), columns=["id", "text"])
    texts = posts.column("text").to_pylist()  # read once: the LSA fit and the encoding
    state = prepare_embedder(embed.embedder, lambda: texts, ctx.config.seed, out)
    done = encode_texts(ctx, embed.embedder, state, texts, out / ".work", "embed")
    (out / "embeddings").mkdir()
    table = pa.Table.from_arrays(
        [posts.column("id"), embeddings_column(done.vectors)],
        schema=schema.embeddings_schema(done.vectors.shape[1]),
    )
    for number, start in enumerate(range(0, table.num_rows, MIN_ROWS_PER_PART)):
        write_table(
            table.slice(start, MIN_ROWS_PER_PART), out / "embeddings" / f"{number:05d}.parquet"
        )
    log.info(
        "embed: %d posts, %d encoded, %d from the cache, %d repeats of another post",
        done.texts,
        done.encoded,
        done.cached,
        done.repeated,
    )
    return {"embeddings": table.num_rows, **done.counts("texts")}
