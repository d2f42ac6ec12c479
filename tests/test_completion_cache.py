"""The completion cache: a request any run has had answered is never sent again, in another run
directory too; a changed sampling parameter is a new request; the estimate counts cached answers
as free, and the raw answer is what is kept (postprocess parses it again)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from mpsynth.config import build_config
from mpsynth.generation.cache import CompletionCache
from mpsynth.orchestration.pipeline import estimate, run_pipeline
from mpsynth.testing import FakeProviderServer
from tests.conftest import DEMO_COLUMNS, first_per_platform, hosted_run_config, write_csv

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, demo_rows, ray_local):
    """The same hosted config run into two run directories sharing one cache folder, then a third
    with another temperature."""
    import os

    tmp_path = tmp_path_factory.mktemp("cache")
    data = write_csv(tmp_path / "posts.csv", first_per_platform(demo_rows, 40), DEMO_COLUMNS)
    shared = tmp_path / "shared-cache"
    os.environ["MPSYNTH_CACHE_TEST_KEY"] = "test-key"
    sent, configs = [], []
    with FakeProviderServer(api_key="test-key") as server:
        for name, temperature in (("first", 1.0), ("second", 1.0), ("warmer", 1.3)):
            raw = hosted_run_config(
                tmp_path / name, data, server.base_url, "MPSYNTH_CACHE_TEST_KEY",
                temperature=temperature,
            )  # fmt: skip
            config = build_config(raw)
            before = len(server.log.requests)
            run_pipeline(config, until="postprocess", cache_dir=shared)
            sent.append(len(server.log.requests) - before)
            configs.append(config)
    return tmp_path, shared, configs, sent


def test_a_second_run_sends_nothing_and_writes_the_same_sets(two_runs):
    _, shared, (first, second, _), sent = two_runs
    requests = pq.read_table(first.run_dir / "prompts" / "requests.parquet").num_rows
    assert sent[0] >= requests > 0 and sent[1] == 0
    a, b = (pq.read_table(c.run_dir / "generate" / "completions.parquet") for c in (first, second))
    assert a.column("text").to_pylist() == b.column("text").to_pylist()
    assert set(b.column("attempts").to_pylist()) == {0} and set(
        b.column("cost_usd").to_pylist()
    ) == {0}
    for name in ("hosted-mptm",):  # the parsed sets too, parsed again from the cached text
        posts = [
            pq.read_table(c.run_dir / "postprocess" / "synthetic" / f"{name}.parquet")
            .column("text").to_pylist()
            for c in (first, second)
        ]  # fmt: skip
        assert posts[0] == posts[1] and posts[0]
    summary = pq.read_table(second.run_dir / "generate" / "completions.parquet").num_rows
    assert summary == requests
    # filed once each, by the runs that paid: the first run's, and the warmer run's own
    assert CompletionCache(shared, 10**9).stats()["answers"] == sent[0] + sent[2]


def test_a_changed_temperature_asks_again(two_runs):
    _, _, (first, _, _), sent = two_runs
    requests = pq.read_table(first.run_dir / "prompts" / "requests.parquet").num_rows
    assert sent[2] >= requests


def test_the_estimate_counts_cached_answers_as_free(two_runs, tmp_path):
    _, shared, (first, _, _), _ = two_runs
    import os

    os.environ["MPSYNTH_CACHE"] = str(shared)  # where `mpsynth estimate` finds the cache
    try:
        fresh = first.model_copy(update={"run_dir": tmp_path / "fresh"})
        (row,) = estimate(fresh)
    finally:
        del os.environ["MPSYNTH_CACHE"]
    assert row["requests"] > 0 and row["to_run"] == 0


def test_the_cache_keeps_under_its_cap_by_dropping_the_oldest_answers(tmp_path):
    import os
    import time

    def answer(i: int) -> dict:
        return {
            "request_id": f"r{i}", "generator": "g", "provider": "openai", "model": "m",
            "status": "ok", "text": "x" * 20_000 + str(i), "finish_reason": "stop",
            "prompt_tokens": 1, "completion_tokens": 1, "error": None, "latency_s": 0.1,
            "attempts": 1, "repaired": False, "cost_usd": 0.0, "finished_at": 0.0,
        }  # fmt: skip

    cache = CompletionCache(tmp_path, max_bytes=10**9)
    cache.add([answer(0)])
    (first,) = cache.parts()
    os.utime(first, (time.time() - 60, time.time() - 60))  # the oldest
    cache.max_bytes = first.stat().st_size + 10  # room for about one part
    cache.add([answer(1), {**answer(2), "status": "failed"}])  # a failure is never filed
    assert set(cache.lookup(["r0", "r1", "r2"])) == {"r1"}


def test_the_cache_command_shows_and_clears_the_caches(two_runs, caplog):
    from mpsynth.cli import main

    tmp_path, shared, (first, _, _), _ = two_runs
    import os

    import yaml

    config = tmp_path / "cache-config.yaml"
    config.write_text(yaml.safe_dump(first.model_dump(mode="json")))
    os.environ["MPSYNTH_CACHE"] = str(shared)
    try:
        with caplog.at_level("INFO", logger="mpsynth"):
            assert main(["cache", str(config)]) == 0
            shown = caplog.text
            assert main(["cache", str(config), "--clear", "completions"]) == 0
    finally:
        del os.environ["MPSYNTH_CACHE"]
    assert f"cache completions: {shared / 'completions'}, " in shown
    assert "cache embeddings:" in shown
    assert not (shared / "completions").exists()
