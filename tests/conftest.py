from __future__ import annotations

import csv
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One embedding cache for the whole test run (never the user's): a text the suite has embedded
# once, in any test, worker or subprocess, is looked up after that, as across a user's runs. The
# process that starts the run makes it; pytest-xdist's workers inherit its location.
_TEST_CACHE = "MPSYNTH_TEST_CACHE"
if "PYTEST_XDIST_WORKER" not in os.environ or _TEST_CACHE not in os.environ:
    os.environ[_TEST_CACHE] = tempfile.mkdtemp(prefix="mpsynth-test-cache-")
SHARED_CACHE = Path(os.environ[_TEST_CACHE])
os.environ["MPSYNTH_CACHE"] = str(SHARED_CACHE)


def pytest_sessionfinish(session, exitstatus):
    if not hasattr(session.config, "workerinput"):  # the run's own process, after every worker
        shutil.rmtree(SHARED_CACHE, ignore_errors=True)


REPO = Path(__file__).resolve().parents[1]
# Real posts bundled with the repository (tests/data/ATTRIBUTION.md): the tests never look outside it.
TEST_DATA = REPO / "tests" / "data"
DEMO_DATA = REPO / "data" / "demo" / "posts.csv"
DEMO_COLUMNS = ["platform", "id", "timestamp", "author", "text", "lang", "label"]


def read_rows(name: str) -> list[dict[str, str]]:
    """The rows of a bundled file: a name under tests/data/, or "demo" for the demo dataset."""
    path = DEMO_DATA if name == "demo" else TEST_DATA / name
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray session for the whole test run: every in-process pipeline joins it instead of
    starting (and stopping) its own. Tests that need a Ray of their own run it in a subprocess."""
    from mpsynth.config import RayConfig
    from mpsynth.distributed.session import ray_session

    with ray_session(RayConfig(num_cpus=2)):
        yield


@pytest.fixture(scope="session")
def demo_rows() -> list[dict[str, str]]:
    return read_rows("demo")


def copy_run(source: Path, target: Path, through: str) -> None:
    """A run directory holding `source`'s stages up to `through` (a topic run's stage), with only
    those in its manifest: as if a run of the same config had stopped there. A test that is about
    a later stage starts from it instead of redoing the earlier ones."""
    import json

    from mpsynth.config.run import PIPELINES

    stages = list(PIPELINES["mptm"])
    kept = stages[: stages.index(through) + 1]
    target.mkdir(parents=True)
    for stage in kept:
        shutil.copytree(source / stage, target / stage)
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["stages"] = {k: v for k, v in manifest["stages"].items() if k in kept}
    (target / "manifest.json").write_text(json.dumps(manifest))
    shutil.copyfile(source / "config.yaml", target / "config.yaml")


@contextmanager
def logged_lines(name: str) -> Iterator[list[str]]:
    """The messages logger `name` (and its children) logs at INFO and above while inside: what
    mpsynth's console would show, for a test to read."""
    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger(name)
    handler, level = Lines(logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def first_per_platform(rows: list[dict[str, str]], n: int) -> list[dict[str, str]]:
    taken: dict[str, int] = {}
    picked = []
    for row in rows:
        if taken.get(row["platform"], 0) < n:
            taken[row["platform"]] = taken.get(row["platform"], 0) + 1
            picked.append(row)
    return picked


def ledger_row(
    request_id: str, status: str = "ok", finished_at: float = 0.0, text: str | None = "t"
) -> dict:
    """A row of the completions/ledger schema, for tests that build ledgers by hand."""
    return {
        "request_id": request_id,
        "generator": "markov",
        "provider": "markov",
        "model": "m",
        "status": status,
        "text": text,
        "finish_reason": "stop",
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "error": None if status == "ok" else "boom",
        "latency_s": 0.0,
        "attempts": 1,
        "repaired": False,
        "cost_usd": 0.0,
        "finished_at": finished_at,
    }


def generation_request(
    i: int, platform: str = "twitter", messages: list[dict] | None = None, **params
):
    """A request for one post on `platform` (numbered i), for tests that drive the engine."""
    from mpsynth.providers import GenerationRequest

    return GenerationRequest(
        request_id=f"req-{i}",
        generator="g",
        strategy="mptm",
        topic=i,
        target_platforms=[platform],
        posts_per_platform=1,
        example_ids=[],
        messages=messages
        or [{"role": "user", "content": f"[{platform}] example {i}\nWrite 1 post for {platform}."}],
        params={"max_tokens": 200, **params},
        seed=i,
    )


def run_engine(generator, requests, ledger_dir, price, budget_usd=None):
    """Complete `requests` with the generator's real provider client in this process: (the engine's
    counts, the ledger, the governor)."""
    import asyncio

    from mpsynth.generation.engine import GenerationEngine, LocalGovernor
    from mpsynth.generation.ledger import LedgerWriter, read_ledger
    from mpsynth.generation.ratelimit import RateGovernor
    from mpsynth.providers import build_provider

    governor = RateGovernor(generator.rate, generator.circuit_breaker, budget_usd)
    engine = GenerationEngine(
        build_provider(generator.provider, generator.retry, None),
        generator,
        LocalGovernor(governor),
        LedgerWriter(ledger_dir, flush_every=1),
        price,
    )
    counts = asyncio.run(engine.run(requests))
    return counts, read_ledger(ledger_dir), governor


def hosted_run_config(run_dir, data, base_url: str, key_env: str, **generator) -> dict:
    """A small mptm run whose one generator (`hosted`) is the local server behind the OpenAI SDK."""
    return {
        "run_dir": str(run_dir),
        "ingest": {"inputs": [{"path": str(data)}]},
        "embed": {"embedder": {"dimensions": 16}},
        "topics": {"min_cluster_size": 6, "n_neighbors": 8},
        "pools": {"strategies": ["mptm"]},
        "generate": {
            "n_posts": 24,
            "generators": [fake_openai_generator("hosted", base_url, key_env, **generator)],
        },
        # measured in the run's own (LSA) space: MiniLM's evaluation is tested in test_pipeline
        "evaluate": {"bootstrap_samples": 10, "embedder": None},
    }


def fake_openai_generator(name: str, base_url: str, key_env: str, **extra) -> dict:
    return {
        "name": name,
        "provider": {
            "kind": "openai",
            "model": "test-model",
            "base_url": base_url,
            "api_key_env": key_env,
        },
        **extra,
    }


def slow_fake_openai_generator(base_url: str) -> dict:
    """`fakegpt`: two worker actors sending one request at a time each, so a run can be killed
    between its answers."""
    return fake_openai_generator(
        "fakegpt",
        base_url,
        "MPSYNTH_TEST_KEY",
        actors=2,
        rate={"concurrency": 1},
        retry={"base_delay_s": 0.05, "timeout_s": 10},
    )


# A job started in the background by a non-interactive shell inherits SIGINT ignored, and Python
# keeps an ignored SIGINT ignored: the child answers SIGINT with KeyboardInterrupt, as from a
# terminal, whatever started the test run.
_WITH_SIGINT = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'mpsynth'; runpy.run_module('mpsynth.cli', run_name='__main__')"
)


def start_mpsynth(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """`mpsynth ARGS` in a process group of its own (so the group can be killed whole), quiet."""
    return subprocess.Popen(
        [sys.executable, "-c", _WITH_SIGINT, *args],
        cwd=REPO,
        env={**os.environ, **env},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_run_when(
    config_path: Path, ready: Callable[[], bool], env: dict[str, str], timeout_s: float
) -> None:
    """Start `mpsynth run` in a process group of its own, wait until `ready()`, then SIGKILL the
    group: the driver and every Ray process it started, with no chance to clean up."""
    driver = start_mpsynth(["run", str(config_path)], env)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not ready():
            assert driver.poll() is None, "the driver ended before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()


# pytest-xdist (`make test`) hands out whole modules in collection order, the first one to each
# worker and the next to whichever finishes first: the longest modules (measured with
# `pytest --durations`) go first, so the workers finish together instead of one waiting on the
# last long module alone.
LONGEST_FIRST = (
    "test_pipeline",
    "test_generation_ray",
    "test_labelled_pipeline",
    "test_interruptions",
    "test_object_storage",
    "test_ray_job",
    "test_sweep",
    "test_console_secrets",
)


def pytest_collection_modifyitems(session, config, items):
    def rank(item) -> int:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a module, the written order


def holdout_of_nothing(run_dir: Path) -> None:
    """The holdout stage's output when it holds nothing out (`holdout.share: 0`): for a test that
    writes a run's upstream stages by hand, so later stages read every ingested post."""
    folder = Path(run_dir) / "holdout"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text('{"share": 0.0, "held_out": {}}\n')
