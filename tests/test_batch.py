"""Batch mode through the real SDKs against the local server's batch endpoints: every request
answered once and in the ledger, spend at the batch price, and a driver that dies between submit and
collect resumed without a second submission."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mpsynth.config import GeneratorConfig, PriceConfig
from mpsynth.core import schema
from mpsynth.generation import batch as batch_mode
from mpsynth.generation.batch import BatchRecords, run_batches
from mpsynth.generation.ledger import read_ledger
from mpsynth.generation.pricing import Price, run_price
from mpsynth.testing import FakeProviderServer
from tests.conftest import first_per_platform

KINDS = ("openai", "anthropic", "gemini")
PRICE = Price(1.0, 2.0)  # the live price
PRICES = {"test-model": PriceConfig(input_per_mtok=1.0, output_per_mtok=2.0)}


def _run(generator, requests, ledger_dir, budget=None):
    """run_batches as the generate stage calls it: at the generator's batch price."""
    price = run_price(generator, PRICES)
    assert price == Price(0.5, 1.0)  # half the live price
    return run_batches(generator, requests, ledger_dir, None, price, budget)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("MPSYNTH_KEY", "test-key")


@pytest.fixture(scope="module")
def requests(demo_rows) -> pa.Table:
    """Ten requests whose prompts hold real posts."""
    rows = first_per_platform(demo_rows, 3)
    examples = "\n\n".join(f"[{r['platform']}] {r['text']}" for r in rows)
    return pa.Table.from_pylist(
        [
            {
                "request_id": f"{i:032x}",
                "generator": "g",
                "pool_id": f"p{i}",
                "strategy": "mptm",
                "topic": i,
                "target_platforms": ["reddit", "twitter"],
                "posts_per_platform": 2,
                "example_ids": [r["id"] for r in rows],
                "messages": [
                    {"role": "system", "content": "You write realistic social-media posts."},
                    {
                        "role": "user",
                        "content": f"Examples {i}:\n{examples}\nWrite 2 new posts for each of "
                        "these platforms: reddit, twitter.",
                    },
                ],
                "provider": "x",
                "model": "test-model",
                "params_json": json.dumps({"temperature": 0.8, "max_tokens": 400}),
                "seed": i,
                "label": None,
                "cues": [],
            }
            for i in range(10)
        ],
        schema=schema.GENERATION_REQUESTS,
    )


def _generator(kind, server, **batch):
    return GeneratorConfig.model_validate(
        {
            "name": "g",
            "provider": {
                "kind": kind,
                "model": "test-model",
                "base_url": server.base_url if kind == "openai" else server.root_url,
                "api_key_env": "MPSYNTH_KEY",
            },
            "mode": "batch",
            "batch": {"max_requests": 4, "poll_interval_s": 0.05, **batch},
            "retry": {"max_attempts": 3, "base_delay_s": 0.01},
        }
    )


def _answered(server) -> int:
    return sum(1 for entry in server.log.requests if entry.get("batch"))


def _check_ledger(ledger, requests):
    ids = ledger.column("request_id").to_pylist()
    assert sorted(ids) == sorted(requests.column("request_id").to_pylist())  # each once
    assert set(ledger.column("status").to_pylist()) == {"ok"}
    for text in ledger.column("text").to_pylist():
        posts = json.loads(text)["posts"]
        assert sorted(p["platform"] for p in posts) == ["reddit", "reddit", "twitter", "twitter"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_request_is_answered_once_at_the_batch_price(kind, requests, tmp_path):
    ledger_dir = tmp_path / "ledger"
    with FakeProviderServer(api_key="test-key", batch_delay_s=0.2) as server:
        counts = _run(_generator(kind, server), requests, ledger_dir)
        again = _run(_generator(kind, server), requests, ledger_dir)
        usage = server.log.usage
        created = list(server.batches.created)
        answered = _answered(server)
    assert len(created) == 3 and counts["batches_submitted"] == 3  # 10 requests, 4 per batch
    assert answered == 10 and counts["ok"] == 10
    assert again == {}  # nothing left to ask for: no batch submitted
    ledger = read_ledger(ledger_dir)
    _check_ledger(ledger, requests)
    spend = pc.sum(ledger.column("cost_usd")).as_py()
    live = PRICE.cost(usage["prompt_tokens"], usage["completion_tokens"])
    assert spend == pytest.approx(0.5 * live) and spend > 0
    records = BatchRecords(ledger_dir).load()
    assert all(r.collected_at is not None and r.counts["ok"] == len(r.request_ids) for r in records)


@pytest.mark.parametrize("kind", KINDS)
def test_a_driver_dying_between_submit_and_collect_resumes_the_same_batches(
    kind, requests, tmp_path, monkeypatch
):
    ledger_dir = tmp_path / "ledger"
    with FakeProviderServer(api_key="test-key", batch_delay_s=0.2) as server:

        async def dies(self, records):
            raise KeyboardInterrupt  # the driver is killed while it waits

        with monkeypatch.context() as patched:
            patched.setattr(batch_mode.BatchRunner, "_collect_all", dies)
            with pytest.raises(KeyboardInterrupt):
                _run(_generator(kind, server), requests, ledger_dir)
        assert read_ledger(ledger_dir).num_rows == 0
        assert all(r.live for r in BatchRecords(ledger_dir).load())
        counts = _run(_generator(kind, server), requests, ledger_dir)
        created = list(server.batches.created)
        answered = _answered(server)
    assert (
        len(created) == 3 and counts["batches_resumed"] == 3 and "batches_submitted" not in counts
    )
    assert answered == 10
    _check_ledger(read_ledger(ledger_dir), requests)


@pytest.mark.parametrize("kind", KINDS)
def test_a_submission_whose_id_was_never_recorded(kind, requests, tmp_path, monkeypatch):
    """The provider accepted the batch, the driver died before writing its id down: OpenAI and
    Gemini find it again by its key; Anthropic keeps no key, so it is submitted again."""
    ledger_dir = tmp_path / "ledger"
    saved = BatchRecords.save
    calls = []

    def dies_after_submit(self, record):
        calls.append(record.batch_id)
        if record.batch_id is not None:
            raise KeyboardInterrupt  # the provider has the batch; the record never gets its id
        saved(self, record)

    with FakeProviderServer(api_key="test-key", batch_delay_s=0.1) as server:
        generator = _generator(kind, server, max_requests=10)
        with monkeypatch.context() as patched:
            patched.setattr(BatchRecords, "save", dies_after_submit)
            with pytest.raises(KeyboardInterrupt):
                _run(generator, requests, ledger_dir)
        counts = _run(generator, requests, ledger_dir)
        created = list(server.batches.created)
        answered = _answered(server)
    if kind == "anthropic":
        assert len(created) == 2 and counts["batches_submitted"] == 1
    else:
        assert len(created) == 1 and counts["batches_found"] == 1
        assert "batches_submitted" not in counts
    assert answered == 10  # the lost Anthropic batch was never collected, so never answered
    _check_ledger(read_ledger(ledger_dir), requests)


def test_a_budget_bounds_what_is_submitted(requests, tmp_path):
    with FakeProviderServer(api_key="test-key", batch_delay_s=0.05) as server:
        generator = _generator("openai", server)
        # room for about three requests' worst case at the batch price
        one = 0.5 * PRICE.cost(900, 400)
        counts = _run(generator, requests, tmp_path, 3 * one)
    assert 1 <= counts["ok"] <= 4 and counts["budget_skipped"] == 10 - counts["ok"]
    assert pc.sum(read_ledger(tmp_path).column("cost_usd")).as_py() <= 3 * one


def test_batch_mode_needs_a_provider_with_a_batch_api():
    with pytest.raises(ValueError, match="batch needs an openai, anthropic or gemini"):
        GeneratorConfig.model_validate(
            {"name": "m", "provider": {"kind": "markov"}, "mode": "batch"}
        )


def test_the_estimate_prices_a_batch_generator_at_the_batch_price(requests, demo_rows):
    from mpsynth.generation.pricing import estimate_generation

    posts = pa.table({"id": [r["id"] for r in demo_rows], "text": [r["text"] for r in demo_rows]})
    with FakeProviderServer(api_key="test-key") as server:
        batch = _generator("openai", server)
        live = batch.model_copy(update={"mode": "live"})
    (as_batch,) = estimate_generation(requests, posts, [batch], PRICES, {})
    (as_live,) = estimate_generation(requests, posts, [live], PRICES, {})
    assert as_batch["prompt_tokens"] == as_live["prompt_tokens"] > 0
    assert as_batch["expected_usd"] == pytest.approx(0.5 * as_live["expected_usd"])
    assert as_batch["max_usd"] == pytest.approx(0.5 * as_live["max_usd"])
