"""Answers of the wrong shape, through the real SDKs and the local server: a status-200 body that is
not what the provider's API promises is a counted, retried request (then a failed one, its reason in
the ledger), for every provider, live and batch; it never ends the run."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpsynth.config import GeneratorConfig
from mpsynth.generation.pricing import Price
from mpsynth.providers import GenerationRequest, build_provider
from mpsynth.testing import FakeProviderServer, Fault
from tests.conftest import generation_request, run_engine

KINDS = ("openai", "anthropic", "gemini")
# the bodies a hostile probe found to end a run, and their kin
MALFORMED = {
    "empty": "",
    "choices-number": '{"choices": 7}',
    "object": "{}",
    "choices-empty": '{"choices": []}',
    "message-null": '{"choices": [{"message": null}]}',
    "null": "null",
    "list": "[1]",
    "content-number": '{"content": 5}',
    "candidates-number": '{"candidates": 3, "usageMetadata": "x"}',
    "html": "<html><body>502 Bad Gateway</body></html>",
    "bytes": b"\xff\xfe\x00garbage",
}


def _request(i: int) -> GenerationRequest:
    return generation_request(
        i,
        "reddit",
        [
            {"role": "system", "content": "You write realistic social-media posts."},
            {"role": "user", "content": f"[reddit] example {i}\nWrite 1 new posts for: reddit."},
        ],
        temperature=0.8,
    )


def _generator(
    kind: str, server: FakeProviderServer, attempts: int = 3, **extra
) -> GeneratorConfig:
    return GeneratorConfig.model_validate(
        {
            "name": "g",
            "provider": {
                "kind": kind,
                "model": "test-model",
                "base_url": server.base_url if kind == "openai" else server.root_url,
                "api_key_env": "MPSYNTH_KEY",
            },
            "retry": {"max_attempts": attempts, "base_delay_s": 0.0, "max_delay_s": 0.0},
            "circuit_breaker": {"failures": 1000, "cooldown_s": 0.1},
            "rate": {"probe_first": False},
            **extra,
        }
    )


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("MPSYNTH_KEY", "test-key")


@pytest.fixture(scope="module")
def server():
    with FakeProviderServer(api_key="test-key") as server:
        yield server


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_answer_is_retried_and_counted(kind, body, server, tmp_path):
    server.inject(Fault(body=body))
    requests = [_request(0), _request(1)]
    counts, ledger, _ = run_engine(_generator(kind, server), requests, tmp_path, Price(1.0, 2.0))
    rows = ledger.to_pylist()
    assert sorted(r["request_id"] for r in rows) == ["req-0", "req-1"]
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    assert counts.get("retried_attempts") == 1 and counts.get("malformed_answers") == 1


@pytest.mark.parametrize("kind", KINDS)
def test_an_answer_malformed_every_time_fails_the_request_with_its_reason(kind, server, tmp_path):
    server.inject(*[Fault(body='{"choices": 7, "content": 5, "candidates": 3}')] * 2)
    counts, ledger, _ = run_engine(
        _generator(kind, server, attempts=2), [_request(0)], tmp_path, Price(1.0, 2.0)
    )
    (row,) = ledger.to_pylist()
    assert row["status"] == "failed"
    assert "malformed answer" in row["error"] and "gave up after 2 attempts" in row["error"]
    assert counts["failed"] == 1


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)
# what a provider's answer looks like, with any value in any field: the shapes that get past the
# first key lookup are the ones most likely to reach the code that reads them
NEAR_ANSWERS = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.lists(st.fixed_dictionaries({}, optional={"message": JSON}), max_size=2)
        | JSON,
        "content": st.lists(st.fixed_dictionaries({"type": JSON, "text": JSON}), max_size=2) | JSON,
        "candidates": JSON,
        "usage": JSON,
        "usageMetadata": JSON,
        "stop_reason": JSON,
    },
)
BODIES = (
    JSON.map(json.dumps)
    | NEAR_ANSWERS.map(json.dumps)
    | st.binary(max_size=40)
    | st.text(max_size=40)
)


@pytest.mark.parametrize("kind", KINDS)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(bodies=st.lists(BODIES, min_size=1, max_size=3))
def test_any_answer_body_ends_in_an_accounted_request(kind, server, tmp_path_factory, bodies):
    server.faults.clear()  # what an earlier example left unmet
    server.inject(*[Fault(body=body) for body in bodies])
    directory = tmp_path_factory.mktemp("ledger")
    requests = [_request(i) for i in range(2)]
    counts, ledger, _ = run_engine(_generator(kind, server), requests, directory, Price(1.0, 2.0))
    rows = ledger.to_pylist()
    assert sorted(r["request_id"] for r in rows) == ["req-0", "req-1"]  # each exactly once
    assert all(r["status"] in ("ok", "failed") for r in rows)
    assert all(r["error"] for r in rows if r["status"] == "failed")
    assert counts.get("ok", 0) + counts.get("failed", 0) == 2


BATCH_ANSWERS = {
    "wrong-types": {"choices": 7, "content": 5, "candidates": [{"content": 3}]},
    "null": None,
    "list": [1],
    "object": {},
    "string": "text",
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("answer", BATCH_ANSWERS.values(), ids=BATCH_ANSWERS.keys())
def test_a_malformed_batch_item_is_a_failed_row_not_a_crash(kind, answer, server):
    """The batch reader: each item's answer is read on its own, and one of the wrong shape becomes
    that item's error while the others are kept."""
    generator = _generator(kind, server)
    provider = build_provider(generator.provider, generator.retry, None)
    requests = [_request(0), _request(1)]

    async def collect():
        try:
            batch = await provider.submit_batch(requests, "malformed-batch")
            while not (await provider.batch_state(batch)).ended:
                await asyncio.sleep(0.05)
            return await provider.batch_results(batch)
        finally:
            await provider.close()

    server.batches.malformed["req-1"] = answer
    try:
        results = asyncio.run(collect())
    finally:
        server.batches.malformed.clear()
    assert not isinstance(results["req-0"], str)
    assert isinstance(results["req-1"], str)  # that item's error, the others kept
    assert "malformed" in results["req-1"] or "failed" in results["req-1"]


def test_a_paid_answer_whose_repair_the_budget_refuses_is_recorded_with_its_cost(server, tmp_path):
    """The first answer is unusable and paid; the budget admits no repair: the ledger keeps a failed
    row with what was spent (it never vanishes from the accounts), and the spend stays in budget."""
    server.faults.clear()
    server.inject(Fault(content="no json at all"))
    price = Price(1.0, 2.0)
    request = _request(0)
    from mpsynth.providers.output import estimate_tokens

    # room for one attempt at its worst case (the engine's prompt estimate + max_tokens), and not
    # for the repair (a longer prompt) on top of what the first answer cost
    prompt = sum(estimate_tokens(m["content"]) for m in request.messages)
    worst = price.cost(prompt, request.params["max_tokens"])
    counts, ledger, governor = run_engine(
        _generator("openai", server), [request], tmp_path, price, budget_usd=1.001 * worst
    )
    (row,) = ledger.to_pylist()
    assert row["status"] == "failed" and "budget reached before the repair" in row["error"]
    assert row["cost_usd"] > 0 and row["attempts"] == 1
    assert governor.stats.spent_usd == pytest.approx(row["cost_usd"])
    assert counts["budget_skipped"] == 1
