"""Ray Data passes: Parquet in, a stage's batch callable (function or actor class) over it, Parquet out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

MIN_ROWS_PER_FILE = 100_000  # fewer, larger part files for large outputs


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
    batch_size: int = 1024,
    include_paths: bool = False,
) -> None:
    """Stream `source` through `fn` into Parquet part files under `destination`.

    A class runs as a pool of `actors` long-lived actors (it loads its model once in __init__);
    a function runs as tasks. With `num_gpus=1` each actor owns one GPU. Fractional `num_cpus` keeps a 2-core machine from deadlocking with
    the read tasks waiting on CPUs that the actors hold.
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
    if isinstance(fn, type):
        options["compute"] = ray.data.ActorPoolStrategy(size=actors)
        options["fn_constructor_kwargs"] = constructor_kwargs
    dataset.map_batches(fn, **options).write_parquet(
        str(Path(destination).resolve()), min_rows_per_file=MIN_ROWS_PER_FILE
    )
