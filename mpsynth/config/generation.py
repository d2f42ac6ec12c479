"""The generation backends' config: providers, rate limits, retries and the circuit breaker (part
of the run config; mpsynth.config re-exports every name)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from mpsynth.config.base import Section


class MarkovProviderConfig(Section):
    """The offline baseline: a word n-gram Markov chain trained on the pool's topic and platform."""

    kind: Literal["markov"] = "markov"
    model: str = "ngram-markov"
    order: Annotated[int, Field(ge=1, le=4)] = 2
    max_words: Annotated[int, Field(ge=3, le=500)] = 80
    min_training_posts: Annotated[int, Field(ge=1)] = 20
    cue_boost: Annotated[float, Field(ge=1.0)] = Field(
        default=5.0,
        description="labelled runs: how much likelier a transition to a cue word is (1: no steering)",
    )
    example_weight: Annotated[float, Field(ge=0.0)] = Field(
        default=0.0,
        description="topic runs: the prompt's own examples also train the chain, each transition "
        "of theirs counted this many times (0: the topic's real posts alone, the prompt unread)",
    )


class OpenAIProviderConfig(Section):
    """OpenAI, or any OpenAI-compatible server (vLLM, llama.cpp, Ollama) through base_url."""

    kind: Literal["openai"] = "openai"
    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    structured_output: Literal["json_schema", "json_object", "none"] = "json_schema"


class _HostedProviderConfig(Section):
    model: str
    base_url: str | None = None
    structured_output: Literal["json_schema", "none"] = "json_schema"


class AnthropicProviderConfig(_HostedProviderConfig):
    kind: Literal["anthropic"] = "anthropic"
    api_key_env: str = "ANTHROPIC_API_KEY"


class GeminiProviderConfig(_HostedProviderConfig):
    kind: Literal["gemini"] = "gemini"
    api_key_env: str = "GEMINI_API_KEY"


class VllmProviderConfig(Section):
    """A vLLM engine inside each generation actor, one per GPU set (install the `vllm` extra)."""

    kind: Literal["vllm"] = "vllm"
    model: str
    tensor_parallel_size: Annotated[int, Field(ge=1)] = 1
    gpu_memory_utilization: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    max_model_len: Annotated[int, Field(ge=256)] | None = None
    structured_output: bool = True


ProviderConfig = Annotated[
    MarkovProviderConfig
    | OpenAIProviderConfig
    | AnthropicProviderConfig
    | GeminiProviderConfig
    | VllmProviderConfig,
    Field(discriminator="kind"),
]


class RateLimitConfig(Section):
    """Limits shared by every actor of a generator (None: unlimited)."""

    requests_per_minute: Annotated[float, Field(gt=0)] | None = None
    tokens_per_minute: Annotated[float, Field(gt=0)] | None = None
    concurrency: Annotated[int, Field(ge=1)] = 16  # requests in flight per actor
    probe_first: bool = Field(
        default=True,
        description="send one request and wait for its answer before the rest, so the limits the "
        "provider states in its headers size the rate before the first burst",
    )


class RetryConfig(Section):
    max_attempts: Annotated[int, Field(ge=1)] = 6
    base_delay_s: Annotated[float, Field(ge=0.0)] = 1.0
    max_delay_s: Annotated[float, Field(ge=0.0)] = 60.0
    timeout_s: Annotated[float, Field(gt=0.0)] = 120.0
    max_retry_after_s: Annotated[float, Field(ge=0.0)] = Field(
        default=300.0,
        description="the longest wait a server's Retry-After is obeyed for; a longer one (a bad "
        "header can say hours) is cut to this, with a warning",
    )


class CircuitBreakerConfig(Section):
    """Stop sending for `cooldown_s` after `failures` failed attempts in a row (429s excluded);
    give up on the run after `max_trips` trips with no success in between."""

    failures: Annotated[int, Field(ge=1)] = 10
    cooldown_s: Annotated[float, Field(ge=0.0)] = 30.0
    max_trips: Annotated[int, Field(ge=1)] = 5


class BatchConfig(Section):
    """mode: batch. The provider's batch API: half the price, answered within 24 hours."""

    max_requests: Annotated[int, Field(ge=1, le=50_000)] = Field(
        default=10_000, description="requests per batch (OpenAI takes up to 50,000 per file)"
    )
    poll_interval_s: Annotated[float, Field(gt=0.0)] = 60.0
    price_factor: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        default=0.5, description="the batch price as a share of the live price (0.5 at all three)"
    )


class GeneratorConfig(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.]+$")]
    provider: ProviderConfig
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0
    max_tokens: Annotated[int, Field(ge=16)] = 1024
    actors: Annotated[int, Field(ge=1)] = 1
    rate: RateLimitConfig = RateLimitConfig()
    retry: RetryConfig = RetryConfig()
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    mode: Literal["live", "batch"] = Field(
        default="live",
        description="live: one call per request; batch: the provider's batch API (openai, "
        "anthropic, gemini), at the batch price",
    )
    batch: BatchConfig = BatchConfig()

    @model_validator(mode="after")
    def _batch_needs_a_batch_api(self) -> GeneratorConfig:
        if self.mode == "batch" and self.provider.kind not in ("openai", "anthropic", "gemini"):
            raise ValueError(
                f"mode: batch needs an openai, anthropic or gemini provider, not "
                f"{self.provider.kind}"
            )
        return self


class PriceConfig(Section):
    input_per_mtok: Annotated[float, Field(ge=0.0)]
    output_per_mtok: Annotated[float, Field(ge=0.0)]


class GenerateConfig(Section):
    n_posts: Annotated[int, Field(ge=1)] = 400
    generators: Annotated[list[GeneratorConfig], Field(min_length=1)] = Field(
        default_factory=lambda: [GeneratorConfig(name="markov", provider=MarkovProviderConfig())]
    )
    budget_usd: Annotated[float, Field(gt=0.0)] | None = None
    prices: dict[str, PriceConfig] = Field(
        default_factory=dict, description="model -> price per million tokens, over the defaults"
    )
    cache: bool = Field(
        default=True,
        description="answer a request from the completion cache (beside the embedding cache) when "
        "any run has had it answered before; every new answer is filed there (the Markov "
        "stand-in excepted)",
    )
    cache_max_gb: Annotated[float, Field(gt=0.0)] = 5.0
    accept_gaps: bool = Field(
        default=False,
        description="commit the stage with requests that failed or got no answer; by default it "
        "is left uncommitted, so the next run asks again for exactly those",
    )
    replicates: Annotated[int, Field(ge=1)] = Field(
        default=1,
        description="independent generations (new seeds for pools, prompts and generation), each "
        "evaluated; every stage before pools is shared, and the report gives each metric's spread "
        "over them",
    )
    replicate: Annotated[int, Field(ge=0)] = Field(
        default=0,
        description="which generation this run directory holds (0: the first); `replicates` sets "
        "it for the generations it adds",
    )
    flush_every: Annotated[int, Field(ge=1)] = 32
    flush_interval_s: Annotated[float, Field(gt=0.0)] = 2.0
    progress_interval_s: Annotated[float, Field(gt=0.0)] = 5.0

    @field_validator("generators")
    @classmethod
    def _unique_names(cls, value: list[GeneratorConfig]) -> list[GeneratorConfig]:
        names = [g.name for g in value]
        if len(set(names)) != len(names):
            raise ValueError(f"generator names must be unique (got {names})")
        return value
