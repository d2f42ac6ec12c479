"""The budget is checked before the run: prompts that alone cost more than `generate.budget_usd`
stop the generate stage before any request; a run that ends with requests unanswered because the
budget was reached fails, saying so, with its answers kept for the next run."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mpsynth.config import PromptsConfig, build_config
from mpsynth.core.errors import StageError
from mpsynth.generation.ledger import read_ledger
from mpsynth.rundir.context import StageContext
from mpsynth.rundir.directory import RunDirectory
from mpsynth.stages.generate import ledger_dir, run_generate
from mpsynth.stages.prompts.build import build_requests
from mpsynth.testing import FakeProviderServer
from tests.conftest import fake_openai_generator, first_per_platform, holdout_of_nothing

N_REQUESTS = 12


def _context(tmp_path, demo_rows, server, budget, **generator):
    rows = first_per_platform(demo_rows, 6)
    posts = pa.table({k: [r[k] for r in rows] for k in ("id", "platform", "text")})
    config = build_config(
        {
            "run_dir": str(tmp_path / "run"),
            "ingest": {"inputs": [{"path": "posts.csv"}]},
            "generate": {
                "budget_usd": budget,
                "prices": {"test-model": {"input_per_mtok": 100.0, "output_per_mtok": 400.0}},
                "generators": [
                    fake_openai_generator("hosted", server.base_url, "MPSYNTH_KEY", **generator)
                ],
            },
        }
    )
    ids = posts["id"].to_pylist()
    pools = pa.table(
        {
            "pool_id": [f"mptm-{i:06d}" for i in range(N_REQUESTS)],
            "strategy": ["mptm"] * N_REQUESTS,
            "topic": pa.array([i % 3 for i in range(N_REQUESTS)], pa.int64()),
            "target_platforms": [["reddit", "twitter"]] * N_REQUESTS,
            "example_ids": [ids[i % 5 : i % 5 + 9] for i in range(N_REQUESTS)],
            "seed": pa.array(range(N_REQUESTS), pa.int64()),
        }
    )
    requests = build_requests(pools, posts, PromptsConfig(), config.generate.generators)
    run = RunDirectory(config.run_dir)
    for stage, name, table in (
        ("ingest", "posts.parquet", posts),
        ("prompts", "requests.parquet", requests),
    ):
        run.stage_dir(stage).mkdir(parents=True)
        pq.write_table(table, run.stage_dir(stage) / name)
    (run.stage_dir("topics") / "assignments").mkdir(
        parents=True
    )  # read by the offline baseline only
    holdout_of_nothing(run.root)
    out = tmp_path / "out"
    out.mkdir()
    return StageContext(config, run), out


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("MPSYNTH_KEY", "test-key")


def test_prompts_over_the_budget_stop_before_any_request(tmp_path, demo_rows):
    with FakeProviderServer(api_key="test-key") as server:
        ctx, out = _context(tmp_path, demo_rows, server, budget=0.001)
        with pytest.raises(
            StageError, match=r"cost at least \$.* over generate.budget_usd=\$0.001"
        ):
            run_generate(ctx, out)
        assert server.log.requests == []


def test_a_budget_reached_mid_run_fails_and_keeps_the_answers(tmp_path, demo_rows):
    """Batch mode (no Ray): the budget admits some requests and not others."""
    with FakeProviderServer(api_key="test-key", batch_delay_s=0.0) as server:
        ctx, out = _context(
            tmp_path, demo_rows, server, budget=1.0, mode="batch", max_tokens=400,
            batch={"poll_interval_s": 0.05},
        )  # fmt: skip
        with pytest.raises(
            StageError, match=r"budget_usd=.* reached with requests left unanswered"
        ):
            run_generate(ctx, out)
        answered = len(server.log.requests)
    ledger = read_ledger(ledger_dir(ctx, "hosted"))
    assert 0 < answered < N_REQUESTS and ledger.num_rows == answered
    assert not (out / "completions.parquet").exists()  # the stage is not committed


def test_failed_requests_leave_the_stage_open_and_the_rerun_asks_for_exactly_those(
    tmp_path, demo_rows
):
    """A server that fails some prompts for one run, then recovers: the first run ends in an
    error naming them, uncommitted; the same stage again (no --force) sends only those."""
    from mpsynth.testing import Fault

    with FakeProviderServer(api_key="test-key") as server:
        ctx, out = _context(
            tmp_path, demo_rows, server, budget=None, retry={"max_attempts": 1}, actors=1,
            rate={"concurrency": 1, "probe_first": False},
        )  # fmt: skip
        server.inject(*[Fault(status=500)] * 3)  # one attempt each: three requests fail
        with pytest.raises(StageError, match=r"hosted: 3 failed, 0 without an answer\. The 9 "):
            run_generate(ctx, out)
        assert not (out / "completions.parquet").exists()  # not committed
        first = [r["body"] for r in server.log.requests]
        failed = {
            r["request_id"] for r in read_ledger(ledger_dir(ctx, "hosted")).to_pylist()
            if r["status"] == "failed"
        }  # fmt: skip
        assert len(first) == N_REQUESTS and len(failed) == 3
        again = tmp_path / "again"
        again.mkdir()
        rows = run_generate(ctx, again)
        resent = server.log.requests[len(first) :]
    assert len(resent) == 3  # exactly the failed ones, none answered bought twice
    assert rows["completions"] == N_REQUESTS and rows["failed"] == rows["missing"] == 0
    completions = pq.read_table(again / "completions.parquet").to_pylist()
    assert {r["request_id"] for r in completions} >= failed
    assert all(r["status"] == "ok" for r in completions)


def test_accepted_gaps_commit_the_stage_and_say_so(tmp_path, demo_rows):
    import json

    from mpsynth.testing import Fault

    with FakeProviderServer(api_key="test-key") as server:
        ctx, out = _context(
            tmp_path, demo_rows, server, budget=None, retry={"max_attempts": 1}, actors=1,
            rate={"concurrency": 1, "probe_first": False},
        )  # fmt: skip
        generate = ctx.config.generate.model_copy(update={"accept_gaps": True})
        ctx = StageContext(ctx.config.model_copy(update={"generate": generate}), ctx.run)
        server.inject(Fault(status=500))
        rows = run_generate(ctx, out)
    assert rows["failed"] == 1 and rows["completions"] == N_REQUESTS
    assert json.loads((out / "summary.json").read_text())["hosted"]["gaps_accepted"] is True
