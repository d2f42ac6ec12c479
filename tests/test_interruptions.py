"""A paid answer is never lost or bought twice: `mpsynth generate` interrupted mid-run (SIGINT,
SIGTERM, kill -9 of the driver, kill -9 of one generation worker) at concurrency 8, then resumed.
The fake server's request log is the truth: after SIGINT and SIGTERM it received each prompt
exactly once; after kill -9 no prompt answered before the kill is asked again; and the resumed
output equals an uninterrupted run's. However the driver ended, no Ray process outlives it.
(A whole process group killed, as when a machine dies, is test_object_storage's run on S3.)"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import time
from collections import Counter

import psutil
import pyarrow.parquet as pq
import pytest
import yaml

from mpsynth.config import load_config
from mpsynth.generation.ledger import read_ledger
from mpsynth.orchestration.pipeline import run_pipeline
from mpsynth.testing import FakeProviderServer
from tests.conftest import (
    DEMO_COLUMNS,
    fake_openai_generator,
    first_per_platform,
    start_mpsynth,
    write_csv,
)

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.timeout(900)]
KEY = {"MPSYNTH_TEST_KEY": "test-key"}


def _prompt_key(entry: dict) -> str:
    """One prompt, whatever the wire format: its messages and seed."""
    body = entry["body"]
    return hashlib.sha256(
        json.dumps([body.get("messages"), body.get("seed")], sort_keys=True).encode()
    ).hexdigest()


@pytest.fixture(scope="module")
def server():
    with FakeProviderServer(api_key="test-key", latency_s=0.4) as fake:
        yield fake


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, demo_rows, server, ray_local):
    """A run directory through prompts (shared), its config, and the number of prompts."""
    os.environ.update(KEY)
    root = tmp_path_factory.mktemp("interrupt")
    data = write_csv(root / "posts.csv", first_per_platform(demo_rows, 60), DEMO_COLUMNS)
    raw = {
        "run_dir": str(root / "prepared"),
        "seed": 3,
        "ingest": {"inputs": [{"path": str(data)}]},
        "embed": {"embedder": {"dimensions": 16}},
        "topics": {"min_cluster_size": 6, "n_neighbors": 8},
        "pools": {"strategies": ["mptm"]},
        "generate": {
            "n_posts": 240,
            # each run asks the server itself: the completion cache would hand the interrupted
            # runs the reference run's answers, and nothing would be sent to interrupt
            "cache": False,
            "generators": [
                fake_openai_generator(
                    "hosted",
                    server.base_url,
                    "MPSYNTH_TEST_KEY",
                    actors=2,
                    rate={"concurrency": 4, "probe_first": False},
                    retry={"timeout_s": 10},
                )
            ],
        },
    }
    path = root / "prepared.yaml"
    path.write_text(yaml.safe_dump(raw))
    run_pipeline(load_config(path), until="prompts")
    requests = pq.read_table(root / "prepared" / "prompts" / "requests.parquet")
    return root, raw, requests.num_rows


def _copy(prepared, name: str):
    root, raw, prompts = prepared
    run_dir = root / name
    shutil.copytree(root / "prepared", run_dir)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**raw, "run_dir": str(run_dir)}))
    return run_dir, path, prompts


def _generate(path, server, stop_with: str, after_requests: int) -> Counter:
    """`mpsynth generate` in a process group of its own, stopped once the server has answered
    `after_requests` requests: the driver sent SIGINT, SIGTERM or SIGKILL, or one generation
    worker killed (`actor`); then whatever Ray left is killed. The prompts answered by then."""
    driver = start_mpsynth(["generate", str(path)], KEY)
    ray_processes: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 180
        while sum("prompt_tokens" in e for e in list(server.log.requests)) < after_requests:
            assert driver.poll() is None, "the run ended before it could be interrupted"
            assert time.monotonic() < deadline, "the run never reached the server"
            time.sleep(0.05)
        # answered by now, and on the wire long enough to have reached the worker
        settled = time.time() - server.latency_s - 0.2
        answered = Counter(
            _prompt_key(e)
            for e in server.log.requests
            if "prompt_tokens" in e and e["received_at"] < settled
        )
        if stop_with == "actor":  # the run goes on with a new worker for what was left
            worker = next(
                p
                for p in psutil.Process(driver.pid).children(recursive=True)
                if p.name().startswith("ray::GenerationWorker")
            )
            worker.kill()
            driver.wait(timeout=180)
            assert driver.returncode == 0
        else:
            ray_processes = psutil.Process(driver.pid).children(recursive=True)
            assert any(p.name().startswith("raylet") for p in ray_processes)
            os.kill(driver.pid, signal.Signals[stop_with])  # the driver alone, as `kill` does
            driver.wait(timeout=120)
            assert driver.returncode != 0  # an interrupted run does not look finished
            # nothing of Ray's outlives the run (its agents included): after SIGINT and SIGTERM
            # the driver shut it down, after SIGKILL (no clean-up of its own) mpsynth's reaper
            _, alive = psutil.wait_procs(ray_processes, timeout=30)
            assert alive == [], [(p.pid, p.name()) for p in alive]
        return answered
    finally:
        # a killed driver's workers see it gone, stop launching and write what is in flight;
        # then Ray or mpsynth's reaper ends them
        psutil.wait_procs(ray_processes, timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()


@pytest.fixture(scope="module")
def reference(prepared, server):
    """An uninterrupted run's completions."""
    run_dir, path, prompts = _copy(prepared, "reference")
    server.log.requests.clear()
    run_pipeline(load_config(path), until="generate")
    assert len(server.log.requests) == prompts
    return pq.read_table(run_dir / "generate" / "completions.parquet").sort_by("request_id")


@pytest.mark.parametrize("stop_with", ["SIGINT", "SIGTERM", "SIGKILL", "actor"])
def test_an_interrupted_run_buys_no_answer_twice(prepared, server, reference, stop_with):
    run_dir, path, prompts = _copy(prepared, f"stopped-{stop_with}")
    server.log.requests.clear()
    before = _generate(path, server, stop_with, after_requests=12)
    assert 0 < sum(before.values()) < prompts  # interrupted mid-run
    ledger_dir = run_dir / "ledger" / "hosted"
    if stop_with != "actor":
        assert not (run_dir / "generate").exists()  # the interrupted stage left nothing behind
    run_pipeline(load_config(path), until="generate")
    sent = Counter(_prompt_key(e) for e in server.log.requests)
    answered = Counter(_prompt_key(e) for e in server.log.requests if "prompt_tokens" in e)
    twice = [key for key, n in sent.items() if n > 1]
    print(
        f"{stop_with}: {prompts} prompts, {sum(before.values())} answered before the stop, "
        f"{sum(sent.values())} requests in all, {len(twice)} sent twice"
    )
    if stop_with in ("SIGKILL", "actor"):
        # the requests in flight in a killed process were never answered to it: those may be
        # sent again, but not one answered before the kill
        assert not [key for key in twice if before[key]], "an answered prompt was bought twice"
    else:
        assert twice == [] and sum(sent.values()) == prompts
    assert len(answered) == prompts
    ledger = read_ledger(ledger_dir)
    ok = [
        r
        for r, s in zip(ledger["request_id"].to_pylist(), ledger["status"].to_pylist(), strict=True)
        if s == "ok"
    ]
    assert len(ok) == len(set(ok)) == prompts  # each answer recorded once
    completions = pq.read_table(run_dir / "generate" / "completions.parquet").sort_by("request_id")
    for column in ("request_id", "status", "text", "prompt_tokens", "completion_tokens"):
        assert completions[column].equals(reference[column])
