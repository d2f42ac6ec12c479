"""The generation engine: many requests in flight on one asyncio loop, every attempt cleared by the
rate governor, retries with jittered exponential backoff (or the server's Retry-After), one repair
retry for unusable output, and a ledger row for every request. Pure asyncio: Ray runs one engine per
actor, tests run it in-process."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from mpsynth.config import GeneratorConfig
from mpsynth.generation.ledger import Lease, LedgerWriter
from mpsynth.generation.pricing import Price
from mpsynth.generation.ratelimit import BudgetExhausted, CircuitOpen, RateGovernor, Settlement
from mpsynth.providers import (
    Completion,
    FatalProviderError,
    GenerationRequest,
    MalformedAnswerError,
    Provider,
    RetryableProviderError,
    capped_retry_after,
)
from mpsynth.providers.output import REPAIR_PROMPT, OutputFormatError, estimate_tokens, parse_posts


class Governor(Protocol):
    async def acquire(self, tokens: int, worst_cost_usd: float) -> None: ...
    async def settle(self, attempt: Settlement) -> None: ...
    async def failed(
        self, reserved: int, status: int | None, retry_after: float | None, worst: float
    ) -> None: ...
    async def unused(self, reserved: int, worst: float) -> None: ...
    async def request_finished(self, ok: bool) -> None: ...


class LocalGovernor:
    """A RateGovernor in this process, behind the async Governor interface."""

    def __init__(self, governor: RateGovernor) -> None:
        self.governor = governor

    async def acquire(self, tokens: int, worst_cost_usd: float) -> None:
        await self.governor.acquire(tokens, worst_cost_usd)

    async def settle(self, attempt: Settlement) -> None:
        self.governor.settled(attempt)

    async def failed(
        self, reserved: int, status: int | None, retry_after: float | None, worst: float
    ) -> None:
        self.governor.failed(reserved, status, retry_after, worst)

    async def unused(self, reserved: int, worst: float) -> None:
        self.governor.unused(reserved, worst)

    async def request_finished(self, ok: bool) -> None:
        self.governor.request_finished(ok)


class RetriesExhausted(Exception):
    pass


class NotSent(Exception):
    """An attempt cleared by the governor but not sent (its grant is given back)."""


class Fenced(NotSent):
    """A newer run took over this ledger: this engine must neither launch nor record."""


class Stopped(NotSent):
    """The run is stopping (interrupted, or its driver is gone): nothing more is sent."""


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(max, base * 2^(attempt-1))]."""
    return rng.uniform(0.0, min(max_s, base_s * 2 ** (attempt - 1)))


class GenerationEngine:
    def __init__(
        self,
        provider: Provider,
        generator: GeneratorConfig,
        governor: Governor,
        ledger: LedgerWriter,
        price: Price | None,
        seed: int = 0,
        lease: Lease | None = None,
    ) -> None:
        self.lease = lease
        self.provider = provider
        self.generator = generator
        self.governor = governor
        self.ledger = ledger
        self.price = price or Price(0.0, 0.0)
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.slots = asyncio.Semaphore(generator.rate.concurrency)  # provider calls in flight
        self.last_error: str | None = None
        self.stopping = False  # set by stop(): no new request starts; those in flight finish

    @property
    def endpoint(self) -> str:
        """Where the provider sends requests: the SDK client's base URL, else the configured one."""
        client_url = getattr(getattr(self.provider, "client", None), "base_url", None)
        configured = getattr(getattr(self.provider, "config", None), "base_url", None)
        return str(client_url or configured or self.provider.kind)

    async def run(self, requests: Iterable[GenerationRequest]) -> dict[str, int]:
        """Complete every request (a ledger row each) unless the budget stops new launches; a fatal
        provider error cancels the rest and propagates. Requests are drawn from `requests` as room
        opens, so a stream of millions holds only those admitted."""
        # as many requests again as may be in flight wait for their permit meanwhile, so the
        # governor's round trip overlaps other calls instead of holding a slot
        admitted = asyncio.Semaphore(2 * self.generator.rate.concurrency)

        async def guarded(request: GenerationRequest) -> None:
            try:
                await self._complete(request)
            except Fenced:
                self.counts["fenced"] += 1
            finally:
                admitted.release()

        try:
            async with asyncio.TaskGroup() as group:
                for request in requests:
                    await admitted.acquire()
                    if self.stopping:
                        admitted.release()
                        self.counts["not_started"] += 1  # no ledger row: the next run asks
                        continue
                    group.create_task(guarded(request))
        except* FatalProviderError as errors:
            raise errors.exceptions[0] from None
        except* CircuitOpen as errors:
            raise CircuitOpen(
                f"{errors.exceptions[0]}; last error from {self.endpoint}: {self.last_error}"
            ) from None
        finally:
            self.ledger.flush()
        return dict(self.counts)

    def stop(self) -> None:
        """Start no new request; the ones in flight finish and are written (an interrupted run)."""
        self.stopping = True

    async def _complete(self, request: GenerationRequest) -> None:
        started = time.monotonic()
        totals = Counter()
        current = request
        row = {"status": "failed", "text": None, "finish_reason": None, "error": None}
        settlements: list[Settlement] = []
        try:
            for phase in ("first", "repair"):
                completion, attempts, cost, settlement = await self._call(current)
                settlements.append(settlement)
                totals.update(
                    attempts=attempts,
                    prompt_tokens=completion.prompt_tokens,
                    completion_tokens=completion.completion_tokens,
                )
                totals["cost_micro_usd"] += round(cost * 1e6)
                row.update(text=completion.text, finish_reason=completion.finish_reason)
                if completion.finish_reason == "length":
                    self.counts["truncated"] += 1
                if completion.finish_reason == "refusal":
                    self.counts["refused"] += 1
                    row["error"] = "refused by the model"
                    break
                try:
                    parse_posts(completion.text)
                except OutputFormatError as error:
                    self.counts["parse_failures"] += 1
                    if phase == "first":  # unusable: settled now, so the repair can be granted
                        await self._settle(settlements)
                        settlements.clear()
                        current = self._repair_request(request, completion, str(error))
                        continue
                    row["error"] = f"unusable output after a repair retry: {error}"
                    break
                row.update(status="ok", error=None)
                break
        except (BudgetExhausted, Stopped) as error:
            budget = isinstance(error, BudgetExhausted)
            if not totals["attempts"]:
                # never sent: no ledger row, so a later run (with more budget) asks for it
                self.counts["budget_skipped" if budget else "not_started"] += 1
                return
            # the first answer was paid for and unusable, and its repair was not sent: the row
            # records what was spent (a later run asks again)
            self.counts["budget_skipped" if budget else "stopped_before_repair"] += 1
            why = "budget reached" if budget else "the run stopped"
            row["error"] = f"{why} before the repair retry (the unusable answer is paid)"
        except RetriesExhausted as error:
            totals["attempts"] += self.generator.retry.max_attempts
            row["error"] = str(error)
        self._check_lease()
        self.counts[row["status"]] += 1
        self.counts["repaired"] += current is not request
        # the answer on disk before anything else happens to it: the governor's bookkeeping
        # after, so a process killed meanwhile loses no paid answer
        self.ledger.add(
            {
                "request_id": request.request_id,
                "generator": request.generator,
                "provider": self.provider.kind,
                "model": self.provider.model,
                **row,
                "prompt_tokens": totals["prompt_tokens"],
                "completion_tokens": totals["completion_tokens"],
                "latency_s": time.monotonic() - started,
                "attempts": totals["attempts"],
                "repaired": current is not request,
                "cost_usd": totals["cost_micro_usd"] / 1e6,
                "finished_at": time.time(),
            }
        )
        await self._settle(settlements)
        await self.governor.request_finished(row["status"] == "ok")

    async def _settle(self, settlements: list[Settlement]) -> None:
        for settlement in settlements:
            await self.governor.settle(settlement)

    def _check_lease(self) -> None:
        if self.lease is not None and not self.lease.held():
            raise Fenced()

    def _check_sendable(self) -> None:
        if self.stopping:
            raise Stopped()
        self._check_lease()

    @staticmethod
    def _repair_request(
        request: GenerationRequest, completion: Completion, error: str
    ) -> GenerationRequest:
        return replace(
            request,
            messages=[
                *request.messages,
                {"role": "assistant", "content": completion.text or ""},
                {"role": "user", "content": REPAIR_PROMPT.format(error=error)},
            ],
        )

    async def _call(self, request: GenerationRequest) -> tuple[Completion, int, float, Settlement]:
        """One completion, retried on retryable failures: (completion, attempts, cost, what to
        settle with the governor once the answer is on disk)."""
        retry = self.generator.retry
        max_tokens = request.params["max_tokens"]
        prompt_estimate = sum(estimate_tokens(m["content"]) for m in request.messages)
        reserved = prompt_estimate + max_tokens
        worst = self.price.cost(prompt_estimate, max_tokens)
        last: RetryableProviderError | None = None
        for attempt in range(1, retry.max_attempts + 1):
            self._check_lease()
            await self.governor.acquire(reserved, worst)
            try:
                async with self.slots:
                    # checked again at the moment of sending: a request admitted before the run
                    # began stopping may have waited here for its grant or its slot since
                    self._check_sendable()
                    completion = await self.provider.complete(request)
            except NotSent:
                await self.governor.unused(reserved, worst)
                raise
            except RetryableProviderError as error:
                last = error
                self.last_error = str(error)
                self.counts["retried_attempts"] += 1
                self.counts["rate_limited"] += error.status == 429
                self.counts["malformed_answers"] += isinstance(error, MalformedAnswerError)
                wait = capped_retry_after(
                    error.retry_after, retry.max_retry_after_s, self.generator.name
                )
                await self.governor.failed(reserved, error.status, wait, worst)
                if attempt < retry.max_attempts:
                    delay = (
                        wait + self.rng.uniform(0, 0.1)
                        if wait is not None
                        else backoff_delay(attempt, retry.base_delay_s, retry.max_delay_s, self.rng)
                    )
                    await asyncio.sleep(delay)
                continue
            except FatalProviderError:
                await self.governor.failed(reserved, None, None, worst)
                raise
            cost = self.price.cost(completion.prompt_tokens, completion.completion_tokens)
            settlement = Settlement(
                reserved,
                completion.prompt_tokens,
                completion.completion_tokens,
                cost,
                worst,
                completion.limits or None,
            )
            return completion, attempt, cost, settlement
        raise RetriesExhausted(f"gave up after {retry.max_attempts} attempts: {last}")
