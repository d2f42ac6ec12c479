"""What a stage runner works with: the run's config and directory, upstream outputs found by name
(with a clear error when a stage has not run), and writing its own tables with their column
descriptions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.config import RunConfig
from mpsynth.core import schema
from mpsynth.core.errors import StageError
from mpsynth.rundir.directory import RunDirectory


@dataclass
class StageContext:
    config: RunConfig
    run: RunDirectory
    cache_dir: Path | None = None
    """The embedding cache's folder when the caller chose one (a sweep's variations share one)."""
    ledger_root: Path | None = None
    """Where the generators' ledgers live (`<ledger_root>/ledger/<generator>`) when the caller
    chose (a sweep's variations share one ledger per generator); else the run directory."""
    pipeline: Callable[..., dict] | None = None
    """How a stage runs a pipeline of its own (the replicates stage's further generations):
    mpsynth.orchestration's run_pipeline, handed down by it."""

    def has(self, stage: str) -> bool:
        """Whether this run's pipeline includes `stage`."""
        from mpsynth.config.run import PIPELINES

        return stage in PIPELINES[self.config.pipeline]

    def reference(self) -> Path:
        """The real posts that may shape a synthetic set (pools, prompts, enrichment, calibration,
        accounts, times, reply examples) and that every set is measured against: all the ingested
        posts but those the holdout stage held out."""
        if self.has("holdout"):
            self.path("holdout", "summary.json")  # the stage has run
            held = self.run.stage_dir("holdout") / "reference.parquet"
            if held.exists():
                return held
        return self.path("ingest", "posts.parquet")

    def holdout(self) -> Path | None:
        """The held-out real posts, measured as a set of their own (None: none held out)."""
        if not self.has("holdout"):
            return None
        path = self.run.stage_dir("holdout") / "holdout.parquet"
        return path if path.exists() else None

    def path(self, stage: str, name: str) -> Path:
        """An upstream stage's output, with a clear error when that stage has not run."""
        path = self.run.stage_dir(stage) / name
        if not path.exists():
            raise StageError(f"{path} is missing: run the '{stage}' stage first (mpsynth {stage})")
        return path


def write_table(table: pa.Table, path: Path) -> int:
    pq.write_table(schema.described(table), path)
    return table.num_rows


def rows_by_id(path: Path, ids: list[str], column: str) -> pa.Table:
    """The rows of `ids` from a Parquet file or folder, in the order of `ids`."""
    table = pq.read_table(path, columns=["id", column], filters=[("id", "in", ids)])
    position = {post_id: i for i, post_id in enumerate(table.column("id").to_pylist())}
    return table.take(pa.array([position[i] for i in ids]))
