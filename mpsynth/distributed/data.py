"""Ray Data passes: Parquet in, a stage's batch callable (function or actor class) over it, Parquet out."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import ray

from mpsynth.core import console
from mpsynth.core.schema import described

MIN_ROWS_PER_FILE = 100_000  # fewer, larger part files for large outputs
POLL_S = 0.25


@ray.remote(num_cpus=0)
class RowCounter:
    """Rows done by a Ray Data pass, for the driver's progress display."""

    def __init__(self) -> None:
        self.rows = 0

    def add(self, rows: int) -> None:
        self.rows += rows

    def total(self) -> int:
        return self.rows


class CountedActor:
    """A stage's batch class, counting the rows it has done (fire-and-forget, one call a batch)."""

    def __init__(self, fn: type, counter: Any, kwargs: dict[str, Any] | None) -> None:
        self.fn = fn(**(kwargs or {}))
        self.counter = counter

    def __call__(self, batch: pa.Table, **fn_kwargs: Any) -> pa.Table:
        out = self.fn(batch, **fn_kwargs)
        self.counter.add.remote(batch.num_rows)
        return described(out)


def _counted_function(fn: Callable, counter: Any) -> Callable:
    def counted(batch: pa.Table, **fn_kwargs: Any) -> pa.Table:
        out = fn(batch, **fn_kwargs)
        counter.add.remote(batch.num_rows)
        return described(out)

    return counted


def parquet_rows(source: Path | list[Path]) -> int:
    """Rows in a Parquet file, folder or list of them, from the footers alone."""
    paths = source if isinstance(source, list) else [source]
    files = [
        f for p in paths for f in (sorted(Path(p).glob("*.parquet")) if Path(p).is_dir() else [p])
    ]
    return sum(pq.read_metadata(f).num_rows for f in files)


def map_parquet(
    source: Path | list[Path],
    destination: Path,
    fn: Callable | type,
    *,
    columns: list[str] | None = None,
    constructor_kwargs: dict[str, Any] | None = None,
    fn_kwargs: dict[str, Any] | None = None,
    actors: int = 1,
    num_cpus: float = 0.5,
    num_gpus: float = 0.0,
    resources: dict[str, float] | None = None,
    batch_size: int = 1024,
    include_paths: bool = False,
    description: str | None = None,
    preserve_order: bool = False,
) -> None:
    """Stream `source` through `fn` into Parquet part files under `destination`, with a progress
    display named `description` (rows done of the source's rows).

    A class runs as a pool of `actors` long-lived actors (it loads its model once in __init__);
    a function runs as tasks. With `num_gpus=1` each actor owns one GPU; `resources` (custom Ray
    resources) place the work on the node type that declares them. Fractional `num_cpus` keeps a
    2-core machine from deadlocking with the read tasks waiting on CPUs that the actors hold. `preserve_order` keeps rows in source
    order, and so every batch's rows the same from run to run: a neural model's output for a post
    varies in the last bits with the other posts padded into its batch.
    """
    # absolute paths: Ray workers need not share the driver's working directory
    sources = (
        [str(Path(p).resolve()) for p in source]
        if isinstance(source, list)
        else str(Path(source).resolve())
    )
    # A file is read as one block however many row groups it has, and one block feeds one actor:
    # cutting blocks to the batch size lets every actor work (streaming, no materialisation).
    dataset = ray.data.read_parquet(
        sources, columns=columns, include_paths=include_paths
    ).repartition(target_num_rows_per_block=batch_size)
    options: dict[str, Any] = {
        "batch_format": "pyarrow",
        "batch_size": batch_size,
        "num_cpus": num_cpus,
        "fn_kwargs": fn_kwargs,
    }
    if num_gpus:
        options["num_gpus"] = num_gpus
    if resources:
        options["resources"] = resources  # the node type that declares them (cluster.yaml)
    counter = RowCounter.remote()
    if isinstance(fn, type):
        options["compute"] = ray.data.ActorPoolStrategy(size=actors)
        options["fn_constructor_kwargs"] = {
            "fn": fn,
            "counter": counter,
            "kwargs": constructor_kwargs,
        }
        work: Callable | type = CountedActor
    else:
        work = _counted_function(fn, counter)
    output = dataset.map_batches(work, **options)
    total = parquet_rows(source)
    execution = ray.data.DataContext.get_current().execution_options
    ordered_before, execution.preserve_order = execution.preserve_order, preserve_order
    try:
        with (
            console.progress(description or getattr(fn, "__name__", "rows"), total) as shown,
            ThreadPoolExecutor(1) as pool,
        ):
            writing = pool.submit(
                output.write_parquet,
                str(Path(destination).resolve()),
                min_rows_per_file=MIN_ROWS_PER_FILE,
            )
            while not writing.done():
                time.sleep(POLL_S)
                shown.update(ray.get(counter.total.remote()))
            writing.result()  # the pass's own error, if it failed
            shown.update(ray.get(counter.total.remote()))
    finally:
        execution.preserve_order = ordered_before
        ray.kill(counter)
