"""A Ray Data pass and its in-process twin for small inputs give the same rows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mpsynth.distributed.data import map_parquet
from mpsynth.metrics.lexical import LexicalFeatures
from tests.conftest import read_rows

pytestmark = [pytest.mark.ray]


def test_the_local_pass_gives_what_the_ray_data_pass_gives(tmp_path, ray_local):
    rows = read_rows("demo")[:600]
    sources = []
    for number, part in enumerate((rows[:350], rows[350:])):
        path = tmp_path / f"set{number}.parquet"
        pq.write_table(
            pa.table({k: [r[k] for r in part] for k in ("id", "platform", "text")}), path
        )
        sources.append(path)
    datasets = {str(p.resolve()): p.stem for p in sources}
    results = {}
    for local_rows in (0, 10_000):  # 0: through actors; 10,000: in this process
        out = tmp_path / f"out-{local_rows}"
        map_parquet(
            sources,
            out,
            LexicalFeatures,
            columns=["id", "platform", "text"],
            constructor_kwargs={"datasets": datasets},
            actors=2,
            batch_size=128,
            include_paths=True,
            progress_rows=50,
            local_rows=local_rows,
        )
        results[local_rows] = pq.read_table(out).sort_by(
            [("dataset", "ascending"), ("id", "ascending")]
        )
    through_ray, here = results[0], results[10_000]
    assert here.num_rows == 600 and set(here["dataset"].to_pylist()) == {"set0", "set1"}
    assert here.select(through_ray.column_names).equals(through_ray)


def test_a_dead_workers_raylet_report_goes_to_the_run_log_not_the_console(ray_local, capfd, caplog):
    """A worker that dies makes the raylet send the driver a report (with advice on memory when
    the memory monitor killed it), which Ray prints to stdout: in a run it is a `ray` warning in
    the run log, and the console stays mpsynth's."""
    import os
    import time

    import ray

    @ray.remote(max_retries=0)
    def die() -> None:
        os._exit(1)

    with caplog.at_level("WARNING", logger="ray.raylet"), pytest.raises(ray.exceptions.RayError):
        ray.get(die.remote())
    deadline = time.monotonic() + 20
    while "(raylet)" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "(raylet)" in caplog.text and "worker" in caplog.text.lower()
    printed = capfd.readouterr()
    assert "raylet" not in printed.out and "raylet" not in printed.err
