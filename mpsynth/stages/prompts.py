"""Prompts: turn each sample pool into a generation request (chat messages plus everything that shapes
the response), identified by a hash of exactly those things."""

from __future__ import annotations

import json
from importlib import resources
from string import Template

import pyarrow as pa

from mpsynth import schema
from mpsynth.config import GenerateConfig, PromptsConfig
from mpsynth.errors import ConfigError
from mpsynth.rundir import fingerprint

SEPARATOR = "\n---\n"


def load_template(strategy: str, config: PromptsConfig) -> tuple[Template, Template]:
    """(system, user) templates for a strategy: the config's file if given, else the packaged one."""
    override = config.templates.get(strategy)
    if override is not None:
        if not override.is_file():
            raise ConfigError(f"prompts.templates.{strategy}: file not found: {override}")
        text = override.read_text(encoding="utf-8")
        source = str(override)
    else:
        text = resources.files("mpsynth.templates").joinpath(f"{strategy}.txt").read_text("utf-8")
        source = f"packaged template {strategy}.txt"
    if SEPARATOR not in text:
        raise ConfigError(f"{source}: the system and user parts must be separated by a '---' line")
    system, user = text.split(SEPARATOR, 1)
    return Template(system.strip()), Template(user.strip())


def format_examples(examples: list[tuple[str, str]]) -> str:
    return "\n\n".join(f"[{platform}] {text}" for platform, text in examples)


def generation_params(config: GenerateConfig) -> dict:
    return {"temperature": config.temperature, "max_tokens": config.max_tokens}


def request_id(provider: str, model: str, params: dict, messages: list[dict], seed: int) -> str:
    return fingerprint(
        {"provider": provider, "model": model, "params": params, "messages": messages, "seed": seed}
    )[:32]


def build_requests(
    pools: pa.Table,
    posts: pa.Table,
    prompts: PromptsConfig,
    generate: GenerateConfig,
) -> pa.Table:
    text_of = dict(
        zip(posts.column("id").to_pylist(), posts.column("text").to_pylist(), strict=True)
    )
    platform_of = dict(
        zip(posts.column("id").to_pylist(), posts.column("platform").to_pylist(), strict=True)
    )
    templates = {s: load_template(s, prompts) for s in set(pools.column("strategy").to_pylist())}
    params = generation_params(generate)
    params_json = json.dumps(params, sort_keys=True)
    provider, model = generate.provider.kind, generate.provider.model
    rows: dict[str, list] = {name: [] for name in schema.GENERATION_REQUESTS.names}
    for pool in pools.to_pylist():
        system, user = templates[pool["strategy"]]
        examples = [(platform_of[i], text_of[i]) for i in pool["example_ids"]]
        values = {
            "n_examples": len(examples),
            "platform_list": ", ".join(sorted({p for p, _ in examples})),
            "examples": format_examples(examples),
            "posts_per_platform": prompts.posts_per_platform,
            "target_list": ", ".join(pool["target_platforms"]),
        }
        messages = [
            {"role": "system", "content": system.safe_substitute(values)},
            {"role": "user", "content": user.safe_substitute(values)},
        ]
        rows["request_id"].append(request_id(provider, model, params, messages, pool["seed"]))
        rows["pool_id"].append(pool["pool_id"])
        rows["strategy"].append(pool["strategy"])
        rows["topic"].append(pool["topic"])
        rows["target_platforms"].append(pool["target_platforms"])
        rows["posts_per_platform"].append(prompts.posts_per_platform)
        rows["example_ids"].append(pool["example_ids"])
        rows["messages"].append(messages)
        rows["provider"].append(provider)
        rows["model"].append(model)
        rows["params_json"].append(params_json)
        rows["seed"].append(pool["seed"])
    return pa.Table.from_pydict(rows, schema=schema.GENERATION_REQUESTS)
