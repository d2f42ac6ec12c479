"""The engine's admission. Requests are drawn from their stream as room opens (at most twice the
concurrency wait for a grant or a slot). A stopping engine sends nothing more: the requests admitted
while others were in flight are given back, not sent, when the run stops or loses its ledger's
lease; the answers in flight are still filed."""

from __future__ import annotations

import asyncio
import json

import pytest

from mpsynth.config import GeneratorConfig
from mpsynth.generation.engine import GenerationEngine, LocalGovernor
from mpsynth.generation.ledger import Lease, LedgerWriter, read_ledger
from mpsynth.generation.ratelimit import RateGovernor
from mpsynth.providers import Completion, GenerationRequest
from tests.conftest import generation_request

CONCURRENCY = 3
ANSWER = json.dumps({"posts": [{"platform": "twitter", "text": "a post"}]})


class GatedProvider:
    """Answers once the test opens the gate; records what was sent."""

    kind = "fake"
    model = "fake-model"

    def __init__(self, answer: str = ANSWER) -> None:
        self.sent: list[str] = []
        self.gate = asyncio.Event()
        self.answer = answer

    async def complete(self, request: GenerationRequest) -> Completion:
        self.sent.append(request.request_id)
        await self.gate.wait()
        return Completion(self.answer, "stop", 10, 10)

    async def close(self) -> None:
        pass


def _request(i: int) -> GenerationRequest:
    return generation_request(i, max_tokens=50)


def _engine(provider, ledger_dir, lease=None):
    generator = GeneratorConfig.model_validate(
        {
            "name": "fake",
            "provider": {"kind": "markov"},
            "rate": {"concurrency": CONCURRENCY, "probe_first": False},
        }
    )
    governor = RateGovernor(generator.rate, generator.circuit_breaker, None)
    ledger = LedgerWriter(ledger_dir, flush_every=1, lease=lease)
    engine = GenerationEngine(provider, generator, LocalGovernor(governor), ledger, None, 0, lease)
    return engine, governor


@pytest.mark.parametrize("how", ["stop", "lease"])
def test_nothing_admitted_is_sent_once_the_run_stops(tmp_path, how):
    lease = Lease(tmp_path, "this-run")
    lease.take()
    provider = GatedProvider()
    engine, governor = _engine(provider, tmp_path, lease)

    async def scenario() -> dict[str, int]:
        run = asyncio.create_task(engine.run([_request(i) for i in range(20)]))
        while len(provider.sent) < CONCURRENCY:  # the slots are full, 2x more admitted behind
            await asyncio.sleep(0.01)
        if how == "stop":
            engine.stop()  # as when the driver is gone
        else:
            Lease(tmp_path, "a-newer-run").take()
        provider.gate.set()
        return await run

    counts = asyncio.run(scenario())
    assert sorted(provider.sent) == sorted(f"req-{i}" for i in range(CONCURRENCY))
    filed = read_ledger(tmp_path).column("request_id").to_pylist()
    if how == "stop":
        # the answers in flight are filed; the rest are left for the next run
        assert sorted(filed) == sorted(provider.sent)
        assert counts["ok"] == CONCURRENCY and counts["not_started"] == 20 - CONCURRENCY
    else:
        # a newer run owns the ledger: it asks for these itself, so nothing is filed here
        assert filed == [] and counts["fenced"] == 20
    # the grants of the admitted requests that were not sent are given back
    assert governor.stats.granted == CONCURRENCY
    assert governor.stats.reserved_usd == 0.0


def test_a_repair_not_sent_after_a_stop_leaves_a_failed_row_for_the_rerun(tmp_path):
    provider = GatedProvider(answer="not json")
    engine, _ = _engine(provider, tmp_path)

    async def scenario() -> dict[str, int]:
        run = asyncio.create_task(engine.run([_request(0)]))
        while not provider.sent:
            await asyncio.sleep(0.01)
        engine.stop()
        provider.gate.set()
        return await run

    counts = asyncio.run(scenario())
    assert provider.sent == ["req-0"]  # the repair was never sent
    (row,) = read_ledger(tmp_path).to_pylist()
    assert row["status"] == "failed" and "the run stopped before the repair" in row["error"]
    assert counts["stopped_before_repair"] == 1


def test_requests_are_drawn_as_room_opens(tmp_path):
    """A stream of requests is read as they are admitted (twice the concurrency at most), so a
    worker given a million holds a few hundred; every one is still completed."""
    provider = GatedProvider()
    engine, _ = _engine(provider, tmp_path)
    drawn: list[int] = []

    def stream():
        for i in range(200):
            drawn.append(i)
            yield _request(i)

    async def scenario() -> tuple[int, dict[str, int]]:
        run = asyncio.create_task(engine.run(stream()))
        while len(provider.sent) < CONCURRENCY:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        held = len(drawn)
        provider.gate.set()
        return held, await run

    held, counts = asyncio.run(scenario())
    assert CONCURRENCY <= held <= 2 * CONCURRENCY + 1
    assert counts["ok"] == 200 and len(provider.sent) == 200
    assert read_ledger(tmp_path).num_rows == 200


def test_a_requests_table_streams_into_the_same_requests(tmp_path):
    import pyarrow as pa

    rows = [
        {
            "request_id": f"r{i}",
            "generator": "fake",
            "strategy": "mptm",
            "topic": i,
            "target_platforms": ["twitter", "reddit"],
            "posts_per_platform": 2,
            "example_ids": [f"e{i}"],
            "messages": [{"role": "user", "content": f"prompt {i}"}],
            "params_json": json.dumps({"max_tokens": 50}),
            "seed": i,
            "label": None,
            "cues": [],
        }
        for i in range(5)
    ]
    streamed = list(GenerationRequest.stream(pa.Table.from_pylist(rows), batch_rows=2))
    assert streamed == [GenerationRequest.from_row(row) for row in rows]
