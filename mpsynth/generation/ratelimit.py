"""The rate governor shared by every actor of one generator: requests/min and tokens/min, a pause on
429 honouring Retry-After with an adaptive slow-down (cut once per congestion event, regrown with
time, as TCP does), a circuit breaker, and the budget cap.

Pure asyncio (Ray wraps it in one actor per generator). Limits are spaced with GCRA: each grant
pushes the next free slot forward by 1/rate, with one second of burst allowed, so a minute's limit
is never spent in its first second. Where the provider states its limits in response headers
(OpenAI's x-ratelimit-limit-*, Anthropic's anthropic-ratelimit-*-limit), the rates are sized to
them, below the configured ceiling, so a config that overstates the limit does not learn it from
429s. With `probe_first` the first request goes alone: nothing else is granted until it is answered,
so a stated limit is known before the first burst (one round trip at the start of a run).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from mpsynth.config.generation import CircuitBreakerConfig, RateLimitConfig
from mpsynth.providers.limits import StatedLimits

SLOWDOWN = 0.5  # rate multiplier after a 429 ...
CUT_WINDOW_S = 1.0  # ... once per congestion event: the 429s of one burst count as one
RECOVERY_PER_S = 0.005  # then the rate grows back by 0.5% a second, up to the configured one
MIN_MULTIPLIER = 0.05
DEFAULT_429_PAUSE_S = 1.0
PROBE_POLL_S = 0.02  # how often requests waiting behind the probe look again
BUDGET_POLL_S = 0.05  # how often a request waiting for in-flight ones to settle looks again
BUDGET_WAIT_S = 600.0  # ... and how long it waits before the budget counts as reached
HEADROOM = 0.95  # of a stated limit: the provider's window and ours never line up exactly
LEARNED_GRACE_S = 2.0  # after a stated limit is learned, 429s of earlier requests do not cut


class BudgetExhausted(Exception):
    """Launching another request could exceed budget_usd."""


class CircuitOpen(Exception):
    """The provider kept failing through every cool-down: the run gives up on it."""


@dataclass
class GovernorStats:
    granted: int = 0
    succeeded: int = 0
    failed_attempts: int = 0
    rate_limited: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    breaker_trips: int = 0
    requests_done: int = 0
    requests_failed: int = 0
    learned_requests_per_minute: float | None = None  # sized from the provider's headers
    learned_tokens_per_minute: float | None = None


class _Gcra:
    """Generic cell rate: `amount` units per minute, with a second's worth of burst."""

    def __init__(self, per_minute: float | None) -> None:
        self.per_minute = per_minute
        self.next_at = 0.0

    def wait(self, now: float, amount: float, multiplier: float) -> float:
        if self.per_minute is None:
            return 0.0
        rate = self.per_minute * multiplier / 60.0  # units per second
        burst = max(1.0, rate)  # one second of units
        earliest = self.next_at - burst / rate
        return max(0.0, earliest - now)

    def take(self, now: float, amount: float, multiplier: float) -> None:
        if self.per_minute is not None:
            rate = self.per_minute * multiplier / 60.0
            self.next_at = max(self.next_at, now) + amount / rate

    def give_back(self, now: float, amount: float, multiplier: float) -> None:
        if self.per_minute is not None and amount > 0:
            rate = self.per_minute * multiplier / 60.0
            self.next_at = max(now, self.next_at - amount / rate)


@dataclass(frozen=True)
class Settlement:
    """A successful attempt, as the engine reports it to the governor."""

    reserved_tokens: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    worst_cost_usd: float = 0.0
    limits: StatedLimits | None = None  # what the response's headers stated


class RateGovernor:
    def __init__(
        self,
        rate: RateLimitConfig,
        breaker: CircuitBreakerConfig,
        budget_usd: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.requests = _Gcra(rate.requests_per_minute)
        self.tokens = _Gcra(rate.tokens_per_minute)
        self.breaker = breaker
        self.budget_usd = budget_usd
        self.clock = clock
        self.sleep = sleep
        self.multiplier = 1.0
        self.last_cut = float("-inf")
        self.learned_at = float("-inf")  # when a stated limit last changed a rate
        self.last_recovery = clock()
        self.paused_until = 0.0
        self.consecutive_failures = 0
        self.open_until = 0.0
        self.trips_without_success = 0
        self.half_open_probe = False
        self.probing = rate.probe_first  # until the first answer: one request at a time
        self.probe_out = False
        self.stats = GovernorStats()

    def _trip_limit(self) -> int:
        """A provider that has answered before gets `max_trips` cool-downs to recover; one that
        never has (a wrong URL, a server that is down) gets one cool-down to come up, so a run
        against it ends in about `cooldown_s`, not `max_trips` times that."""
        return self.breaker.max_trips if self.stats.succeeded else min(2, self.breaker.max_trips)

    def _breaker_wait(self, now: float) -> float:
        if self.open_until > now:
            return self.open_until - now
        if self.open_until and self.half_open_probe:
            return self.breaker.cooldown_s or 0.05  # one probe at a time while half-open
        return 0.0

    async def acquire(self, tokens: int, worst_cost_usd: float = 0.0) -> None:
        """Wait until a request of `tokens` (prompt estimate + max_tokens) may be sent, reserving it.
        With a budget, a request whose worst case does not fit beside those in flight waits for
        them to settle; once nothing in flight can make room for it, BudgetExhausted."""
        waited = 0.0
        while True:
            if self.trips_without_success >= self._trip_limit():
                raise CircuitOpen(
                    f"the provider failed through {self.trips_without_success} circuit-breaker "
                    f"cool-down(s) without a single success"
                )
            if (
                self.budget_usd is not None
                and self.stats.spent_usd + self.stats.reserved_usd + worst_cost_usd
                > self.budget_usd
            ):
                # the requests in flight hold their worst case; settled, most give room back
                if (
                    self.stats.spent_usd + worst_cost_usd > self.budget_usd
                    or waited > BUDGET_WAIT_S  # a reservation nothing will settle: stop
                ):
                    raise BudgetExhausted(
                        f"budget_usd={self.budget_usd} reached (spent ${self.stats.spent_usd:.4f})"
                    )
                await self.sleep(BUDGET_POLL_S)
                waited += BUDGET_POLL_S
                continue
            now = self.clock()
            wait = max(
                self.paused_until - now,
                self._breaker_wait(now),
                self.requests.wait(now, 1, self.multiplier),
                self.tokens.wait(now, tokens, self.multiplier),
                PROBE_POLL_S if self.probing and self.probe_out else 0.0,
            )
            if wait <= 0:
                break
            await self.sleep(wait)
        if self.open_until and self.open_until <= now:
            self.half_open_probe = True  # the breaker lets this one request through to probe
        self.probe_out = self.probing
        self.requests.take(now, 1, self.multiplier)
        self.tokens.take(now, tokens, self.multiplier)
        self.stats.granted += 1
        self.stats.reserved_usd += worst_cost_usd

    def settle(
        self,
        reserved_tokens: int,
        prompt_tokens: int,
        completion_tokens: int,
        cost_usd: float,
        worst_cost_usd: float = 0.0,
        limits: StatedLimits | None = None,
    ) -> None:
        """A successful attempt: return unused token reservation, book the real cost, and size
        the rates to the limits the provider stated (never above the configured ceiling)."""
        if limits:
            self.learn(limits)
        self.probing = self.probe_out = False
        self.tokens.give_back(
            self.clock(), reserved_tokens - prompt_tokens - completion_tokens, self.multiplier
        )
        self.stats.succeeded += 1
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += completion_tokens
        self.stats.spent_usd += cost_usd
        self.stats.reserved_usd = max(0.0, self.stats.reserved_usd - worst_cost_usd)
        self.consecutive_failures = 0
        self.trips_without_success = 0
        self.open_until = 0.0
        self.half_open_probe = False
        now = self.clock()
        self.multiplier = min(
            1.0, self.multiplier * (1 + RECOVERY_PER_S * (now - self.last_recovery))
        )
        self.last_recovery = now

    def settled(self, attempt: Settlement) -> None:
        self.settle(
            attempt.reserved_tokens,
            attempt.prompt_tokens,
            attempt.completion_tokens,
            attempt.cost_usd,
            attempt.worst_cost_usd,
            attempt.limits,
        )

    def learn(self, limits: StatedLimits) -> None:
        """Requests and tokens per minute: HEADROOM of what the provider states, at most the
        configured rate (the ceiling); a limit it does not state stays as configured."""
        for gcra, ceiling, stated, name in (
            (self.requests, self.rate.requests_per_minute, limits.requests_per_minute, "requests"),
            (self.tokens, self.rate.tokens_per_minute, limits.tokens_per_minute, "tokens"),
        ):
            if stated is None:
                continue
            sized = stated * HEADROOM if ceiling is None else min(ceiling, stated * HEADROOM)
            if sized != gcra.per_minute:
                gcra.per_minute = sized
                setattr(self.stats, f"learned_{name}_per_minute", sized)
                # the slow-down guessed at a limit the provider has now stated: drop the guess
                self.multiplier = 1.0
                self.last_recovery = self.learned_at = self.clock()

    def failed(
        self,
        reserved_tokens: int,
        status: int | None,
        retry_after: float | None,
        worst_cost_usd: float = 0.0,
    ) -> None:
        """A failed attempt. A 429 pauses every sender and slows the rate; other failures count
        towards the breaker."""
        now = self.clock()
        self.probe_out = False  # the next request probes in its place
        self.tokens.give_back(now, reserved_tokens, self.multiplier)
        self.stats.failed_attempts += 1
        self.stats.reserved_usd = max(0.0, self.stats.reserved_usd - worst_cost_usd)
        if status == 429:
            self.stats.rate_limited += 1
            pause = retry_after if retry_after is not None else DEFAULT_429_PAUSE_S
            self.paused_until = max(self.paused_until, now + pause)
            # 429s of requests sent before a stated limit was learned say nothing new
            if now - self.last_cut >= CUT_WINDOW_S and now - self.learned_at >= LEARNED_GRACE_S:
                self.multiplier = max(MIN_MULTIPLIER, self.multiplier * SLOWDOWN)
                self.last_cut = now
            self.last_recovery = now
            return
        self.consecutive_failures += 1
        if self.half_open_probe or self.consecutive_failures >= self.breaker.failures:
            self.open_until = now + self.breaker.cooldown_s
            self.half_open_probe = False
            self.consecutive_failures = 0
            self.trips_without_success += 1
            self.stats.breaker_trips += 1

    def unused(self, reserved_tokens: int, worst_cost_usd: float = 0.0) -> None:
        """A grant that was never sent (the run began stopping meanwhile): its request, tokens and
        cost reservation given back, the breaker untouched."""
        now = self.clock()
        self.probe_out = False
        self.requests.give_back(now, 1, self.multiplier)
        self.tokens.give_back(now, reserved_tokens, self.multiplier)
        self.stats.granted -= 1
        self.stats.reserved_usd = max(0.0, self.stats.reserved_usd - worst_cost_usd)

    def request_finished(self, ok: bool) -> None:
        if ok:
            self.stats.requests_done += 1
        else:
            self.stats.requests_failed += 1

    def snapshot(self) -> dict:
        return asdict(self.stats)
