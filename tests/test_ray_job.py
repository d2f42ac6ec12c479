"""The pipeline as users run it on a cluster: a local Ray head started with `ray start` (token
authentication set explicitly), the demo submitted with `ray job submit --working-dir`, a hosted
generator whose key the head's environment holds. The job must succeed, every stage must land in the
run directory, and the key must be in no file, Ray's session logs included."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from mpsynth.config.run import PIPELINES
from mpsynth.testing import FakeProviderServer
from tests.conftest import DEMO_COLUMNS, first_per_platform, hosted_run_config, write_csv

pytestmark = [pytest.mark.slow, pytest.mark.ray]
REPO = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ray_head():
    """A head node of its own (ports and temp dir of its own), stopped by signalling its process
    group: `ray stop` would stop every Ray process on the machine."""
    temp = Path(tempfile.mkdtemp(prefix="mpj", dir="/tmp"))  # Unix socket paths stay short
    dashboard = _free_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "RAY_USAGE_STATS_ENABLED": "0",
        "MPSYNTH_JOB_KEY": f"sk-mpsynth-job-{uuid.uuid4().hex}",
    }
    env.pop("RAY_ADDRESS", None)
    head = subprocess.Popen(
        [
            str(RAY),
            "start",
            "--head",
            "--block",
            f"--port={_free_port()}",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            # ports of its own for the agents too: the suite's shared Ray session holds the
            # defaults (52365 for the job agent), and a second head's agent would not come up
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--dashboard-agent-grpc-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}",
            f"--metrics-export-port={_free_port()}",
            f"--ray-client-server-port={_free_port()}",
            "--num-cpus=2",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        _wait_for_jobs_api(RAY, address, env, head)
        yield address, env, temp
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        # a graceful stop of every head process can take half a minute: then its group goes whole
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_jobs_api(ray: Path, address: str, env: dict, head: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert head.poll() is None, "ray start exited"
        listed = subprocess.run(
            [str(ray), "job", "list", "--address", address],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if listed.returncode == 0:
            return
        time.sleep(2)
    raise AssertionError(f"the head's job API did not come up at {address}")


@pytest.mark.timeout(900)  # a head node's start, then the whole pipeline as a job
def test_the_demo_runs_as_a_submitted_job(tmp_path, demo_rows, ray_head):
    address, env, ray_temp = ray_head
    key = env["MPSYNTH_JOB_KEY"]
    data = write_csv(tmp_path / "posts.csv", first_per_platform(demo_rows, 40), DEMO_COLUMNS)
    run_dir = tmp_path / "run"
    with FakeProviderServer(api_key=key) as server:
        config = tmp_path / "job.yaml"
        config.write_text(
            yaml.safe_dump(hosted_run_config(run_dir, data, server.base_url, "MPSYNTH_JOB_KEY"))
        )
        # the job API answers before the head's job agent is up: Ray then refuses the submission
        # ("No available agent ... try again later"), and the submission is tried again
        deadline = time.monotonic() + 120
        while True:
            submitted = subprocess.run(
                [
                    str(RAY),
                    "job",
                    "submit",
                    "--address",
                    address,
                    "--working-dir",
                    str(REPO),
                    "--submission-id",
                    f"mpsynth-test-{uuid.uuid4().hex[:8]}",
                    "--",
                    sys.executable,  # the head's own environment, where mpsynth is installed
                    "jobs/run_pipeline.py",
                    str(config),
                ],
                env={k: v for k, v in env.items() if k != "MPSYNTH_JOB_KEY"},  # the client has none
                capture_output=True,
                text=True,
                timeout=1200,
            )
            refused = "No available agent to submit job" in submitted.stderr
            if not refused or time.monotonic() > deadline:
                break
            time.sleep(3)
        answered = len(server.log.requests)
    logs = submitted.stdout + submitted.stderr
    assert submitted.returncode == 0, logs[-4000:]
    assert "succeeded" in logs.lower()
    assert "report:" in logs  # mpsynth's own lines reach the job's log
    assert answered > 0  # the workers read the key from the head's environment

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert set(manifest["stages"]) == set(PIPELINES["mptm"])
    assert all(stage["rows"] is not None for stage in manifest["stages"].values())
    posts = pq.read_table(run_dir / "postprocess" / "synthetic")
    assert posts.num_rows > 0 and set(posts.column("generator").to_pylist()) == {"hosted"}
    assert (run_dir / "report" / "report.html").is_file()

    leaks = [
        path
        for root in (run_dir, ray_temp)
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and key.encode() in path.read_bytes()
    ]
    assert leaks == []
