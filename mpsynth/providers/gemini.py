"""Google Gemini through the google-genai SDK, JSON output constrained by a response schema."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mpsynth.config.generation import GeminiProviderConfig, RetryConfig
from mpsynth.providers import (
    BatchState,
    Completion,
    FatalProviderError,
    GenerationRequest,
    MalformedAnswerError,
    RetryableProviderError,
    answer_shape,
    batch_answer,
    redact,
    retry_after_seconds,
)
from mpsynth.providers.openai import api_key
from mpsynth.providers.output import posts_schema

FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "refusal",
    "PROHIBITED_CONTENT": "refusal",
}

ENDED_STATES = (
    "JOB_STATE_SUCCEEDED",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_EXPIRED",
)

TRANSPORT_MODULES = ("httpx", "httpx2", "httpcore", "httpcore2", "aiohttp")


def is_transport_error(error: BaseException) -> bool:
    """A timeout or dropped connection, from whichever HTTP stack the SDK runs on."""
    module = type(error).__module__.split(".")[0]
    return module in TRANSPORT_MODULES or isinstance(error, asyncio.TimeoutError | ConnectionError)


class GeminiProvider:
    kind = "gemini"

    def __init__(self, config: GeminiProviderConfig, retry: RetryConfig) -> None:
        from google import genai
        from google.genai import types

        self.config = config
        self.model = config.model
        self._key = api_key(config.api_key_env, "generate.generators[].provider.api_key_env")
        self.client = genai.Client(
            api_key=self._key,
            http_options=types.HttpOptions(
                base_url=config.base_url, timeout=int(retry.timeout_s * 1000)
            ),
        )

    def inputs(self, request: GenerationRequest) -> tuple[list, Any]:
        """(contents, config), as the live call and a batch's inline request both send them."""
        from google.genai import types

        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        contents = [
            types.Content(
                role="model" if m["role"] == "assistant" else "user",
                parts=[types.Part(text=m["content"])],
            )
            for m in request.messages
            if m["role"] != "system"
        ]
        options = {}
        if self.config.structured_output == "json_schema":
            options["response_mime_type"] = "application/json"
            options["response_json_schema"] = posts_schema(
                request.target_platforms, request.posts_per_platform
            )
        config = types.GenerateContentConfig(
            system_instruction=system or None,
            temperature=request.params["temperature"],
            max_output_tokens=request.params["max_tokens"],
            seed=request.seed,
            **options,
        )
        return contents, config

    @contextmanager
    def _errors(self, label: str) -> Iterator[None]:
        """The SDK's failures as retryable (429, 5xx, 408, transport) or fatal."""
        from google.genai import errors

        try:
            yield
        except errors.APIError as error:
            message = redact(f"HTTP {error.code}: {error.message}", self._key)
            headers = getattr(error.response, "headers", None)
            if error.code == 429 or error.code >= 500 or error.code == 408:
                raise RetryableProviderError(
                    message, error.code, retry_after_seconds(headers)
                ) from None
            raise FatalProviderError(f"{label} ({self.model}): {message}") from None
        except json.JSONDecodeError as error:  # a status-200 body that is not JSON
            raise MalformedAnswerError(f"malformed answer body from {label}: {error}") from None
        except Exception as error:
            if is_transport_error(error):
                raise RetryableProviderError(f"{type(error).__name__}: {error}") from None
            raise

    @staticmethod
    def completion(response: Any) -> Completion:
        if not response.candidates:
            feedback = response.prompt_feedback
            if not (feedback and feedback.block_reason):  # a blocked prompt has no candidates
                raise ValueError("an answer with no candidates and no block reason")
        candidate = response.candidates[0] if response.candidates else None
        reason = str(
            candidate.finish_reason.value if candidate and candidate.finish_reason else "STOP"
        )
        usage = response.usage_metadata
        return Completion(
            text=response.text,
            finish_reason=FINISH.get(reason, reason.lower()),
            prompt_tokens=(usage.prompt_token_count or 0) if usage else 0,
            completion_tokens=(usage.candidates_token_count or 0) if usage else 0,
        )

    async def complete(self, request: GenerationRequest) -> Completion:
        contents, config = self.inputs(request)
        # the SDK reads the body inside the call: a body of the wrong shape fails there
        with answer_shape(f"gemini ({self.model})"):
            with self._errors("gemini"):
                response = await self.client.aio.models.generate_content(
                    model=self.model, contents=contents, config=config
                )
            return self.completion(response)

    # batch mode: inline requests, half the price, answered within 24 hours

    async def submit_batch(self, requests: list[GenerationRequest], key: str) -> str:
        inline = []
        for request in requests:
            contents, config = self.inputs(request)
            inline.append(
                {
                    "contents": contents,
                    "config": config,
                    "metadata": {"request_id": request.request_id},
                }
            )
        with self._errors("gemini batch"):
            job = await self.client.aio.batches.create(
                model=self.model, src=inline, config={"display_name": key}
            )
        return job.name

    async def find_batch(self, key: str) -> str | None:
        """The batch job whose display name is `key`, if the provider has one."""
        with self._errors("gemini batch"):
            async for job in await self.client.aio.batches.list():
                if job.display_name == key:
                    return job.name
        return None

    async def _job(self, batch_id: str) -> dict[str, Any]:
        """The batch job as the SDK's plain dict, not yet validated: the SDK validates the whole job
        at once, so one answer of the wrong shape would hide the state and every other (paid)
        answer; each answer is validated on its own instead."""
        from google.genai.batches import _BatchJob_from_mldev

        with self._errors("gemini batch"):
            response = await self.client.aio._api_client.async_request("get", batch_id, {})
        with answer_shape(f"gemini batch ({self.model})"):
            job = _BatchJob_from_mldev(json.loads(response.body or "{}"))
            if not isinstance(job, dict):
                raise TypeError(f"a batch job that is {type(job).__name__}")
            return job

    async def batch_state(self, batch_id: str) -> BatchState:
        state = (await self._job(batch_id)).get("state") or "JOB_STATE_UNSPECIFIED"
        return BatchState(state in ENDED_STATES, str(state))

    def _inlined(self, raw: dict) -> Completion | str:
        """One inlined answer of a batch job, validated on its own."""
        from google.genai import types

        item = types.InlinedResponse.model_validate(raw)
        if item.error is not None or item.response is None:
            return redact(f"batch item failed: {item.error}", self._key)
        return self.completion(item.response)

    async def batch_results(self, batch_id: str) -> dict[str, Completion | str]:
        """request id -> its completion, or the error the provider gave for it."""
        items = ((await self._job(batch_id)).get("dest") or {}).get("inlined_responses") or []
        out: dict[str, Completion | str] = {}
        for raw in items:
            metadata = raw.get("metadata") if isinstance(raw, dict) else None
            request_id = metadata.get("request_id") if isinstance(metadata, dict) else None
            if not isinstance(request_id, str):
                continue
            out[request_id] = batch_answer(lambda r=raw: self._inlined(r))
        return out

    async def close(self) -> None:
        await self.client.aio.aclose()
