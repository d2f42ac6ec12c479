"""A Ray session that will not start is one clear line (what failed, where Ray's logs are, what to
change), after `ray.start_attempts` tries; never Ray's traceback."""

from __future__ import annotations

import pytest
import ray

from mpsynth.config import RayConfig
from mpsynth.core.errors import StageError
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
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    with pytest.raises(StageError) as raised, ray_session(RayConfig(start_attempts=3)):
        pass
    message = str(raised.value)
    assert calls == ["local"] * 3
    assert "did not start after 3 attempt(s): The current node timed out during startup" in message
    assert f"{tmp_path}/session_latest/logs" in message and "ray.start_attempts" in message
    assert "\n" not in message
