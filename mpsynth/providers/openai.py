"""OpenAI chat completions, and any OpenAI-compatible server (vLLM, llama.cpp, Ollama) via base_url.

The SDK's own retries are off: the engine retries, so that every attempt passes the shared rate
governor and a 429's Retry-After pauses every actor, not one.
"""

from __future__ import annotations

import os

from mpsynth.errors import ConfigError
from mpsynth.generation.config import OpenAIProviderConfig, RetryConfig
from mpsynth.providers import Completion, GenerationRequest, stainless_errors
from mpsynth.providers.limits import stated_limits
from mpsynth.providers.output import posts_schema


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

    async def complete(self, request: GenerationRequest) -> Completion:
        import openai

        options = {}
        response_format = self._response_format(request)
        if response_format is not None:
            options["response_format"] = response_format
        with stainless_errors(openai, f"openai ({self.model})", self._key):
            raw = await self.client.chat.completions.with_raw_response.create(
                model=self.model,
                messages=request.messages,
                temperature=request.params["temperature"],
                max_tokens=request.params["max_tokens"],
                seed=request.seed,
                **options,
            )
            response = raw.parse()
        choice = response.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        usage = response.usage
        return Completion(
            text=choice.message.content,
            finish_reason="refusal" if refusal else (choice.finish_reason or "stop"),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            limits=stated_limits(raw.headers),
        )

    async def close(self) -> None:
        await self.client.close()
