"""Embed: fit the embedder on the real posts, then encode every post (the encoding runs sharded
through Ray Data, with this module's callable class as the actor)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from mpsynth import schema
from mpsynth.config import EmbedderConfig
from mpsynth.embedders import load_embedder


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
