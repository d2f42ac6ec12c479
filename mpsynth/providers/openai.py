"""OpenAI chat completions, and any OpenAI-compatible server (vLLM, llama.cpp, Ollama) via base_url.

The SDK's own retries are off: the engine retries, so that every attempt passes the shared rate
governor and a 429's Retry-After pauses every actor, not one.
"""

from __future__ import annotations

import json
import os

from mpsynth.config import OpenAIProviderConfig, RetryConfig
from mpsynth.errors import ConfigError
from mpsynth.providers import (
    Completion,
    FatalProviderError,
    GenerationRequest,
    RetryableProviderError,
    redact,
    retry_after_seconds,
)
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
        try:
            response = await self.client.chat.completions.create(
                model=self.model,
                messages=request.messages,
                temperature=request.params["temperature"],
                max_tokens=request.params["max_tokens"],
                seed=request.seed,
                **options,
            )
        except openai.RateLimitError as error:
            raise RetryableProviderError(
                f"429 {error.message}", 429, retry_after_seconds(error.response.headers)
            ) from None
        except openai.APIStatusError as error:
            message = redact(f"HTTP {error.status_code}: {error.message}", self._key)
            if error.status_code >= 500 or error.status_code in (408, 409):
                raise RetryableProviderError(
                    message, error.status_code, retry_after_seconds(error.response.headers)
                ) from None
            raise FatalProviderError(f"openai ({self.model}): {message}") from None
        except (openai.APITimeoutError, openai.APIConnectionError) as error:
            raise RetryableProviderError(f"{type(error).__name__}: {error}") from None
        except openai.APIResponseValidationError as error:
            raise RetryableProviderError(f"malformed response: {error}") from None
        except json.JSONDecodeError as error:  # a response body that is not JSON
            raise RetryableProviderError(f"malformed response body: {error}") from None
        choice = response.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        usage = response.usage
        return Completion(
            text=choice.message.content,
            finish_reason="refusal" if refusal else (choice.finish_reason or "stop"),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    async def close(self) -> None:
        await self.client.close()
