"""Generation backends behind one small protocol: a request (chat messages, sampling parameters and
what the request is for) in, a completion (text, token counts, finish reason) out. A backend maps its
SDK's failures onto two kinds: retryable (429, 5xx, timeouts, dropped connections) and fatal."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from mpsynth.config.generation import ProviderConfig, RetryConfig
from mpsynth.providers.limits import StatedLimits


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    generator: str
    strategy: str
    topic: int | None
    target_platforms: list[str]
    posts_per_platform: int
    example_ids: list[str]
    messages: list[dict[str, str]]
    params: dict[str, Any]
    seed: int
    label: str | None = None  # labelled runs: the class asked for
    cues: tuple[str, ...] = ()  # labelled runs: the cue words the prompt shows

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> GenerationRequest:
        return cls(
            request_id=row["request_id"],
            generator=row["generator"],
            strategy=row["strategy"],
            topic=row["topic"],
            target_platforms=list(row["target_platforms"]),
            posts_per_platform=row["posts_per_platform"],
            example_ids=list(row["example_ids"]),
            messages=list(row["messages"]),
            params=json.loads(row["params_json"]),
            seed=row["seed"],
            label=row.get("label"),
            cues=tuple(row.get("cues") or ()),
        )

    @classmethod
    def stream(cls, table: pa.Table, batch_rows: int = 1024) -> Iterator[GenerationRequest]:
        """The requests of a requests table, made a batch of rows at a time as they are drawn (the
        table stays in Arrow: about 1.5 KB a request where a row of Python objects takes 11)."""
        for batch in table.to_batches(max_chunksize=batch_rows):
            for row in batch.to_pylist():
                yield cls.from_row(row)


@dataclass(frozen=True)
class RealCorpus:
    """Where a run keeps its real posts and their topic assignments."""

    posts: Path
    assignments: Path | None = None
    labels: Path | None = None  # labelled runs: id, label, split (the seed is what trains)


@dataclass(frozen=True)
class Completion:
    text: str | None
    finish_reason: str  # "stop", "length" (truncated), "refusal", or the provider's own word
    prompt_tokens: int
    completion_tokens: int
    limits: StatedLimits | None = None  # what the response's headers say the limits are

    def __post_init__(self) -> None:
        # built from a provider's answer: a field of the wrong type is a malformed answer
        if not isinstance(self.text, str | None):
            raise TypeError(f"the answer's text is {type(self.text).__name__}, not a string")
        if not isinstance(self.finish_reason, str):
            raise TypeError(f"finish reason {self.finish_reason!r} is not a string")
        for name in ("prompt_tokens", "completion_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} {value!r} is not a token count")


@dataclass(frozen=True)
class BatchState:
    """Where a provider's batch stands: ended (answered, failed, expired or cancelled, with the
    provider's word for it in `status`) and how many of its requests are done."""

    ended: bool
    status: str
    done: int = 0


class RetryableProviderError(Exception):
    """Worth another attempt: rate limited, server error, timeout, dropped connection."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class MalformedAnswerError(RetryableProviderError):
    """An answer (status 200) that is not the shape the provider's API promises."""


class FatalProviderError(Exception):
    """No retry can fix it (bad key, invalid request, unknown model): the run stops."""


class Provider(Protocol):
    kind: str
    model: str

    async def complete(self, request: GenerationRequest) -> Completion: ...

    async def close(self) -> None: ...


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def retry_after_seconds(headers: Any) -> float | None:
    """Retry-After (seconds or an HTTP date) from a response's headers, if present."""
    if headers is None:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


_CAPPED: set[str] = set()  # generators already told their Retry-After was cut


def capped_retry_after(seconds: float | None, cap: float, generator: str) -> float | None:
    """A server's Retry-After, at most `cap` seconds (retry.max_retry_after_s): a bad header can
    ask for hours. Said once per generator."""
    if seconds is None or seconds <= cap:
        return seconds
    if generator not in _CAPPED:
        _CAPPED.add(generator)
        logging.getLogger(__name__).warning(
            "generate %s: the server asked to wait %g s (Retry-After); waiting %g s instead "
            "(retry.max_retry_after_s)",
            generator,
            seconds,
            cap,
        )
    return cap


@contextmanager
def stainless_errors(sdk: Any, label: str, key: str) -> Iterator[None]:
    """Map the errors of the openai and anthropic SDKs (one generated hierarchy, same class names)
    onto retryable and fatal, by status code and type, never by message text."""
    try:
        yield
    except sdk.RateLimitError as error:
        raise RetryableProviderError(
            f"429 {error.message}", 429, retry_after_seconds(error.response.headers)
        ) from None
    except sdk.APIStatusError as error:
        message = redact(f"HTTP {error.status_code}: {error.message}", key)
        if error.status_code >= 500 or error.status_code in (408, 409):
            raise RetryableProviderError(
                message, error.status_code, retry_after_seconds(error.response.headers)
            ) from None
        raise FatalProviderError(f"{label}: {message}") from None
    except (sdk.APITimeoutError, sdk.APIConnectionError) as error:
        # the SDK's own text is bare ("Connection error."): the transport's says what failed
        raise RetryableProviderError(
            f"{type(error).__name__}: {error}{_transport_cause(error)}"
        ) from None
    except sdk.APIResponseValidationError as error:
        raise MalformedAnswerError(f"malformed answer from {label}: {error}") from None
    except json.JSONDecodeError as error:  # a response body that is not JSON
        raise MalformedAnswerError(f"malformed answer body from {label}: {error}") from None


# what reading an answer of the wrong shape raises: a missing field, null where an object belongs,
# a number where a list belongs, a body that is not JSON (pydantic's errors are ValueErrors too)
SHAPE_ERRORS = (AttributeError, IndexError, KeyError, TypeError, ValueError)


@contextmanager
def answer_shape(label: str) -> Iterator[None]:
    """An answer that is not the shape the provider's API promises (a status-200 body of other JSON,
    an empty body, a field of the wrong type) becomes a retryable error naming what was wrong: the
    fault is the server's, and another attempt may be answered properly."""
    try:
        yield
    except SHAPE_ERRORS as error:
        raise MalformedAnswerError(
            f"malformed answer from {label}: {type(error).__name__}: {error}"
        ) from None


def batch_answer(read: Callable[[], Completion | str]) -> Completion | str:
    """One batch item's completion, or, when its answer is not the shape the provider's API
    promises, the error that item is recorded with (the batch's other answers are kept)."""
    try:
        return read()
    except SHAPE_ERRORS as error:
        return f"malformed batch answer: {error}"


def _transport_cause(error: BaseException) -> str:
    """The innermost cause of a connection error ("[Errno 111] Connection refused"), which the
    SDK and HTTP layers above it each wrap in a vaguer message of their own."""
    chain = []
    seen = error.__cause__ or error.__context__
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if not chain:
        return ""
    first, last = chain[0], chain[-1]
    text = f"{type(first).__name__}: {first}"
    if last is not first:
        text += f"; {type(last).__name__}: {last}"
    return f" ({text})"


def build_provider(config: ProviderConfig, retry: RetryConfig, corpus: RealCorpus) -> Provider:
    """The backend a config names; the offline baseline trains on the run's real corpus."""
    match config.kind:
        case "markov":
            from mpsynth.providers.markov import MarkovProvider

            return MarkovProvider.from_corpus(config, corpus)
        case "openai":
            from mpsynth.providers.openai import OpenAIProvider

            return OpenAIProvider(config, retry)
        case "anthropic":
            from mpsynth.providers.anthropic import AnthropicProvider

            return AnthropicProvider(config, retry)
        case "gemini":
            from mpsynth.providers.gemini import GeminiProvider

            return GeminiProvider(config, retry)
        case "vllm":
            from mpsynth.providers.vllm import VllmProvider

            return VllmProvider(config)
