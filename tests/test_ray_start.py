"""A Ray session that will not start is one clear line (what failed, where Ray's logs are, what to
change), after `ray.start_attempts` tries; never Ray's traceback. A lazy session (a run's) starts
Ray only when a pass needs it."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import ray

from mpsynth.config import RayConfig
from mpsynth.core.errors import StageError
from mpsynth.distributed import session
from mpsynth.distributed.session import ray_session


def test_a_start_that_times_out_is_tried_again_then_one_clear_error(monkeypatch, tmp_path):
    calls = []

    def timed_out(**kwargs):
        calls.append(kwargs["address"])
        raise Exception(
            "The current node timed out during startup. This could happen because some of the "
            "raylet failed to startup or the GCS has become overloaded."
        )

    monkeypatch.setattr(ray, "init", timed_out)
    # as on a fresh process, whatever session another test holds (and left alone by the retries)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.setattr(session, "_current", None)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    with pytest.raises(StageError) as raised, ray_session(RayConfig(start_attempts=3)):
        pass
    message = str(raised.value)
    assert calls == ["local"] * 3
    assert "did not start after 3 attempt(s): The current node timed out during startup" in message
    assert f"{tmp_path}/session_latest/logs" in message and "ray.start_attempts" in message
    assert "\n" not in message


def _doubled(batch: pa.Table) -> pa.Table:
    return batch.set_column(0, "x", pc.multiply(batch.column("x"), 2))


def test_a_lazy_session_starts_ray_only_when_a_pass_needs_it(monkeypatch, tmp_path):
    from mpsynth.distributed.data import map_parquet

    events = []
    monkeypatch.setattr(session, "_current", None)  # as on a fresh process
    monkeypatch.setattr(ray, "is_initialized", lambda: "start" in events)
    monkeypatch.setattr(session, "_start", lambda config, address: events.append("start"))
    monkeypatch.setattr(session, "_start_reaper", lambda: None)
    monkeypatch.setattr(ray, "shutdown", lambda: events.append("shutdown"))
    source = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), source)
    with ray_session(RayConfig(num_cpus=3), lazy=True):
        map_parquet(source, tmp_path / "out", _doubled, local_rows=100)  # small: in the driver
        assert pq.read_table(tmp_path / "out")["x"].to_pylist() == [2, 4, 6]
        # a stage's actor layout, asked before it knows whether its pass will need Ray
        assert session.actor_layout(None, None, wants_gpu=False) == (3, 0.0)
        assert events == []
        with ray_session(RayConfig(), lazy=True):  # a run inside a sweep: the sweep's session
            session.require_ray()
            session.require_ray()
        assert events == ["start"]  # once, and still running after the inner run
    assert events == ["start", "shutdown"]
