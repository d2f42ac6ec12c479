"""Anthropic messages, with structured output through output_config's JSON schema."""

from __future__ import annotations

from typing import Any

from mpsynth.config.generation import AnthropicProviderConfig, RetryConfig
from mpsynth.providers import (
    BatchState,
    Completion,
    GenerationRequest,
    answer_shape,
    batch_answer,
    redact,
    stainless_errors,
)
from mpsynth.providers.limits import stated_limits
from mpsynth.providers.openai import api_key
from mpsynth.providers.output import posts_schema

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "refusal": "refusal"}


class AnthropicProvider:
    kind = "anthropic"

    def __init__(self, config: AnthropicProviderConfig, retry: RetryConfig) -> None:
        import anthropic

        self.config = config
        self.model = config.model
        self._key = api_key(config.api_key_env, "generate.generators[].provider.api_key_env")
        self.client = anthropic.AsyncAnthropic(
            api_key=self._key, base_url=config.base_url, max_retries=0, timeout=retry.timeout_s
        )

    def params(self, request: GenerationRequest) -> dict:
        """The message's parameters, as the live call and a batch's request both send them."""
        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        params = {
            "model": self.model,
            "messages": [m for m in request.messages if m["role"] != "system"],
            "max_tokens": request.params["max_tokens"],
        }
        if system:
            params["system"] = system
        if request.params["temperature"] != 1.0:
            params["temperature"] = min(1.0, request.params["temperature"])
        if self.config.structured_output == "json_schema":
            schema = posts_schema(request.target_platforms, request.posts_per_platform)
            params["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        return params

    @staticmethod
    def completion(response: Any, headers: Any = None) -> Completion:
        text = "".join(block.text for block in response.content if block.type == "text")
        return Completion(
            text=text,
            finish_reason=FINISH.get(response.stop_reason or "", response.stop_reason or "stop"),
            prompt_tokens=response.usage.input_tokens,
            completion_tokens=response.usage.output_tokens,
            limits=stated_limits(headers) if headers is not None else None,
        )

    async def complete(self, request: GenerationRequest) -> Completion:
        import anthropic

        params = self.params(request)
        if "temperature" in params:
            # no longer a named argument of the SDK; models that accept it take it in the body
            params["extra_body"] = {"temperature": params.pop("temperature")}
        label = f"anthropic ({self.model})"
        with stainless_errors(anthropic, label, self._key):
            raw = await self.client.messages.with_raw_response.create(**params)
            with answer_shape(label):
                return self.completion(await raw.parse(), raw.headers)

    # Message Batches: up to 100,000 requests, half the price, answered within 24 hours

    async def submit_batch(self, requests: list[GenerationRequest], key: str) -> str:
        import anthropic

        with stainless_errors(anthropic, f"anthropic batch ({self.model})", self._key):
            batch = await self.client.messages.batches.create(
                requests=[{"custom_id": r.request_id, "params": self.params(r)} for r in requests]
            )
        return batch.id

    async def find_batch(self, key: str) -> str | None:
        """Message batches carry no metadata to find one by: a batch whose id was never recorded
        is submitted again."""
        return None

    async def batch_state(self, batch_id: str) -> BatchState:
        import anthropic

        with stainless_errors(anthropic, f"anthropic batch ({self.model})", self._key):
            batch = await self.client.messages.batches.retrieve(batch_id)
        counts = batch.request_counts
        done = counts.succeeded + counts.errored + counts.canceled + counts.expired
        return BatchState(batch.processing_status == "ended", batch.processing_status, done)

    async def batch_results(self, batch_id: str) -> dict[str, Completion | str]:
        import anthropic

        out: dict[str, Completion | str] = {}
        with stainless_errors(anthropic, f"anthropic batch ({self.model})", self._key):
            async for item in await self.client.messages.batches.results(batch_id):
                result = item.result
                if result.type == "succeeded":
                    out[item.custom_id] = batch_answer(lambda m=result.message: self.completion(m))
                else:
                    error = getattr(getattr(result, "error", None), "error", None)
                    out[item.custom_id] = redact(f"batch item {result.type}: {error}", self._key)
        return out

    async def close(self) -> None:
        await self.client.close()
