"""Nothing of Ray's outlives a run mpsynth started: a driver killed with SIGKILL (no clean-up of
its own) leaves no Ray process behind for long, its dashboard and runtime-env agents included."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.ray]

DRIVER = """
import time
from mpsynth.config import RayConfig
from mpsynth.distributed.session import ray_session
with ray_session(RayConfig(num_cpus=1)):
    print("ready", flush=True)
    time.sleep(120)
"""


def test_a_killed_driver_leaves_no_ray_process_behind():
    # short: Ray's socket paths must stay under the 107-byte limit of a Unix socket name
    ray_tmp = tempfile.mkdtemp(prefix="mpr", dir="/tmp")
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER],
        cwd=REPO,
        env={**os.environ, "RAY_TMPDIR": ray_tmp},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert driver.stdout.readline().strip() == "ready"
        time.sleep(2.0)  # the agents and the reaper's first look at the tree
        ray = [
            p
            for p in psutil.Process(driver.pid).children(recursive=True)
            if "reaper" not in " ".join(p.cmdline())
        ]
        names = {p.name() for p in ray}
        assert any(n.startswith("raylet") for n in names), names
        os.kill(driver.pid, signal.SIGKILL)  # the driver alone, as `kill -9 PID` does
        driver.wait()
        _, alive = psutil.wait_procs(ray, timeout=30)
        assert alive == [], [(p.pid, p.name()) for p in alive]
    finally:
        driver.kill()
        driver.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)
