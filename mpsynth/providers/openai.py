"""OpenAI chat completions, and any OpenAI-compatible server (vLLM, llama.cpp, Ollama) via base_url.

The SDK's own retries are off: the engine retries, so that every attempt passes the shared rate
governor and a 429's Retry-After pauses every actor, not one.
"""

from __future__ import annotations

import json
import os
from typing import Any

from mpsynth.config.generation import OpenAIProviderConfig, RetryConfig
from mpsynth.core.errors import ConfigError
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
from mpsynth.providers.output import posts_schema

CHAT_ENDPOINT = "/v1/chat/completions"
BATCH_KEY = "mpsynth_batch"  # the batch's metadata entry that names it, for a resumed run


def api_key(env: str, setting: str) -> str:
    key = os.environ.get(env)
    if not key:
        raise ConfigError(f"{setting}: the environment variable {env} is not set")
    return key


class OpenAIProvider:
    kind = "openai"

    def __init__(self, config: OpenAIProviderConfig, retry: RetryConfig) -> None:
        import openai

        self.config = config
        self.model = config.model
        self._key = api_key(config.api_key_env, "generate.generators[].provider.api_key_env")
        self.client = openai.AsyncOpenAI(
            api_key=self._key, base_url=config.base_url, max_retries=0, timeout=retry.timeout_s
        )

    def _response_format(self, request: GenerationRequest) -> dict | None:
        match self.config.structured_output:
            case "json_schema":
                schema = posts_schema(request.target_platforms, request.posts_per_platform)
                return {
                    "type": "json_schema",
                    "json_schema": {"name": "posts", "schema": schema, "strict": True},
                }
            case "json_object":
                return {"type": "json_object"}
            case "none":
                return None

    def body(self, request: GenerationRequest) -> dict:
        """The chat completion's parameters, as the live call and a batch file's line both send."""
        body = {
            "model": self.model,
            "messages": request.messages,
            "temperature": request.params["temperature"],
            "max_tokens": request.params["max_tokens"],
            "seed": request.seed,
        }
        response_format = self._response_format(request)
        if response_format is not None:
            body["response_format"] = response_format
        return body

    @staticmethod
    def completion(response: Any, headers: Any = None) -> Completion:
        choice = response.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        usage = response.usage
        return Completion(
            text=choice.message.content,
            finish_reason="refusal" if refusal else (choice.finish_reason or "stop"),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            limits=stated_limits(headers) if headers is not None else None,
        )

    async def complete(self, request: GenerationRequest) -> Completion:
        import openai

        label = f"openai ({self.model})"
        with stainless_errors(openai, label, self._key):
            raw = await self.client.chat.completions.with_raw_response.create(**self.body(request))
            with answer_shape(label):
                return self.completion(raw.parse(), raw.headers)

    # the Batch API: a JSONL file of requests, half the price, answered within 24 hours

    async def submit_batch(self, requests: list[GenerationRequest], key: str) -> str:
        import openai

        lines = "".join(
            json.dumps(
                {
                    "custom_id": r.request_id,
                    "method": "POST",
                    "url": CHAT_ENDPOINT,
                    "body": self.body(r),
                },
                ensure_ascii=False,
            )
            + "\n"
            for r in requests
        )
        with stainless_errors(openai, f"openai batch ({self.model})", self._key):
            uploaded = await self.client.files.create(
                file=(f"{key}.jsonl", lines.encode()), purpose="batch"
            )
            batch = await self.client.batches.create(
                input_file_id=uploaded.id,
                endpoint=CHAT_ENDPOINT,
                completion_window="24h",
                metadata={BATCH_KEY: key},
            )
        return batch.id

    async def find_batch(self, key: str) -> str | None:
        """The batch submitted under `key` (its metadata holds it), if the provider has one."""
        import openai

        with stainless_errors(openai, f"openai batch ({self.model})", self._key):
            async for batch in self.client.batches.list(limit=100):
                if (batch.metadata or {}).get(BATCH_KEY) == key:
                    return batch.id
        return None

    async def batch_state(self, batch_id: str) -> BatchState:
        import openai

        with stainless_errors(openai, f"openai batch ({self.model})", self._key):
            batch = await self.client.batches.retrieve(batch_id)
        counts = batch.request_counts
        return BatchState(
            ended=batch.status in ("completed", "failed", "expired", "cancelled"),
            status=batch.status,
            done=(counts.completed + counts.failed) if counts else 0,
        )

    async def batch_results(self, batch_id: str) -> dict[str, Completion | str]:
        """request id -> its completion, or the error the provider gave for it."""
        import openai
        from openai.types.chat import ChatCompletion

        out: dict[str, Completion | str] = {}
        with stainless_errors(openai, f"openai batch ({self.model})", self._key):
            batch = await self.client.batches.retrieve(batch_id)
            for file_id in filter(None, (batch.output_file_id, batch.error_file_id)):
                content = await self.client.files.content(file_id)
                for line in filter(None, content.text.splitlines()):
                    item = json.loads(line)
                    response = item.get("response") or {}
                    if item.get("error") or response.get("status_code") != 200:
                        error = item.get("error") or response.get("body", {}).get("error")
                        out[item["custom_id"]] = redact(f"batch item failed: {error}", self._key)
                        continue
                    out[item["custom_id"]] = batch_answer(
                        lambda b=response["body"]: self.completion(ChatCompletion.model_validate(b))
                    )
        return out

    async def close(self) -> None:
        await self.client.close()
