"""Ray Data passes: Parquet in, a stage's batch callable (function or actor class) over it, Parquet out."""

from __future__ import annotations

import logging
import math
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
from mpsynth.distributed.session import actor_layout, require_ray

log = logging.getLogger(__name__)

MIN_ROWS_PER_FILE = 100_000  # fewer, larger part files for large outputs
POLL_S = 0.25
BLOCKS_PER_ACTOR = 4  # at least, for inputs small enough to cut that fine


@ray.remote(num_cpus=0)
class RowCounter:
    """Rows done by a Ray Data pass, for the driver's progress display."""

    def __init__(self) -> None:
        self.rows = 0

    def add(self, rows: int) -> None:
        self.rows += rows

    def total(self) -> int:
        return self.rows


def _counted(
    fn: Callable, batch: pa.Table, counter: Any, slice_rows: int | None, **kwargs
) -> pa.Table:
    """`fn` over the batch, in slices of `slice_rows` rows when given: the counter hears of every
    slice (fire-and-forget), so progress moves within a block a slow model takes minutes over."""
    step = slice_rows or batch.num_rows or 1
    outs = []
    for start in range(0, max(batch.num_rows, 1), step):
        part = batch.slice(start, step)
        outs.append(fn(part, **kwargs))
        counter.add.remote(part.num_rows)
    return described(outs[0] if len(outs) == 1 else pa.concat_tables(outs))


class CountedActor:
    """A stage's batch class, counting the rows it has done."""

    def __init__(
        self, fn: type, counter: Any, kwargs: dict[str, Any] | None, slice_rows: int | None
    ) -> None:
        self.fn = fn(**(kwargs or {}))
        self.counter = counter
        self.slice_rows = slice_rows

    def __call__(self, batch: pa.Table, **fn_kwargs: Any) -> pa.Table:
        return _counted(self.fn, batch, self.counter, self.slice_rows, **fn_kwargs)


def _counted_function(fn: Callable, counter: Any, slice_rows: int | None) -> Callable:
    def counted(batch: pa.Table, **fn_kwargs: Any) -> pa.Table:
        return _counted(fn, batch, counter, slice_rows, **fn_kwargs)

    return counted


def parquet_files(source: Path | list[Path]) -> list[Path]:
    """The Parquet files of a file, folder or list of them, in order."""
    paths = source if isinstance(source, list) else [source]
    return [
        Path(f)
        for p in paths
        for f in (sorted(Path(p).glob("*.parquet")) if Path(p).is_dir() else [p])
    ]


def parquet_rows(source: Path | list[Path]) -> int:
    """Rows in a Parquet file, folder or list of them, from the footers alone."""
    return sum(pq.read_metadata(f).num_rows for f in parquet_files(source))


def map_parquet(
    source: Path | list[Path],
    destination: Path,
    fn: Callable | type,
    *,
    columns: list[str] | None = None,
    constructor_kwargs: dict[str, Any] | None = None,
    fn_kwargs: dict[str, Any] | None = None,
    actors: int | None = 1,
    num_cpus: float = 0.5,
    num_gpus: float = 0.0,
    resources: dict[str, float] | None = None,
    batch_size: int = 1024,
    include_paths: bool = False,
    progress_rows: int | None = None,
    description: str | None = None,
    preserve_order: bool = False,
    local_rows: int = 0,
) -> None:
    """Stream `source` through `fn` into Parquet part files under `destination`, with a progress
    display named `description` (rows done of the source's rows).

    A class runs as a pool of `actors` long-lived actors (it loads its model once in __init__;
    None: one per CPU of the cluster);
    a function runs as tasks. With `num_gpus=1` each actor owns one GPU; `resources` (custom Ray
    resources) place the work on the node type that declares them. Fractional `num_cpus` keeps a
    2-core machine from deadlocking with the read tasks waiting on CPUs that the actors hold.
    `progress_rows` has `fn` called on slices of that many rows, so a slow model's progress moves
    within a batch (each slice is then the model's batch). `preserve_order` keeps rows in source
    order, and so every batch's rows the same from run to run: a neural model's output for a post
    varies in the last bits with the other posts padded into its batch.

    An input of fewer than `local_rows` rows that asks for no GPU and no custom resource runs in
    this process instead (the same batches, in source order): on a small input, starting a pool
    of actors that each import their libraries and load their model costs more than the work.
    """
    name = description or getattr(fn, "__name__", "rows")
    total = parquet_rows(source)
    if total < local_rows and not num_gpus and not resources:
        log.info("%s: %d rows in this process (fewer than ray.local_rows)", name, total)
        _map_here(
            source,
            destination,
            fn,
            columns,
            constructor_kwargs,
            fn_kwargs,
            batch_size,
            include_paths,
            progress_rows,
            name,
            total,
        )
        return
    require_ray()
    if actors is None:
        actors = actor_layout(None, 0.0, wants_gpu=False)[0]
    # no actor without a full batch to work on: each one imports its libraries and loads its
    # model, which on a small input costs more than the share of the work it would take
    actors = max(1, min(actors, math.ceil(total / batch_size)))
    log.info("%s: %d actor(s), %g GPU each", name, actors if isinstance(fn, type) else 0, num_gpus)
    # absolute paths: Ray workers need not share the driver's working directory
    sources = (
        [str(Path(p).resolve()) for p in source]
        if isinstance(source, list)
        else str(Path(source).resolve())
    )
    # A file is read as one block however many row groups it has, and one block feeds one actor:
    # cutting blocks to the batch size lets every actor work (streaming, no materialisation). A
    # small input is cut finer, into a few blocks per actor, so that no actor idles while another
    # works through the last large block alone.
    batch_size = max(1, min(batch_size, math.ceil(total / (actors * BLOCKS_PER_ACTOR))))
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
            "slice_rows": progress_rows,
        }
        work: Callable | type = CountedActor
    else:
        work = _counted_function(fn, counter, progress_rows)
    output = dataset.map_batches(work, **options)
    execution = ray.data.DataContext.get_current().execution_options
    ordered_before, execution.preserve_order = execution.preserve_order, preserve_order
    try:
        with (
            console.progress(name, total) as shown,
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


class _Tally:
    """The local pass's stand-in for RowCounter: `.add.remote(n)` advances the display."""

    def __init__(self, shown: Any) -> None:
        self.shown, self.rows = shown, 0
        self.add = self

    def remote(self, rows: int) -> None:
        self.rows += rows
        self.shown.update(self.rows)


def _map_here(
    source: Path | list[Path],
    destination: Path,
    fn: Callable | type,
    columns: list[str] | None,
    constructor_kwargs: dict[str, Any] | None,
    fn_kwargs: dict[str, Any] | None,
    batch_size: int,
    include_paths: bool,
    progress_rows: int | None,
    name: str,
    total: int,
) -> None:
    """map_parquet's pass in this process: each source file's batches through one instance of
    `fn`, in order, into one part file."""
    if isinstance(fn, type):  # loading a model can take a while: say so, and how long it took
        started = time.monotonic()
        work = fn(**(constructor_kwargs or {}))
        if time.monotonic() - started >= 1.0:
            log.info("%s: model loaded in %.1fs", name, time.monotonic() - started)
    else:
        work = fn
    outputs = []
    with console.progress(name, total) as shown:
        tally = _Tally(shown)
        for file in parquet_files(source):
            table = pq.read_table(file, columns=columns)
            if include_paths:  # as Ray Data names a row's file: its absolute path
                path = str(file.resolve())
                table = table.append_column("path", pa.array([path] * table.num_rows, pa.string()))
            for start in range(0, table.num_rows, batch_size):
                batch = table.slice(start, batch_size)
                outputs.append(_counted(work, batch, tally, progress_rows, **(fn_kwargs or {})))
    Path(destination).mkdir(parents=True, exist_ok=True)
    if outputs:
        pq.write_table(pa.concat_tables(outputs), Path(destination) / "part-00000.parquet")
