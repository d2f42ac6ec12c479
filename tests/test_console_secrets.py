"""A hosted-provider run as a user runs it (the `mpsynth` command in its own process): the console
holds mpsynth's own lines only, and the API key is written to no file, Ray's included."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml

from mpsynth.testing import FakeProviderServer
from tests.conftest import DEMO_COLUMNS, first_per_platform, hosted_run_config, write_csv

pytestmark = [pytest.mark.slow, pytest.mark.ray]
OWN_LINE = re.compile(r"^\d\d:\d\d:\d\d (?!error)")


@pytest.fixture
def ray_tmp():
    # short: Ray's socket paths must stay under the 107-byte limit of a Unix socket name
    path = Path(tempfile.mkdtemp(prefix="mpr", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_hosted_run_console_is_mpsynth_only_and_the_key_is_on_no_disk(tmp_path, demo_rows, ray_tmp):
    key = f"sk-mpsynth-fake-{uuid.uuid4().hex}"
    data = write_csv(tmp_path / "posts.csv", first_per_platform(demo_rows, 40), DEMO_COLUMNS)
    run_dir = tmp_path / "run"
    with FakeProviderServer(api_key=key) as server:
        config = tmp_path / "config.yaml"
        config.write_text(
            yaml.safe_dump(hosted_run_config(run_dir, data, server.base_url, "MPSYNTH_E2E_KEY"))
        )
        env = {**os.environ, "MPSYNTH_E2E_KEY": key, "RAY_TMPDIR": str(ray_tmp)}
        env.pop("RAY_ADDRESS", None)
        done = subprocess.run(
            [sys.executable, "-m", "mpsynth.cli", "run", str(config)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        answered = len(server.log.requests)
    printed = (done.stdout + done.stderr).splitlines()
    assert done.returncode == 0, done.stderr
    assert answered > 0  # the key did reach the workers
    strangers = [line for line in printed if not OWN_LINE.match(line)]
    assert strangers == []  # no Ray, Ray Data, BERTopic or C++ line, and no error line
    assert any("report:" in line for line in printed)
    log = (run_dir / "mpsynth.log").read_text(encoding="utf-8")
    assert "ray" in log.lower()  # what was kept off the console is in the run log
    ray_files = [p for p in ray_tmp.rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.name.startswith("runtime_env") or p.suffix == ".log" for p in ray_files)
    leaks = [
        p
        for root in (run_dir, ray_tmp)
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and key.encode() in p.read_bytes()
    ]
    assert leaks == []
