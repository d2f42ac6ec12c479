from __future__ import annotations

import asyncio

import pytest

from mpsynth.config.generation import CircuitBreakerConfig, RateLimitConfig
from mpsynth.generation.ratelimit import BudgetExhausted, CircuitOpen, RateGovernor


class FakeClock:
    """Time that moves only when the governor sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)  # other tasks (a settlement) run while one waits


def _governor(clock, rpm=None, tpm=None, budget=None, probe_first=False, **breaker):
    return RateGovernor(
        RateLimitConfig(requests_per_minute=rpm, tokens_per_minute=tpm, probe_first=probe_first),
        CircuitBreakerConfig(**breaker),
        budget,
        clock=clock,
        sleep=clock.sleep,
    )


async def _grant_times(governor, clock, n, tokens=1):
    times = []
    for _ in range(n):
        await governor.acquire(tokens)
        times.append(round(clock(), 6))
    return times


def test_requests_per_minute_spaces_grants_after_one_second_of_burst():
    clock = FakeClock()
    governor = _governor(clock, rpm=120)  # 2 per second
    times = asyncio.run(_grant_times(governor, clock, 8))
    assert times[:3] == [0.0, 0.0, 0.0]  # the burst: one second's worth (+ the first)
    assert times[3:] == [0.5, 1.0, 1.5, 2.0, 2.5]


def test_tokens_per_minute_and_settling_returns_unused_reservation():
    clock = FakeClock()
    governor = _governor(clock, tpm=6000)  # 100 tokens per second
    asyncio.run(governor.acquire(1000))  # reserves 10 seconds of tokens
    governor.settle(1000, 100, 100, cost_usd=0.0)  # only 200 used: 8 seconds come back
    asyncio.run(governor.acquire(100))
    assert clock() == pytest.approx(1.0)
    assert governor.stats.prompt_tokens == 100


def test_429_pauses_every_sender_and_slows_the_rate():
    clock = FakeClock()
    governor = _governor(clock, rpm=600)
    asyncio.run(governor.acquire(1))
    governor.failed(1, status=429, retry_after=3.0)
    asyncio.run(governor.acquire(1))
    assert clock() >= 3.0
    assert governor.multiplier == pytest.approx(0.5)
    assert governor.stats.rate_limited == 1 and governor.stats.breaker_trips == 0


def test_the_429s_of_one_burst_cut_the_rate_once_and_time_regrows_it():
    clock = FakeClock()
    governor = _governor(clock, rpm=600)
    for _ in range(5):  # five requests of one burst all answered 429
        governor.failed(1, status=429, retry_after=0.1)
    assert governor.multiplier == pytest.approx(0.5)
    clock.now += 2.0
    governor.failed(1, status=429, retry_after=0.1)  # a new congestion event
    assert governor.multiplier == pytest.approx(0.25)
    clock.now += 20.0
    governor.settle(1, 1, 0, 0.0)
    assert governor.multiplier == pytest.approx(0.25 * 1.1)  # 0.5% a second for 20 s


def test_breaker_opens_after_consecutive_failures_and_gives_up_after_max_trips():
    clock = FakeClock()
    governor = _governor(clock, failures=3, cooldown_s=10.0, max_trips=2)
    for _ in range(3):
        asyncio.run(governor.acquire(1))
        governor.failed(1, status=500, retry_after=None)
    assert governor.stats.breaker_trips == 1
    asyncio.run(governor.acquire(1))  # waits out the cool-down, then probes
    assert clock() == pytest.approx(10.0)
    governor.failed(1, status=500, retry_after=None)  # the probe fails: open again
    assert governor.stats.breaker_trips == 2
    with pytest.raises(CircuitOpen):
        asyncio.run(governor.acquire(1))


def test_a_success_closes_the_breaker():
    clock = FakeClock()
    governor = _governor(clock, failures=2, cooldown_s=5.0, max_trips=2)
    for _ in range(2):
        asyncio.run(governor.acquire(1))
        governor.failed(1, status=503, retry_after=None)
    asyncio.run(governor.acquire(1))
    governor.settle(1, 1, 0, 0.0)
    assert governor.trips_without_success == 0 and governor.open_until == 0.0
    asyncio.run(governor.acquire(1))
    assert clock() == pytest.approx(5.0)  # no further wait


def test_budget_holds_launches_until_in_flight_worst_cases_settle_and_stops_when_none_can():
    clock = FakeClock()
    governor = _governor(clock, budget=1.0)

    async def scenario() -> None:
        await governor.acquire(10, worst_cost_usd=0.6)
        waiting = asyncio.create_task(governor.acquire(10, worst_cost_usd=0.6))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done()  # 0.6 in flight + 0.6 > 1.0: it waits, nothing is sent
        governor.settle(10, 5, 5, cost_usd=0.1, worst_cost_usd=0.6)
        await waiting  # 0.1 spent + 0.6 fits
        governor.settle(10, 5, 5, cost_usd=0.5, worst_cost_usd=0.6)
        with pytest.raises(BudgetExhausted):  # 0.6 spent, nothing in flight: 0.6 more cannot fit
            await governor.acquire(10, worst_cost_usd=0.6)

    asyncio.run(scenario())
    assert governor.stats.spent_usd == pytest.approx(0.6)


def test_a_reservation_nothing_settles_ends_the_wait_for_room():
    from mpsynth.generation.ratelimit import BUDGET_WAIT_S

    clock = FakeClock()
    governor = _governor(clock, budget=1.0)
    asyncio.run(governor.acquire(10, worst_cost_usd=0.6))  # a worker that died holding it
    with pytest.raises(BudgetExhausted):
        asyncio.run(governor.acquire(10, worst_cost_usd=0.6))
    assert BUDGET_WAIT_S <= clock() <= BUDGET_WAIT_S + 1


def test_a_provider_that_never_answered_gets_one_cool_down_with_the_defaults():
    """Default breaker (10 failures, 30 s, 5 trips): an unreachable server ends the run after the
    first cool-down's probe fails (about 30 s), not after five cool-downs."""
    clock = FakeClock()
    governor = _governor(clock)
    for _ in range(10):
        asyncio.run(governor.acquire(1))
        governor.failed(1, status=None, retry_after=None)
    asyncio.run(governor.acquire(1))  # the probe, after the cool-down
    governor.failed(1, status=None, retry_after=None)
    with pytest.raises(CircuitOpen, match="2 circuit-breaker cool-down"):
        asyncio.run(governor.acquire(1))
    assert clock() == pytest.approx(30.0)


def test_a_provider_that_answered_before_gets_every_cool_down():
    clock = FakeClock()
    governor = _governor(clock, failures=1, cooldown_s=1.0, max_trips=4)
    asyncio.run(governor.acquire(1))
    governor.settle(1, 1, 0, 0.0)
    for _ in range(3):
        asyncio.run(governor.acquire(1))
        governor.failed(1, status=503, retry_after=None)
    asyncio.run(governor.acquire(1))  # three trips without success: still under max_trips
    governor.failed(1, status=503, retry_after=None)
    with pytest.raises(CircuitOpen):
        asyncio.run(governor.acquire(1))


class YieldingClock(FakeClock):
    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)  # other tasks (a settlement) run while one waits
        await asyncio.sleep(0)  # let the other tasks run, as a real sleep would


def test_probe_first_grants_nothing_else_until_the_first_answer():
    clock = YieldingClock()
    governor = _governor(clock, rpm=1200, probe_first=True)

    async def scenario():
        await governor.acquire(1)  # the probe
        assert clock() == 0.0
        waiting = asyncio.ensure_future(governor.acquire(1))
        for _ in range(50):  # fake time passes while the probe is out: no second grant
            await asyncio.sleep(0)
        assert not waiting.done() and governor.stats.granted == 1
        governor.failed(1, 500, None)  # the probe failed: the next request probes in its place
        await waiting
        assert governor.stats.granted == 2 and governor.probing
        governor.settle(1, 1, 0, 0.0)  # an answer: the gate opens for good
        assert not governor.probing
        before = clock()
        for _ in range(5):
            await governor.acquire(1)
        assert clock() == before  # the burst goes out at once

    asyncio.run(scenario())
