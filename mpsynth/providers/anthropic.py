"""Anthropic messages, with structured output through output_config's JSON schema."""

from __future__ import annotations

import json

from mpsynth.config import AnthropicProviderConfig, RetryConfig
from mpsynth.providers import (
    Completion,
    FatalProviderError,
    GenerationRequest,
    RetryableProviderError,
    redact,
    retry_after_seconds,
)
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

    async def complete(self, request: GenerationRequest) -> Completion:
        import anthropic

        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        messages = [m for m in request.messages if m["role"] != "system"]
        options = {}
        if system:
            options["system"] = system
        if request.params["temperature"] != 1.0:
            # no longer a named argument of the SDK; models that accept it take it in the body
            options["extra_body"] = {"temperature": min(1.0, request.params["temperature"])}
        if self.config.structured_output == "json_schema":
            schema = posts_schema(request.target_platforms, request.posts_per_platform)
            options["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        try:
            response = await self.client.messages.create(
                model=self.model,
                messages=messages,
                max_tokens=request.params["max_tokens"],
                **options,
            )
        except anthropic.RateLimitError as error:
            raise RetryableProviderError(
                f"429 {error.message}", 429, retry_after_seconds(error.response.headers)
            ) from None
        except anthropic.APIStatusError as error:
            message = redact(f"HTTP {error.status_code}: {error.message}", self._key)
            if error.status_code >= 500 or error.status_code in (408, 409):
                raise RetryableProviderError(
                    message, error.status_code, retry_after_seconds(error.response.headers)
                ) from None
            raise FatalProviderError(f"anthropic ({self.model}): {message}") from None
        except (anthropic.APITimeoutError, anthropic.APIConnectionError) as error:
            raise RetryableProviderError(f"{type(error).__name__}: {error}") from None
        except anthropic.APIResponseValidationError as error:
            raise RetryableProviderError(f"malformed response: {error}") from None
        except json.JSONDecodeError as error:  # a response body that is not JSON
            raise RetryableProviderError(f"malformed response body: {error}") from None
        text = "".join(block.text for block in response.content if block.type == "text")
        return Completion(
            text=text,
            finish_reason=FINISH.get(response.stop_reason or "", response.stop_reason or "stop"),
            prompt_tokens=response.usage.input_tokens,
            completion_tokens=response.usage.output_tokens,
        )

    async def close(self) -> None:
        await self.client.close()
