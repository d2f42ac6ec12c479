"""Anthropic messages, with structured output through output_config's JSON schema."""

from __future__ import annotations

from mpsynth.generation.config import AnthropicProviderConfig, RetryConfig
from mpsynth.providers import Completion, GenerationRequest, stainless_errors
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
        with stainless_errors(anthropic, f"anthropic ({self.model})", self._key):
            raw = await self.client.messages.with_raw_response.create(
                model=self.model,
                messages=messages,
                max_tokens=request.params["max_tokens"],
                **options,
            )
            response = await raw.parse()
        text = "".join(block.text for block in response.content if block.type == "text")
        return Completion(
            text=text,
            finish_reason=FINISH.get(response.stop_reason or "", response.stop_reason or "stop"),
            prompt_tokens=response.usage.input_tokens,
            completion_tokens=response.usage.output_tokens,
            limits=stated_limits(raw.headers),
        )

    async def close(self) -> None:
        await self.client.close()
