"""Pure functions as Ray tasks: independent work items (the utility grid's cells) with progress, and
one call placed where its resources are (a GPU topic fit on a GPU worker)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import ray

from mpsynth.core import console
from mpsynth.distributed.session import require_ray

Item = TypeVar("Item")


def map_tasks(
    fn: Callable[[Item, Any], dict],
    items: Sequence[Item],
    shared: Any,
    num_cpus: float,
    description: str,
    unit: str = "cells",
    resources: dict[str, float] | None = None,
) -> list[dict]:
    """`fn(item, shared)` for every item, one Ray task each; results in the order of `items`.

    `shared` goes into the object store once and every task reads it from there. Tasks ask for
    `num_cpus` each, so a 2-core machine runs as many at a time as that allows; results are
    gathered as they finish, for the progress display.
    """
    require_ray()
    remote = ray.remote(num_cpus=num_cpus, max_retries=2, resources=resources or {})(fn)
    shared_ref = ray.put(shared)
    pending = {remote.remote(item, shared_ref): index for index, item in enumerate(items)}
    results: list[dict | None] = [None] * len(items)
    with console.progress(description, len(items), unit=unit) as bar:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.5)
            for ref in done:
                results[pending.pop(ref)] = ray.get(ref)
                bar.update(advance=1)
    return [r for r in results if r is not None]


def run_remote(
    fn: Callable[..., Any],
    *args: Any,
    num_cpus: float,
    num_gpus: float = 0.0,
    resources: dict[str, float] | None = None,
) -> Any:
    """`fn(*args)` as one Ray task on a node that has what it asks for (the driver's own node may
    have no GPU: a cluster's head usually has none)."""
    require_ray()
    remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, resources=resources or {})(fn)
    return ray.get(remote.remote(*args))
