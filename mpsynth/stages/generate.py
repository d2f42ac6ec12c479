"""Generate: the callable class that completes a batch of requests through a provider (the Ray actor
body); a failed request becomes a failed row with its error, never a crashed run."""

from __future__ import annotations

import asyncio
import time

import pyarrow as pa

from mpsynth import schema
from mpsynth.config import MarkovProviderConfig
from mpsynth.providers import GenerationRequest, Provider, RealCorpus, build_provider


async def _complete_one(provider: Provider, request: GenerationRequest) -> dict:
    started = time.perf_counter()
    row = {
        "request_id": request.request_id,
        "provider": provider.kind,
        "model": provider.model,
        "status": "ok",
        "text": None,
        "finish_reason": None,
        "prompt_tokens": None,
        "completion_tokens": None,
        "error": None,
    }
    try:
        completion = await provider.complete(request)
    except Exception as error:  # recorded as data: one bad request must not sink the batch
        row.update(status="failed", error=f"{type(error).__name__}: {error}")
    else:
        row.update(
            text=completion.text,
            finish_reason=completion.finish_reason,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
        )
    row["latency_s"] = time.perf_counter() - started
    return row


class GenerateBatch:
    def __init__(self, provider: MarkovProviderConfig, corpus: RealCorpus) -> None:
        self.provider = build_provider(provider, corpus)

    async def _complete_all(self, requests: list[GenerationRequest]) -> list[dict]:
        return await asyncio.gather(*(_complete_one(self.provider, r) for r in requests))

    def __call__(self, batch: pa.Table) -> pa.Table:
        requests = [GenerationRequest.from_row(row) for row in batch.to_pylist()]
        rows = asyncio.run(self._complete_all(requests))
        return pa.Table.from_pylist(rows, schema=schema.COMPLETIONS)
