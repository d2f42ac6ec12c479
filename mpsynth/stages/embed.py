"""Embed: fit the embedder on the real posts, then encode every post (the encoding runs sharded
through Ray Data, with this module's callable class as the actor)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.config import EmbedderConfig
from mpsynth.core import schema
from mpsynth.embedders import load_embedder
from mpsynth.rundir.context import StageContext


def embeddings_column(vectors: np.ndarray) -> pa.FixedSizeListArray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


def embeddings_matrix(column: pa.ChunkedArray | pa.FixedSizeListArray) -> np.ndarray:
    """The (rows, dimensions) float32 view of a fixed-size list column."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    width = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)


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
