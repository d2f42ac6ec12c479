"""Batch mode: a generator's requests go to the provider's batch API (OpenAI Batch, Anthropic Message
Batches, Gemini batch mode) instead of one call each: submitted in batches of `batch.max_requests`,
polled, and collected into the same ledger as live answers, at the batch price.

Every batch has a record in `<ledger>/batches/<key>.json`, written (scratch file, then rename)
before it is submitted, again with the provider's id once it is, and again once its answers are in
the ledger. A driver that dies between submit and collect is resumed by running again: a batch with
an id is polled and collected, never submitted twice; one whose id was never recorded is looked up
by its key where the provider keeps one (OpenAI's metadata, Gemini's display name) and submitted
again only where it cannot be found. Answers already in the ledger are never written twice.

No Ray: the driver waits on the provider, not on compute.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from mpsynth.config import GeneratorConfig
from mpsynth.core import console
from mpsynth.core.errors import ProviderError
from mpsynth.generation.engine import backoff_delay
from mpsynth.generation.ledger import (
    Lease,
    LedgerWriter,
    Mirror,
    read_ledger,
    succeeded_ids,
    take_over,
)
from mpsynth.generation.pricing import Price
from mpsynth.providers import (
    Completion,
    FatalProviderError,
    GenerationRequest,
    RealCorpus,
    RetryableProviderError,
    build_provider,
    capped_retry_after,
)
from mpsynth.providers.output import OutputFormatError, estimate_tokens, parse_posts

log = logging.getLogger(__name__)
T = TypeVar("T")
BATCH_KINDS = ("openai", "anthropic", "gemini")


@dataclass
class BatchRecord:
    key: str
    request_ids: list[str]
    created_at: float
    batch_id: str | None = None  # the provider's id, once submitted
    submitted_at: float | None = None
    collected_at: float | None = None
    status: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        """Submitted and not yet collected."""
        return self.batch_id is not None and self.collected_at is None


class BatchRecords:
    """The batch records of one generator's ledger, each written atomically."""

    def __init__(self, ledger_dir: Path, mirror: Mirror | None = None) -> None:
        self.directory = Path(ledger_dir) / "batches"
        self.mirror = mirror

    def load(self) -> list[BatchRecord]:
        if not self.directory.is_dir():
            return []
        records = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                records.append(BatchRecord(**json.loads(path.read_text())))
            except (ValueError, TypeError) as error:
                raise ProviderError(f"batch record {path} is unreadable: {error}") from None
        return sorted(records, key=lambda r: r.created_at)

    def save(self, record: BatchRecord) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{record.key}.json"
        scratch = self.directory / f".{record.key}.{uuid.uuid4().hex[:8]}.tmp"
        scratch.write_text(json.dumps(asdict(record), indent=1))
        os.replace(scratch, final)
        if self.mirror is not None:
            self.mirror.push(final)

    def drop(self, record: BatchRecord) -> None:
        (self.directory / f"{record.key}.json").unlink(missing_ok=True)


def run_batches(
    generator: GeneratorConfig,
    requests: pa.Table,
    ledger_dir: Path,
    corpus: RealCorpus | None,
    price: Price | None,
    budget_usd: float | None,
    progress_interval_s: float = 5.0,
    mirror: Mirror | None = None,
) -> dict[str, float]:
    """Complete this generator's requests that the ledger lacks through its provider's batch API,
    spending at `price` (the batch price: pricing.run_price); returns this run's counts. Ledger
    parts and batch records also go to `mirror`."""
    if generator.provider.kind not in BATCH_KINDS:
        raise ProviderError(
            f"generator {generator.name}: mode=batch needs an openai, anthropic or gemini provider"
        )
    lease = take_over(ledger_dir, mirror)
    try:
        runner = BatchRunner(
            generator,
            ledger_dir,
            build_provider(generator.provider, generator.retry, corpus),
            price or Price(0.0, 0.0),
            budget_usd,
            lease,
            progress_interval_s,
            mirror,
        )
        return asyncio.run(runner.run(requests))
    finally:
        lease.release()


class BatchRunner:
    def __init__(
        self,
        generator: GeneratorConfig,
        ledger_dir: Path,
        provider: Any,
        price: Price,
        budget_usd: float | None,
        lease: Lease,
        progress_interval_s: float,
        mirror: Mirror | None = None,
    ) -> None:
        self.generator = generator
        self.settings = generator.batch
        self.ledger_dir = Path(ledger_dir)
        self.provider = provider
        self.price = price
        self.budget_usd = budget_usd
        self.lease = lease
        self.records = BatchRecords(ledger_dir, mirror)
        self.ledger = LedgerWriter(ledger_dir, flush_every=10**9, lease=lease, mirror=mirror)
        self.progress_interval_s = progress_interval_s
        self.rng = random.Random(0)
        self.counts: Counter[str] = Counter()

    async def run(self, requests: pa.Table) -> dict[str, float]:
        try:
            records = await self._resume(self.records.load())
            ledger = read_ledger(self.ledger_dir)
            done = succeeded_ids(ledger)
            waiting = {rid for r in records if r.live for rid in r.request_ids}
            pending = [
                GenerationRequest.from_row(row)
                for row in requests.to_pylist()
                if row["request_id"] not in done and row["request_id"] not in waiting
            ]
            log.info(
                "generate %s (batch): %d requests, %d in the ledger, %d in submitted batches, "
                "%d to submit",
                self.generator.name,
                requests.num_rows,
                len(done & set(requests.column("request_id").to_pylist())),
                len(waiting),
                len(pending),
            )
            spent = float(pc.sum(ledger.column("cost_usd")).as_py() or 0.0)
            records += await self._submit(self._within_budget(pending, records, spent))
            await self._collect_all([r for r in records if r.live])
        finally:
            await self.provider.close()
        return dict(self.counts)

    async def _resume(self, records: list[BatchRecord]) -> list[BatchRecord]:
        """Records of an earlier run: one whose submission was never confirmed is found by its
        key, or forgotten (its requests go out again)."""
        kept = []
        for record in records:
            if record.batch_id is None and record.collected_at is None:
                found = await self._call(lambda r=record: self.provider.find_batch(r.key))
                if found is None:
                    log.warning(
                        "generate %s: batch %s was never confirmed as submitted and the provider "
                        "has no batch under its key; its %d requests are submitted again",
                        self.generator.name,
                        record.key,
                        len(record.request_ids),
                    )
                    self.records.drop(record)
                    continue
                record.batch_id, record.submitted_at = found, record.created_at
                self.records.save(record)
                self.counts["batches_found"] += 1
            if record.live:
                self.counts["batches_resumed"] += 1
            kept.append(record)
        return kept

    def _within_budget(
        self, pending: list[GenerationRequest], records: list[BatchRecord], spent: float
    ) -> list[GenerationRequest]:
        """The pending requests whose worst case still fits the budget, with the batches already
        submitted counted at their worst case too."""
        if self.budget_usd is None:
            return pending
        max_tokens = self.generator.max_tokens
        reserved = sum(len(r.request_ids) for r in records if r.live) * self.price.cost(
            0, max_tokens
        )
        allowed = []
        for request in pending:
            prompt = sum(estimate_tokens(m["content"]) for m in request.messages)
            worst = self.price.cost(prompt, request.params["max_tokens"])
            if spent + reserved + worst > self.budget_usd:
                self.counts["budget_skipped"] = len(pending) - len(allowed)
                log.warning(
                    "generate %s: budget_usd=%s reached; %d requests not submitted",
                    self.generator.name,
                    self.budget_usd,
                    len(pending) - len(allowed),
                )
                break
            reserved += worst
            allowed.append(request)
        return allowed

    async def _submit(self, pending: list[GenerationRequest]) -> list[BatchRecord]:
        submitted = []
        size = self.settings.max_requests
        for start in range(0, len(pending), size):
            chunk = pending[start : start + size]
            key = f"{self.generator.name}-{uuid.uuid4().hex[:12]}"
            record = BatchRecord(key, [r.request_id for r in chunk], time.time())
            self.records.save(record)  # before the provider knows of it: a crash is recoverable
            record.batch_id = await self._call(
                lambda c=chunk, k=key: self.provider.submit_batch(c, k)
            )
            record.submitted_at = time.time()
            self.records.save(record)
            self.counts["batches_submitted"] += 1
            log.info(
                "generate %s: batch %s submitted (%d requests)",
                self.generator.name,
                record.batch_id,
                len(chunk),
            )
            submitted.append(record)
        return submitted

    async def _collect_all(self, records: list[BatchRecord]) -> None:
        total = sum(len(r.request_ids) for r in records)
        if not total:
            return
        done: dict[str, int] = {}
        with console.progress(
            f"generate {self.generator.name} (batch)",
            total,
            unit="req",
            interval_s=self.progress_interval_s,
        ) as shown:
            waiting = list(records)
            while waiting:
                for record in list(waiting):
                    state = await self._call(lambda r=record: self.provider.batch_state(r.batch_id))
                    done[record.key] = len(record.request_ids) if state.ended else state.done
                    if state.ended:
                        await self._collect(record, state.status)
                        waiting.remove(record)
                shown.update(sum(done.values()), batches=len(waiting), failed=self.counts["failed"])
                if waiting:
                    await asyncio.sleep(self.settings.poll_interval_s)

    async def _collect(self, record: BatchRecord, status: str) -> None:
        """Write the batch's answers to the ledger (none twice), then mark it collected."""
        if not self.lease.held():
            raise ProviderError(
                f"generate {self.generator.name}: another run took over the ledger; batch "
                f"{record.batch_id} is left to it"
            )
        results = await self._call(lambda: self.provider.batch_results(record.batch_id))
        ledger = read_ledger(self.ledger_dir)
        already = {
            rid
            for rid, at in zip(
                ledger.column("request_id").to_pylist(),
                ledger.column("finished_at").to_pylist(),
                strict=True,
            )
            if at >= (record.submitted_at or record.created_at)
        }
        finished = time.time()
        for request_id in record.request_ids:
            if request_id in already:
                continue
            row = self._row(request_id, results.get(request_id), status)
            row.update(
                latency_s=finished - (record.submitted_at or record.created_at),
                finished_at=finished,
            )
            self.ledger.add(row)
            self.counts[row["status"]] += 1
        self.ledger.flush()
        record.collected_at, record.status = finished, status
        record.counts = {
            "ok": sum(1 for r in record.request_ids if isinstance(results.get(r), Completion)),
            "answered": len(results),
        }
        self.records.save(record)
        log.info(
            "generate %s: batch %s %s, %d of %d answered",
            self.generator.name,
            record.batch_id,
            status,
            len(results),
            len(record.request_ids),
        )

    def _row(self, request_id: str, result: Completion | str | None, status: str) -> dict:
        row = {
            "request_id": request_id,
            "generator": self.generator.name,
            "provider": self.provider.kind,
            "model": self.provider.model,
            "status": "failed",
            "text": None,
            "finish_reason": None,
            "error": None,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "attempts": 1,
            "repaired": False,
            "cost_usd": 0.0,
        }
        if result is None:
            row["error"] = f"no answer in the batch (batch {status})"
            return row
        if isinstance(result, str):
            row["error"] = result
            return row
        row.update(
            text=result.text,
            finish_reason=result.finish_reason,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            cost_usd=self.price.cost(result.prompt_tokens, result.completion_tokens),
        )
        if result.finish_reason == "refusal":
            row["error"] = "refused by the model"
            return row
        try:
            parse_posts(result.text)
        except OutputFormatError as error:
            self.counts["parse_failures"] += 1
            row["error"] = f"unusable output: {error}"
            return row
        row["status"] = "ok"
        return row

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        """One batch API call, retried with backoff on what can pass (429, 5xx, timeouts)."""
        retry = self.generator.retry
        for attempt in range(1, retry.max_attempts + 1):
            try:
                return await make()
            except RetryableProviderError as error:
                if attempt == retry.max_attempts:
                    raise ProviderError(
                        f"generator {self.generator.name}: batch call failed after "
                        f"{attempt} attempts: {error}"
                    ) from None
                wait = capped_retry_after(
                    error.retry_after, retry.max_retry_after_s, self.generator.name
                )
                delay = wait or backoff_delay(
                    attempt, retry.base_delay_s, retry.max_delay_s, self.rng
                )
                await asyncio.sleep(delay)
            except FatalProviderError as error:
                raise ProviderError(f"generator {self.generator.name}: {error}") from None
        raise AssertionError("unreachable")
