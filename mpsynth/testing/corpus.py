"""N-post corpora resampled from real files, for benchmarks at sizes no public file reaches.

The real files go through mpsynth's own ingest (so the same rows are kept, normalised the same way);
posts are then drawn with replacement, each platform keeping its share of the real corpus, and given
fresh ids (`<original id>~<k>`) so a post drawn twice is two rows. Written to Parquet in chunks: a
million posts never sit in memory as Python objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.config import IngestConfig

CHUNK = 100_000
COLUMNS = ["id", "platform", "text", "timestamp", "author"]


def real_posts(paths: Sequence[Path]) -> pa.Table:
    """The posts mpsynth's ingest keeps from `paths` (labels dropped: a corpus for the mptm run)."""
    from mpsynth.stages.ingest.normalise import ingest

    config = IngestConfig.model_validate(
        {"inputs": [{"path": str(p), "columns": {"label": None}} for p in paths]}
    )
    return ingest(config).posts.select(COLUMNS)


def build_corpus(real: pa.Table, n: int, destination: Path, seed: int = 0) -> dict[str, int]:
    """Write `n` posts drawn with replacement from `real` to `destination` (Parquet); returns the
    posts per platform."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, real.num_rows, n)
    destination.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with pq.ParquetWriter(destination, real.schema) as writer:
        for start in range(0, n, CHUNK):
            picked = pa.array(rows[start : start + CHUNK])
            chunk = real.take(picked)
            copy = pa.array(np.arange(start, start + len(picked)).astype(str))
            ids = pc.binary_join_element_wise(chunk.column("id"), copy, "~")
            chunk = chunk.set_column(0, real.schema.field("id"), ids)
            writer.write_table(chunk, row_group_size=50_000)
            for platform, count in zip(
                *np.unique(
                    chunk.column("platform").to_numpy(zero_copy_only=False), return_counts=True
                ),
                strict=True,
            ):
                counts[platform] = counts.get(platform, 0) + int(count)
    return counts
