"""Prices per million tokens, the cost of a completion, and the estimate of a run before it starts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from mpsynth.config import GeneratorConfig, PriceConfig
from mpsynth.providers.output import estimate_tokens

# List prices in USD per million tokens (input, output) for the models most used here; override or
# extend them with generate.prices in the config.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "claude-3-5-haiku-latest": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4-0": (3.00, 15.00),
    "claude-opus-4-1": (15.00, 75.00),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.5-pro": (1.25, 10.00),
    "text-embedding-3-large": (0.13, 0.0),
    "text-embedding-3-small": (0.02, 0.0),
}
FREE_KINDS = ("markov", "vllm")  # computed locally: no per-token price


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok
        ) / 1e6


def price_for(generator: GeneratorConfig, overrides: Mapping[str, PriceConfig]) -> Price | None:
    """The generator's price: the config's override, the default table, zero for local models,
    or None when unknown."""
    model = generator.provider.model
    if model in overrides:
        return Price(overrides[model].input_per_mtok, overrides[model].output_per_mtok)
    if generator.provider.kind in FREE_KINDS:
        return Price(0.0, 0.0)
    if model in DEFAULT_PRICES:
        return Price(*DEFAULT_PRICES[model])
    return None


def run_price(generator: GeneratorConfig, overrides: Mapping[str, PriceConfig]) -> Price | None:
    """What the generator's tokens cost in the mode it runs in: batch mode at the batch price."""
    price = price_for(generator, overrides)
    if price is None or generator.mode != "batch":
        return price
    factor = generator.batch.price_factor
    return Price(price.input_per_mtok * factor, price.output_per_mtok * factor)


JSON_TOKENS_PER_POST = 12  # {"platform": "...", "text": "..."} around each post


def estimate_generation(
    requests: pa.Table,
    posts: pa.Table,
    generators: list[GeneratorConfig],
    overrides: Mapping[str, PriceConfig],
    done: Mapping[str, set[str]],
    later: Mapping[str, int] | None = None,
) -> list[dict]:
    """Per generator: requests (and those still to run), prompt tokens, expected and maximum
    completion tokens, and the dollars they cost. Expected output: each requested post as long as
    the real examples its prompt shows, plus the JSON around it. `later`: generator -> requests
    a later stage will make (the structure stage's replies and quotes, one post each), priced
    as the generator's average request and counted in `requests` and `to_run`."""
    text_of = dict(
        zip(posts.column("id").to_pylist(), posts.column("text").to_pylist(), strict=True)
    )
    rows = []
    for generator in generators:
        price = run_price(generator, overrides)
        todo = prompt = expected = maximum = 0
        count = n_asked = 0  # requests, posts they ask for
        for request in requests.filter(
            pc.equal(requests.column("generator"), generator.name)
        ).to_pylist():
            count += 1
            if request["request_id"] in done.get(generator.name, set()):
                continue
            todo += 1
            prompt += sum(estimate_tokens(m["content"]) for m in request["messages"])
            example_tokens = [estimate_tokens(text_of[i]) for i in request["example_ids"]]
            per_post = sum(example_tokens) / max(1, len(example_tokens)) + JSON_TOKENS_PER_POST
            n_posts = request["posts_per_platform"] * len(request["target_platforms"])
            n_asked += n_posts
            expected += min(generator.max_tokens, round(n_posts * per_post))
            maximum += generator.max_tokens
        extra = (later or {}).get(generator.name, 0)
        if extra and todo:  # each as long as an average request, asking for one post
            prompt += round(extra * prompt / todo)
            expected += round(extra * expected / max(1, n_asked))
            maximum += extra * generator.max_tokens
        count, todo = count + extra, todo + extra
        rows.append(
            {
                "generator": generator.name,
                "model": generator.provider.model,
                "requests": count,
                "to_run": todo,
                "structure_requests": extra,
                "prompt_tokens": prompt,
                "expected_completion_tokens": expected,
                "max_completion_tokens": maximum,
                "min_usd": price.cost(prompt, 0) if price else None,  # the prompts alone
                "expected_usd": price.cost(prompt, expected) if price else None,
                "max_usd": price.cost(prompt, maximum) if price else None,
            }
        )
    return rows
