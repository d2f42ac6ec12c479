"""Inputs and the run directory on an S3-compatible server the tests start themselves (moto's
server mode, never a real cloud): the mirror's push and pull rules, then a hosted-generator run on
S3 killed mid-generate and resumed from a fresh machine (nothing local left): every request answered
once in the ledger, finished stages not redone, the output equal to an uninterrupted local run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import yaml

from mpsynth.config import load_config
from mpsynth.core.errors import InputError
from mpsynth.core.locations import is_remote
from mpsynth.rundir.directory import RunDirectory
from mpsynth.testing import FakeProviderServer
from tests.conftest import (
    DEMO_COLUMNS,
    REPO,
    first_per_platform,
    kill_run_when,
    slow_fake_openai_generator,
    write_csv,
)

BUCKET = "mpsynth-test"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server with one bucket; the environment points pyarrow (and every process started
    from here, Ray's workers included) at it, with a cache folder of the module's own."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT"))
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "MPSYNTH_CACHE": str(tmp_path_factory.mktemp("cache")),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield pafs.FileSystem.from_uri(f"s3://{BUCKET}")[0]
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def _put(fs, path, data: bytes) -> None:
    with fs.open_output_stream(path) as sink:
        sink.write(data)


def _files(fs, prefix) -> set[str]:
    selector = pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
    return {
        info.path[len(prefix) + 1 :]
        for info in fs.get_file_info(selector)
        if info.type == pafs.FileType.File
    }


def test_uris_are_remote_and_paths_are_not():
    assert is_remote("s3://bucket/run") and is_remote("gs://b/x")
    assert not is_remote("runs/demo") and not is_remote("file:///tmp/x")
    config = load_config(REPO / "configs" / "demo.yaml", ["run_dir=s3://bucket/runs/demo"])
    assert config.run_dir == "s3://bucket/runs/demo"  # not folded into a local path


def test_a_stage_counts_once_the_remote_manifest_says_so(s3):
    run = RunDirectory.open(f"s3://{BUCKET}/unit/run")
    run.initialise("seed: 1\n", "h")
    with run.writing("ingest") as out:
        (out / "posts.parquet").write_bytes(b"x" * 10)
    assert "ingest/posts.parquet" not in _files(s3, f"{BUCKET}/unit/run")  # not pushed yet
    run.record("ingest", "fp", time.perf_counter(), {"posts": 1})
    assert {"manifest.json", "config.yaml", "ingest/posts.parquet"} <= _files(
        s3, f"{BUCKET}/unit/run"
    )
    # a ledger part written here whose push was lost goes up at the next pull
    part = run.root / "ledger" / "g" / "part-abc-000000.parquet"
    part.parent.mkdir(parents=True)
    pq.write_table(pa.table({"a": [1]}), part)
    # a stage finished locally whose manifest never reached the remote is not done there
    with run.writing("embed") as out:
        (out / "e.parquet").write_bytes(b"y")
    shutil.rmtree(run.root)  # a fresh machine, and the unpushed part lost with the old one...
    part.parent.mkdir(parents=True)
    pq.write_table(pa.table({"a": [1]}), part)  # ... except where the same disk came back
    fresh = RunDirectory.open(f"s3://{BUCKET}/unit/run")
    assert fresh.is_current("ingest", "fp") and not fresh.is_current("embed", "fp")
    assert (fresh.root / "ingest" / "posts.parquet").read_bytes() == b"x" * 10
    assert "ledger/g/part-abc-000000.parquet" in _files(s3, f"{BUCKET}/unit/run")


def test_a_remote_input_is_read_and_fingerprinted_by_its_uri(s3, tmp_path, demo_rows):
    from mpsynth.orchestration.plan import _input_files
    from mpsynth.stages.ingest.normalise import ingest

    local = write_csv(tmp_path / "posts.csv", first_per_platform(demo_rows, 5), DEMO_COLUMNS)
    _put(s3, f"{BUCKET}/inputs/posts.csv", local.read_bytes())
    config = load_config(
        REPO / "configs" / "demo.yaml",
        [f"ingest.inputs=[{{path: 's3://{BUCKET}/inputs/posts.csv'}}]", "run_dir=s3://b/r"],
    )
    assert ingest(config.ingest).posts.num_rows == len(first_per_platform(demo_rows, 5))
    (entry,) = _input_files(config)
    assert entry["path"] == f"s3://{BUCKET}/inputs/posts.csv"
    shutil.rmtree(os.environ["MPSYNTH_CACHE"] + "/inputs")  # another machine: same fingerprint
    assert _input_files(config) == [entry]
    missing = config.ingest.inputs[0].model_copy(update={"path": f"s3://{BUCKET}/nothing.csv"})
    with pytest.raises(InputError, match=r"nothing\.csv not found"):
        ingest(config.ingest.model_copy(update={"inputs": [missing]}))


def _config(path, run_dir, data, server):
    raw = {
        "run_dir": str(run_dir),
        "seed": 5,
        "ingest": {"inputs": [{"path": str(data)}]},
        "embed": {"embedder": {"dimensions": 32}},
        "topics": {"min_cluster_size": 8, "n_neighbors": 10},
        "pools": {"strategies": ["mptm"]},
        "evaluate": {"bootstrap_samples": 20, "embedder": None},  # the run's LSA space
        "generate": {
            "n_posts": 90,  # the ledger's default buffer: 32 answers or 2 s per part
            "progress_interval_s": 0.5,
            "generators": [slow_fake_openai_generator(server.base_url)],
        },
    }
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(900)  # three runs of the pipeline: the killed one, its resumption, a local one
def test_a_run_on_s3_killed_mid_generate_resumes_from_a_fresh_machine(
    s3, tmp_path, demo_rows, monkeypatch, ray_local
):
    from mpsynth.orchestration.pipeline import run_pipeline

    monkeypatch.setenv("MPSYNTH_TEST_KEY", "test-key")
    data = write_csv(tmp_path / "posts.csv", first_per_platform(demo_rows, 80), DEMO_COLUMNS)
    _put(s3, f"{BUCKET}/data/posts.csv", data.read_bytes())
    remote = f"s3://{BUCKET}/runs/killed"
    prefix = f"{BUCKET}/runs/killed"
    with FakeProviderServer(api_key="test-key", latency_s=0.25) as server:
        config_path = _config(tmp_path / "s3.yaml", remote, f"s3://{BUCKET}/data/posts.csv", server)
        kill_run_when(config_path, lambda: _answered(server) >= 6, {"RAY_TMPDIR": "/tmp"}, 300)
        killed_at = time.time()
        answered_before = {r["prompt"] for r in _prompts(server)}
        before = set(_files(s3, prefix))
        assert "generate/completions.parquet" not in before  # generate never committed
        committed = load_manifest(s3, prefix)["stages"]
        assert {"ingest", "embed", "topics", "pools", "prompts"} <= set(committed)
        shutil.rmtree(os.environ["MPSYNTH_CACHE"])  # a fresh machine: no mirror, no input copy

        reference_dir = tmp_path / "reference"
        # resumed in a process of its own: its Ray workers see the S3 endpoint this module set up
        # (the suite's shared Ray started before it was)
        resumed = subprocess.run(
            [sys.executable, "-m", "mpsynth.cli", "run", str(config_path)],
            cwd=REPO,
            env={**os.environ, "RAY_TMPDIR": "/tmp"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        asked_again = [r for r in _prompts(server) if r["received_at"] > killed_at]
        # what the lost machine took: requests in flight at the kill (two workers, one each) and
        # answers of its last second not yet in the remote write-ahead log (ledger.WAL_PUSH_S)
        last_second = {
            r["prompt"] for r in _prompts(server)
            if killed_at - 1.0 - 0.25 <= r["received_at"] + 0.25 <= killed_at
        }  # fmt: skip
        twice = [r for r in asked_again if r["prompt"] in answered_before]
        print(  # the figures the resume's guarantee is read from (pytest -s shows them)
            f"answered before the kill: {len(answered_before)}; asked again: {len(asked_again)}; "
            f"bought twice: {len(twice)}; answered in the last second: {len(last_second)}"
        )
        assert len(twice) <= 2 + len(last_second), (len(twice), len(last_second))
        local_config = _config(tmp_path / "local.yaml", reference_dir, data, server)
        run_pipeline(load_config(local_config), until="postprocess")  # uninterrupted, local

    after = load_manifest(s3, prefix)["stages"]
    for stage in ("ingest", "embed", "topics", "pools", "prompts"):
        assert after[stage] == committed[stage]  # pulled and skipped, not redone
    requests = pq.read_table(f"s3://{BUCKET}/runs/killed/prompts/requests.parquet")
    completions = pq.read_table(f"s3://{BUCKET}/runs/killed/generate/completions.parquet")
    assert sorted(completions["request_id"].to_pylist()) == sorted(
        requests["request_id"].to_pylist()
    )
    assert set(completions["status"].to_pylist()) == {"ok"}
    ledger = pq.read_table(
        f"s3://{BUCKET}/runs/killed/ledger/fakegpt", schema=None, partitioning=None
    )
    ok = ledger.filter(pc.equal(ledger["status"], "ok"))["request_id"].to_pylist()
    assert len(ok) == len(set(ok)) == requests.num_rows  # each request answered once
    for name in ("fakegpt-mptm", "fakegpt-mptm-calibrated"):
        resumed = pq.read_table(f"s3://{BUCKET}/runs/killed/postprocess/synthetic/{name}.parquet")
        local = pq.read_table(reference_dir / "postprocess" / "synthetic" / f"{name}.parquet")
        assert resumed.sort_by("id").equals(local.sort_by("id"))
    assert "report/report.html" in _files(s3, prefix) and "mpsynth.log" in _files(s3, prefix)


def _prompts(server) -> list[dict]:
    """Every generation request the server received, with its prompt (its messages, as sent)."""
    import json

    return [
        {
            "prompt": json.dumps(
                [r["body"].get("messages"), r["body"].get("seed")], sort_keys=True
            ),
            **r,
        }
        for r in list(server.log.requests)
        if r.get("body") and "messages" in r["body"]
    ]


def _answered(server) -> int:
    return sum("prompt_tokens" in r for r in list(server.log.requests))


def load_manifest(fs, prefix) -> dict:
    import json

    with fs.open_input_stream(f"{prefix}/manifest.json") as source:
        return json.loads(source.read())
